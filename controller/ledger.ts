/**
 * The task ledger: the one place that knows where each task is in the controller. It owns each
 * engine's queue (in the engine's own order, direct tasks included), the stops that came before
 * their task, the broadcast groups whose replies leave together, the record queries parked until
 * what they depend on is recorded, and what a lost engine leaves behind. It sends nothing and
 * encodes nothing: the hub asks it and acts on the answers, so every rule here is unit-tested
 * with plain records (test/unit/controller/ledger.test.ts).
 */
import type { Envelope } from "../protocol/wire";
import type { EngineEntry } from "./registry";
import type { TaskRecord } from "./records";

export interface StopOptions {
  /** Interrupt a running task too (an interrupt), or only drop queued ones (an abort). */
  running: boolean;
  signal?: NodeJS.Signals;
}

/** How long, and how many, stops of msg ids not known yet are kept (see `stopLater`). */
const EARLY_STOP_MS = 60_000;
const EARLY_STOPS_KEPT = 10_000;

interface BroadcastGroup {
  client: Buffer;
  waiting: number;
  replies: Envelope[];
}

interface Parked<Q> {
  query: Q;
  /** Per engine uuid, the reply sequence number still to be recorded. */
  waiting: Map<string, number>;
}

export class TaskLedger<Q = unknown> {
  /** Per engine id, the msg ids it holds, in the order it runs them: the head is running. */
  private readonly queues = new Map<number, string[]>();
  private readonly earlyStops = new Map<string, { opts: StopOptions; at: number }>();
  private readonly broadcasts = new Map<string, BroadcastGroup>();
  private readonly parked = new Set<Parked<Q>>();
  /** Per engine id, when the task at the head of its queue got there (ms): how long it has run, near enough. */
  private readonly headSince = new Map<number, number>();
  /** Per engine uuid, the newest reply sequence number recorded (engines number their replies). */
  private readonly recordedSeq = new Map<string, number>();

  constructor(private readonly live: (msgId: string) => TaskRecord | undefined) {}

  // ---------------------------------------------------------------- engine queues

  queue(engineId: number): readonly string[] {
    return this.queues.get(engineId) ?? [];
  }

  running(engineId: number): string | undefined {
    return this.queues.get(engineId)?.[0];
  }

  /** When the running task of `engineId` reached the head of its queue (ms), if it has one. */
  runningSince(engineId: number): number | undefined {
    return this.headSince.get(engineId);
  }

  /** After the queue of `engineId` changed at `at`: a new head starts its clock. */
  private headChanged(engineId: number, at: number, q: readonly string[]): void {
    if (at !== 0) return;
    if (q.length > 0) this.headSince.set(engineId, Date.now());
    else this.headSince.delete(engineId);
  }

  private queueOf(engineId: number): string[] {
    let q = this.queues.get(engineId);
    if (!q) this.queues.set(engineId, (q = []));
    return q;
  }

  /** The controller sends `record` to `engine`: it joins the end of the engine's queue. */
  assign(record: TaskRecord, engine: EngineEntry): void {
    record.state = "assigned";
    record.engineId = engine.id;
    record.dispatchSeq = ++engine.dispatched;
    if (record.route.kind === "task") engine.lbLoad++;
    const q = this.queueOf(engine.id);
    q.push(record.msgId);
    this.headChanged(engine.id, q.length - 1, q);
  }

  /**
   * A task a client sent `engine` itself, which the engine ran after the first `queuedAfter`
   * tasks the controller sent it and before the rest: it takes that place, so the queue's head is
   * what the engine runs, whatever order the controller heard of them in.
   */
  placeDirect(record: TaskRecord, engine: EngineEntry, queuedAfter: number): void {
    record.state = "assigned";
    record.engineId = engine.id;
    const q = this.queueOf(engine.id);
    const at = q.findIndex((id) => (this.live(id)?.dispatchSeq ?? 0) > queuedAfter);
    if (at < 0) q.push(record.msgId);
    else q.splice(at, 0, record.msgId);
    this.headChanged(engine.id, at < 0 ? q.length - 1 : at, q);
  }

  /**
   * `engine` answered `msgId`: it leaves the queue, and the engine's counts follow. Returns the
   * live record, or undefined when the task had already ended (aborted, failed as lost).
   */
  replied(engine: EngineEntry, msgId: string, ranMs: number): TaskRecord | undefined {
    const q = this.queues.get(engine.id);
    const at = q ? q.indexOf(msgId) : -1;
    if (at >= 0) {
      q!.splice(at, 1);
      this.headChanged(engine.id, at, q!);
    }
    const record = this.live(msgId);
    if (!record) return undefined;
    if (record.route.kind === "task") engine.lbLoad = Math.max(0, engine.lbLoad - 1);
    engine.completed++;
    if (Number.isFinite(ranMs))
      engine.avgTaskMs = engine.avgTaskMs === undefined ? ranMs : engine.avgTaskMs * 0.8 + ranMs * 0.2;
    return record;
  }

  /** A task that ended without its engine's reply (aborted, failed): it leaves any queue. */
  drop(record: TaskRecord): void {
    if (record.engineId === undefined) return;
    const q = this.queues.get(record.engineId);
    const at = q ? q.indexOf(record.msgId) : -1;
    if (at >= 0) {
      q!.splice(at, 1);
      this.headChanged(record.engineId, at, q!);
    }
  }

  /**
   * `engine` is lost: its queue goes, and its live tasks come back in order, each marked whether
   * it was running (the head). The queries waiting on its replies no longer wait for them.
   */
  engineLost(engine: EngineEntry): { tasks: Array<{ record: TaskRecord; running: boolean }>; ready: Q[] } {
    const q = this.queues.get(engine.id) ?? [];
    this.queues.delete(engine.id);
    this.headSince.delete(engine.id);
    const tasks: Array<{ record: TaskRecord; running: boolean }> = [];
    q.forEach((msgId, position) => {
      const record = this.live(msgId);
      if (record) tasks.push({ record, running: position === 0 });
    });
    this.recordedSeq.delete(engine.uuid);
    return { tasks, ready: this.release((p) => p.waiting.delete(engine.uuid)) };
  }

  // ---------------------------------------------------------------- early stops

  /**
   * A stop (abort or interrupt) for a msg id the controller does not know yet: a client may
   * cancel a direct task before its engine has forwarded it here. Kept a while, bounded.
   */
  stopLater(msgId: string, opts: StopOptions, now = Date.now()): void {
    for (const [key, stop] of this.earlyStops) {
      if (now - stop.at < EARLY_STOP_MS && this.earlyStops.size < EARLY_STOPS_KEPT) break;
      this.earlyStops.delete(key);
    }
    this.earlyStops.set(msgId, { opts, at: now });
  }

  /** The stop that came for `msgId` before it did, once. */
  takeEarlyStop(msgId: string): StopOptions | undefined {
    const stop = this.earlyStops.get(msgId);
    if (stop) this.earlyStops.delete(msgId);
    return stop?.opts;
  }

  // ---------------------------------------------------------------- broadcast groups

  /** A broadcast of `n` parts from `client`; false when its id is taken (a replay). */
  openBroadcast(groupId: string, client: Buffer, n: number): boolean {
    if (this.broadcasts.has(groupId)) return false;
    this.broadcasts.set(groupId, { client: Buffer.from(client), waiting: n, replies: [] });
    return true;
  }

  isBroadcast(groupId: string | undefined): boolean {
    return groupId !== undefined && this.broadcasts.has(groupId);
  }

  /** One part's reply; once the last is in, the group's client and every reply, in order. */
  broadcastReply(groupId: string, reply: Envelope): { client: Buffer; replies: Envelope[] } | undefined {
    const group = this.broadcasts.get(groupId);
    if (!group) return undefined;
    group.replies.push(reply);
    if (--group.waiting > 0) return undefined;
    this.broadcasts.delete(groupId);
    return { client: group.client, replies: group.replies };
  }

  // ---------------------------------------------------------------- parked record queries

  /**
   * A record query that names, per engine uuid, the newest reply sequence number its client
   * received straight from that engine (`metadata.waitFor`): its answer must include those
   * replies, whose copies may still be on their way here. Parked (true) until every named engine
   * has been recorded that far, or is lost; false when nothing is missing. Engines this
   * controller does not know (`known` false) have nothing on the way.
   */
  park(query: Q, waitFor: Readonly<Record<string, number>> | undefined, known: (uuid: string) => boolean): boolean {
    if (!waitFor) return false;
    const waiting = new Map<string, number>();
    for (const [uuid, seq] of Object.entries(waitFor))
      if (known(uuid) && (this.recordedSeq.get(uuid) ?? 0) < seq) waiting.set(uuid, seq);
    if (waiting.size === 0) return false;
    this.parked.add({ query, waiting });
    return true;
  }

  /** The reply numbered `seq` of engine `uuid` is recorded: the queries it completes, in order. */
  recorded(uuid: string, seq: number): Q[] {
    if (seq <= (this.recordedSeq.get(uuid) ?? 0)) return [];
    this.recordedSeq.set(uuid, seq);
    if (this.parked.size === 0) return [];
    return this.release((p) => {
      const want = p.waiting.get(uuid);
      if (want !== undefined && want <= seq) p.waiting.delete(uuid);
    });
  }

  get parkedCount(): number {
    return this.parked.size;
  }

  private release(update: (p: Parked<Q>) => void): Q[] {
    const ready: Q[] = [];
    for (const p of this.parked) {
      update(p);
      if (p.waiting.size > 0) continue;
      this.parked.delete(p);
      ready.push(p.query);
    }
    return ready;
  }
}
