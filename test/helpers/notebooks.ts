/**
 * Runs a tutorial notebook through the tsparallel kernel with Debian's nbconvert (nbclient), as
 * `jupyter nbconvert --execute` does: the kernel's cwd is notebooks/, each notebook starts the
 * clusters it needs. Used by the notebook tests (reduced scale) and by `npm run
 * notebooks:execute` (full scale, saved in place).
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { PACKAGE_ROOT } from "../../paths";
import { PYTHON, installKernel } from "./jupyter";

export const NOTEBOOKS = path.join(PACKAGE_ROOT, "notebooks");

export interface Output {
  output_type: string;
  text?: string | string[];
  data?: Record<string, string | string[]>;
  traceback?: string[];
}

export interface Cell {
  cell_type: string;
  source: string | string[];
  execution_count?: number | null;
  outputs?: Output[];
}

/** The tutorials, in reading order. */
export function tutorials(): string[] {
  return fs
    .readdirSync(NOTEBOOKS)
    .filter((f) => /^\d{3}_.*\.ipynb$/.test(f))
    .sort()
    .map((f) => f.replace(/\.ipynb$/, ""));
}

/**
 * Executes `notebooks/<name>.ipynb` into `output`; resolves with its cells. `scale` multiplies
 * the tutorials' sleeps and loop sizes (TSP_NOTEBOOK_SCALE; 1 is what a reader runs).
 */
export function executeNotebook(
  name: string,
  output: string,
  opts: { scale?: number; timeoutS?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<Cell[]> {
  installKernel();
  const timeout = opts.timeoutS ?? 180;
  const args = [
    "-Xfrozen_modules=off",
    "-m",
    "nbconvert",
    "--to",
    "notebook",
    "--execute",
    path.join(NOTEBOOKS, `${name}.ipynb`),
    "--output",
    output,
    `--ExecutePreprocessor.timeout=${timeout}`,
  ];
  const env = { ...process.env, ...opts.env, TSP_NOTEBOOK_SCALE: String(opts.scale ?? 1) };
  return new Promise((resolve, reject) => {
    execFile(PYTHON, args, { env, timeout: timeout * 10_000, maxBuffer: 64 << 20 }, (err, _stdout, stderr) => {
      if (err) return reject(new Error(`${name} failed:\n${stderr.slice(-4000)}`));
      resolve((JSON.parse(fs.readFileSync(output, "utf8")) as { cells: Cell[] }).cells);
    });
  });
}
