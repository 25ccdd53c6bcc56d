/**
 * The root of every error tsparallel raises, and the names of the errors that tsparallel itself
 * (not user code) reports over the wire.
 *
 * Errors from user code travel as Jupyter error content and become `RemoteError`s that keep the
 * remote `ename` and traceback. Errors the controller or an engine raises on a task's behalf
 * (an engine died, a task was aborted or hit its time limit) carry `origin: "tsparallel"`, so
 * the client rebuilds them as its own classes; a user's own error that happens to be called
 * `TimeoutError` (from `AbortSignal.timeout`, say) has no origin and stays a `RemoteError`.
 */
import type { ErrorContent } from "./messages";

/** The base class: `code` is stable for programs to branch on, `cause` keeps what led to it. */
export class TsParallelError extends Error {
  override name = "TsParallelError";
  readonly code: string = "ERR_TSPARALLEL";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Errors tsparallel raises for a task; the client maps each to its class. */
export const LIBRARY_ERROR_NAMES = [
  "EngineError",
  "TaskAborted",
  "TimeoutError",
  "InvalidDependency",
  "ImpossibleDependency",
] as const;
export type LibraryErrorName = (typeof LIBRARY_ERROR_NAMES)[number];

export function isLibraryErrorName(name: string): name is LibraryErrorName {
  return (LIBRARY_ERROR_NAMES as readonly string[]).includes(name);
}

/** Error content for a library error: the traceback is the one line `ename: evalue`. */
export function libraryErrorContent(ename: LibraryErrorName, evalue: string): ErrorContent {
  return { status: "error", ename, evalue, traceback: [`${ename}: ${evalue}`], origin: "tsparallel" };
}
