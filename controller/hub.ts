/**
 * The hub: the controller's bookkeeping and routing, fed typed messages by the socket roles
 * (controller.ts wires them, sockets.ts holds the heartbeat) and answering through `HubPorts`. No sockets here, so
 * every path below can be read in one place:
 *
 *   client apply/execute ─► direct: engine queue ─► engine
 *                        └► task: TaskScheduler ─► engine queue ─► engine
 *   engine output/reply ─► record (stdout/stderr, timings) ─► the submitting client, in order
 *   engine lost ─► queued direct tasks fail with EngineError; load-balanced ones are resubmitted
 */
import * as os from "node:os";
import { Session } from "../protocol/session";
import { type Envelope, ReplayGuard, detachEnvelope, splitFrames } from "../protocol/wire";
import {
  type AnyMessage,
  type ContentOf,
  type EngineDescription,
  type Header,
  type MessageOf,
  type Route,
  RECORD_QUERIES,
  isMsg,
  parentId,
} from "../protocol/messages";
import { processExists } from "../protocol/connection";
import { isRoute } from "../protocol/validate";
import { type LibraryErrorName, libraryErrorContent } from "../protocol/errors";
import { type RecordView, matches, pick, queryProblem, recordView } from "./history";
import { type EngineEntry, Registry } from "./registry";
import { Records, type TaskArchive, type TaskRecord, isFinished } from "./records";
import { TaskScheduler } from "./task-scheduler";
import { SCHEMES, type SchemeName } from "./schemes";

/** How often, and how many times, a task being interrupted is signalled again while it runs. */
const RESIGNAL_MS = 250;
const RESIGNAL_TRIES = 40;
/** Most frames in one coalesced `batch` of broadcast replies: under the wire's 4,096 per message. */
const BATCH_FRAMES = 4000;
/**
 * How long a client's query about records waits for the records of its direct tasks (see
 * `waitForDirect`), and the most msg ids one query may name.
 */
const WAIT_FOR_DIRECT_MS = 2000;
const WAIT_FOR_MAX = 10_000;
interface ParkedQuery {
  msg: AnyMessage;
  env: Envelope;
  /** The direct tasks it still waits for. */
  waiting: Set<string>;
  timer: NodeJS.Timeout | undefined;
}

/** How long, and how many, stops of msg ids not known yet are kept (see `rememberEarlyStop`). */
const EARLY_STOP_MS = 60_000;
const EARLY_STOPS_KEPT = 10_000;
/** Heartbeat periods of silence after which a client counts as gone. */
const ORPHAN_PERIODS = 10;

export interface HubPorts {
  toClient(frames: Buffer[]): void;
  toEngine(frames: Buffer[]): void;
  notify(frames: Buffer[]): void;
  /** Signal a local engine process; false when it cannot be reached. */
  signal(engine: EngineEntry, signal: NodeJS.Signals): boolean;
  /** Restart an engine this controller supervises; false when it is not ours. */
  restart(engineId: number): boolean;
  /** The controller should shut down. */
  shutdown(): void;
  /** An engine registered (its set's launcher may start the next one). */
  registered?(engine: EngineEntry): void;
  /** An engine was lost (what it left on its host may be cleaned up). */
  lost?(engine: EngineEntry): void;
  /** Engine sets: list, add (through a launcher), stop, signal. Absent: the hub has none. */
  engineSets?(request: ContentOf<"engine_sets_request">): Promise<ContentOf<"engine_sets_reply">>;
  log(line: string): void;
}

export interface HubOptions {
  scheme: SchemeName;
  hwm: number;
  heartbeatPeriod: number;
  /** Consecutive missed beats before an engine is declared lost. */
  heartbeatMisses: number;
  /** Drop the queued tasks of clients that stopped sending `client_alive`. */
  dropOrphans?: boolean;
}

/**
 * How many times `heartbeatMisses` an engine whose heart has not echoed any ping yet is given. Its
 * heart connects after registration, and among 256 engines starting on 2 cores its first echo
 * can come seconds late; once it beats, the normal count applies. A local engine that dies
 * meanwhile is still noticed at once, by its pid.
 */
const FIRST_BEAT_GRACE = 6;

export class Hub {
  readonly registry = new Registry();
  readonly records = new Records();
  readonly scheduler: TaskScheduler;
  private readonly hostname = os.hostname();
  /** When each client (by identity) was last heard from, for `dropOrphans`. */
  private readonly clientSeen = new Map<string, number>();
  /** Broadcasts in flight by the client's msg id: their replies wait here to leave as one batch. */
  private readonly broadcasts = new Map<string, { client: Buffer; waiting: number; replies: Envelope[] }>();
  /** Task msg ids clients have sent (see submit). */
  private readonly submitted = new ReplayGuard();
  /** Record queries parked until the direct tasks they name are recorded as finished. */
  private readonly parked = new Set<ParkedQuery>();
  /** Stops that came before their direct task was forwarded here (see `rememberEarlyStop`). */
  private readonly earlyStops = new Map<string, { opts: { running: boolean; signal?: NodeJS.Signals }; at: number }>();
  /** When each unknown beating uuid was last asked to register again (see `beat`). */
  private readonly askedToRegister = new Map<string, number>();

  constructor(
    readonly session: Session,
    private readonly ports: HubPorts,
    readonly options: HubOptions,
  ) {
    this.scheduler = new TaskScheduler(
      {
        engines: () => this.registry.all(),
        lookup: (id) => this.records.get(id),
        dispatch: (task, engine) => this.dispatch(task, engine),
        fail: (task, ename, evalue) => this.failTask(task, ename, evalue),
      },
      SCHEMES[options.scheme],
      options.hwm,
    );
  }

  // ---------------------------------------------------------------- clients

  onClientMessage(msg: AnyMessage, env: Envelope): void {
    if (this.waitForDirect(msg, env)) return;
    this.handleClientMessage(msg, env);
  }

  /**
   * A client got the replies of its direct tasks from the engines, and the engines' copies may
   * still be on their way here: a query about records that names such tasks (`metadata.waitFor`)
   * waits until they are recorded as finished, or `WAIT_FOR_DIRECT_MS` at most. So a client
   * never reads its own finished task as pending.
   */
  private waitForDirect(msg: AnyMessage, env: Envelope): boolean {
    const ids = msg.metadata.waitFor;
    if (!RECORD_QUERIES.has(msg.header.msg_type) || !Array.isArray(ids) || ids.length > WAIT_FOR_MAX) return false;
    const waiting = new Set(ids.filter((id): id is string => typeof id === "string" && !this.finished(id)));
    if (waiting.size === 0) return false;
    const entry: ParkedQuery = { msg, env, waiting, timer: undefined };
    entry.timer = setTimeout(() => this.unpark(entry), WAIT_FOR_DIRECT_MS);
    this.parked.add(entry);
    return true;
  }

  private finished(msgId: string): boolean {
    return isFinished(this.records.get(msgId)?.state);
  }

  /** A task finished: the queries that waited for it (and nothing else) go on. */
  private recordFinished(msgId: string): void {
    for (const entry of this.parked) if (entry.waiting.delete(msgId) && entry.waiting.size === 0) this.unpark(entry);
  }

  private unpark(entry: ParkedQuery): void {
    if (!this.parked.delete(entry)) return;
    clearTimeout(entry.timer);
    this.handleClientMessage(entry.msg, entry.env);
  }

  private handleClientMessage(msg: AnyMessage, env: Envelope): void {
    const client = msg.identities[0];
    if (!client) return;
    if (this.options.dropOrphans) this.clientSeen.set(client.toString("latin1"), Date.now());
    if (isMsg(msg, "client_alive")) return;
    // Session.parse has checked each request's shape (protocol/validate.ts); the guards narrow.
    if (isMsg(msg, "apply_request") || isMsg(msg, "execute_request")) return this.submit(msg, env, client);
    if (isMsg(msg, "connection_request")) {
      return this.reply(msg, "connection_reply", {
        status: "ok",
        engines: this.engineList(),
        controller: this.session.id,
        heartbeat_period: this.options.heartbeatPeriod,
        seq: this.registry.seq,
      });
    }
    if (isMsg(msg, "queue_request")) return this.reply(msg, "queue_reply", this.queueStatus(msg.content.targets));
    if (isMsg(msg, "signal_request")) return this.signal(msg);
    if (isMsg(msg, "restart_request")) return this.restartEngines(msg);
    if (isMsg(msg, "task_interrupt_request")) return this.interruptTasks(msg);
    if (isMsg(msg, "hub_history_request"))
      return this.reply(msg, "hub_history_reply", {
        status: "ok",
        history: [...this.allRecords()].map((r) => r.msgId),
      });
    if (isMsg(msg, "result_request")) return this.results(msg, client);
    if (isMsg(msg, "resubmit_request")) return this.resubmit(msg, client);
    if (isMsg(msg, "purge_request")) return this.purge(msg);
    if (isMsg(msg, "db_request")) return this.dbQuery(msg);
    if (isMsg(msg, "engine_sets_request")) return this.engineSets(msg);
    if (isMsg(msg, "task_abort_request"))
      return this.reply(msg, "task_abort_reply", { status: "ok", aborted: this.abort(msg.content.msg_ids) });
    if (isMsg(msg, "shutdown_request")) return this.shutdown(msg);
    if (isMsg(msg, "stats_request")) {
      const mem = process.memoryUsage();
      return this.reply(msg, "stats_reply", {
        status: "ok",
        rss: mem.rss,
        heap: mem.heapUsed,
        external: mem.external,
        records: this.records.size,
        dropped: { ...this.session.dropped },
        engines_dropped: this.enginesDropped(),
      });
    }
    return this.reply(msg, "hub_error", {
      status: "error",
      ename: "ValueError",
      evalue: `the controller does not handle ${msg.header.msg_type} from clients`,
      traceback: [],
    });
  }

  private engineSets(msg: MessageOf<"engine_sets_request">): void {
    if (!this.ports.engineSets) return this.reply(msg, "engine_sets_reply", { status: "ok", sets: [] });
    const failed = (e: unknown): ContentOf<"engine_sets_reply"> => ({
      status: "error",
      ename: e instanceof Error ? e.name : "Error",
      evalue: e instanceof Error ? e.message : String(e),
      traceback: [],
    });
    void this.ports
      .engineSets(msg.content)
      .catch(failed)
      .then((content) => this.reply(msg, "engine_sets_reply", content));
  }

  private submit(msg: MessageOf<"apply_request" | "execute_request">, env: Envelope, client: Buffer): void {
    // A request recorded off the wire (here, or on its way to an engine, which we signed anew)
    // and sent again must not run again: a msg id is taken once.
    if (!this.submitted.admitKey(msg.header.msg_id)) {
      this.session.dropped.replayed++;
      return;
    }
    const route: Route = isRoute(msg.metadata.route) ? msg.metadata.route : { kind: "task" }; // checked by Session.parse
    if (route.kind === "broadcast") return this.broadcast(msg, env, client, route.targets);
    const record = this.newRecord(msg.header, msg.metadata, client, route);
    record.envelope = route.kind === "task" ? detachEnvelope(env) : env;
    record.retriesLeft = route.kind === "task" ? (route.retries ?? 0) : 0;
    // A request whose buffers went through shared memory cannot be sent again: its files are
    // removed once it settles. Its record keeps no request, as a purged one (no resubmit).
    record.request = msg.metadata.bulk ? undefined : route.kind === "task" ? record.envelope : detachEnvelope(env);
    this.records.add(record);
    if (route.kind === "direct") {
      const engine = this.registry.get(route.engine);
      if (!engine) {
        this.failTask(
          record,
          "EngineError",
          `engine ${route.engine} is not registered (registered: [${this.registry.ids().join(", ")}])`,
        );
        return;
      }
      record.envelope = undefined; // direct tasks are never resubmitted
      this.sendToEngine(record, engine, Session.forward([engine.identity], env));
      return;
    }
    this.scheduler.submit(record);
    this.scheduler.schedule();
  }

  /**
   * One request in, one direct task per target out (ipyparallel's BroadcastView): each engine
   * gets the request under its own msg id, `<msg id>:<engine id>`, so records, output, abort and
   * a lost engine work per engine as for a DirectView; the payload is neither copied nor signed
   * again. The replies go back together, in one `batch` (see `deliver`).
   */
  private broadcast(
    msg: MessageOf<"apply_request" | "execute_request">,
    env: Envelope,
    client: Buffer,
    targets: number[],
  ): void {
    const groupId = msg.header.msg_id;
    if (this.broadcasts.has(groupId)) return; // a replayed id: its tasks exist already
    this.broadcasts.set(groupId, { client: Buffer.from(client), waiting: targets.length, replies: [] });
    for (const id of targets) {
      const header = { ...msg.header, msg_id: `${groupId}:${id}` };
      const metadata = { ...msg.metadata, route: { kind: "direct", engine: id } satisfies Route };
      const record = this.newRecord(header, metadata, client, metadata.route);
      record.broadcast = groupId;
      this.records.add(record);
      const engine = this.registry.get(id);
      if (!engine) {
        this.failTask(
          record,
          "EngineError",
          `engine ${id} is not registered (registered: [${this.registry.ids().join(", ")}])`,
        );
        continue;
      }
      const signed = this.session.resign(env, header, metadata);
      if (!msg.metadata.bulk) record.request = detachEnvelope(signed);
      this.sendToEngine(record, engine, Session.forward([engine.identity], signed));
    }
  }

  /**
   * A task a client sent to `engine` itself (engine/direct.ts), as the engine forwarded it on
   * arrival: recorded as a direct task already assigned, and never sent anywhere. Its client is
   * addressed by its session id, which is its routing id here (client.ts), so the controller can
   * still answer for the task when its engine is lost or it is aborted.
   */
  private directTask(engine: EngineEntry, msg: MessageOf<"apply_request" | "execute_request">, env: Envelope): void {
    if (this.records.get(msg.header.msg_id)) return;
    const route: Route = { kind: "direct", engine: engine.id };
    const record = this.newRecord(msg.header, msg.metadata, Buffer.from(msg.header.session), route);
    record.direct = true;
    record.request = msg.metadata.bulk ? undefined : detachEnvelope(env);
    this.records.add(record);
    record.state = "assigned";
    record.engineId = engine.id;
    // The engine ran it after the first `queuedAfter` tasks we sent it, and before the rest: the
    // queue's order (its head is what runs) must be the engine's, not the order we heard of them.
    const after = typeof msg.metadata.queuedAfter === "number" ? msg.metadata.queuedAfter : Infinity;
    const at = engine.queue.findIndex((id) => (this.records.get(id)?.dispatchSeq ?? 0) > after);
    if (at < 0) engine.queue.push(record.msgId);
    else engine.queue.splice(at, 0, record.msgId);
    const early = this.earlyStops.get(record.msgId);
    if (early) {
      this.earlyStops.delete(record.msgId);
      this.stopTasks([record.msgId], early.opts);
    }
  }

  /**
   * A stop (abort or interrupt) for a msg id the controller does not know yet: a client may
   * cancel a direct task before its engine has forwarded it here. Kept a while, bounded.
   */
  private rememberEarlyStop(id: string, opts: { running: boolean; signal?: NodeJS.Signals }): void {
    const now = Date.now();
    for (const [key, stop] of this.earlyStops) {
      if (now - stop.at < EARLY_STOP_MS && this.earlyStops.size < EARLY_STOPS_KEPT) break;
      this.earlyStops.delete(key);
    }
    this.earlyStops.set(id, { opts, at: now });
  }

  /** A pending task's record, before any routing: envelope and retries are the caller's to set. */
  private newRecord(header: Header, metadata: Record<string, unknown>, client: Buffer, route: Route): TaskRecord {
    const record: TaskRecord = {
      msgId: header.msg_id,
      msgType: header.msg_type as TaskRecord["msgType"],
      // A copy: the received frame is a view into ZeroMQ's receive chunk (8 KB or more, shared by
      // every message decoded from it), which a kept record would pin, unseen by V8's GC.
      client: Buffer.from(client),
      route,
      state: "pending",
      engineId: undefined,
      submitted: Date.now(),
      stdout: "",
      stderr: "",
      envelope: undefined,
      retriesLeft: 0,
      blacklist: new Set(),
      header,
    };
    if (typeof metadata.label === "string") record.label = metadata.label;
    return record;
  }

  private dispatch(task: TaskRecord, engine: EngineEntry): void {
    const env = task.envelope;
    if (!env) return this.failTask(task, "EngineError", "task lost its request before dispatch");
    engine.lbLoad++;
    this.sendToEngine(task, engine, Session.forward([engine.identity], env));
  }

  private sendToEngine(task: TaskRecord, engine: EngineEntry, frames: Buffer[]): void {
    task.state = "assigned";
    task.engineId = engine.id;
    task.dispatchSeq = ++engine.dispatched;
    engine.queue.push(task.msgId);
    this.ports.toEngine(frames);
  }

  // ---------------------------------------------------------------- engines

  onEngineMessage(msg: AnyMessage, env: Envelope): void {
    const identity = msg.identities[0];
    if (!identity) return;
    if (isMsg(msg, "registration_request")) return this.register(msg, identity);
    const engine = this.registry.getByUuid(identity.toString("latin1"));
    if (!engine) return; // not registered (or already declared lost): nothing to route to
    this.heard(engine);
    switch (msg.header.msg_type) {
      case "apply_request":
      case "execute_request":
        return this.directTask(engine, msg as MessageOf<"apply_request" | "execute_request">, env);
      case "engine_dropped":
        engine.directDropped = (msg as MessageOf<"engine_dropped">).content.dropped;
        return;
      case "apply_reply":
      case "execute_reply":
        return this.taskReplied(engine, msg, env);
      case "stream":
      case "display_data":
      case "update_display_data":
      case "execute_result":
      case "error":
      case "execute_input":
      case "clear_output": {
        // Finished records too: output a task's timers print after it returned still belongs to
        // it (ipyparallel delivers it to that request's AsyncResult as well).
        const record = this.records.get(parentId(msg));
        if (!record) return;
        if (isMsg(msg, "stream")) this.records.appendOutput(record, msg.content.name, msg.content.text);
        this.toInterested(record, env, record.direct);
        return;
      }
      case "data_pub": {
        const record = this.records.getLive(parentId(msg));
        if (record) this.toInterested(record, env, record.direct);
        return;
      }
      case "unregistration_request":
        return this.engineLost(engine.id, "it unregistered");
      case "shutdown_reply":
        return this.engineLost(engine.id, "it shut down");
      default:
        return;
    }
  }

  private register(msg: MessageOf<"registration_request">, identity: Buffer): void {
    const c = msg.content;
    const uuid = identity.toString("latin1");
    let engine = this.registry.getByUuid(uuid);
    // A request that waited in the queue while its engine gave up and exited: registering it
    // would hand out an id only to declare it lost at the next check.
    if (!engine && c.hostname === this.hostname && !processExists(c.pid)) return;
    if (!engine) {
      engine = this.registry.add(
        {
          uuid,
          identity: Buffer.from(identity),
          pid: c.pid,
          hostname: c.hostname,
          cwd: c.cwd,
          ...(c.engine_set !== undefined ? { engineSet: c.engine_set } : {}),
          ...(c.direct !== undefined ? { direct: c.direct } : {}),
        },
        c.requested_id,
      );
      this.heard(engine);
      this.ports.log(`engine ${engine.id} registered (pid ${engine.pid} on ${engine.hostname})`);
      this.ports.registered?.(engine);
      this.publish("registration_notification", { ...this.registry.describe(engine), seq: this.registry.seq });
    }
    this.replyTo(
      identity,
      msg.header,
      "registration_reply",
      { status: "ok", id: engine.id, heartbeat_period: this.options.heartbeatPeriod, controller: this.session.id },
      true,
    );
    this.scheduler.schedule();
  }

  private taskReplied(engine: EngineEntry, msg: AnyMessage, env: Envelope): void {
    const msgId = parentId(msg);
    const at = engine.queue.indexOf(msgId);
    if (at >= 0) engine.queue.splice(at, 1);
    const record = this.records.getLive(msgId);
    if (!record) return;
    if (record.route.kind === "task") engine.lbLoad = Math.max(0, engine.lbLoad - 1);
    engine.completed++;
    const { started, completed } = msg.metadata;
    record.started = typeof started === "string" ? started : undefined;
    record.completed = typeof completed === "string" ? completed : msg.header.date;
    const ran = Date.parse(record.completed) - Date.parse(record.started ?? record.completed);
    if (Number.isFinite(ran))
      engine.avgTaskMs = engine.avgTaskMs === undefined ? ran : engine.avgTaskMs * 0.8 + ran * 0.2;
    const status = isMsg(msg, "apply_reply") || isMsg(msg, "execute_reply") ? msg.content.status : "error";
    const reply = detachEnvelope(env);
    // A result handed over through shared memory is read (and removed) by its client: the
    // record keeps no result, as a purged one (hasResult false).
    if (!msg.metadata.bulk) record.reply = reply;
    if (record.direct) this.toInterested(record, reply, true);
    else this.deliver(record, reply);
    this.records.finish(record, status === "ok" ? "done" : status === "aborted" ? "aborted" : "failed");
    this.archive?.save(record);
    if (this.parked.size > 0) this.recordFinished(record.msgId);
    this.scheduler.dependencyFinished();
    this.scheduler.schedule();
  }

  /** Heartbeats: an echo of ping `seq` refreshes the engine; `checkEngines` declares the silent ones lost. */
  beat(uuid: string, seq: number): void {
    const engine = this.registry.getByUuid(uuid);
    if (engine) {
      engine.lastBeat = Date.now();
      engine.heardAtPing = Math.max(engine.heardAtPing, seq);
      engine.beating = true;
      return;
    }
    // A live heart we do not know: an engine declared lost (stopped, then resumed) or registered
    // with an earlier controller on these ports. Ask it to register again, at most once a period.
    const now = Date.now();
    if (now - (this.askedToRegister.get(uuid) ?? 0) < this.options.heartbeatPeriod) return;
    if (this.askedToRegister.size > 10_000) this.askedToRegister.clear();
    this.askedToRegister.set(uuid, now);
    const identity = Buffer.from(uuid, "latin1");
    this.ports.toEngine(
      this.session.encode(
        "reregistration_request",
        { reason: "this controller does not know the engine" },
        { identities: [identity] },
      ).frames,
    );
  }

  /**
   * With `dropOrphans`, the load-balanced tasks still queued for a client silent for
   * `ORPHAN_PERIODS` heartbeat periods fail with TaskAborted: nobody will read them, and they
   * would hold the engines from everyone else. Clients send `client_alive` every period.
   */
  checkClients(): void {
    if (!this.options.dropOrphans) return;
    const limit = Date.now() - this.options.heartbeatPeriod * ORPHAN_PERIODS;
    for (const [key, seen] of this.clientSeen) {
      if (seen > limit) continue;
      this.clientSeen.delete(key);
      const dropped = this.scheduler.removeClient(Buffer.from(key, "latin1"));
      if (dropped.length > 0) this.ports.log(`dropping ${dropped.length} queued tasks of a client gone silent`);
      for (const r of dropped)
        this.failTask(r, "TaskAborted", `task ${r.msgId} was dropped: its client is gone`, "aborted");
    }
  }

  /** A message from the engine: it is alive as of the newest ping. */
  private heard(engine: EngineEntry): void {
    engine.lastBeat = Date.now();
    engine.heardAtPing = this.pingSent;
  }

  /** The newest ping sent, and the newest one the controller's own heart echoed, as read here. */
  private pingSent = 0;
  private canaryPing = 0;

  pinged(seq: number): void {
    this.pingSent = seq;
  }

  canaryBeat(seq: number): void {
    this.canaryPing = Math.max(this.canaryPing, seq);
  }

  /**
   * Lost: a local engine whose process is gone, or an engine that answered none of the last
   * `heartbeatMisses` pings that the controller's own heart answered (see HeartbeatRole). Silence
   * is counted in pings the controller sent and read the answers to, not in wall-clock time, so a
   * controller short of CPU, which sends fewer pings and reads their answers late, does not
   * declare live engines lost.
   */
  checkEngines(): void {
    const misses = this.options.heartbeatMisses;
    // A canary that never answered (it could not connect) must not switch the heartbeat off.
    const canaryBroken = this.canaryPing === 0 && this.pingSent > 6 * misses;
    const reference = canaryBroken ? this.pingSent : this.canaryPing;
    for (const e of this.registry.all()) {
      // A local engine is watched by pid as well: a dead process is noticed within one check,
      // not after several missed beats (ipyparallel's nanny gives the same fast notice).
      if (e.hostname === this.hostname && !processExists(e.pid)) this.engineLost(e.id, `its process ${e.pid} exited`);
      else if (reference - e.heardAtPing > (e.beating ? misses : misses * FIRST_BEAT_GRACE))
        this.engineLost(
          e.id,
          `it missed heartbeats: none of the last ${reference - e.heardAtPing} pings answered (silent for ${Date.now() - e.lastBeat} ms)`,
        );
    }
  }

  engineLost(id: number, reason: string): void {
    const engine = this.registry.remove(id);
    if (!engine) return;
    this.ports.log(`engine ${id} lost: ${reason}`);
    this.ports.lost?.(engine);
    this.publish("unregistration_notification", { ...this.registry.describe(engine), reason, seq: this.registry.seq });
    engine.queue.forEach((msgId, position) => {
      const record = this.records.getLive(msgId);
      if (!record) return;
      const running = position === 0;
      if (record.route.kind === "task" && (!running || record.retriesLeft > 0)) {
        if (running) record.retriesLeft--;
        record.blacklist.add(id);
        this.scheduler.resubmit(record);
        return;
      }
      this.failTask(
        record,
        "EngineError",
        `Engine ${id} died ${running ? "while running" : "before running"} task ${msgId} (${reason})`,
      );
    });
    this.scheduler.schedule();
  }

  /** The drop counters the engines' direct sockets reported, summed. */
  private enginesDropped(): Record<string, number> {
    const sum: Record<string, number> = {};
    for (const e of this.registry.all())
      for (const [reason, n] of Object.entries(e.directDropped ?? {})) sum[reason] = (sum[reason] ?? 0) + n;
    return sum;
  }

  /** Registered engines (id, uuid, pid, host), sorted by id: connection_reply's list. */
  engineList(): EngineDescription[] {
    return this.registry.ids().map((id) => this.registry.describe(this.registry.get(id)!));
  }

  // ---------------------------------------------------------------- queries

  private queueStatus(targets?: number[]): ContentOf<"queue_reply"> {
    const engines: ContentOf<"queue_reply">["engines"] = {};
    for (const e of this.registry.all()) {
      if (targets && !targets.includes(e.id)) continue;
      engines[String(e.id)] = {
        queue: e.queue.length,
        completed: e.completed,
        tasks: e.lbLoad,
        running: e.queue[0] ?? null,
      };
    }
    return { status: "ok", engines, unassigned: this.scheduler.unassigned };
  }

  private unknownTargets(targets: number[]): number[] {
    return targets.filter((t) => !this.registry.get(t));
  }

  private signal(msg: MessageOf<"signal_request">): void {
    const { targets, signal } = msg.content;
    const bad = this.unknownTargets(targets);
    if (bad.length > 0)
      return this.reply(msg, "signal_reply", {
        status: "error",
        ename: "EngineError",
        evalue: `no engine with id ${bad.join(", ")}`,
        traceback: [],
      });
    const signalled = targets.filter((t) => this.ports.signal(this.registry.get(t)!, signal as NodeJS.Signals));
    this.reply(msg, "signal_reply", { status: "ok", signalled });
  }

  private restartEngines(msg: MessageOf<"restart_request">): void {
    const bad = this.unknownTargets(msg.content.targets);
    if (bad.length > 0)
      return this.reply(msg, "restart_reply", {
        status: "error",
        ename: "EngineError",
        evalue: `no engine with id ${bad.join(", ")}`,
        traceback: [],
      });
    const notOurs = msg.content.targets.filter((t) => !this.ports.restart(t));
    if (notOurs.length > 0) {
      return this.reply(msg, "restart_reply", {
        status: "error",
        ename: "EngineError",
        evalue: `engine(s) ${notOurs.join(", ")} were not started by this controller; restart them where they run`,
        traceback: [],
      });
    }
    this.reply(msg, "restart_reply", { status: "ok", restarted: msg.content.targets });
  }

  /** Drops queued tasks: unassigned ones here, queued-but-not-running ones on their engines. */
  private abort(msgIds: string[]): string[] {
    return this.stopTasks(msgIds, { running: false }).aborted;
  }

  /**
   * The one mechanism behind abort and interrupt: unassigned tasks fail with TaskAborted here;
   * each engine is told which of its tasks to stop (a queued one is dropped when its turn comes,
   * a running one, if `running`, is interrupted).
   */
  private stopTasks(
    ids: readonly string[],
    opts: { running: boolean; signal?: NodeJS.Signals },
  ): {
    aborted: string[];
    interrupted: string[];
  } {
    const aborted: string[] = [];
    const interrupted: string[] = [];
    const perEngine = new Map<EngineEntry, string[]>();
    for (const id of ids) {
      const r = this.records.getLive(id);
      if (!r) {
        // Perhaps a direct task whose engine has not forwarded it yet: stop it when it does.
        if (!this.records.get(id)) this.rememberEarlyStop(id, opts);
        continue;
      }
      if (this.scheduler.remove(r)) {
        this.failTask(r, "TaskAborted", `task ${id} was aborted before it started`, "aborted");
        aborted.push(id);
        continue;
      }
      const engine = r.engineId === undefined ? undefined : this.registry.get(r.engineId);
      if (!engine) continue;
      const running = engine.queue[0] === id;
      if (running && !opts.running) continue;
      perEngine.set(engine, [...(perEngine.get(engine) ?? []), id]);
      (running ? interrupted : aborted).push(id);
      if (running && opts.signal) this.signalWhileRunning(r, engine, opts.signal);
    }
    for (const [engine, list] of perEngine) {
      this.ports.toEngine(
        this.session.encode("abort_request", { msg_ids: list }, { identities: [engine.identity] }).frames,
      );
    }
    return { aborted, interrupted };
  }

  /**
   * Stops tasks by msg id, wherever they are. Unassigned ones fail with TaskAborted here; the
   * engines holding the others are told which (a queued one is dropped when its turn comes, a
   * running one is interrupted), and a running one's engine gets the signal too, again every
   * `RESIGNAL_MS` while that task is still at the head of its queue: the engine may not have
   * started it when the first signal lands. Only the engine running that very task is signalled,
   * never another client's.
   */
  private interruptTasks(msg: MessageOf<"task_interrupt_request">): void {
    const { msg_ids: ids, signal } = msg.content;
    if (signal !== "0" && !(signal in os.constants.signals)) {
      return this.reply(msg, "hub_error", {
        status: "error",
        ename: "ValueError",
        evalue: `unknown signal ${signal}; use a name such as SIGINT`,
        traceback: [],
      });
    }
    const { aborted, interrupted } = this.stopTasks(ids, {
      running: true,
      ...(signal !== "0" ? { signal: signal as NodeJS.Signals } : {}),
    });
    this.reply(msg, "task_interrupt_reply", { status: "ok", aborted, interrupted });
  }

  private signalWhileRunning(record: TaskRecord, engine: EngineEntry, signal: NodeJS.Signals): void {
    let left = RESIGNAL_TRIES;
    const tick = (): void => {
      const live = this.records.getLive(record.msgId) && this.registry.get(engine.id) === engine;
      if (!live || left-- <= 0) return clearInterval(timer);
      if (engine.queue[0] === record.msgId) this.ports.signal(engine, signal);
    };
    // The first signal waits one period: a task still at the head after it is really running
    // (a busy loop), while one that was about to finish has replied by then. Signalling at once
    // would hit the engine's next task whenever the reply was still on its way.
    const timer = setInterval(tick, RESIGNAL_MS);
    timer.unref();
  }

  // ---------------------------------------------------------------- history across clients

  /**
   * A task's reply goes where its output goes (`toInterested`), except a broadcast's: its
   * submitter gets the replies of all its engines at once, in as few `batch` messages as the
   * frame limit allows, once the last one is in (a lost engine's fabricated reply counts).
   */
  private deliver(record: TaskRecord, reply: Envelope): void {
    const group = record.broadcast === undefined ? undefined : this.broadcasts.get(record.broadcast);
    if (!group) return this.toInterested(record, reply);
    for (const w of record.watchers ?? []) this.ports.toClient(Session.forward([w], reply));
    group.replies.push(reply);
    if (--group.waiting > 0) return;
    this.broadcasts.delete(record.broadcast!);
    let batch: Envelope[] = [];
    let frames = 0;
    for (const r of group.replies) {
      const n = 1 + r.parts.length + r.buffers.length;
      if (batch.length > 0 && frames + n > BATCH_FRAMES) {
        this.ports.toClient(this.session.batch([group.client], batch));
        batch = [];
        frames = 0;
      }
      batch.push(r);
      frames += n;
    }
    this.ports.toClient(this.session.batch([group.client], batch));
  }

  /**
   * A task's reply and output go to its client and to every client that asked for its result;
   * `submitterHasIt` when the engine sent them to the client itself (a direct task).
   */
  private toInterested(record: TaskRecord, env: Envelope, submitterHasIt = false): void {
    if (!submitterHasIt) this.ports.toClient(Session.forward([record.client], env));
    for (const w of record.watchers ?? []) this.ports.toClient(Session.forward([w], env));
  }

  private error(msg: AnyMessage, ename: string, evalue: string): void {
    this.reply(msg, "hub_error", { status: "error", ename, evalue, traceback: [] });
  }

  /** Status of tasks by msg id; with `fetch`, their replies go to the asker (now, or when they finish). */
  private results(msg: MessageOf<"result_request">, asker: Buffer): void {
    // Each record looked up once: from the archive when memory let its reply go.
    const found = new Map(msg.content.msg_ids.map((id) => [id, this.record(id, "reply")]));
    const unknown = msg.content.msg_ids.filter((id) => !found.get(id));
    if (unknown.length > 0)
      return this.error(
        msg,
        "KeyError",
        `unknown msg id(s): ${unknown.join(", ")} (see rc.history())${this.archiveNote()}`,
      );
    const pending: string[] = [];
    const completed: string[] = [];
    const records: ContentOf<"result_reply">["records"] = {};
    const toSend: Envelope[] = [];
    for (const id of msg.content.msg_ids) {
      const r = found.get(id)!;
      records[id] = { msgType: r.msgType, engineId: r.engineId ?? null, stdout: r.stdout, stderr: r.stderr };
      const done = isFinished(r.state);
      (done ? completed : pending).push(id);
      if (!msg.content.fetch) continue;
      if (done) {
        if (!r.reply)
          return this.error(
            msg,
            "KeyError",
            `the result of ${id} was purged; only its metadata is kept (rc.dbQuery)${this.archiveNote()}`,
          );
        toSend.push(r.reply);
      } else if (!r.client.equals(asker)) (r.watchers ??= []).push(Buffer.from(asker));
    }
    this.reply(msg, "result_reply", { status: "ok", pending, completed, records });
    for (const env of toSend) this.ports.toClient(Session.forward([asker], env));
  }

  /** Runs finished tasks again under the new msg ids the client chose (so it awaits them first). */
  private resubmit(msg: MessageOf<"resubmit_request">, asker: Buffer): void {
    const { msg_ids: ids, new_msg_ids: fresh } = msg.content;
    const requests: Envelope[] = [];
    for (const id of ids) {
      const r = this.record(id, "request");
      if (!r) return this.error(msg, "KeyError", `unknown msg id ${id} (see rc.history())${this.archiveNote()}`);
      if (!isFinished(r.state))
        return this.error(
          msg,
          "ValueError",
          `cannot resubmit tasks that have not finished: ${id} is ${r.state}; wait for it or cancel it first`,
        );
      if (!r.request) return this.error(msg, "KeyError", `the request of ${id} was purged; it cannot be resubmitted`);
      requests.push(r.request);
    }
    this.reply(msg, "resubmit_reply", { status: "ok", resubmitted: fresh });
    requests.forEach((request, i) => {
      const old = this.session.parse(request);
      if (!old || !(isMsg(old, "apply_request") || isMsg(old, "execute_request"))) return;
      const { frames } = this.session.encode(old.header.msg_type, old.content, {
        msgId: fresh[i]!,
        metadata: old.metadata,
        buffers: old.buffers,
        identities: [asker],
      });
      const env = splitFrames(frames.slice(1));
      const again = this.session.parse(env);
      if (again && (isMsg(again, "apply_request") || isMsg(again, "execute_request")))
        this.submit(again, { ...env, identities: [asker] }, asker);
    });
  }

  private purge(msg: MessageOf<"purge_request">): void {
    const { msg_ids: ids, all } = msg.content;
    if (!all && !ids) return this.error(msg, "ValueError", "purge needs msg ids or all: true");
    const live = (ids ?? []).filter((id) => this.records.getLive(id));
    if (live.length > 0)
      return this.error(msg, "ValueError", `cannot purge tasks that have not finished: ${live.join(", ")}`);
    const purged = [
      ...new Set([
        ...this.records.purge(all ? undefined : ids),
        ...(this.archive?.remove(all ? undefined : ids) ?? []),
      ]),
    ];
    this.reply(msg, "purge_reply", { status: "ok", purged });
  }

  private dbQuery(msg: MessageOf<"db_request">): void {
    const { query, keys } = msg.content;
    const problem = queryProblem(query, keys);
    if (problem) return this.error(msg, "ValueError", `malformed dbQuery: ${problem}`);
    const picked = keys as Array<keyof RecordView> | undefined;
    const records: Array<Record<string, unknown>> = [];
    for (const r of this.allRecords()) {
      const view = recordView(r);
      if (matches(view, query)) records.push(pick(view, picked));
    }
    this.reply(msg, "db_reply", { status: "ok", records });
  }

  /** Set by the controller when a task database is on (database.ts). */
  archive?: TaskArchive;

  /** Every record, oldest first: those only the archive still has, then those in memory. */
  private *allRecords(): IterableIterator<TaskRecord> {
    if (this.archive) yield* this.archive.older((id) => this.records.get(id) !== undefined);
    yield* this.records.all();
  }

  /** The record of `id`, from memory, or from the archive when memory lacks it or its `payload`. */
  private record(id: string, payload?: "request" | "reply"): TaskRecord | undefined {
    const r = this.records.get(id);
    if (r && (payload === undefined || r[payload] || !isFinished(r.state))) return r;
    return this.archive?.find(id) ?? r;
  }

  /** What a query that missed should add when the archive could not be written. */
  private archiveNote(): string {
    return this.archive?.failure ? `; the task database could not keep it: ${this.archive.failure}` : "";
  }

  private shutdown(msg: MessageOf<"shutdown_request">): void {
    const targets = msg.content.targets ?? this.registry.ids();
    for (const id of targets) {
      const e = this.registry.get(id);
      if (e)
        this.ports.toEngine(
          this.session.encode("shutdown_request", { restart: false }, { identities: [e.identity] }).frames,
        );
    }
    this.reply(msg, "shutdown_reply", { status: "ok", restart: false });
    if (msg.content.hub) this.ports.shutdown();
  }

  // ---------------------------------------------------------------- replies

  /** Fabricate a failed reply for a task that will never reach (or come back from) an engine. */
  failTask(record: TaskRecord, ename: LibraryErrorName, evalue: string, state: "failed" | "aborted" = "failed"): void {
    if (isFinished(record.state)) return;
    this.scheduler.remove(record);
    const replyType = record.msgType === "apply_request" ? "apply_reply" : "execute_reply";
    const now = new Date().toISOString();
    const content = libraryErrorContent(ename, evalue);
    const frames = this.session.encode(replyType, content, {
      identities: [record.client],
      parent: record.header,
      metadata: {
        engineId: record.engineId ?? null,
        started: record.started ?? null,
        completed: now,
        status: state === "aborted" ? "aborted" : "error",
      },
    }).frames;
    record.reply = splitFrames(frames.slice(1)); // without the identity: re-addressed when fetched
    this.records.finish(record, state);
    this.archive?.save(record);
    if (this.parked.size > 0) this.recordFinished(record.msgId);
    this.deliver(record, record.reply);
    this.scheduler.dependencyFinished();
  }

  private reply<
    T extends
      | "connection_reply"
      | "queue_reply"
      | "signal_reply"
      | "restart_reply"
      | "task_abort_reply"
      | "task_interrupt_reply"
      | "hub_history_reply"
      | "result_reply"
      | "resubmit_reply"
      | "purge_reply"
      | "db_reply"
      | "engine_sets_reply"
      | "shutdown_reply"
      | "stats_reply"
      | "hub_error",
  >(to: AnyMessage, type: T, content: ContentOf<T>): void {
    this.replyTo(to.identities[0]!, to.header, type, content, false);
  }

  private replyTo<T extends keyof import("../protocol/messages").ContentMap>(
    identity: Buffer,
    parent: Header,
    type: T,
    content: ContentOf<T>,
    toEngine: boolean,
  ): void {
    const frames = this.session.encode(type, content, { identities: [identity], parent }).frames;
    if (toEngine) this.ports.toEngine(frames);
    else this.ports.toClient(frames);
  }

  private publish<T extends "registration_notification" | "unregistration_notification" | "controller_heartbeat">(
    type: T,
    content: ContentOf<T>,
  ): void {
    this.ports.notify(this.session.encode(type, content).frames);
  }

  heartbeatNotice(): void {
    this.publish("controller_heartbeat", { controller: this.session.id, period: this.options.heartbeatPeriod });
  }
}
