/**
 * The contract between the kernel and the magics: where a cell's outputs go, how a cell fails,
 * and what running a cell (local or remote) comes to. The kernel implements `CellIO` on iopub
 * and `LocalCells` with tslab; the magics use both.
 */
import type { MimeBundle } from "../protocol/messages";

/** Where a cell's outputs go. */
export interface CellIO {
  /** Unique per cell: display ids are built from it. */
  readonly cellId: string;
  stream(name: "stdout" | "stderr", text: string): void;
  display(data: MimeBundle, metadata?: Record<string, unknown>, displayId?: string): void;
  update(displayId: string, data: MimeBundle, metadata?: Record<string, unknown>): void;
  /** An error shown now; the cell's own error is its outcome. */
  error(e: CellError): void;
}

/** A cell's error, as Jupyter's error content carries it. */
export interface CellError {
  ename: string;
  evalue: string;
  traceback: string[];
}

/**
 * How a cell (or one part of it) ended: a value to show, or an error. `shown` says the error's
 * traceback was already streamed, so the kernel does not print it twice.
 */
export type CellOutcome = { ok: true; value?: { value: unknown } } | { ok: false; error: CellError; shown?: boolean };

/** What the kernel lends the magics: its local runner (for `--local` and `-o NAME`). */
export interface LocalCells {
  run(code: string, firstLine: number): Promise<CellOutcome>;
}
