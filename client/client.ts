/**
 * The connection to a controller. One DEALER carries requests, replies and the outputs of our
 * own tasks (in order, so a task's output always arrives before its result); one SUB hears
 * engine (un)registrations and the controller's heartbeat.
 */
import * as os from "node:os";
import * as util from "node:util";
import { EventEmitter } from "node:events";
import * as zmq from "zeromq";
import { Session } from "../protocol/session";
import { Outbox, curveClientKeys, receiveLimits, receiveLoop, withCurve } from "../protocol/socket";
import { oversizedFrame } from "../protocol/wire";
import { DirectLinks } from "./direct";
import { ListeningClock } from "./listening-clock";
import { isDirectEndpoint } from "../protocol/validate";
import { type ConnectionInfo, connectionFile, endpoint, isAlive, readConnectionFile } from "../protocol/connection";
import {
  type AnyMessage,
  type ContentOf,
  type DirectEndpoint,
  type EngineSetInfo,
  type MsgType,
  type RequestMetadata,
  RECORD_QUERIES,
  isMsg,
  parentId,
} from "../protocol/messages";
import { deserialize } from "../protocol/serialize";
import { isBulkRefs, readBulk, removeFiles, sharesMemoryWith, stashBulk, sweepStale } from "../protocol/bulk";
import { EngineError, NoEnginesError, RemoteError, TaskAborted, TimeoutError, TsParallelError } from "./errors";
import { SubmittedTask } from "./task";
import { type Tunnel, openTunnel } from "./tunnel";
import { AsyncResult } from "./async-result";
import { type Targets, resolveTargets } from "./targets";
import { BroadcastView, DirectView, LoadBalancedView, type LoadBalancedOptions } from "./views";
import { ExecuteReply } from "./execute-reply";
import { activeObject, activeViewObject, setActiveObject } from "./active";
import type { QueueStatusReport, TaskRequestType, ViewHost } from "./host";

/** How long the controller has to fail a lost engine's tasks before the client does (ms). */
const ENGINE_GONE_GRACE_MS = 2000;

/**
 * A query about records waits for direct tasks that finished at most this long ago (ms): an
 * engine's copies reach the controller in order within milliseconds, and an older record may
 * have been dropped from the controller's bounded history since.
 */
const DIRECT_DONE_RECENT_MS = 2000;

/**
 * Heartbeat periods of silence, heard while our loop was free (see ListeningClock), after which
 * the controller counts as gone and the tasks in flight fail: as many as the engines allow it.
 */
const CONTROLLER_MISSES = 5;

/** How many finished tasks keep receiving late output. */
const FINISHED_KEPT = 1000;

export interface ConnectOptions {
  profile?: string;
  /** Path of a client.json; default: the profile's. */
  file?: string;
  /** ms to wait for the controller to answer (default 10000). */
  timeout?: number;
  /** Make this client the target of %px (default true). */
  activate?: boolean;
  /**
   * Reach the controller through SSH ("user@login-node"): its ports are forwarded to this host
   * with `ssh -L`, for a client outside the cluster's network. The tunnel ends with `close()`.
   */
  sshServer?: string;
  /** The ssh command line for `sshServer` (default "ssh"), e.g. "ssh -F my_config". */
  sshCommand?: string;
}

type QueryType =
  | "connection_request"
  | "queue_request"
  | "signal_request"
  | "restart_request"
  | "task_abort_request"
  | "task_interrupt_request"
  | "shutdown_request"
  | "stats_request"
  | "hub_history_request"
  | "result_request"
  | "resubmit_request"
  | "purge_request"
  | "db_request"
  | "engine_sets_request";
type ReplyOf<Q extends QueryType> = Q extends `${infer B}_request`
  ? `${B}_reply` extends MsgType
    ? ContentOf<`${B}_reply`>
    : never
  : never;

export class Client extends EventEmitter implements ViewHost {
  private readonly session: Session;
  private readonly socket = new zmq.Dealer({ linger: 0, sendHighWaterMark: 0, ...receiveLimits() });
  private readonly sub = new zmq.Subscriber({ linger: 0, ...receiveLimits() });
  private readonly outbox: Outbox;
  private readonly tasks = new Map<string, SubmittedTask>();
  /** The ssh tunnel this client connects through (`sshServer`), ended on close. */
  private tunnel: Tunnel | undefined;
  /** Recently finished tasks: output their timers print later still reaches their AsyncResult. */
  private readonly finished = new Map<string, SubmittedTask>();
  private readonly queries = new Map<string, { resolve: (c: unknown) => void; reject: (e: Error) => void }>();
  private engineIds: number[] = [];
  /**
   * Each engine's uuid and direct socket, where it has one (engine/direct.ts); `sharedMemory`
   * says by uuid whether it shares our /dev/shm (looked up once; see protocol/bulk.ts).
   */
  private readonly engineInfo = new Map<number, { uuid: string; direct?: DirectEndpoint }>();
  /** Connections straight to engines, for DirectView tasks (client/direct.ts). */
  private readonly direct: DirectLinks;
  /**
   * Tasks sent direct and not answered yet; and per engine, the latest one answered since our
   * last query about records (its engine's copies reach the controller in order, so it covers
   * the earlier ones).
   */
  private readonly directPending = new Set<string>();
  private readonly directDone = new Map<number, { msgId: string; at: number }>();
  private readonly sharedMemory = new Map<string, boolean>();
  /** Shared-memory files of requests in flight, removed when their tasks settle or we close. */
  private readonly bulkFiles = new Set<string>();
  /** Buffers already in a file: a DirectView sends one serialization to each of its engines. */
  private readonly bulkWritten = new WeakMap<Buffer, string>();
  /** The controller's registry count behind `engineIds` (see `takeEngineList`). */
  private engineSeq = -1;
  private controller = "";
  /** The controller's silence, counted while our loop could listen (client/listening-clock.ts). */
  private silence: ListeningClock | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(readonly info: ConnectionInfo) {
    super();
    this.session = new Session(info.key, "client");
    // The controller addresses us by our session id: it answers for our direct tasks with it.
    this.socket.routingId = this.session.id;
    this.outbox = new Outbox(this.socket, { coalesce: this.session.coalesce });
    const keys = curveClientKeys(info.curve_serverkey);
    withCurve(this.socket, keys);
    withCurve(this.sub, keys);
    this.direct = new DirectLinks({
      routingId: this.session.id,
      coalesce: this.session.coalesce,
      curve: keys,
      onFrames: (f) => {
        for (const { msg } of this.session.receive(f)) this.onMessage(msg);
      },
    });
  }

  /** How many tasks this client sent straight to their engines, bypassing the controller. */
  get directTasks(): number {
    return this.direct.sent;
  }

  /** Connects to a running controller (the default profile's unless told otherwise). */
  static async connect(opts: ConnectOptions = {}): Promise<Client> {
    if (opts.timeout !== undefined && !(opts.timeout > 0))
      throw new RangeError(`timeout must be a positive number of ms; got ${opts.timeout}`);
    const file = opts.file ?? connectionFile("client", opts.profile);
    let info = readConnectionFile(file);
    // On this host a dead controller is known at once: no need to wait out the timeout.
    if (!opts.sshServer && info.location === os.hostname() && !isAlive(info.controller_pid)) {
      throw new TsParallelError(
        `no cluster is running for ${file}: its controller (pid ${info.controller_pid}) has exited; start one with \`tsparallel cluster start -n 4\``,
      );
    }
    const tunnel = opts.sshServer ? await openTunnel(info, opts.sshServer, opts.sshCommand) : undefined;
    if (tunnel) info = tunnel.info;
    const client = new Client(info);
    client.tunnel = tunnel;
    // Through a tunnel, every byte takes the tunnel: the engines' own addresses are the
    // cluster's network, which this client reaches only through the login node.
    if (tunnel) client.direct.enabled = false;
    sweepBulkOnce();
    await client.open(opts.timeout ?? 10_000);
    if (opts.activate !== false) setActiveObject(client);
    return client;
  }

  private async open(timeout: number): Promise<void> {
    this.socket.connect(endpoint(this.info, this.info.ports.clients));
    this.sub.connect(endpoint(this.info, this.info.ports.notification));
    this.sub.subscribe();
    void receiveLoop(
      this.socket,
      (f) => {
        for (const { msg } of this.session.receive(f)) this.onMessage(msg);
      },
      (e) => this.emit("warning", e),
    );
    void receiveLoop(
      this.sub,
      (f) => this.onNotification(this.session.decode(f)),
      (e) => this.emit("warning", e),
    );
    try {
      const reply = await this.query("connection_request", {}, timeout);
      this.takeEngineList(reply);
      this.controller = reply.controller;
      this.startWatchdog(reply.heartbeat_period);
    } catch (e) {
      this.close();
      if (e instanceof TimeoutError) {
        // A wrong key looks the same as no controller from here: the controller drops (and counts)
        // unsigned messages without answering, so the message names both causes.
        const curve = this.info.curve_serverkey
          ? "or its CURVE server key (curve_serverkey) is not the controller's"
          : "or the cluster encrypts (--curve) and this file has no curve_serverkey";
        throw new TsParallelError(
          `the controller at ${endpoint(this.info, this.info.ports.clients)} did not answer within ${timeout} ms: the cluster is not running (start one with \`tsparallel cluster start -n 4\`), or the connection file is stale: its key is not the controller's (restart the cluster to rewrite it), ${curve}`,
        );
      }
      throw e;
    }
  }

  /** Registered engine ids, sorted (kept current by notifications). */
  get ids(): number[] {
    return [...this.engineIds];
  }

  get length(): number {
    return this.engineIds.length;
  }

  /** A DirectView on `targets` (default all engines, evaluated at each call). */
  view(target: number): DirectView<true>;
  view(targets?: Targets): DirectView<false>;
  view(targets: Targets = "all"): DirectView {
    if (targets !== "all") resolveTargets(targets, this.engineIds); // validate now, with a clear error
    return new DirectView(this, targets);
  }

  /** A BroadcastView on `targets`: one message reaches them all, their replies come back together. */
  broadcastView(target: number): BroadcastView<true>;
  broadcastView(targets?: Targets): BroadcastView<false>;
  broadcastView(targets: Targets = "all"): BroadcastView {
    if (targets !== "all") resolveTargets(targets, this.engineIds);
    return new BroadcastView(this, targets);
  }

  loadBalancedView(opts: LoadBalancedOptions = {}): LoadBalancedView {
    return new LoadBalancedView(this, opts);
  }

  /** Resolves once `n` engines are registered; rejects with TimeoutError after `timeout` ms. */
  waitForEngines(n: number, opts: { timeout?: number } = {}): Promise<void> {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`waitForEngines needs a whole number of engines; got ${n}`);
    if (this.engineIds.length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.engineIds.length >= n) done(undefined);
      };
      const timer =
        opts.timeout !== undefined
          ? setTimeout(
              () =>
                done(
                  new TimeoutError(`only ${this.engineIds.length} of ${n} engines registered after ${opts.timeout} ms`),
                ),
              opts.timeout,
            )
          : undefined;
      // A notification sent before our SUB was joined is lost (PUB/SUB slow joiner): ask the
      // controller for its list now and then as well.
      const poll = setInterval(() => {
        this.query("connection_request", {}).then(
          (reply) => {
            this.takeEngineList(reply);
            check();
          },
          () => undefined,
        );
      }, 500);
      const done = (e: Error | undefined): void => {
        clearTimeout(timer);
        clearInterval(poll);
        this.off("registration", check);
        if (e) reject(e);
        else resolve();
      };
      this.on("registration", check);
    });
  }

  // ---------------------------------------------------------------- control

  /** Per engine: tasks queued there, completed, load-balanced ones held, and the msg id at the head (running or next). */
  async queueStatus(targets?: Targets): Promise<QueueStatusReport> {
    const ids = targets === undefined ? undefined : resolveTargets(targets, this.engineIds).ids;
    const reply = await this.query("queue_request", ids ? { targets: ids } : {});
    return Object.assign({}, reply.engines, { unassigned: reply.unassigned });
  }

  /** Drops queued tasks (by msg id); they fail with TaskAborted. Running tasks are not stopped: use interrupt. */
  async abort(msgIds: string[]): Promise<string[]> {
    if (msgIds.length === 0) return [];
    return (await this.query("task_abort_request", { msg_ids: msgIds })).aborted;
  }

  /**
   * Stops tasks by msg id wherever they are: queued ones fail with TaskAborted, running ones are
   * interrupted (their engine gets `signal` until the task ends; other tasks are never hit).
   * Resolves to what happened to each.
   */
  async cancel(msgIds: string[], signal = "SIGINT"): Promise<{ aborted: string[]; interrupted: string[] }> {
    if (msgIds.length === 0) return { aborted: [], interrupted: [] };
    const { aborted, interrupted } = await this.query("task_interrupt_request", { msg_ids: msgIds, signal });
    return { aborted, interrupted };
  }

  /**
   * Sends SIGINT (or `signal`) to engines: a busy loop or await on them stops with KeyboardInterrupt.
   * An engine that has not yet started the task (on a loaded machine it may lag the controller's
   * "running") ignores the signal, as ipykernel ignores one between cells: send again until the
   * result is ready, as the kernel's interrupt of `%px` does.
   */
  async interrupt(targets: Targets = "all", signal = "SIGINT"): Promise<void> {
    const ids = resolveTargets(targets, this.engineIds).ids;
    const reply = await this.query("signal_request", { targets: ids, signal });
    if (reply.status !== "ok") throw new EngineError(reply.status === "error" ? reply.evalue : "signal aborted");
  }

  /** Replaces an engine process (started by the cluster) with a fresh one; ids are never reused. */
  async restartEngine(id: number): Promise<void> {
    const reply = await this.query("restart_request", { targets: resolveTargets(id, this.engineIds).ids });
    if (reply.status !== "ok") throw new EngineError(reply.status === "error" ? reply.evalue : "restart aborted");
  }

  // ---------------------------------------------------------------- task history (any client's tasks)

  /** Msg ids of every task the controller remembers, oldest first (ipyparallel's `rc.history`). */
  async history(): Promise<string[]> {
    return (await this.query("hub_history_request", {})).history;
  }

  /** Which of these tasks are still pending and which have completed (ipyparallel's `result_status`). */
  async resultStatus(msgIds: string[]): Promise<{ pending: string[]; completed: string[] }> {
    const { pending, completed } = await this.query("result_request", { msg_ids: msgIds });
    return { pending, completed };
  }

  /**
   * An AsyncResult for tasks by msg id, whoever submitted them, live or finished: a second
   * client (or a new kernel) picks up a first one's work.
   *
   * ```ts
   * const ar = rc.getResult(msgId);      // an id from another client's ar.msgIds or rc.history()
   * console.log(await ar, ar.stdout);
   * ```
   */
  getResult<T = unknown>(msgIds: string | string[]): AsyncResult<T> {
    const ids = typeof msgIds === "string" ? [msgIds] : msgIds;
    if (this.closed) throw new TsParallelError("this client is closed; connect a new one with Client.connect()");
    const tasks = ids.map((id) => this.tasks.get(id) ?? this.finished.get(id) ?? this.track(id, undefined, "apply"));
    const fresh = tasks.filter((t) => !t.ready);
    if (fresh.length > 0) {
      this.query("result_request", { msg_ids: fresh.map((t) => t.msgId), fetch: true }).then(
        (reply) => {
          for (const t of fresh) {
            const r = reply.records[t.msgId];
            if (!r) continue;
            t.method = r.msgType === "execute_request" ? "execute" : "apply";
            if (r.engineId !== null) t.metadata.engineId = r.engineId;
            if (!t.metadata.stdout) t.metadata.stdout = r.stdout;
            if (!t.metadata.stderr) t.metadata.stderr = r.stderr;
          }
        },
        (e: unknown) => {
          for (const t of fresh) {
            this.tasks.delete(t.msgId);
            t.reject(e instanceof Error ? e : new TsParallelError(String(e)));
          }
        },
      );
    }
    return new AsyncResult<T>(this, tasks, { scalar: typeof msgIds === "string", label: "getResult" });
  }

  /**
   * Runs finished tasks again, on any engine the scheduler picks (a direct task on its engine),
   * and returns their new AsyncResult. A task that has not finished is refused.
   */
  resubmit<T = unknown>(msgIds: string | string[]): AsyncResult<T> {
    const ids = typeof msgIds === "string" ? [msgIds] : msgIds;
    if (this.closed) throw new TsParallelError("this client is closed; connect a new one with Client.connect()");
    // The new ids are ours, registered before the controller runs anything under them.
    const tasks = ids.map(() => this.track(this.session.newMsgId(), undefined, "apply"));
    this.query("resubmit_request", { msg_ids: ids, new_msg_ids: tasks.map((t) => t.msgId) }).catch((e: unknown) => {
      for (const t of tasks) {
        this.tasks.delete(t.msgId);
        t.reject(e instanceof Error ? e : new TsParallelError(String(e)));
      }
    });
    return new AsyncResult<T>(this, tasks, { scalar: typeof msgIds === "string", label: "resubmit" });
  }

  /** Forgets finished tasks' results in the controller (all with "all"); pending ones are refused. */
  async purgeResults(msgIds: string[] | "all"): Promise<string[]> {
    return (await this.query("purge_request", msgIds === "all" ? { all: true } : { msg_ids: msgIds })).purged;
  }

  /**
   * The controller's engine sets, or an action on them (add through a launcher, stop, signal):
   * what `Cluster`'s addEngines, stopEngines and signalEngines send. A launcher may take a while
   * (sbatch, ssh), hence the long default timeout. A refused action throws the controller's line.
   */
  async engineSets(
    request: ContentOf<"engine_sets_request"> = { action: "list" },
    timeout = 60_000,
  ): Promise<{ sets: EngineSetInfo[]; set?: string }> {
    const reply = await this.query("engine_sets_request", request, timeout);
    if (reply.status !== "ok") throw new TsParallelError(reply.status === "error" ? reply.evalue : "aborted");
    return reply.set === undefined ? { sets: reply.sets } : { sets: reply.sets, set: reply.set };
  }

  /**
   * Task records matching a query (ipyparallel's `db_query`): fields msgId, msgType, label,
   * engineId, state, submitted, started, completed, stdout, stderr, hasResult; conditions are
   * values or `{ $gt, $gte, $lt, $lte, $ne, $in, $nin, $exists }`. Dates are ISO strings, so
   * `completed: { $gt: date.toISOString() }` (a Date is converted for you).
   */
  async dbQuery(query: Record<string, unknown>, keys?: string[]): Promise<Array<Record<string, unknown>>> {
    const wire = JSON.parse(JSON.stringify(query)) as Record<string, unknown>; // Dates → ISO strings
    return (await this.query("db_request", { query: wire, ...(keys ? { keys } : {}) })).records;
  }

  /** Resets the engines' namespaces (all, or `targets`). */
  async clear(targets: Targets = "all"): Promise<void> {
    await this.view(targets).clear();
  }

  /** Sends a signal to engine processes (default all), as ipyparallel's `send_signal`. */
  async sendSignal(signal: NodeJS.Signals | number, targets: Targets = "all"): Promise<void> {
    await this.interrupt(targets, typeof signal === "number" ? signalName(signal) : signal);
  }

  /** Stops engines (default all); with `hub: true` the controller too. */
  async shutdown(opts: { targets?: Targets; hub?: boolean } = {}): Promise<void> {
    const ids = opts.targets === undefined ? undefined : resolveTargets(opts.targets, this.engineIds).ids;
    await this.query("shutdown_request", {
      restart: false,
      ...(ids ? { targets: ids } : {}),
      ...(opts.hub ? { hub: true } : {}),
    });
  }

  /** Registered engines with their pids and hosts. */
  async engines(): Promise<ContentOf<"connection_reply">["engines"]> {
    return (await this.query("connection_request", {})).engines;
  }

  /** Controller memory and dropped-message counters. */
  stats(): Promise<ContentOf<"stats_reply">> {
    return this.query("stats_request", {});
  }

  /** Dropped-message counters of this client's own session. */
  get dropped(): Readonly<Record<string, number>> {
    return this.session.dropped;
  }

  /** `<Client: 4 engines, profile default>` instead of a dump of sockets. */
  [util.inspect.custom](): string {
    return `<Client: ${this.engineIds.length} engines${this.closed ? ", closed" : ""}>`;
  }

  /** Makes this client, and a view on all its engines, what `%px` (or `%px<suffix>`) runs on. */
  activate(suffix = ""): DirectView {
    setActiveObject(this);
    return this.view().activate(suffix);
  }

  /** Closes the sockets and rejects everything pending, so a script that closes its client exits. */
  /**
   * Closes the sockets and rejects everything pending, so a script that closes its client exits.
   *
   * Tasks already submitted keep running by default, as in ipyparallel: their results stay in the
   * controller's records for any client to fetch by msg id. With `abortQueued: true` the tasks of
   * this client that have not started are dropped instead (running ones finish).
   */
  close(opts: { abortQueued?: boolean } = {}): void {
    removeFiles([...this.bulkFiles]);
    this.bulkFiles.clear();
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.watchdog);
    const pending = [...this.tasks.keys()];
    for (const t of this.tasks.values())
      t.reject(new TsParallelError("the client was closed before the task finished"));
    for (const q of this.queries.values()) q.reject(new TsParallelError("the client was closed"));
    this.tasks.clear();
    this.directPending.clear();
    this.finished.clear();
    this.queries.clear();
    this.sub.close();
    setActiveObject(undefined, this);
    if (opts.abortQueued && pending.length > 0) {
      this.outbox.send(this.session.encode("task_abort_request", { msg_ids: pending }).frames);
      // Let the abort leave before the socket goes (linger delivers what was handed to ZeroMQ).
      this.socket.linger = 2000;
      void this.outbox.idle().then(() => {
        this.outbox.close();
        this.socket.close();
        this.direct.close();
        this.tunnel?.close();
      });
      return;
    }
    this.outbox.close();
    this.socket.close();
    this.direct.close();
    this.tunnel?.close();
  }

  // ---------------------------------------------------------------- internals used by views

  /** @internal Sends a task message and tracks its reply. */
  submit<T extends TaskRequestType>(
    type: T,
    content: ContentOf<T>,
    metadata: RequestMetadata,
    buffers: Buffer[],
    engineId: number | undefined,
    fanout = 1,
  ): SubmittedTask {
    if (this.closed) throw new TsParallelError("this client is closed; connect a new one with Client.connect()");
    const msgId = this.session.newMsgId();
    const task = this.track(msgId, engineId, type === "apply_request" ? "apply" : "execute");
    task.metadata.label = metadata.label;
    const bulk = this.viaSharedMemory(engineId === undefined ? [] : [engineId], metadata, buffers, [task]);
    if (this.refuseOversized(bulk.buffers, [task])) return task;
    const { frames } = this.session.encode(type, content as never, { msgId, ...bulk });
    const engine = engineId === undefined ? undefined : this.engineInfo.get(engineId);
    const direct =
      engine && metadata.route?.kind === "direct"
        ? this.direct.route(engine.uuid, engine.direct, task.done, fanout)
        : undefined;
    if (direct) this.directPending.add(msgId);
    (direct ?? this.outbox).send(frames);
    return task;
  }

  /** @internal Sends one broadcast task; the controller names each engine's part `<msg id>:<engine id>`. */
  submitBroadcast<T extends TaskRequestType>(
    type: T,
    content: ContentOf<T>,
    metadata: RequestMetadata,
    buffers: Buffer[],
    ids: number[],
  ): SubmittedTask[] {
    if (this.closed) throw new TsParallelError("this client is closed; connect a new one with Client.connect()");
    const msgId = this.session.newMsgId();
    const tasks = ids.map((id) => this.track(`${msgId}:${id}`, id, type === "apply_request" ? "apply" : "execute"));
    for (const t of tasks) t.metadata.label = metadata.label;
    const bulk = this.viaSharedMemory(ids, metadata, buffers, tasks);
    if (this.refuseOversized(bulk.buffers, tasks)) return tasks;
    this.outbox.send(this.session.encode(type, content as never, { msgId, ...bulk }).frames);
    return tasks;
  }

  /** Fails `tasks` at once when a buffer is larger than any socket will take (see oversizedFrame). */
  private refuseOversized(buffers: readonly Buffer[], tasks: readonly SubmittedTask[]): boolean {
    const why = oversizedFrame(buffers);
    if (why === undefined) return false;
    for (const t of tasks) {
      this.tasks.delete(t.msgId);
      t.reject(new TsParallelError(why));
    }
    return true;
  }

  /**
   * The metadata and buffers a request to `engineIds` goes out with: when every one of them
   * shares our /dev/shm, its large buffers are handed over there (removed once all `tasks`
   * settle) and large results may come back the same way. Otherwise, or when /dev/shm cannot
   * take them, everything takes the controller path as before.
   */
  private viaSharedMemory(
    engineIds: readonly number[],
    metadata: RequestMetadata,
    buffers: Buffer[],
    tasks: readonly SubmittedTask[],
  ): { metadata: RequestMetadata; buffers: Buffer[] } {
    if (engineIds.length === 0 || !engineIds.every((id) => this.sharesMemory(id))) return { metadata, buffers };
    const out: RequestMetadata = { ...metadata, bulkReply: process.pid };
    let stashed: ReturnType<typeof stashBulk>;
    try {
      stashed = stashBulk(buffers, process.pid, this.bulkWritten);
    } catch {
      return { metadata, buffers };
    }
    if (stashed.refs.length === 0) return { metadata: out, buffers };
    for (const f of stashed.files) this.bulkFiles.add(f);
    const release = (): void => {
      removeFiles(stashed.files);
      for (const f of stashed.files) this.bulkFiles.delete(f);
    };
    void Promise.allSettled(tasks.map((t) => t.done)).then(release);
    return { metadata: { ...out, bulk: stashed.refs }, buffers: stashed.buffers };
  }

  private sharesMemory(engineId: number): boolean {
    const uuid = this.engineInfo.get(engineId)?.uuid;
    if (uuid === undefined) return false;
    let shares = this.sharedMemory.get(uuid);
    if (shares === undefined) this.sharedMemory.set(uuid, (shares = sharesMemoryWith(uuid)));
    return shares;
  }

  /** @internal Ids for a targets spec, or NoEnginesError. */
  targetIds(spec: Targets): { ids: number[]; scalar: boolean } {
    if (this.engineIds.length === 0) throw new NoEnginesError();
    return resolveTargets(spec, this.engineIds);
  }

  query<Q extends QueryType>(type: Q, content: ContentOf<Q>, timeout = 10_000): Promise<ReplyOf<Q>> {
    if (this.closed) return Promise.reject(new TsParallelError("this client is closed"));
    // The controller answers about records only once it has recorded the direct tasks we have
    // seen finish: their engines' copies may still be on their way to it (hub.ts, waitForDirect).
    let waitFor: string[] | undefined;
    if (RECORD_QUERIES.has(type) && this.directDone.size > 0) {
      const recent = Date.now() - DIRECT_DONE_RECENT_MS;
      waitFor = [...this.directDone.values()].filter((d) => d.at > recent).map((d) => d.msgId);
      this.directDone.clear();
    }
    const { frames, header } = this.session.encode(
      type,
      content as never,
      waitFor?.length ? { metadata: { waitFor } } : {},
    );
    return new Promise<ReplyOf<Q>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.queries.delete(header.msg_id);
        reject(new TimeoutError(`the controller did not answer ${type} within ${timeout} ms`));
      }, timeout);
      this.queries.set(header.msg_id, {
        resolve: (c) => (clearTimeout(timer), resolve(c as ReplyOf<Q>)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.outbox.send(frames);
    });
  }

  private onMessage(msg: AnyMessage | undefined): void {
    if (!msg) return;
    const pid = parentId(msg);
    const query = this.queries.get(pid);
    if (query) {
      this.queries.delete(pid);
      if (isMsg(msg, "hub_error")) query.reject(new TsParallelError(`${msg.content.ename}: ${msg.content.evalue}`));
      else query.resolve(msg.content);
      return;
    }
    const task = this.tasks.get(pid) ?? this.finished.get(pid);
    if (!task) return;
    if (isMsg(msg, "apply_reply") || isMsg(msg, "execute_reply")) {
      task.method = isMsg(msg, "execute_reply") ? "execute" : "apply";
      this.tasks.delete(pid);
      if (this.directPending.delete(pid) && task.metadata.engineId !== undefined)
        this.directDone.set(task.metadata.engineId, { msgId: pid, at: Date.now() });
      this.rememberFinished(task);
      const meta = msg.metadata as { engineId?: number | null; started?: string | null; completed?: string | null };
      if (typeof meta.engineId === "number") task.metadata.engineId = meta.engineId;
      if (meta.started) task.metadata.started = new Date(meta.started);
      task.metadata.completed = new Date(meta.completed ?? msg.header.date);
      const c = msg.content;
      if (c.status === "ok") {
        if (isMsg(msg, "execute_reply")) {
          task.metadata.executionCount = msg.content.execution_count;
          task.resolve(new ExecuteReply(task.metadata));
        } else {
          try {
            const bulk = (msg.metadata as { bulk?: unknown }).bulk;
            const buffers = isBulkRefs(bulk) ? readBulk(msg.buffers, bulk, true) : msg.buffers;
            task.resolve(buffers.length > 0 ? deserialize(buffers) : undefined);
          } catch (e) {
            task.reject(new TsParallelError(`could not read the result of ${pid}: ${String(e)}`));
          }
        }
      } else if (c.status === "error") {
        task.reject(RemoteError.fromContent(c, task.metadata.engineId, task.method));
      } else {
        task.reject(new TaskAborted(`task ${pid} was aborted`, task.metadata.engineId));
      }
      return;
    }
    if (isMsg(msg, "data_pub")) {
      try {
        const data = deserialize(msg.buffers);
        if (typeof data === "object" && data !== null) task.published(data as Record<string, unknown>);
      } catch (e) {
        this.emit("warning", e);
      }
      return;
    }
    if (isMsg(msg, "stream")) task.output({ type: "stream", name: msg.content.name, text: msg.content.text });
    else if (isMsg(msg, "display_data"))
      task.output({
        type: "display_data",
        data: msg.content.data,
        metadata: msg.content.metadata,
        ...(msg.content.transient?.display_id ? { displayId: msg.content.transient.display_id } : {}),
      });
    else if (isMsg(msg, "update_display_data"))
      task.output({
        type: "update_display_data",
        data: msg.content.data,
        metadata: msg.content.metadata,
        displayId: msg.content.transient.display_id,
      });
    else if (isMsg(msg, "execute_result"))
      task.output({ type: "execute_result", executionCount: msg.content.execution_count, data: msg.content.data });
    else if (isMsg(msg, "error"))
      task.output({
        type: "error",
        ename: msg.content.ename,
        evalue: msg.content.evalue,
        traceback: msg.content.traceback,
      });
  }

  /** A task whose reply this client will receive, by msg id. */
  private track(msgId: string, engineId: number | undefined, method: "apply" | "execute"): SubmittedTask {
    const task = new SubmittedTask(msgId, engineId, method);
    this.tasks.set(msgId, task);
    return task;
  }

  /** A full engine list replaces ours only if it is newer than what notifications told us. */
  private takeEngineList(reply: ContentOf<"connection_reply">): void {
    if (reply.seq < this.engineSeq) return;
    this.engineSeq = reply.seq;
    this.engineIds = reply.engines.map((e) => e.id).sort((a, b) => a - b);
    this.engineInfo.clear();
    for (const e of reply.engines) this.learnEngine(e);
  }

  private learnEngine(e: { id: number; uuid: string; direct?: unknown }): void {
    this.engineInfo.set(e.id, { uuid: e.uuid, ...(isDirectEndpoint(e.direct) ? { direct: e.direct } : {}) });
  }

  /**
   * An engine was lost: the controller fails its tasks, those sent to it directly included. Any
   * of those still pending after a grace period (the engine died before the controller heard of
   * them) are failed here, so no task waits forever.
   */
  private engineGone(id: number, uuid: string, reason: string, failOrphans: boolean): void {
    this.direct.drop(uuid);
    // A killed engine on this host may leave shared-memory files (a reply it was writing, its
    // marker): remove them once replies it sent before dying have had the grace to arrive.
    if (this.sharedMemory.get(uuid) ?? sharesMemoryWith(uuid))
      setTimeout(() => sweepStale(isAlive), ENGINE_GONE_GRACE_MS).unref();
    this.sharedMemory.delete(uuid);
    if (!failOrphans) return;
    // Only the tasks pending now: an engine that registers again under this id gets new ones.
    const orphans = [...this.tasks.values()].filter((t) => t.metadata.engineId === id);
    if (orphans.length === 0) return;
    const timer = setTimeout(() => {
      for (const t of orphans) {
        if (!this.tasks.delete(t.msgId)) continue; // answered meanwhile
        this.directPending.delete(t.msgId);
        t.reject(new EngineError(`Engine ${id} died before task ${t.msgId} finished (${reason})`, id));
      }
    }, ENGINE_GONE_GRACE_MS);
    timer.unref();
  }

  private rememberFinished(task: SubmittedTask): void {
    this.finished.set(task.msgId, task);
    if (this.finished.size > FINISHED_KEPT) this.finished.delete(this.finished.keys().next().value!);
  }

  private onNotification(msg: AnyMessage | undefined): void {
    if (!msg) return;
    if (isMsg(msg, "registration_notification")) {
      if (msg.content.seq > this.engineSeq) {
        this.engineSeq = msg.content.seq;
        if (!this.engineIds.includes(msg.content.id))
          this.engineIds = [...this.engineIds, msg.content.id].sort((a, b) => a - b);
        this.learnEngine(msg.content);
      }
      this.emit("registration", msg.content);
    } else if (isMsg(msg, "unregistration_notification")) {
      // A stale notice (our engine list is newer) may name an id that a new engine holds now.
      const current = this.engineInfo.get(msg.content.id)?.uuid;
      const sameEngine = current === undefined || current === msg.content.uuid;
      if (msg.content.seq > this.engineSeq) {
        this.engineSeq = msg.content.seq;
        this.engineIds = this.engineIds.filter((id) => id !== msg.content.id);
        this.engineInfo.delete(msg.content.id);
      }
      this.engineGone(msg.content.id, msg.content.uuid, msg.content.reason, sameEngine);
      this.emit("unregistration", msg.content);
    } else if (isMsg(msg, "controller_heartbeat")) {
      this.silence?.heard();
      if (this.controller && msg.content.controller !== this.controller)
        this.controllerRestarted(msg.content.controller);
    }
  }

  /**
   * A new controller answers on the same connection file: it never saw our in-flight tasks,
   * so they are failed now (never silently lost) and the engine list is refreshed.
   */
  private controllerRestarted(controller: string): void {
    this.controller = controller;
    this.engineSeq = -1; // a new controller counts from the start
    this.failPending("the controller restarted while this task was in flight; resubmit it");
    this.query("connection_request", {}).then(
      (reply) => {
        this.takeEngineList(reply);
        this.emit("reconnect", reply);
      },
      (e: unknown) => this.emit("warning", e),
    );
  }

  private failPending(reason: string): void {
    this.directPending.clear();
    for (const [id, t] of this.tasks) {
      this.tasks.delete(id);
      t.reject(new EngineError(reason, t.metadata.engineId));
    }
  }

  private startWatchdog(period: number): void {
    const silence = (this.silence = new ListeningClock(period, period * CONTROLLER_MISSES, Date.now()));
    this.watchdog = setInterval(() => {
      // Our liveness, for a controller that drops the queued tasks of clients that are gone.
      this.outbox.send(this.session.encode("client_alive", {}).frames);
      if (silence.tick(Date.now()) && this.tasks.size > 0) {
        this.failPending(`the controller has been silent for ${silence.silent} ms`);
      }
    }, period);
    this.watchdog.unref();
  }
}

/**
 * The client `%px` runs on. The active client may come from another copy of this library
 * (a notebook's own node_modules), so it is typed here rather than checked with instanceof.
 */
export function getActiveClient(): Client | undefined {
  return activeObject() as Client | undefined;
}

/** The view `%px<suffix>` runs on, set by `view.activate(suffix)`. */
export function getActiveView(suffix = ""): DirectView | undefined {
  return activeViewObject(suffix) as DirectView | undefined;
}

/** `%px` forgets `host` (and its views) if it is the active one. */
export function deactivate(host: ViewHost): void {
  setActiveObject(undefined, host);
}

/** A signal's name from its number on this platform (sendSignal(2) is SIGINT). */
function signalName(n: number): string {
  const name = Object.entries(os.constants.signals).find(([, v]) => v === n)?.[0];
  if (!name) throw new RangeError(`unknown signal number ${n}`);
  return name;
}

let swept = false;

/** The first client of a process removes shared-memory files that dead processes left behind. */
function sweepBulkOnce(): void {
  if (swept) return;
  swept = true;
  sweepStale(isAlive);
}
