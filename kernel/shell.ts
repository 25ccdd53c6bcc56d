/**
 * One cell, start to end: split it into local code and magics (cell.ts), run each part in
 * order, and stop at the first failure. Local code goes to tslab (local.ts), magics to
 * magics/px.ts. A plain cell goes to tslab untouched, so ordinary cells behave as in tslab.
 */
import type { CellIO, CellOutcome } from "../magics/cell-io";
import { ParallelMagics } from "../magics/px";
import { hasMagic, splitCell } from "./cell";
import { LocalRunner } from "./local";

export class Shell {
  readonly magics: ParallelMagics;
  private runner: LocalRunner | undefined;

  constructor(private readonly cwd: string) {
    this.magics = new ParallelMagics({ run: (code, line) => this.runLocal(code, line) });
  }

  /**
   * tslab's TypeScript program takes ~2 s to build. Built on first use, not at start, so the
   * kernel answers kernel_info (a front end's "Kernel ready") at once; `warmUp` builds it
   * while the user is still typing.
   */
  get local(): LocalRunner {
    return (this.runner ??= new LocalRunner(this.cwd));
  }

  warmUp(): void {
    void this.local;
  }

  async run(code: string, io: CellIO): Promise<CellOutcome> {
    const segments = splitCell(code);
    const toggles =
      segments.length === 1 && segments[0]!.kind === "line-magic" && /^autopx(_\w+)?$/.test(segments[0]!.name);
    if (this.magics.autopx !== undefined && !toggles) return this.magics.autoCell(code, io);
    if (!hasMagic(segments)) return this.runLocal(code, 1);

    let outcome: CellOutcome = { ok: true };
    for (const [i, s] of segments.entries()) {
      const last = i === segments.length - 1;
      if (s.kind === "local") outcome = await this.runLocal(s.code, s.line);
      else if (!ParallelMagics.knows(s.name)) outcome = unknownMagic(s.kind === "cell-magic" ? "%%" : "%", s.name);
      else if (s.kind === "line-magic") outcome = await this.magics.line(s.name, s.args, io, s.line);
      else outcome = await this.magics.cell(s.name, s.args, s.body, io, s.bodyLine);
      if (!outcome.ok) return outcome;
      // As in IPython, only the cell's final expression is its result.
      if (!last && outcome.value) outcome = { ok: true };
    }
    return outcome;
  }

  /** Ctrl-C: a running %px signals its engines; local code is interrupted by tslab. */
  interrupt(): void {
    if (!this.magics.interrupt()) this.local.interrupt();
  }

  /** Completion and inspection look at the code a magic cell runs, not at its `%%px` line. */
  complete(code: string, cursor: number): { matches: string[]; start: number; end: number } {
    const { body, offset } = magicBody(code);
    if (cursor < offset) return { matches: [], start: cursor, end: cursor };
    const r = this.local.complete(body, cursor - offset);
    return { matches: r.matches, start: r.start + offset, end: r.end + offset };
  }

  inspect(code: string, cursor: number): string | undefined {
    const { body, offset } = magicBody(code);
    return cursor < offset ? undefined : this.local.inspect(body, cursor - offset);
  }

  isComplete(code: string): { status: "complete" | "incomplete"; indent?: string } {
    return /^\s*%/.test(code) && !code.includes("\n")
      ? { status: "complete" }
      : this.local.isComplete(magicBody(code).body);
  }

  private async runLocal(code: string, line: number): Promise<CellOutcome> {
    const r = await this.local.run(code, line);
    return r.ok ? r : { ok: false, error: r.error };
  }
}

function magicBody(code: string): { body: string; offset: number } {
  const m = /^\s*%%[^\n]*\n?/.exec(code);
  return m ? { body: code.slice(m[0].length), offset: m[0].length } : { body: code, offset: 0 };
}

function unknownMagic(sigil: string, name: string): CellOutcome {
  const evalue = `unknown magic ${sigil}${name}: the tsparallel kernel knows %px, %%px, %pxresult, %pxconfig and %autopx (with a suffix after view.activate("_suffix"))`;
  return { ok: false, error: { ename: "UsageError", evalue, traceback: [`UsageError: ${evalue}`] } };
}
