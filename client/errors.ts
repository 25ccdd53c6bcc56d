/**
 * The errors the library throws, as classes callers can `instanceof` and branch on by `code`.
 * All share one root, `TsParallelError` (declared in protocol/errors.ts so that the wire,
 * transpile and connection errors can extend it too). Bad arguments are the exception: they
 * throw the standard `TypeError`/`RangeError` at the call, as Node's own APIs do.
 */
import { type LibraryErrorName, TsParallelError, isLibraryErrorName } from "../protocol/errors";
import * as util from "node:util";
import type { ErrorContent } from "../protocol/messages";
import { ANSI } from "../protocol/mime";

export { TsParallelError };

/** An exception raised on an engine. `toString()` is `[2:apply] TypeError: …`. */
export class RemoteError extends TsParallelError {
  override name = "RemoteError";
  override readonly code = "ERR_REMOTE";
  constructor(
    readonly ename: string,
    readonly evalue: string,
    readonly traceback: string[],
    readonly engineId: number | undefined,
    readonly method: "apply" | "execute" = "apply",
  ) {
    super(`[${engineId ?? "?"}:${method}] ${ename}: ${evalue}`);
  }

  /**
   * `[N:method]:` then the remote traceback, as ipyparallel renders it. The engine colours its
   * traceback with ANSI codes, as IPython does (notebooks show them); `color: false` strips them.
   */
  render({ color = true }: { color?: boolean } = {}): string {
    // The first traceback line repeats "ename: evalue"; evalue carries the hint, so lead with it.
    const first = util.stripVTControlCharacters(this.traceback[0] ?? "");
    const rest = first.startsWith(`${this.ename}:`) ? this.traceback.slice(1) : this.traceback;
    const name = color ? `${ANSI.red}${this.ename}${ANSI.reset}` : this.ename;
    const text = [`[${this.engineId ?? "?"}:${this.method}]: ${name}: ${this.evalue}`, ...rest].join("\n");
    return color ? text : util.stripVTControlCharacters(text);
  }

  /**
   * The error a failed reply stands for: one of the library's own classes when tsparallel raised
   * it (`origin`), otherwise a RemoteError that keeps the remote name and traceback.
   */
  static fromContent(
    c: Pick<ErrorContent, "ename" | "evalue" | "traceback" | "origin">,
    engineId: number | undefined,
    method: "apply" | "execute",
  ): TsParallelError {
    if (c.origin === "tsparallel" && isLibraryErrorName(c.ename))
      return new LIBRARY_ERRORS[c.ename](c.evalue, engineId);
    return new RemoteError(c.ename, c.evalue, c.traceback ?? [], engineId, method);
  }
}

/** Several engines failed. The first `TB_LIMIT` are rendered, then "… N more exceptions". */
export class CompositeError extends TsParallelError {
  override name = "CompositeError";
  override readonly code = "ERR_COMPOSITE";
  static readonly TB_LIMIT = 4;
  constructor(
    readonly errors: Error[],
    method = "apply",
  ) {
    super(`one or more exceptions raised in ${method}:\n${CompositeError.summary(errors, false)}`);
    this.method = method;
  }

  private readonly method: string;

  /** The message with each engine's traceback in colour, for a notebook. */
  render(): string {
    return `one or more exceptions raised in ${this.method}:\n${CompositeError.summary(this.errors, true)}`;
  }

  private static summary(errors: Error[], color: boolean): string {
    const shown = errors
      .slice(0, CompositeError.TB_LIMIT)
      .map((e) => (e instanceof RemoteError ? e.render({ color }) : `${e.name}: ${e.message}`));
    if (errors.length > CompositeError.TB_LIMIT)
      shown.push(`… ${errors.length - CompositeError.TB_LIMIT} more exceptions …`);
    return shown.join("\n");
  }
}

/** An error about one task, raised by tsparallel; `engineId` is its engine when known. */
export abstract class TaskFailure extends TsParallelError {
  constructor(
    message: string,
    readonly engineId?: number,
  ) {
    super(message);
  }
}

/** The engine died (or was lost) before it could answer. */
export class EngineError extends TaskFailure {
  override name = "EngineError";
  override readonly code = "ERR_ENGINE";
}

/** A wait ran out (`get({ timeout })`, `waitForEngines`), or a task hit its time limit. */
export class TimeoutError extends TaskFailure {
  override name = "TimeoutError";
  override readonly code = "ERR_TIMEOUT";
}

/** The task was aborted before it started (`ar.abort()`). */
export class TaskAborted extends TaskFailure {
  override name = "TaskAborted";
  override readonly code = "ERR_TASK_ABORTED";
}

/** A load-balanced task's dependencies cannot be met. */
export class DependencyError extends TaskFailure {
  override name = "DependencyError";
  override readonly code = "ERR_DEPENDENCY";
}

export class NoEnginesError extends TsParallelError {
  override name = "NoEnginesError";
  override readonly code = "ERR_NO_ENGINES";
  constructor(detail = "no engines are registered") {
    super(
      `${detail}; start a cluster with \`tsparallel cluster start -n 4\` (or Cluster.start({ n: 4 })), or wait with rc.waitForEngines(n)`,
    );
  }
}

/** The class for each wire name of a library error; the compiler checks that every name has one. */
const LIBRARY_ERRORS: {
  readonly [N in LibraryErrorName]: new (message: string, engineId?: number) => TsParallelError;
} = {
  EngineError,
  TimeoutError,
  TaskAborted,
  InvalidDependency: DependencyError,
  ImpossibleDependency: DependencyError,
};

/** Anything thrown, as an Error (a non-Error throw becomes a TsParallelError of its text). */
export function asError(e: unknown): Error {
  return e instanceof Error ? e : new TsParallelError(String(e));
}
