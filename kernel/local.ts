/* eslint-disable @typescript-eslint/no-require-imports -- tslab loads on first use (below), and its TypeScript is resolved from tslab's own folder */
/**
 * Ordinary cells, run exactly as tslab runs them: its converter (a TypeScript watch program that
 * type-checks each cell against the declarations of earlier ones) and its executor. What is
 * ours is the capture around it: the last expression comes back as a value (tslab prints it),
 * exceptions and type errors as structured errors (tslab prints those too), and line numbers
 * are shifted when the code is one segment of a cell that also holds magics.
 */
import * as path from "node:path";
import * as util from "node:util";
import { CompositeError, RemoteError } from "../client/errors";
import { PACKAGE_ROOT } from "../paths";
import type * as TS from "typescript";
import { lendToRequire, missingPackages, mountInTypeScript } from "./own-packages";
import { fixForTslab } from "./tslab-fixes";
import { CellExecutor } from "./cell-executor";
import type { CellError, CellOutcome } from "../magics/cell-io";

/**
 * tslab and its TypeScript load on first use (about 0.7 s of require), so that a kernel binds
 * its sockets and answers kernel_info before paying for them.
 */
const tslab = {
  converter: () => require("tslab/dist/converter") as typeof import("tslab/dist/converter"),
  inspect: () => require("tslab/dist/inspect") as typeof import("tslab/dist/inspect"),
};

type TslabDisplay = (
  d: { data: Record<string, unknown>; metadata: Record<string, unknown>; transient?: { display_id?: string } },
  update: boolean,
) => void;
let tslabDisplay: TslabDisplay | undefined;

/** Where `tslab.display.*` publishes; handed to tslab when it loads. */
export function routeTslabDisplays(f: TslabDisplay): void {
  tslabDisplay = f;
}

const TSLAB_TYPESCRIPT = "@tslab/typescript-for-tslab";

/**
 * tslab's own TypeScript (a fork of 5.0): the compiler that checks cells, and the parser of
 * `fixForTslab`. Typed with the project's TypeScript, whose API is a superset of what we call.
 */
export function tslabTypeScript(): typeof TS & { sys: Parameters<typeof mountInTypeScript>[0] } {
  return require(require.resolve(TSLAB_TYPESCRIPT, { paths: [require.resolve("tslab")] })) as ReturnType<
    typeof tslabTypeScript
  >;
}

/** Its version, from package.json: kernel_info must not load the compiler. */
export function tslabTypeScriptVersion(): string {
  const pkg = require.resolve(`${TSLAB_TYPESCRIPT}/package.json`, { paths: [require.resolve("tslab")] });
  return (require(pkg) as { version: string }).version;
}

export class LocalRunner {
  private readonly executor: CellExecutor;
  private captured: { value?: { value: unknown }; errors: unknown[][] } = { errors: [] };

  constructor(cwd: string) {
    // tslab's compiler host reads through this module's `sys`: lend it what the folder lacks.
    mountInTypeScript(tslabTypeScript().sys, missingPackages(cwd));
    lendToRequire();
    if (tslabDisplay)
      (require("tslab/dist/jupyter") as { lastWriteDisplayData: unknown }).lastWriteDisplayData = tslabDisplay;
    const converter = tslab.converter().createConverter({ isJS: false, isBrowser: false }); // about 1.3 s, now rather than in the first cell
    this.executor = new CellExecutor(tslabTypeScript(), converter, cwd, {
      log: (value: unknown) => (this.captured.value = { value }),
      error: (...args: unknown[]) => this.captured.errors.push(args),
    });
  }

  /** Runs `code` (lines numbered from `firstLine` in the cell, for messages). */
  async run(code: string, firstLine = 1): Promise<CellOutcome> {
    this.captured = { errors: [] };
    const ok = await this.executor.execute(fixForTslab(tslabTypeScript(), code));
    const { value, errors } = this.captured;
    if (ok) return value ? { ok: true, value } : { ok: true };
    const shift = firstLine - 1;
    return { ok: false, error: toCellError(errors, shift, (stack) => this.executor.cellFrames(stack, shift)) };
  }

  interrupt(): void {
    this.executor.interrupt();
  }

  complete(code: string, cursor: number): { matches: string[]; start: number; end: number } {
    const info = this.executor.complete(code, cursor);
    return { matches: info.candidates, start: info.start, end: info.end };
  }

  inspect(code: string, cursor: number): string | undefined {
    const info = this.executor.inspect(code, cursor);
    return info ? tslab.inspect().printQuickInfo(info) : undefined;
  }

  isComplete(code: string): { status: "complete" | "incomplete"; indent?: string } {
    const r = tslab.converter().isCompleteCode(code);
    return r.completed ? { status: "complete" } : { status: "incomplete", indent: r.indent ?? "" };
  }

  close(): void {
    this.executor.close();
  }
}

/**
 * tslab reports a type error as `error("%s%d:%d - %s", file, line, col, text)` and an exception
 * as `error(exception)`: turn either into Jupyter's ename/evalue/traceback.
 */
function toCellError(errors: unknown[][], lineShift: number, cellFrames: (stack: string) => string): CellError {
  const diagnostics = errors.filter((a) => a.length > 1 && typeof a[0] === "string" && a[0].includes("%d:%d"));
  if (diagnostics.length > 0) {
    const lines = diagnostics.map(([fmt, file, line, col, text]) =>
      util.format(fmt, file, Number(line) + lineShift, col, flatten(text)),
    );
    return { ename: "TSError", evalue: lines[0]!, traceback: lines };
  }
  const thrown = errors[0]?.[0];
  // Engines' errors render as %px renders them: coloured, one block per engine, their TypeScript
  // lines, and none of the client's or the kernel's frames after them.
  if (thrown instanceof RemoteError || thrown instanceof CompositeError) {
    const evalue = thrown instanceof RemoteError ? thrown.evalue : thrown.message.split("\n")[0]!;
    return { ename: thrown.name, evalue, traceback: thrown.render().split("\n") };
  }
  if (thrown instanceof Error) {
    const interrupted =
      (thrown as { code?: string }).code === "ERR_SCRIPT_EXECUTION_INTERRUPTED" ||
      thrown.message === "Interrupted asynchronously";
    if (interrupted)
      return {
        ename: "KeyboardInterrupt",
        evalue: "interrupted",
        traceback: ["KeyboardInterrupt: the cell was interrupted"],
      };
    return { ename: thrown.name, evalue: thrown.message, traceback: cleanStack(thrown, cellFrames) };
  }
  const text = errors.map((a) => util.format(...a)).join("\n") || "the cell failed";
  return { ename: "Error", evalue: text, traceback: [text] };
}

function flatten(text: unknown): string {
  // TypeScript diagnostic chains: { messageText, next: [...] }.
  if (typeof text === "string") return text;
  const chain = text as { messageText?: unknown; next?: unknown[] } | undefined;
  if (!chain || typeof chain !== "object") return String(text);
  return [flatten(chain.messageText), ...(chain.next ?? []).map(flatten)].join(" ");
}

/**
 * The user's frames only: the kernel's, the client library's and tslab's own frames say nothing
 * to them, and JupyterLab would turn their paths into links the server cannot serve. Frames of
 * cells show the cell's own TypeScript line and column (cell-lines.ts).
 */
function cleanStack(e: Error, cellFrames: (stack: string) => string): string[] {
  const lines = cellFrames(e.stack ?? `${e.name}: ${e.message}`).split("\n");
  const ours = `${PACKAGE_ROOT}${path.sep}dist${path.sep}`;
  return lines.filter(
    (l, i) => i === 0 || !(l.includes(ours) || /node_modules[\\/]tslab|node:internal|\(node:/.test(l)),
  );
}
