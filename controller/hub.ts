/**
 * The hub: the controller's routing, fed typed messages by the socket roles (controller.ts wires
 * them, sockets.ts holds the heartbeat) and answering through `HubPorts`. No sockets here. Each
 * message type a client or an engine may send has one handler in a table (ipyparallel's
 * `query_handlers` and `monitor_handlers`), checked exhaustive by the compiler; where a task is
 * lives in the ledger (ledger.ts), which engines are silent in the heart monitor
 * (heart-monitor.ts), the answers about records in queries.ts:
 *
 *   client apply/execute ─► direct: ledger.assign ─► engine
 *                        └► task: TaskScheduler ─► ledger.assign ─► engine
 *   engine forwards a direct task ─► ledger.placeDirect (its place in the engine's order)
 *   engine output/reply ─► record (stdout/stderr, timings) ─► the submitting client, in order
 *   engine lost ─► ledger.engineLost: queued direct tasks fail with EngineError, load-balanced
 *                  ones are resubmitted
 */
import * as os from "node:os";
import { Session } from "../protocol/session";
import { type Envelope, ReplayGuard, detachEnvelope, splitFrames } from "../protocol/wire";
import {
  type AnyMessage,
  type ContentOf,
  type EngineDescription,
  type ClientToController,
  type ControllerReply,
  type EngineToController,
  type Handlers,
  type MessageOf,
  type MsgType,
  type Route,
  dispatch,
  isMsg,
  isRecordQuery,
  parentId,
} from "../protocol/messages";
import { processExists } from "../protocol/connection";
import { type LibraryErrorName, libraryErrorContent } from "../protocol/errors";
import { type EngineEntry, Registry } from "./registry";
import { Records, type TaskRecord, isFinished, newRecord } from "./records";
import { TaskScheduler } from "./task-scheduler";
import { SCHEMES, type SchemeName } from "./schemes";
import { TaskLedger } from "./ledger";
import { TaskStops } from "./stops";
import { HeartMonitor } from "./heart-monitor";
import { RecordQueries, type Refusal, isRefusal, renamed } from "./queries";
import { Monitor } from "./monitor";

/** Most frames in one coalesced `batch` of broadcast replies: under the wire's 4,096 per message. */
const BATCH_FRAMES = 4000;
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

type Parked = { msg: AnyMessage; env: Envelope };

export class Hub {
  readonly registry = new Registry();
  readonly records = new Records();
  readonly scheduler: TaskScheduler;
  readonly ledger = new TaskLedger<Parked>((id) => this.records.getLive(id));
  readonly heart: HeartMonitor;
  readonly queries: RecordQueries;
  /** The monitor stream's readings (monitor.ts); the controller publishes them. */
  readonly monitor = new Monitor();
  private readonly stops: TaskStops;
  private readonly hostname = os.hostname();
  /** Task msg ids clients have sent (see submit). */
  private readonly submitted = new ReplayGuard();

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
    this.heart = new HeartMonitor(options.heartbeatMisses, options.heartbeatPeriod);
    this.stops = new TaskStops({
      records: this.records,
      registry: this.registry,
      scheduler: this.scheduler,
      ledger: this.ledger,
      session,
      ports,
      fail: (r, ename, evalue, state) => this.failTask(r, ename, evalue, state),
    });
    this.queries = new RecordQueries(this.records, this.registry, this.ledger, () => this.scheduler.unassigned);
  }

  // ---------------------------------------------------------------- clients

  onClientMessage(msg: AnyMessage, env: Envelope): void {
    const client = msg.identities[0];
    if (!client) return;
    // A client got replies straight from engines whose copies may still be on their way here: a
    // query about records waits until they are recorded (ledger.ts, park), so a client never
    // reads its own finished task as pending.
    const known = (uuid: string): boolean => this.registry.getByUuid(uuid) !== undefined;
    if (isRecordQuery(msg) && this.ledger.park({ msg, env }, msg.metadata.waitFor, known)) return;
    this.handleClientMessage(msg, env, client);
  }

  private handleClientMessage(msg: AnyMessage, env: Envelope, client: Buffer): void {
    if (this.options.dropOrphans) this.stops.seen(client);
    // Session.parse has checked each request's shape (protocol/validate.ts).
    if (dispatch(this.clientHandlers, msg, env, client)) return;
    this.refuse(msg, {
      ename: "ValueError",
      evalue: `the controller does not handle ${msg.header.msg_type} from clients`,
    });
  }

  private unpark(ready: readonly Parked[]): void {
    for (const { msg, env } of ready) {
      const client = msg.identities[0];
      if (client) this.handleClientMessage(msg, env, client);
    }
  }

  private readonly clientHandlers: Handlers<ClientToController, [Envelope, Buffer]> = {
    client_alive: () => undefined,
    apply_request: (msg, env, client) => this.submit(msg, env, client),
    execute_request: (msg, env, client) => this.submit(msg, env, client),
    connection_request: (msg) =>
      this.reply(msg, "connection_reply", {
        status: "ok",
        engines: this.engineList(),
        controller: this.session.id,
        heartbeat_period: this.options.heartbeatPeriod,
        seq: this.registry.seq,
      }),
    queue_request: (msg) => this.reply(msg, "queue_reply", this.queries.queueStatus(msg.content.targets)),
    signal_request: (msg) => this.reply(msg, "signal_reply", this.stops.signalEngines(msg.content)),
    restart_request: (msg) => {
      const answer = this.stops.restartEngines(msg.content);
      if (answer.status === "ok") for (const id of answer.restarted) this.monitor.restarting(id);
      this.reply(msg, "restart_reply", answer);
    },
    task_interrupt_request: (msg) => this.answer(msg, "task_interrupt_reply", this.stops.interrupt(msg.content)),
    task_abort_request: (msg) =>
      this.reply(msg, "task_abort_reply", {
        status: "ok",
        aborted: this.stops.stop(msg.content.msg_ids, { running: false }).aborted,
      }),
    hub_history_request: (msg) => this.reply(msg, "hub_history_reply", this.queries.history()),
    result_request: (msg, _env, client) => this.results(msg, client),
    resubmit_request: (msg, _env, client) => this.resubmit(msg, client),
    purge_request: (msg) => this.answer(msg, "purge_reply", this.queries.purge(msg.content)),
    db_request: (msg) => this.answer(msg, "db_reply", this.queries.db(msg.content)),
    engine_sets_request: (msg) => this.engineSets(msg),
    shutdown_request: (msg) => this.shutdown(msg),
    stats_request: (msg) =>
      this.reply(msg, "stats_reply", this.queries.stats(this.session.dropped, this.registry.directDropped())),
  };

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
    const route: Route = msg.metadata.route ?? { kind: "task" };
    if (route.kind === "broadcast") return this.broadcast(msg, env, client, route.targets);
    const record = newRecord(msg, msg.header, client, route);
    record.envelope = route.kind === "task" ? detachEnvelope(env) : undefined; // direct tasks never move
    record.retriesLeft = route.kind === "task" ? (route.retries ?? 0) : 0;
    // A request whose buffers went through shared memory cannot be sent again: its files are
    // removed once it settles. Its record keeps no request, as a purged one (no resubmit).
    record.request = msg.metadata.bulk ? undefined : (record.envelope ?? detachEnvelope(env));
    this.recorded(record);
    if (route.kind === "task") {
      this.scheduler.submit(record);
      return this.scheduler.schedule();
    }
    const engine = this.registry.get(route.engine);
    if (!engine) return this.failUnregistered(record, route.engine);
    this.ledger.assign(record, engine);
    this.ports.toEngine(Session.forward([engine.identity], env));
  }

  private failUnregistered(record: TaskRecord, id: number): void {
    this.failTask(
      record,
      "EngineError",
      `engine ${id} is not registered (registered: [${this.registry.ids().join(", ")}])`,
    );
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
    if (!this.ledger.openBroadcast(groupId, client, targets.length)) return; // a replay
    for (const id of targets) {
      const header = { ...msg.header, msg_id: `${groupId}:${id}` };
      const route = { kind: "direct", engine: id } satisfies Route;
      const record = newRecord(msg, header, client, route);
      record.broadcast = groupId;
      this.recorded(record);
      const engine = this.registry.get(id);
      if (!engine) {
        this.failUnregistered(record, id);
        continue;
      }
      const signed = this.session.resign(env, header, { ...msg.metadata, route });
      if (!msg.metadata.bulk) record.request = detachEnvelope(signed);
      this.ledger.assign(record, engine);
      this.ports.toEngine(Session.forward([engine.identity], signed));
    }
  }

  private dispatch(task: TaskRecord, engine: EngineEntry): void {
    const env = task.envelope;
    if (!env) return this.failTask(task, "EngineError", "task lost its request before dispatch");
    this.ledger.assign(task, engine);
    this.ports.toEngine(Session.forward([engine.identity], env));
  }

  private shutdown(msg: MessageOf<"shutdown_request">): void {
    for (const id of msg.content.targets ?? this.registry.ids()) {
      const e = this.registry.get(id);
      if (e)
        this.ports.toEngine(
          this.session.encode("shutdown_request", { restart: false }, { identities: [e.identity] }).frames,
        );
    }
    this.reply(msg, "shutdown_reply", { status: "ok", restart: false });
    if (msg.content.hub) this.ports.shutdown();
  }

  // ---------------------------------------------------------------- history across clients

  /** Status of tasks by msg id; with `fetch`, their replies go to the asker (now, or when they finish). */
  private results(msg: MessageOf<"result_request">, asker: Buffer): void {
    const answer = this.queries.results(msg.content);
    if (isRefusal(answer)) return this.refuse(msg, answer);
    for (const r of answer.watch) if (!r.client.equals(asker)) (r.watchers ??= []).push(Buffer.from(asker));
    this.reply(msg, "result_reply", answer.content);
    for (const env of answer.send) this.ports.toClient(Session.forward([asker], env));
  }

  /** Runs finished tasks again under the new msg ids the client chose (so it awaits them first). */
  private resubmit(msg: MessageOf<"resubmit_request">, asker: Buffer): void {
    const requests = this.queries.resubmittable(msg.content.msg_ids);
    if (isRefusal(requests)) return this.refuse(msg, requests);
    const fresh = msg.content.new_msg_ids;
    this.reply(msg, "resubmit_reply", { status: "ok", resubmitted: fresh });
    requests.forEach((request, i) => {
      const again = renamed(this.session, request, fresh[i]!, asker);
      if (again) this.submit(again.msg, again.env, asker);
    });
  }

  // ---------------------------------------------------------------- engines

  onEngineMessage(msg: AnyMessage, env: Envelope): void {
    const identity = msg.identities[0];
    if (!identity) return;
    if (isMsg(msg, "registration_request")) return this.register(msg, identity);
    const engine = this.registry.getByUuid(identity.toString("latin1"));
    if (!engine) return; // not registered (or already declared lost): nothing to route to
    this.heart.heard(engine);
    dispatch(this.engineHandlers, msg, env, engine);
  }

  private readonly engineHandlers: Handlers<EngineToController, [Envelope, EngineEntry]> = {
    apply_request: (msg, env, engine) => this.directTask(engine, msg, env),
    execute_request: (msg, env, engine) => this.directTask(engine, msg, env),
    apply_reply: (msg, env, engine) => this.taskReplied(engine, msg, env),
    execute_reply: (msg, env, engine) => this.taskReplied(engine, msg, env),
    engine_dropped: (msg, _env, engine) => void (engine.directDropped = msg.content.dropped),
    engine_stats: (msg, _env, engine) => this.monitor.engineStats(engine.id, msg.content.cpu, msg.content.rss),
    stream: (msg, env) => {
      const record = this.records.get(parentId(msg));
      if (record) this.records.appendOutput(record, msg.content.name, msg.content.text);
      this.output(msg, env);
    },
    // Finished records too: output a task's timers print after it returned still belongs to it
    // (ipyparallel delivers it to that request's AsyncResult as well).
    display_data: (msg, env) => this.output(msg, env),
    update_display_data: (msg, env) => this.output(msg, env),
    execute_result: (msg, env) => this.output(msg, env),
    error: (msg, env) => this.output(msg, env),
    execute_input: (msg, env) => this.output(msg, env),
    clear_output: (msg, env) => this.output(msg, env),
    data_pub: (msg, env) => {
      const record = this.records.getLive(parentId(msg));
      if (record) this.toInterested(record, env, record.direct);
    },
    abort_reply: () => undefined,
    unregistration_request: (_msg, _env, engine) => this.engineLost(engine.id, "it unregistered"),
    shutdown_reply: (_msg, _env, engine) => this.engineLost(engine.id, "it shut down"),
  };

  private output(msg: AnyMessage, env: Envelope): void {
    const record = this.records.get(parentId(msg));
    if (record) this.toInterested(record, env, record.direct);
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
    const record = newRecord(msg, msg.header, Buffer.from(msg.header.session), route);
    record.direct = true;
    record.request = msg.metadata.bulk ? undefined : detachEnvelope(env);
    this.recorded(record);
    this.ledger.placeDirect(record, engine, msg.metadata.queuedAfter ?? Infinity);
    const early = this.ledger.takeEarlyStop(record.msgId);
    if (early) this.stops.stop([record.msgId], early);
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
      this.heart.heard(engine);
      this.ports.log(`engine ${engine.id} registered (pid ${engine.pid} on ${engine.hostname})`);
      this.ports.registered?.(engine);
      this.publish("registration_notification", { ...this.registry.describe(engine), seq: this.registry.seq });
    }
    const reply = {
      status: "ok",
      id: engine.id,
      heartbeat_period: this.options.heartbeatPeriod,
      controller: this.session.id,
    } as const;
    this.ports.toEngine(
      this.session.encode("registration_reply", reply, { identities: [identity], parent: msg.header }).frames,
    );
    this.scheduler.schedule();
  }

  private taskReplied(engine: EngineEntry, msg: MessageOf<"apply_reply" | "execute_reply">, env: Envelope): void {
    const { started, completed = msg.header.date, seq } = msg.metadata;
    const record = this.ledger.replied(engine, parentId(msg), Date.parse(completed) - Date.parse(started ?? completed));
    if (record) {
      record.started = started ?? undefined;
      record.completed = completed;
      const reply = detachEnvelope(env);
      // A result handed over through shared memory is read (and removed) by its client: the
      // record keeps no result, as a purged one (hasResult false).
      if (!msg.metadata.bulk) record.reply = reply;
      if (record.direct) this.toInterested(record, reply, true);
      else this.deliver(record, reply);
      const c = msg.content;
      if (c.status === "error") record.error = `${c.ename}: ${c.evalue}`.split("\n")[0]!;
      this.finished(record, c.status === "ok" ? "done" : c.status === "aborted" ? "aborted" : "failed");
      this.scheduler.dependencyFinished();
      this.scheduler.schedule();
    }
    if (seq !== undefined) this.unpark(this.ledger.recorded(engine.uuid, seq));
  }

  /** Heartbeats: an echo of ping `seq` refreshes the engine; `checkEngines` declares the silent ones lost. */
  beat(uuid: string, seq: number): void {
    const engine = this.registry.getByUuid(uuid);
    if (engine) return this.heart.beat(engine, seq);
    // A live heart we do not know: ask it to register again.
    if (!this.heart.askToRegister(uuid)) return;
    const reason = { reason: "this controller does not know the engine" };
    const identities = [Buffer.from(uuid, "latin1")];
    this.ports.toEngine(this.session.encode("reregistration_request", reason, { identities }).frames);
  }

  pinged(seq: number): void {
    this.heart.pinged(seq);
  }

  canaryBeat(seq: number): void {
    this.heart.canaryBeat(seq);
  }

  /**
   * Lost: a local engine whose process is gone, or an engine that answered none of the last
   * `heartbeatMisses` pings that the controller's own heart answered (heart-monitor.ts). A local
   * engine is watched by pid as well: a dead process is noticed within one check, not after
   * several missed beats (ipyparallel's nanny gives the same fast notice).
   */
  checkEngines(): void {
    const exited = (e: EngineEntry): boolean => e.hostname === this.hostname && !processExists(e.pid);
    for (const { engine, reason } of this.heart.lost(this.registry.all(), exited)) this.engineLost(engine.id, reason);
  }

  /** With `dropOrphans`: the queued tasks of clients gone silent fail (stops.ts, dropOrphans). */
  checkClients(): void {
    const log = (line: string): void => this.ports.log(line);
    if (this.options.dropOrphans) this.stops.dropOrphans(this.options.heartbeatPeriod * ORPHAN_PERIODS, log);
  }

  engineLost(id: number, reason: string): void {
    const engine = this.registry.remove(id);
    if (!engine) return;
    this.ports.log(`engine ${id} lost: ${reason}`);
    this.monitor.engineGone(engine);
    this.ports.lost?.(engine);
    this.publish("unregistration_notification", { ...this.registry.describe(engine), reason, seq: this.registry.seq });
    // The engines too: a communicator with this member fails on the others, rather than wait.
    // Signed once: the signature does not cover the routing identity in front of it.
    const notice = this.session.encode("peer_lost", { uuid: engine.uuid, engine_id: id, reason }).frames;
    for (const e of this.registry.all()) this.ports.toEngine([e.identity, ...notice]);
    const { tasks, ready } = this.ledger.engineLost(engine);
    for (const { record, running } of tasks) {
      if (record.route.kind === "task" && (!running || record.retriesLeft > 0)) {
        if (running) record.retriesLeft--;
        record.blacklist.add(id);
        this.scheduler.resubmit(record);
        continue;
      }
      const when = running ? "while running" : "before running";
      this.failTask(record, "EngineError", `Engine ${id} died ${when} task ${record.msgId} (${reason})`);
    }
    this.unpark(ready);
    this.scheduler.schedule();
  }

  /** Registered engines (id, uuid, pid, host), sorted by id: connection_reply's list. */
  engineList(): EngineDescription[] {
    return this.registry.ids().map((id) => this.registry.describe(this.registry.get(id)!));
  }

  // ---------------------------------------------------------------- replies

  /**
   * A task's reply goes where its output goes (`toInterested`), except a broadcast's: its
   * submitter gets the replies of all its engines at once, in as few `batch` messages as the
   * frame limit allows, once the last one is in (a lost engine's fabricated reply counts).
   */
  private deliver(record: TaskRecord, reply: Envelope): void {
    if (!this.ledger.isBroadcast(record.broadcast)) return this.toInterested(record, reply);
    for (const w of record.watchers ?? []) this.ports.toClient(Session.forward([w], reply));
    const group = this.ledger.broadcastReply(record.broadcast!, reply);
    if (!group) return;
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

  /** A new task's record, kept and counted (the monitor's progress). */
  private recorded(record: TaskRecord): void {
    this.records.add(record);
    this.monitor.submitted(record);
  }

  /** A task ended, with its engine's reply or one made here: recorded, archived, shown. */
  private finished(record: TaskRecord, state: "done" | "failed" | "aborted"): void {
    this.records.finish(record, state);
    this.monitor.finished(record);
    this.queries.archive?.save(record);
  }

  /** Fabricate a failed reply for a task that will never reach (or come back from) an engine. */
  failTask(record: TaskRecord, ename: LibraryErrorName, evalue: string, state: "failed" | "aborted" = "failed"): void {
    if (isFinished(record.state)) return;
    this.scheduler.remove(record);
    this.ledger.drop(record);
    const replyType = record.msgType === "apply_request" ? "apply_reply" : "execute_reply";
    const frames = this.session.encode(replyType, libraryErrorContent(ename, evalue), {
      identities: [record.client],
      parent: record.header,
      metadata: {
        engineId: record.engineId ?? null,
        started: record.started ?? null,
        completed: new Date().toISOString(),
        status: state === "aborted" ? "aborted" : "error",
      },
    }).frames;
    record.reply = splitFrames(frames.slice(1)); // without the identity: re-addressed when fetched
    record.error = `${ename}: ${evalue}`.split("\n")[0]!;
    this.finished(record, state);
    this.deliver(record, record.reply);
    this.scheduler.dependencyFinished();
  }

  private reply<T extends ControllerReply>(to: AnyMessage, type: T, content: ContentOf<T>): void {
    const frames = this.session.encode(type, content, { identities: [to.identities[0]!], parent: to.header }).frames;
    this.ports.toClient(frames);
  }

  /** A query's answer, or its refusal as a hub_error. */
  private answer<T extends ControllerReply>(to: AnyMessage, type: T, answer: Refusal | ContentOf<T>): void {
    if (isRefusal(answer)) this.refuse(to, answer);
    else this.reply(to, type, answer);
  }

  private refuse(to: AnyMessage, { ename, evalue }: Refusal): void {
    this.reply(to, "hub_error", { status: "error", ename, evalue, traceback: [] });
  }

  private publish<
    T extends MsgType & ("registration_notification" | "unregistration_notification" | "controller_heartbeat"),
  >(type: T, content: ContentOf<T>): void {
    this.ports.notify(this.session.encode(type, content).frames);
  }

  /** The monitor's reading now. */
  monitorUpdate(): ContentOf<"monitor_update"> {
    return this.monitor.update({
      engines: () => this.registry.all(),
      queue: (id) => this.ledger.queue(id),
      runningSince: (id) => this.ledger.runningSince(id),
      record: (id) => this.records.get(id),
      unassigned: () => this.scheduler.unassigned,
    });
  }

  heartbeatNotice(): void {
    this.publish("controller_heartbeat", { controller: this.session.id, period: this.options.heartbeatPeriod });
  }
}
