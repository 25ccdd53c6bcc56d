/**
 * Drives the tsparallel kernel through a real Jupyter client: Debian's jupyter_client (run by
 * /usr/bin/python3, not the pyenv python first on PATH) started by test/kernel/run_cells.py.
 * The kernelspec is installed with `tsparallel install --prefix` into the test's private dir.
 */
import * as util from "node:util";
import { execFile, execFileSync } from "node:child_process";
import * as path from "node:path";
import { testRoot } from "./cluster";
import { CLI_PATH, PACKAGE_ROOT } from "../../paths";

export const PYTHON = "/usr/bin/python3";
const ROOT = PACKAGE_ROOT;
const CLI = CLI_PATH;
const RUN_CELLS = path.join(ROOT, "test", "kernel", "run_cells.py");

export interface IopubMessage {
  msg_type: string;
  content: Record<string, unknown> & {
    data?: Record<string, string>;
    text?: string;
    name?: string;
    traceback?: string[];
    ename?: string;
    evalue?: string;
  };
}
export interface CellResult {
  reply: Record<string, unknown> & {
    status: string;
    execution_count?: number;
    ename?: string;
    evalue?: string;
    traceback?: string[];
  };
  iopub: IopubMessage[];
  batch?: Array<{ status: string }>;
}
export type CellSpec =
  { code: string; interrupt_on?: string; timeout?: number } | { batch: string[]; sent_file?: string };

let installed = false;
/** Installs the kernelspec once per test process, and points Jupyter at it. */
export function installKernel(): void {
  if (installed) return;
  const prefix = path.join(testRoot, "jupyter");
  execFileSync(process.execPath, [CLI, "install", "--prefix", prefix]);
  process.env.JUPYTER_PATH = path.join(prefix, "share", "jupyter");
  process.env.JUPYTER_DATA_DIR = path.join(testRoot, "jupyter-data");
  process.env.PYDEVD_DISABLE_FILE_VALIDATION = "1";
  installed = true;
}

/** Runs the cells in one fresh kernel (started in `cwd`) and returns what each produced. */
export function runCells(cells: CellSpec[], cwd = testRoot): Promise<{ results: CellResult[]; alive: boolean }> {
  installKernel();
  return new Promise((resolve, reject) => {
    const child = execFile(
      PYTHON,
      ["-Xfrozen_modules=off", RUN_CELLS],
      { maxBuffer: 64 << 20, timeout: 240_000 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`run_cells.py failed: ${err.message}\n${stderr.slice(-3000)}`));
        resolve(JSON.parse(stdout) as { results: CellResult[]; alive: boolean });
      },
    );
    child.stdin!.end(JSON.stringify({ kernel: "tsparallel", cwd, cells }));
  });
}

/** All the text a cell showed: streams, text/plain of displays and results, error tracebacks. */
export function textOf(r: CellResult): string {
  const latest = new Map<string, string>(); // display ids keep only their latest text, as a front end shows
  const parts: Array<string | { id: string }> = [];
  for (const m of r.iopub) {
    const c = m.content;
    const id = (c.transient as { display_id?: string } | undefined)?.display_id;
    if (m.msg_type === "stream") parts.push(String(c.text));
    // Tracebacks carry ANSI colours, as IPython's do; a front end shows the text.
    else if (m.msg_type === "error") parts.push(util.stripVTControlCharacters((c.traceback ?? []).join("\n")) + "\n");
    else if (m.msg_type === "execute_result" || m.msg_type === "display_data") {
      const text = String(c.data?.["text/plain"] ?? "") + "\n";
      if (id) {
        latest.set(id, text);
        parts.push({ id });
      } else parts.push(text);
    } else if (m.msg_type === "update_display_data" && id) latest.set(id, String(c.data?.["text/plain"] ?? "") + "\n");
  }
  return parts.map((p) => (typeof p === "string" ? p : (latest.get(p.id) ?? ""))).join("");
}

export function messages(r: CellResult, type: string): IopubMessage[] {
  return r.iopub.filter((m) => m.msg_type === type);
}
