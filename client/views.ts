/**
 * Views: how work reaches engines. A DirectView addresses engines explicitly (one message per
 * target, the payload serialized once); a LoadBalancedView lets the controller's scheduler
 * pick the engine per task.
 */
import { randomUUID } from "node:crypto";
import * as util from "node:util";
import { type AnyFunction, functionSource, packApply } from "../protocol/apply";
import type { ApplyContent, ContentOf, ProgressTag, RequestMetadata, Route } from "../protocol/messages";
import { transpile } from "../transpile/transpile";
import { TsParallelError } from "./errors";
import { AsyncResult, type ResultHost } from "./async-result";
import type { QueueStatusReport, TaskRequestType, ViewHost } from "./host";
import type { ExecuteReply } from "./execute-reply";
import { setActiveView } from "./active";
import { type Targets, partition } from "./targets";
import type { SubmittedTask } from "./task";
import type { ReferenceMarker } from "./reference";
import { type ImapOptions, ImapResult } from "./imap";

/**
 * AsyncResults made in this process, counted: each result's tasks carry its number and size, so
 * the controller's monitor can show its progress. Unique per client session, as a session
 * belongs to one process.
 */
let progressCount = 0;

function progressTag(size: number): ProgressTag {
  return { id: ++progressCount, size: Math.max(1, size) };
}

/** A communicator as the client sees it: its id, size, and the engine of each rank. */
export interface CommInfo {
  id: string;
  size: number;
  /** Engine ids by rank. */
  engines: number[];
  /** Whether its members share one host's memory, which its large arrays then go through. */
  sharedMemory: boolean;
}

export interface CommOptions {
  /**
   * false: large arrays take the engines' sockets even when all members are on one host (to
   * measure one against the other, or where /dev/shm is small). Default true.
   */
  sharedMemory?: boolean;
}

/** Any argument may be a Reference resolved on the engine. */
type ReferenceArgs<A extends unknown[]> = { [K in keyof A]: A[K] | ReferenceMarker };

export interface MapOptions {
  /** A label kept in the tasks' records, to find them later with `rc.dbQuery({ label })`. */
  label?: string;
  /** Load-balanced only: items per task (default 1). */
  chunksize?: number;
  /** Load-balanced only: iterate results in submission order (default) or as they finish. */
  ordered?: boolean;
}

type Seq = ArrayLike<unknown> | Iterable<unknown>;
/** One value per engine, or the value itself for a single-integer target. */
export type PerEngine<S extends boolean, R> = S extends true ? R : R[];

abstract class View implements ResultHost {
  constructor(readonly client: ViewHost) {}

  abstract map<F extends AnyFunction>(f: F, ...args: unknown[]): AsyncResult<Awaited<ReturnType<F>>[]>;

  /**
   * Wraps `f` for element-wise parallel calls, as ipyparallel's `@view.parallel()` decorator:
   * `pf.map(xs, ys)` and `pf(xs)` both map it over this view.
   */
  parallel<F extends AnyFunction>(
    f: F,
  ): ((...seqs: unknown[]) => AsyncResult<Awaited<ReturnType<F>>[]>) & {
    map: (...seqs: unknown[]) => AsyncResult<Awaited<ReturnType<F>>[]>;
  } {
    const run = (...seqs: unknown[]): AsyncResult<Awaited<ReturnType<F>>[]> => this.map(f, ...seqs);
    return Object.assign(run, { map: run });
  }

  abort(msgIds: string[]): Promise<string[]> {
    return this.client.abort(msgIds);
  }

  cancel(msgIds: string[], signal?: string): Promise<{ aborted: string[]; interrupted: string[] }> {
    return this.client.cancel(msgIds, signal);
  }

  protected applyCall(f: AnyFunction): ApplyContent["call"] {
    if (typeof f !== "function") throw new TypeError(`apply/map need a function first; got ${typeof f}`);
    return { kind: "source", ...functionSource(f) };
  }

  /** Splits `map(f, ...seqs, options?)` arguments. */
  protected mapArgs(args: unknown[]): { seqs: unknown[][]; opts: MapOptions } {
    const last = args[args.length - 1];
    const isOpts =
      args.length > 1 &&
      typeof last === "object" &&
      last !== null &&
      !Array.isArray(last) &&
      !ArrayBuffer.isView(last) &&
      !(Symbol.iterator in last);
    const seqs = (isOpts ? args.slice(0, -1) : args).map((s, i) => {
      if (s === null || typeof s !== "object" || !(Symbol.iterator in s || "length" in s))
        throw new TypeError(`map argument ${i + 1} must be an array or iterable`);
      // An array is used as it is (only slices of it are sent), unless it has holes, which
      // Array.from turns into undefined items; `includes` finds them in a builtin scan, where
      // copying 100,000 items through the iterator protocol cost more than sending them.
      return Array.isArray(s) && !s.includes(undefined) ? (s as unknown[]) : Array.from(s as Seq);
    });
    if (seqs.length === 0) throw new TypeError("map needs at least one sequence");
    const opts = (isOpts ? last : {}) as MapOptions;
    if (opts.chunksize !== undefined && !(Number.isInteger(opts.chunksize) && opts.chunksize > 0))
      throw new RangeError(`chunksize must be a positive integer; got ${opts.chunksize}`);
    return { seqs, opts };
  }

  /** The engine-side function that maps `f` over one chunk of each sequence (awaiting async f). */
  protected mapCall(f: AnyFunction, nseqs: number): ApplyContent["call"] {
    const { source, name } = this.applyCall(f) as { source: string; name: string };
    const args = nseqs === 1 ? "s0[i]" : Array.from({ length: nseqs }, (_, k) => `s${k}[i]`).join(", ");
    const params = Array.from({ length: nseqs }, (_, k) => `s${k}`).join(", ");
    // Synchronous until f returns a promise: a chunk of plain results comes back as a value, so
    // the engine can start the next task at once instead of after a promise turn.
    const thenable = 'r !== null && typeof r === "object" && typeof r.then === "function"';
    // `out` grows by push: a `new Array(n)` is holey, which V8's serializer writes element by
    // element with its index (2× the bytes, 4× the time for 50,000 numbers).
    const body =
      `function map_${name || "f"}(${params}) { const f = (${source}); const n = Math.min(${params
        .split(", ")
        .map((p) => `${p}.length`)
        .join(", ")}); const out = []; ` +
      `for (let i = 0; i < n; i++) { const r = f(${args}); if (${thenable}) return (async () => { out.push(await r); for (i++; i < n; i++) { const r = f(${args}); out.push(${thenable} ? await r : r); } return out; })(); out.push(r); } return out; }`;
    return { kind: "source", source: body, name: name || "f" };
  }
}

export class DirectView<S extends boolean = boolean> extends View {
  constructor(
    client: ViewHost,
    readonly targets: Targets = "all",
    readonly flags: { label?: string } = {},
  ) {
    super(client);
  }

  /** The same view with these flags, e.g. `dview.with({ label: "stage-2" })` to label its tasks. */
  with(flags: { label?: string }): DirectView<S> {
    return this.derive(this.targets, { ...this.flags, ...flags });
  }

  /** A view of the same kind on other targets or flags. */
  protected derive(targets: Targets, flags: { label?: string }): DirectView {
    return new DirectView(this.client, targets, flags);
  }

  /** `<DirectView [0, 2]>`, as ipyparallel shows a view. */
  [util.inspect.custom](): string {
    let ids: string;
    try {
      ids = `[${this.ids.join(", ")}]`;
    } catch {
      ids = JSON.stringify(this.targets);
    }
    return `<${this.constructor.name} ${ids}>`;
  }

  /** Engine ids this view addresses right now ("all" is evaluated at each call). */
  get ids(): number[] {
    return this.client.targetIds(this.targets).ids;
  }

  /** Calls `f(...args)` on every target; a single-integer target gives a scalar result. */
  apply<A extends unknown[], R>(f: (...a: A) => R, ...args: ReferenceArgs<A>): AsyncResult<PerEngine<S, Awaited<R>>> {
    return this.send(this.applyCall(f), args, f.name || "apply");
  }

  /** One chunk per engine, contiguous, sizes differing by at most one; results in order. */
  map<F extends AnyFunction>(f: F, ...args: unknown[]): AsyncResult<Awaited<ReturnType<F>>[]> {
    const { seqs, opts } = this.mapArgs(args);
    if (opts.label !== undefined && opts.label !== this.flags.label)
      return this.with({ label: opts.label }).map(f, ...seqs);
    const { ids } = this.client.targetIds(this.targets);
    const n = Math.min(...seqs.map((s) => s.length));
    const call = this.mapCall(f, seqs.length);
    const parts = partition(n, Math.min(ids.length, Math.max(n, 1))).filter(([a, b]) => b > a);
    const progress = progressTag(parts.length);
    const tasks = parts.map(([a, b], k) =>
      this.submitOne(
        call,
        seqs.map((s) => s.slice(a, b)),
        ids[k]!,
        progress,
      ),
    );
    return new AsyncResult(this, tasks, { chunked: true, label: f.name || "map" });
  }

  /** Runs TypeScript on every target (transpiled once, here); resolves to ExecuteReply per engine. */
  execute(code: string, opts: { silent?: boolean; timeLimit?: number } = {}): AsyncResult<PerEngine<S, ExecuteReply>> {
    const t = transpile(code);
    const { ids, scalar } = this.client.targetIds(this.targets);
    const content = {
      code: t.code,
      silent: opts.silent ?? false,
      store_history: true,
      user_expressions: {},
      allow_stdin: false,
      stop_on_error: true,
    };
    const extra = { sourceMap: t.map, source: code, ...(opts.timeLimit ? { timeLimit: opts.timeLimit } : {}) };
    const tasks = this.submitAll("execute_request", content, extra, [], ids);
    return new AsyncResult<PerEngine<S, ExecuteReply>>(this, tasks, { scalar, label: "execute" });
  }

  /** Defines names on the engines. */
  push(ns: Record<string, unknown>, opts: { targets?: Targets } = {}): AsyncResult<void> {
    if (typeof ns !== "object" || ns === null || Array.isArray(ns))
      throw new TypeError("push takes an object of names to values, e.g. push({ a: 1 })");
    return this.withTargets(opts.targets).send({ kind: "builtin", name: "push" }, [ns], "push", () => undefined);
  }

  /** Reads names (or expressions) from the engines: one value per engine, a scalar for one target. */
  pull<T = unknown>(names: string | string[], opts: { targets?: Targets } = {}): AsyncResult<PerEngine<S, T>> {
    return this.withTargets(opts.targets).send<PerEngine<S, T>>({ kind: "builtin", name: "pull" }, [names], "pull");
  }

  /** Splits `seq` across the targets as `name` (contiguous chunks); `flatten` turns 1-item chunks into scalars. */
  scatter(
    name: string,
    seq: ArrayLike<unknown> | Iterable<unknown>,
    opts: { flatten?: boolean; targets?: Targets } = {},
  ): AsyncResult<void> {
    const view = this.withTargets(opts.targets);
    const { ids } = this.client.targetIds(view.targets);
    const items: ArrayLike<unknown> & {
      subarray?: (a: number, b: number) => unknown;
      slice?: (a: number, b: number) => unknown;
    } = ArrayBuffer.isView(seq) || Array.isArray(seq) ? (seq as never) : Array.from(seq as Iterable<unknown>);
    const call: ApplyContent["call"] = { kind: "builtin", name: "push" };
    const chunks = partition(items.length, ids.length);
    const progress = progressTag(chunks.length);
    const tasks = chunks.map(([a, b], k) => {
      const chunk = items.subarray ? items.subarray(a, b) : Array.prototype.slice.call(items, a, b);
      const value = opts.flatten && b - a === 1 ? (chunk as ArrayLike<unknown>)[0] : chunk;
      return this.submitOne(call, [{ [name]: value }], ids[k]!, progress);
    });
    return new AsyncResult<void>(this, tasks, { label: "scatter", finish: () => undefined });
  }

  /** Concatenates `name` from the targets, in target order (typed arrays stay typed). */
  gather<T = unknown>(name: string, opts: { targets?: Targets } = {}): AsyncResult<T> {
    const view = this.withTargets(opts.targets);
    const { ids } = this.client.targetIds(view.targets);
    const progress = progressTag(ids.length);
    const tasks = ids.map((id) => this.submitOne({ kind: "builtin", name: "pull" }, [name], id, progress));
    return new AsyncResult(this, tasks, { label: "gather", finish: (parts) => concat(parts) as T });
  }

  /** Wraps `f` so calling it applies it on this view. */
  remote<A extends unknown[], R>(f: (...a: A) => R): (...a: ReferenceArgs<A>) => AsyncResult<PerEngine<S, Awaited<R>>> {
    return (...a: ReferenceArgs<A>) => this.apply(f, ...a);
  }

  /** Imports a module on every target as a global (`importModule("os")` or `importModule("node:path", "path")`). */
  importModule(specifier: string, as?: string): AsyncResult<PerEngine<S, ExecuteReply>> {
    const name = as ?? specifier.replace(/^node:/, "").replace(/[^\w$]/g, "_");
    return this.execute(`import * as ${name} from ${JSON.stringify(specifier)};`);
  }

  /**
   * Loads modules on every target before tasks use them, each bound as a global named after it
   * (`require("lodash", "./local-module")` → `lodash`, `local_module`); paths resolve from the
   * engines' working directory. Fails naming the module an engine cannot load.
   */
  require(...specs: string[]): AsyncResult<PerEngine<S, string[]>> {
    if (specs.length === 0 || specs.some((s) => typeof s !== "string" || s.length === 0))
      throw new TypeError('require takes module names or paths, e.g. view.require("lodash", "./helpers")');
    return this.send<PerEngine<S, string[]>>({ kind: "builtin", name: "require" }, [specs], "require");
  }

  /**
   * Forms a communicator over exactly this view's engines (ranks in target order; for "all" on
   * engines mpiexec started, their MPI ranks) and resolves once every member reaches every other.
   * On each member the global `comm` (or `import { comm } from "tsparallel/engine"`) is then
   * its own end: `comm.rank`, `comm.send`, `comm.allreduce`… (engine/comm.ts). When every
   * member is on one host, its large arrays go through shared memory (`{ sharedMemory: false }`
   * keeps them on the sockets).
   *
   * ```ts
   * await rc.view().comm();
   * %px const total = await comm.allreduce(local, "sum");
   * ```
   */
  async comm(opts: CommOptions = {}): Promise<CommInfo> {
    if (opts.sharedMemory !== undefined && typeof opts.sharedMemory !== "boolean")
      throw new TypeError(`comm({ sharedMemory }) takes true or false, not ${JSON.stringify(opts.sharedMemory)}`);
    let { ids } = this.client.targetIds(this.targets);
    if (this.targets === "all") {
      const info = await this.withTargets(ids).send<Array<{ mpiRank: number | null }>>(
        { kind: "builtin", name: "info" },
        [],
        "info",
      );
      const ranks = info.map((i) => i.mpiRank);
      if (ranks.every((r) => r !== null) && new Set(ranks).size === ranks.length)
        ids = ids
          .map((id, k) => ({ id, r: ranks[k]! }))
          .sort((a, b) => a.r - b.r)
          .map((x) => x.id);
    }
    const members = ids.map((engineId) => {
      const link = this.client.engineLink(engineId);
      if (!link?.direct)
        throw new TsParallelError(
          `engine ${engineId} has no direct socket (TSPARALLEL_ENGINE_DIRECT=off?), which communicators connect through: start its engines without that setting`,
        );
      return {
        engineId,
        uuid: link.uuid,
        endpoint: link.direct.endpoint,
        ...(link.direct.curveKey ? { curveKey: link.direct.curveKey } : {}),
      };
    });
    const id = randomUUID();
    const opened = await this.withTargets(ids).send<Array<{ sharedMemory: boolean }>>(
      { kind: "builtin", name: "comm_open" },
      [{ id, members, ...(opts.sharedMemory === false ? { sharedMemory: false } : {}) }],
      "comm",
    );
    return { id, size: ids.length, engines: ids, sharedMemory: [opened].flat().every((o) => o.sharedMemory) };
  }

  /** Makes this view the target of `%px` (or `%px<suffix>`, e.g. `%px_even`). */
  activate(suffix = ""): this {
    setActiveView(suffix, this);
    return this;
  }

  queueStatus(): Promise<QueueStatusReport> {
    return this.client.queueStatus(this.targets);
  }

  /** Resets the engines' namespaces (names defined by push/execute are removed). */
  clear(): AsyncResult<void> {
    return this.send({ kind: "builtin", name: "clear" }, [], "clear", () => undefined);
  }

  /** A view of the same client on other targets (this view when `targets` is undefined). */
  withTargets(targets: Targets | undefined): DirectView {
    return targets === undefined ? this : this.derive(targets, this.flags);
  }

  /** The same request to every engine of `ids`: one message per engine. */
  protected submitAll<T extends TaskRequestType>(
    type: T,
    content: ContentOf<T>,
    extra: RequestMetadata,
    buffers: Buffer[],
    ids: number[],
  ): SubmittedTask[] {
    const progress = progressTag(ids.length);
    return ids.map((id) =>
      this.client.submit(
        type,
        content,
        this.meta({ kind: "direct", engine: id }, { ...extra, progress }),
        buffers,
        id,
        ids.length,
      ),
    );
  }

  protected meta(route: Route, extra: RequestMetadata = {}): RequestMetadata {
    return { route, ...(this.flags.label !== undefined ? { label: this.flags.label } : {}), ...extra };
  }

  private send<T>(
    call: ApplyContent["call"],
    args: readonly unknown[],
    label: string,
    finish?: (v: unknown[]) => T,
  ): AsyncResult<T> {
    const { ids, scalar } = this.client.targetIds(this.targets);
    const packed = packApply(call, args); // once, whatever the number of targets
    const tasks = this.submitAll("apply_request", packed.content, {}, packed.buffers, ids);
    return new AsyncResult<T>(this, tasks, { scalar, label, ...(finish ? { finish } : {}) });
  }

  /** One engine's part of a request to `progress.size` engines. */
  private submitOne(call: ApplyContent["call"], args: unknown[], id: number, progress: ProgressTag): SubmittedTask {
    const packed = packApply(call, args);
    return this.client.submit(
      "apply_request",
      packed.content,
      this.meta({ kind: "direct", engine: id }, { progress }),
      packed.buffers,
      id,
      progress.size,
    );
  }
}

/**
 * A DirectView whose `apply`, `execute`, `push`, `pull`, `clear` and `require` send one message
 * for all its targets (ipyparallel 7's BroadcastView): the controller fans it out without
 * copying the payload and returns the engines' replies together. Per-engine work (`map`,
 * `scatter`, `gather`) sends one message per engine, as a DirectView does. Results, errors and
 * metadata are the DirectView's; each engine's task has the msg id `<msg id>:<engine id>`.
 */
export class BroadcastView<S extends boolean = boolean> extends DirectView<S> {
  protected override derive(targets: Targets, flags: { label?: string }): DirectView {
    return new BroadcastView(this.client, targets, flags);
  }

  protected override submitAll<T extends TaskRequestType>(
    type: T,
    content: ContentOf<T>,
    extra: RequestMetadata,
    buffers: Buffer[],
    ids: number[],
  ): SubmittedTask[] {
    return this.client.submitBroadcast(
      type,
      content,
      this.meta({ kind: "broadcast", targets: ids }, { ...extra, progress: progressTag(ids.length) }),
      buffers,
      ids,
    );
  }
}

export interface LoadBalancedOptions {
  /** Engine ids tasks may run on. */
  targets?: Targets;
  /** Resubmissions allowed after the engine running a task died (queued tasks always move). */
  retries?: number;
  /** ms to wait for an engine (and dependencies) before failing with TimeoutError. */
  timeout?: number;
  /** Tasks (AsyncResults or msg ids) that must succeed first. */
  after?: Array<AsyncResult<unknown> | string>;
  /** Run on the engine that ran these tasks. */
  follow?: Array<AsyncResult<unknown> | string>;
  /** ms a task may run before the engine interrupts it and it fails with TimeoutError. */
  timeLimit?: number;
  /** A label kept in the tasks' records, to find them later with `rc.dbQuery({ label })`. */
  label?: string;
}

export class LoadBalancedView extends View {
  constructor(
    client: ViewHost,
    readonly flags: LoadBalancedOptions = {},
  ) {
    super(client);
    if (Array.isArray(flags.targets) && flags.targets.length === 0)
      throw new RangeError(
        "targets: [] names no engine, so no task could ever run; leave targets out to use any engine",
      );
    for (const k of ["retries", "timeout", "timeLimit"] as const) {
      const v = flags[k];
      if (v !== undefined && !(typeof v === "number" && v >= 0))
        throw new RangeError(`${k} must be a non-negative number; got ${String(v)}`);
    }
  }

  /** A view with some flags changed (ipyparallel's temp_flags/set_flags). */
  with(flags: LoadBalancedOptions): LoadBalancedView {
    return new LoadBalancedView(this.client, { ...this.flags, ...flags });
  }

  apply<A extends unknown[], R>(f: (...a: A) => R, ...args: ReferenceArgs<A>): AsyncResult<Awaited<R>> {
    this.requireEngines();
    const packed = packApply(this.applyCall(f), args);
    const meta = { ...this.meta(), progress: progressTag(1) };
    const task = this.client.submit("apply_request", packed.content, meta, packed.buffers, undefined);
    return new AsyncResult(this, [task], { scalar: true, label: f.name || "apply" });
  }

  /** Wraps `f` so each call is one load-balanced task (ipyparallel's `@lview.remote()`). */
  remote<A extends unknown[], R>(f: (...a: A) => R): (...a: ReferenceArgs<A>) => AsyncResult<Awaited<R>> {
    return (...a: ReferenceArgs<A>) => this.apply(f, ...a);
  }

  /** One task per `chunksize` items; `ordered: false` iterates results as they finish. */
  map<F extends AnyFunction>(f: F, ...args: unknown[]): AsyncResult<Awaited<ReturnType<F>>[]> {
    const { seqs, opts } = this.mapArgs(args);
    if (opts.label !== undefined && opts.label !== this.flags.label)
      return this.with({ label: opts.label }).map(f, ...seqs, { ...opts, label: opts.label });
    this.requireEngines();
    const chunksize = opts.chunksize ?? 1;
    const n = Math.min(...seqs.map((s) => s.length));
    const call = this.mapCall(f, seqs.length);
    const meta = { ...this.meta(), progress: progressTag(Math.ceil(n / chunksize)) };
    const tasks: SubmittedTask[] = [];
    for (let a = 0; a < n; a += chunksize) {
      const packed = packApply(
        call,
        seqs.map((s) => s.slice(a, a + chunksize)),
      );
      tasks.push(this.client.submit("apply_request", packed.content, meta, packed.buffers, undefined));
    }
    return new AsyncResult(this, tasks, { chunked: true, ordered: opts.ordered ?? true, label: f.name || "map" });
  }

  /** The engines `targets` allows now; none would leave tasks waiting forever, so that is refused. */
  private allowedEngines(targets: Targets): number[] {
    const { ids } = this.client.targetIds(targets);
    if (ids.length === 0)
      throw new RangeError(`targets ${JSON.stringify(targets)} names no registered engine, so no task could ever run`);
    return ids;
  }

  /**
   * `f` over `input`, read lazily (an array, a generator, an async iterable), with at most
   * `maxOutstanding` tasks in flight; results as an async iterator. `.cancel()` stops reading and
   * stops the tasks in flight.
   *
   * ```ts
   * for await (const r of lview.imap(score, readLines(file), { maxOutstanding: 64 })) save(r);
   * ```
   */
  imap<F extends AnyFunction>(
    f: F,
    input: Iterable<Parameters<F>[0]> | AsyncIterable<Parameters<F>[0]>,
    opts: ImapOptions = {},
  ): ImapResult<Awaited<ReturnType<F>>> {
    const maxOutstanding = opts.maxOutstanding ?? 64;
    if (!Number.isInteger(maxOutstanding) || maxOutstanding < 1)
      throw new RangeError(`maxOutstanding must be a whole number of tasks, 1 or more; got ${String(maxOutstanding)}`);
    if (input === null || typeof input !== "object" || !(Symbol.iterator in input || Symbol.asyncIterator in input))
      throw new TypeError("imap needs an iterable or async iterable input (an array, a generator, a stream)");
    this.requireEngines();
    const view = opts.label !== undefined ? this.with({ label: opts.label }) : this;
    const call = this.applyCall(f);
    const meta = view.meta();
    return new ImapResult(
      input,
      (item) => {
        const packed = packApply(call, [item]);
        return this.client.submit("apply_request", packed.content, meta, packed.buffers, undefined);
      },
      (ids) => this.client.cancel(ids),
      { maxOutstanding, ordered: opts.ordered ?? true },
    );
  }

  private requireEngines(): void {
    this.client.targetIds(this.flags.targets ?? "all");
  }

  private meta(): RequestMetadata {
    const f = this.flags;
    const ids = (deps: LoadBalancedOptions["after"]) => deps?.flatMap((d) => (typeof d === "string" ? [d] : d.msgIds));
    const route: Route = {
      kind: "task",
      ...(f.targets !== undefined && f.targets !== "all" ? { targets: this.allowedEngines(f.targets) } : {}),
      ...(f.retries !== undefined ? { retries: f.retries } : {}),
      ...(f.timeout !== undefined ? { timeout: f.timeout } : {}),
      ...(f.after ? { after: ids(f.after)! } : {}),
      ...(f.follow ? { follow: ids(f.follow)! } : {}),
    };
    return {
      route,
      ...(f.timeLimit !== undefined ? { timeLimit: f.timeLimit } : {}),
      ...(f.label !== undefined ? { label: f.label } : {}),
    };
  }
}

/** gather's join: arrays concatenate, typed arrays stay typed, scalars become a list. */
export function concat(parts: unknown[]): unknown {
  if (parts.length > 0 && parts.every((p) => ArrayBuffer.isView(p) && !(p instanceof DataView))) {
    const typed = parts as unknown as Array<Uint8Array>;
    const Ctor = typed[0]!.constructor as new (n: number) => Uint8Array;
    const out = new Ctor(typed.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of typed) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
  return parts.flatMap((p): unknown[] => (Array.isArray(p) ? (p as unknown[]) : [p]));
}
