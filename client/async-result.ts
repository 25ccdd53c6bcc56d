/**
 * The handle on submitted work. Awaitable (`await ar` is `ar.get()`), async-iterable (results
 * as they arrive, in submission order or, with `ordered: false`, as they finish), with
 * ipyparallel's metadata and timings. Rendering lives in magics/, not here.
 */
import { randomUUID } from "node:crypto";
import * as util from "node:util";
import { type Chart, vegaLite } from "./charts";
import { taskStreamSpec } from "./task-stream";
import { getDisplayHook } from "./display";
import { CompositeError, TimeoutError } from "./errors";
import { nonInteractive, progressBundle, progressText } from "./progress";
import type { OutputEvent, SubmittedTask, ResultMetadata } from "./task";
import { TsParallelError } from "../protocol/errors";
import { type GroupBy, renderOutputs } from "./render";
import { plainText } from "../protocol/mime";
import { Completions } from "./completions";

export interface ResultHost {
  abort(msgIds: string[]): Promise<string[]>;
  cancel(msgIds: string[], signal?: string): Promise<{ aborted: string[]; interrupted: string[] }>;
}

export interface AsyncResultOptions<T> {
  /** A single-integer target: `get()` returns the value, not a one-element list. */
  scalar?: boolean;
  /** For map: results are chunks to flatten. */
  chunked?: boolean;
  ordered?: boolean;
  /** Name shown by progress displays (the function name, or "execute"). */
  label?: string;
  /** Turns task values into the final result (e.g. gather's concatenation). */
  finish?: (values: unknown[]) => T;
}

export type GetOptions = { timeout?: number; signal?: AbortSignal };
export type WaitOptions = {
  timeout?: number;
  returnWhen?: "ALL_COMPLETED" | "FIRST_COMPLETED" | "FIRST_EXCEPTION";
};

export class AsyncResult<T = unknown> implements Promise<T>, AsyncIterable<unknown> {
  readonly label: string;
  private cached: Promise<T> | undefined;

  constructor(
    private readonly host: ResultHost,
    readonly tasks: readonly SubmittedTask[],
    private readonly options: AsyncResultOptions<T> = {},
  ) {
    this.label = options.label ?? "task";
  }

  get msgIds(): string[] {
    return this.tasks.map((t) => t.msgId);
  }

  get metadata(): ResultMetadata[] {
    return this.tasks.map((t) => t.metadata);
  }

  /** What each task printed to stdout so far, in task order (as ipyparallel's `ar.stdout`). */
  get stdout(): string[] {
    return this.tasks.map((t) => t.metadata.stdout);
  }

  /** What each task printed to stderr so far, in task order. */
  get stderr(): string[] {
    return this.tasks.map((t) => t.metadata.stderr);
  }

  /** Number of tasks (for a map: chunks) in this result. */
  get length(): number {
    return this.tasks.length;
  }

  /** Tasks finished so far. */
  get progress(): number {
    return this.tasks.reduce((n, t) => n + (t.ready ? 1 : 0), 0);
  }

  ready(): boolean {
    return this.tasks.every((t) => t.ready);
  }

  /** The result. With `timeout` (ms), rejects with TimeoutError if it is not ready by then. */
  get(opts: GetOptions | number = {}): Promise<T> {
    const { timeout, signal } = typeof opts === "number" ? { timeout: opts, signal: undefined } : opts;
    checkTimeout(timeout, "get");
    const all = this.result();
    if (timeout === undefined && !signal) return all;
    return new Promise<T>((resolve, reject) => {
      const timer =
        timeout !== undefined
          ? setTimeout(
              () =>
                reject(
                  new TimeoutError(`result not ready after ${timeout} ms (${this.progress}/${this.length} tasks done)`),
                ),
              timeout,
            )
          : undefined;
      const onAbort = (): void => reject(new TsParallelError("aborted while waiting", { cause: signal?.reason }));
      signal?.addEventListener("abort", onAbort, { once: true });
      all.then(resolve, reject).finally(() => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      });
    });
  }

  /**
   * Waits until the result is ready, or `timeout` ms; true when the condition was met. Never
   * throws task errors. `returnWhen` (as Python's concurrent.futures.wait): "ALL_COMPLETED"
   * (default), "FIRST_COMPLETED" (any task done) or "FIRST_EXCEPTION" (any task failed, or all done).
   */
  async wait(opts: number | WaitOptions = {}): Promise<boolean> {
    const { timeout, returnWhen = "ALL_COMPLETED" } = typeof opts === "number" ? { timeout: opts } : opts;
    checkTimeout(timeout, "wait");
    if (!["ALL_COMPLETED", "FIRST_COMPLETED", "FIRST_EXCEPTION"].includes(returnWhen))
      throw new RangeError(
        `returnWhen must be ALL_COMPLETED, FIRST_COMPLETED or FIRST_EXCEPTION; got ${String(returnWhen)}`,
      );
    const settled = this.tasks.map((t) =>
      t.done.then(
        () => true,
        () => false,
      ),
    );
    const allDone = Promise.all(settled).then(() => true);
    const all =
      returnWhen === "ALL_COMPLETED" || this.tasks.length === 0
        ? allDone
        : returnWhen === "FIRST_COMPLETED"
          ? Promise.race(settled).then(() => true)
          : Promise.race([
              allDone,
              ...settled.map((p) => p.then((ok) => (ok ? new Promise<boolean>(() => undefined) : true))),
            ]);
    if (timeout === undefined) return all;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeout)));
    try {
      return await Promise.race([all, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  then<R1 = T, R2 = never>(
    onfulfilled?: ((v: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((e: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.result().then(onfulfilled, onrejected);
  }

  finally(onfinally?: (() => void) | null): Promise<T> {
    return this.result().finally(onfinally);
  }

  readonly [Symbol.toStringTag] = "AsyncResult";

  catch<R = never>(onrejected?: ((e: unknown) => R | PromiseLike<R>) | null): Promise<T | R> {
    return this.result().catch(onrejected);
  }

  /** Results as they arrive; map results yield their elements. */
  async *[Symbol.asyncIterator](): AsyncGenerator<unknown, void, undefined> {
    if (this.options.ordered === false) {
      const finished = new Completions(this.tasks);
      for (let t = await finished.next(); t; t = await finished.next()) yield* this.valuesOf(t);
      return;
    }
    for (const t of this.tasks) {
      await t.done.catch(() => undefined);
      yield* this.valuesOf(t);
    }
  }

  private *valuesOf(t: SubmittedTask): Generator<unknown, void, undefined> {
    if (t.error) throw t.error;
    if (this.options.chunked && Array.isArray(t.value)) yield* t.value;
    else yield t.value;
  }

  /** True when every task finished without an error; throws if the result is not ready yet. */
  successful(): boolean {
    if (!this.ready()) throw new TsParallelError("AsyncResult is not ready: await it or call wait() first");
    return this.tasks.every((t) => t.metadata.status === "ok");
  }

  /**
   * Results by engine id (a direct view's result, one task per engine), as ipyparallel's
   * `get_dict`. Two tasks on one engine cannot share a key, so that is refused.
   */
  async getDict(opts: GetOptions | number = {}): Promise<Record<number, unknown>> {
    await this.get(opts);
    const out: Record<number, unknown> = {};
    for (const t of this.tasks) {
      const id = t.metadata.engineId;
      if (id === undefined) throw new TsParallelError(`task ${t.msgId} has no engine id`);
      if (id in out) throw new TsParallelError(`engine ${id} ran several of these tasks; getDict needs one per engine`);
      out[id] = t.value;
    }
    return out;
  }

  /**
   * Data the tasks published while they ran (`publishData({ step, loss })` on the engine): the
   * latest dict per task, merged as it arrives; a single task's dict for a scalar result.
   */
  get data(): Record<string, unknown> | Array<Record<string, unknown>> {
    const all = this.tasks.map((t) => t.metadata.data);
    return this.options.scalar ? all[0]! : all;
  }

  /** Called with each `publishData` dict as it arrives, and the engine that sent it. */
  onData(listener: (data: Record<string, unknown>, engineId: number | undefined) => void): () => void {
    const offs = this.tasks.map((t) => t.onData(listener));
    return () => offs.forEach((off) => off());
  }

  /**
   * Shows what the tasks printed and displayed, as `%px` does (`[stdout:0] …`, `Out[0:3]: …`),
   * grouped by "type" (default), "engine" or "order": in a notebook as the cell's output,
   * elsewhere on this process's stdout and stderr.
   */
  displayOutputs(opts: { groupBy?: GroupBy } = {}): void {
    const groupBy = opts.groupBy ?? "type";
    if (!["type", "engine", "order"].includes(groupBy))
      throw new RangeError(`groupBy must be "type", "engine" or "order"; got ${String(groupBy)}`);
    const hook = getDisplayHook();
    for (const r of renderOutputs(this.metadata, groupBy)) {
      if (r.kind === "stream") {
        if (hook?.stream) hook.stream(r.name, r.text);
        else process[r.name].write(r.text);
      } else if (hook) hook.display(r.data, r.metadata);
      else process.stdout.write(`${plainText(r.data)}\n`);
    }
  }

  /** Drop this result's tasks that have not started (they fail with TaskAborted). */
  async abort(): Promise<string[]> {
    return this.host.abort(this.tasks.filter((t) => !t.ready).map((t) => t.msgId));
  }

  /**
   * Waits with a live progress line, `map: 12/12 tasks finished after 3 s`: a display updated in
   * place in a notebook, a `\r` line on stderr elsewhere. Resolves when ready (or after `timeout` ms).
   */
  async waitInteractive(opts: { interval?: number; timeout?: number; label?: string } = {}): Promise<void> {
    const label = opts.label ?? this.label;
    if (nonInteractive()) {
      // For logs and CI: no bar redrawn ten times a second, one line when done.
      await this.wait(opts.timeout);
      process.stderr.write(`${progressText(this, label)}\n`);
      return;
    }
    const hook = getDisplayHook();
    const id = `tsparallel-progress-${randomUUID()}`;
    const show = (): void => {
      if (hook) hook.update(id, progressBundle(this, label));
      else process.stderr.write(`\r${progressText(this, label)}`);
    };
    if (hook) hook.display(progressBundle(this, label), {}, id);
    const timer = setInterval(show, opts.interval ?? 100);
    try {
      await this.wait(opts.timeout);
    } finally {
      clearInterval(timer);
      show();
      if (!hook) process.stderr.write("\n");
    }
  }

  /**
   * When each task ran on which engine: bars per engine over time, coloured by task order
   * (the plot of the views tutorial), as an SVG chart that displays itself in a notebook.
   */
  async timeline(opts: { title?: string; width?: number } = {}): Promise<Chart> {
    const ran = this.tasks
      .map((t, order) => ({ ...t.metadata, order }))
      .filter((m) => m.started && m.completed && m.engineId !== undefined);
    if (ran.length === 0)
      throw new TimeoutError("no task has finished yet: await the result before drawing its timeline");
    const t0 = -latest(ran, (m) => -m.started!.getTime());
    const values = ran.map((m) => ({
      engine: m.engineId!,
      start: (m.started!.getTime() - t0) / 1000,
      end: (m.completed!.getTime() - t0) / 1000,
      order: m.order,
      label: m.label ?? this.label,
      failed: m.status === "error",
      msgId: this.tasks[m.order]!.msgId,
    }));
    // The same picture as the performance report's and the dashboard's (client/task-stream.ts).
    const title =
      opts.title ?? `${this.label}: ${ran.length} tasks on ${new Set(values.map((v) => v.engine)).size} engines`;
    return vegaLite(taskStreamSpec(values, { title, ...(opts.width ? { width: opts.width } : {}) }));
  }

  /** `<AsyncResult(execute): 3/4 done>`, as a cell shows a non-blocking `%px`. */
  [util.inspect.custom](): string {
    return `<AsyncResult(${this.label}): ${this.ready() ? (this.tasks.every((t) => t.metadata.status === "ok") ? "finished" : "failed") : `${this.progress}/${this.length} done`}>`;
  }

  /**
   * Stops the unfinished tasks wherever they are, load-balanced ones included: queued ones fail
   * with TaskAborted, running ones are interrupted (KeyboardInterrupt) by a signal to the engine
   * running each, repeated until it stops; no other task is hit.
   */
  async cancel(signal = "SIGINT"): Promise<void> {
    await this.host.cancel(
      this.tasks.filter((t) => !t.ready).map((t) => t.msgId),
      signal,
    );
  }

  /** Subscribe to outputs of every task (for live rendering); returns an unsubscribe function. */
  onOutput(listener: (e: OutputEvent, task: SubmittedTask) => void): () => void {
    const offs = this.tasks.map((t) => t.onOutput(listener));
    return () => offs.forEach((off) => off());
  }

  /** Seconds from the first submission to the last result received. */
  get wallTime(): number {
    this.requireReady("wallTime");
    const now = Date.now();
    return (latest(this.tasks, (t) => t.metadata.received?.getTime() ?? now) - this.firstSubmitted()) / 1000;
  }

  /** Seconds of engine time: the sum of (completed − started) over tasks. */
  get serialTime(): number {
    this.requireReady("serialTime");
    return (
      this.tasks.reduce(
        (s, t) =>
          s +
          (t.metadata.completed && t.metadata.started
            ? t.metadata.completed.getTime() - t.metadata.started.getTime()
            : 0),
        0,
      ) / 1000
    );
  }

  /** Seconds since submission (until now, or until the last result once ready). */
  get elapsed(): number {
    const now = Date.now();
    const end = this.ready() ? latest(this.tasks, (t) => t.metadata.received?.getTime() ?? now) : now;
    return (end - this.firstSubmitted()) / 1000;
  }

  private firstSubmitted(): number {
    return -latest(this.tasks, (t) => -t.metadata.submitted.getTime());
  }

  private requireReady(what: string): void {
    if (!this.ready()) throw new TimeoutError(`${what} is known once the result is ready; await it first`);
  }

  private result(): Promise<T> {
    this.cached ??= Promise.allSettled(this.tasks.map((t) => t.done)).then(() => {
      const errors = this.tasks.map((t) => t.error).filter((e): e is Error => e !== undefined);
      if (errors.length > 0) {
        if (this.tasks.length === 1) throw errors[0]!;
        throw new CompositeError(errors, this.label);
      }
      const values = this.tasks.map((t) => t.value);
      if (this.options.finish) return this.options.finish(values);
      if (this.options.chunked) return flattenChunks(values) as T;
      return (this.options.scalar ? values[0] : values) as T;
    });
    return this.cached;
  }
}

/**
 * Chunks of a map back into one array, a non-array chunk as one item. `concat` copies an array
 * chunk in C++: 4× faster than a push loop over deserialized arrays (which V8 makes holey), and
 * flatMap was slower still. In slices, since 100,000 chunks (chunksize 1) would overflow the
 * stack as arguments.
 */
function flattenChunks(chunks: readonly unknown[]): unknown[] {
  let out: unknown[] = [];
  for (let i = 0; i < chunks.length; i += 8192) out = out.concat(...chunks.slice(i, i + 8192));
  return out;
}

/** The largest of `f` over `items`: a loop, as spreading 100,000 tasks as arguments overflows the stack. */
function latest<T>(items: readonly T[], f: (item: T) => number): number {
  let max = -Infinity;
  for (const item of items) max = Math.max(max, f(item));
  return max;
}

/** A timeout is a finite number of ms, 0 or more; anything else is refused at the call. */
function checkTimeout(timeout: unknown, method: string): void {
  if (timeout === undefined) return;
  if (typeof timeout !== "number" || !Number.isFinite(timeout) || timeout < 0)
    throw new RangeError(`${method}: timeout must be a number of ms, 0 or more; got ${util.inspect(timeout)}`);
}
