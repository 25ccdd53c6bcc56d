/**
 * The connection to a controller. One DEALER carries requests, replies and the outputs of our
 * own tasks (in order, so a task's output always arrives before its result); one SUB hears
 * engine (un)registrations and the controller's heartbeat.
 */
import * as os from "node:os";
import * as path from "node:path";
import * as util from "node:util";
import { EventEmitter } from "node:events";
import * as zmq from "zeromq";
import { Session } from "../protocol/session";
import { Outbox, curveClientKeys, receiveLimits, receiveLoop, withCurve } from "../protocol/socket";
import { oversizedFrame } from "../protocol/wire";
import { DirectLinks } from "./direct";
import { ListeningClock } from "./listening-clock";
import { type ConnectionInfo, connectionFile, endpoint, isAlive, readConnectionFile } from "../protocol/connection";
import {
  type AnyMessage,
  type ContentOf,
  type ControllerNotice,
  type DirectEndpoint,
  type EngineSetInfo,
  type Handlers,
  dispatch,
  type RequestMetadata,
  isMsg,
  parentId,
} from "../protocol/messages";
import { EngineError, NoEnginesError, TimeoutError, TsParallelError, asError } from "./errors";
import type { SubmittedTask } from "./task";
import { type Tunnel, openTunnel } from "./tunnel";
import { AsyncResult } from "./async-result";
import { type Targets, resolveTargets } from "./targets";
import { BroadcastView, DirectView, LoadBalancedView, type LoadBalancedOptions } from "./views";
import { setActiveObject } from "./active";
import { TaskTable } from "./task-table";
import { EngineTable } from "./engine-table";
import { SharedMemoryPolicy } from "./shared-memory";
import { QueryChannel, type QueryType, type ReplyOf } from "./query-channel";
import { REPORT_KEYS, writeReport } from "./report";
import type { ConnectOptions, QueueStatusReport, TaskRequestType, ViewHost } from "./host";

/**
 * Heartbeat periods of silence, heard while our loop was free (see ListeningClock), after which
 * the controller counts as gone and the tasks in flight fail: as many as the engines allow it.
 */
const CONTROLLER_MISSES = 5;

export type { ConnectOptions } from "./host";

export class Client extends EventEmitter implements ViewHost {
  private readonly session: Session;
  private readonly socket = new zmq.Dealer({ linger: 0, sendHighWaterMark: 0, ...receiveLimits() });
  private readonly sub = new zmq.Subscriber({ linger: 0, ...receiveLimits() });
  private readonly outbox: Outbox;
  /** The tasks we await, and the recently finished ones (client/task-table.ts). */
  private readonly tasks = new TaskTable((e) => this.emit("warning", e));
  /** The registered engines, as far as the controller told us (client/engine-table.ts). */
  private readonly engineTable = new EngineTable();
  private readonly memory = new SharedMemoryPolicy((id) => this.engineTable.sharesMemory(id));
  /** The ssh tunnel this client connects through (`sshServer`), ended on close. */
  private tunnel: Tunnel | undefined;
  /** Requests to the controller awaiting their replies (client/query-channel.ts). */
  private readonly queries: QueryChannel;
  /** Connections straight to engines, for DirectView tasks (client/direct.ts). */
  private readonly direct: DirectLinks;
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
    // The controller answers about records only once it has recorded the replies engines sent
    // us directly: their copies may still be on their way to it (controller/ledger.ts, park).
    this.queries = new QueryChannel(
      this.session,
      (f) => this.outbox.send(f),
      () => this.engineTable.waitFor(),
    );
    const keys = curveClientKeys(info.curve_serverkey);
    withCurve(this.socket, keys);
    withCurve(this.sub, keys);
    this.direct = new DirectLinks({
      routingId: this.session.id,
      coalesce: this.session.coalesce,
      curve: keys,
      onFrames: (f) => {
        for (const { msg } of this.session.receive(f)) this.onMessage(msg, true);
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
    SharedMemoryPolicy.sweepOnce();
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
        for (const { msg } of this.session.receive(f)) this.onMessage(msg, false);
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
      this.engineTable.takeList(reply);
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
    return [...this.engineTable.ids];
  }

  get length(): number {
    return this.engineTable.ids.length;
  }

  /** A DirectView on `targets` (default all engines, evaluated at each call). */
  view(target: number): DirectView<true>;
  view(targets?: Targets): DirectView<false>;
  view(targets: Targets = "all"): DirectView {
    if (targets !== "all") resolveTargets(targets, this.engineTable.ids); // validate now, with a clear error
    return new DirectView(this, targets);
  }

  /** A BroadcastView on `targets`: one message reaches them all, their replies come back together. */
  broadcastView(target: number): BroadcastView<true>;
  broadcastView(targets?: Targets): BroadcastView<false>;
  broadcastView(targets: Targets = "all"): BroadcastView {
    if (targets !== "all") resolveTargets(targets, this.engineTable.ids);
    return new BroadcastView(this, targets);
  }

  loadBalancedView(opts: LoadBalancedOptions = {}): LoadBalancedView {
    return new LoadBalancedView(this, opts);
  }

  /** Resolves once `n` engines are registered; rejects with TimeoutError after `timeout` ms. */
  waitForEngines(n: number, opts: { timeout?: number } = {}): Promise<void> {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`waitForEngines needs a whole number of engines; got ${n}`);
    // A notification sent before our SUB was joined is lost (PUB/SUB slow joiner): the table
    // asks the controller for its list now and then as well.
    return this.engineTable.atLeast(n, opts.timeout, async () =>
      this.engineTable.takeList(await this.query("connection_request", {})),
    );
  }

  // ---------------------------------------------------------------- control

  /** Per engine: tasks queued there, completed, load-balanced ones held, and the msg id at the head (running or next). */
  async queueStatus(targets?: Targets): Promise<QueueStatusReport> {
    const ids = targets === undefined ? undefined : resolveTargets(targets, this.engineTable.ids).ids;
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
    const ids = resolveTargets(targets, this.engineTable.ids).ids;
    const reply = await this.query("signal_request", { targets: ids, signal });
    if (reply.status !== "ok") throw new EngineError(reply.status === "error" ? reply.evalue : "signal aborted");
  }

  /** Replaces an engine process (started by the cluster) with a fresh one; ids are never reused. */
  async restartEngine(id: number): Promise<void> {
    const reply = await this.query("restart_request", { targets: resolveTargets(id, this.engineTable.ids).ids });
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
    const tasks = ids.map((id) => this.tasks.get(id) ?? this.tasks.track(id, undefined, "apply"));
    const fresh = tasks.filter((t) => !t.ready);
    if (fresh.length > 0) {
      this.query("result_request", { msg_ids: fresh.map((t) => t.msgId), fetch: true }).then(
        (reply) => TaskTable.adopt(fresh, reply.records),
        (e: unknown) => this.tasks.fail(fresh, () => asError(e)),
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
    const tasks = ids.map(() => this.tasks.track(this.session.newMsgId(), undefined, "apply"));
    this.query("resubmit_request", { msg_ids: ids, new_msg_ids: tasks.map((t) => t.msgId) }).catch((e: unknown) =>
      this.tasks.fail(tasks, () => asError(e)),
    );
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

  /**
   * Saves a performance report of the tasks submitted since `since` (default: every task the
   * controller remembers) as one self-contained HTML file (client/report.ts); `%pxreport` too.
   */
  async performanceReport(
    file: string,
    opts: { since?: Date | string } = {},
  ): Promise<{ file: string; tasks: number }> {
    const since = opts.since === undefined ? undefined : new Date(opts.since);
    if (since && Number.isNaN(since.getTime())) throw new RangeError(`since is not a date: ${String(opts.since)}`);
    const records = await this.dbQuery(since ? { submitted: { $gte: since.toISOString() } } : {}, REPORT_KEYS);
    return { file: path.resolve(file), tasks: (await writeReport(file, records)).length };
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
    const ids = opts.targets === undefined ? undefined : resolveTargets(opts.targets, this.engineTable.ids).ids;
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
    return `<Client: ${this.engineTable.ids.length} engines${this.closed ? ", closed" : ""}>`;
  }

  /** Makes this client, and a view on all its engines, what `%px` (or `%px<suffix>`) runs on. */
  activate(suffix = ""): DirectView {
    setActiveObject(this);
    return this.view().activate(suffix);
  }

  /**
   * Closes the sockets and rejects everything pending, so a script that closes its client exits.
   *
   * Tasks already submitted keep running by default, as in ipyparallel: their results stay in the
   * controller's records for any client to fetch by msg id. With `abortQueued: true` the tasks of
   * this client that have not started are dropped instead (running ones finish).
   */
  close(opts: { abortQueued?: boolean } = {}): void {
    this.memory.close();
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.watchdog);
    const pending = this.tasks.ids();
    this.tasks.failAll(() => new TsParallelError("the client was closed before the task finished"), true);
    this.queries.close();
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
    const task = this.tasks.track(msgId, engineId, type === "apply_request" ? "apply" : "execute");
    const frames = this.encodeTask(type, content, msgId, metadata, buffers, engineId === undefined ? [] : [engineId], [
      task,
    ]);
    if (!frames) return task;
    const engine = engineId === undefined ? undefined : this.engineTable.get(engineId);
    const direct =
      engine && metadata.route?.kind === "direct"
        ? this.direct.route(engine.uuid, engine.direct, task.done, fanout)
        : undefined;
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
    const method = type === "apply_request" ? "apply" : "execute";
    const tasks = ids.map((id) => this.tasks.track(`${msgId}:${id}`, id, method));
    const frames = this.encodeTask(type, content, msgId, metadata, buffers, ids, tasks);
    if (frames) this.outbox.send(frames);
    return tasks;
  }

  /**
   * The frames of a request for `tasks` on `engineIds` (large buffers through /dev/shm where
   * they share it), or undefined when a buffer is larger than any socket takes: they fail at once.
   */
  private encodeTask<T extends TaskRequestType>(
    type: T,
    content: ContentOf<T>,
    msgId: string,
    metadata: RequestMetadata,
    buffers: Buffer[],
    engineIds: readonly number[],
    tasks: readonly SubmittedTask[],
  ): Buffer[] | undefined {
    for (const t of tasks) t.metadata.label = metadata.label;
    const bulk = this.memory.prepare(engineIds, metadata, buffers, tasks);
    const why = oversizedFrame(bulk.buffers);
    if (why === undefined) return this.session.encode(type, content as never, { msgId, ...bulk }).frames;
    this.tasks.fail(tasks, () => new TsParallelError(why));
    return undefined;
  }

  /** @internal An engine's uuid and direct socket (communicators connect engines through them). */
  engineLink(id: number): { uuid: string; direct?: DirectEndpoint } | undefined {
    return this.engineTable.get(id);
  }

  /** @internal Ids for a targets spec, or NoEnginesError. */
  targetIds(spec: Targets): { ids: number[]; scalar: boolean } {
    if (this.engineTable.ids.length === 0) throw new NoEnginesError();
    return resolveTargets(spec, this.engineTable.ids);
  }

  query<Q extends QueryType>(type: Q, content: ContentOf<Q>, timeout = 10_000): Promise<ReplyOf<Q>> {
    if (this.closed) return Promise.reject(new TsParallelError("this client is closed"));
    return this.queries.ask(type, content, timeout);
  }

  /** A message for us; `direct` when it came straight from an engine (client/direct.ts). */
  private onMessage(msg: AnyMessage | undefined, direct: boolean): void {
    if (!msg) return;
    const pid = parentId(msg);
    if (this.queries.answer(msg, pid)) return;
    if (!this.tasks.apply(msg, pid)) return;
    if (direct && (isMsg(msg, "apply_reply") || isMsg(msg, "execute_reply")))
      this.engineTable.repliedDirectly(msg.metadata);
  }

  /**
   * An engine was lost: the controller failed the tasks it knew of on it before the notice. Those
   * it never heard of (the engine died before forwarding them) are ours to fail: a query after the
   * notice, answered after those failures on the same socket, names the ones it has no reply for.
   */
  private engineGone(id: number, uuid: string, reason: string, failOrphans: boolean): void {
    this.direct.drop(uuid);
    if (this.engineTable.sharesMemoryByUuid(uuid)) SharedMemoryPolicy.sweepLater();
    this.engineTable.forgetMemory(uuid);
    if (!failOrphans) return;
    // Only the tasks pending now: an engine that registers again under this id gets new ones.
    const orphans = this.tasks.onEngine(id);
    if (orphans.length === 0) return;
    const lost = (t: SubmittedTask): Error =>
      new EngineError(`Engine ${id} died before task ${t.msgId} finished (${reason})`, id);
    const ids = orphans.map((t) => t.msgId);
    this.query("result_request", { msg_ids: ids, fetch: true, missing_ok: true }).then(
      (reply) => {
        const missing = new Set(reply.missing ?? []);
        this.tasks.fail(
          orphans.filter((t) => missing.has(t.msgId)),
          lost,
        );
      },
      () => this.tasks.fail(orphans, lost),
    );
  }

  private onNotification(msg: AnyMessage | undefined): void {
    if (msg) dispatch(this.notices, msg);
  }

  /** The controller's notifications (its PUB's role), one handler each. */
  private readonly notices: Handlers<ControllerNotice, []> = {
    registration_notification: (msg) => {
      this.engineTable.registered(msg.content);
      this.emit("registration", msg.content);
    },
    unregistration_notification: (msg) => {
      const sameEngine = this.engineTable.unregistered(msg.content);
      this.engineGone(msg.content.id, msg.content.uuid, msg.content.reason, sameEngine);
      this.emit("unregistration", msg.content);
    },
    controller_heartbeat: (msg) => {
      this.silence?.heard();
      if (this.controller && msg.content.controller !== this.controller)
        this.controllerRestarted(msg.content.controller);
    },
  };

  /**
   * A new controller answers on the same connection file: it never saw our in-flight tasks,
   * so they are failed now (never silently lost) and the engine list is refreshed.
   */
  private controllerRestarted(controller: string): void {
    this.controller = controller;
    this.engineTable.reset(); // a new controller counts from the start
    this.failPending("the controller restarted while this task was in flight; resubmit it");
    this.query("connection_request", {}).then(
      (reply) => {
        this.engineTable.takeList(reply);
        this.emit("reconnect", reply);
      },
      (e: unknown) => this.emit("warning", e),
    );
  }

  private failPending(reason: string): void {
    this.tasks.failAll((t) => new EngineError(reason, t.metadata.engineId));
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

/** A signal's name from its number on this platform (sendSignal(2) is SIGINT). */
function signalName(n: number): string {
  const name = Object.entries(os.constants.signals).find(([, v]) => v === n)?.[0];
  if (!name) throw new RangeError(`unknown signal number ${n}`);
  return name;
}
