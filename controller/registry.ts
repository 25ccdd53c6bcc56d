/** The engines the controller knows: ids are handed out in order and never reused. */
import type { EngineDescription } from "../protocol/messages";

export interface EngineEntry extends EngineDescription {
  /** ZeroMQ routing identity of the engine's DEALER (its uuid). */
  identity: Buffer;
  cwd: string;
  /** The launcher's engine set the engine came from (see controller/engine-sets.ts). */
  engineSet?: string;
  registeredAt: number;
  /** When anything was last heard from the engine (ms), for messages. */
  lastBeat: number;
  /** The newest heartbeat ping (by sequence number) the engine is known to have been alive for. */
  heardAtPing: number;
  /** Its heart has echoed a ping: until then the heartbeat gives it longer (see Hub.checkEngines). */
  beating: boolean;
  /** Load-balanced tasks in its queue (the queue itself is the ledger's: controller/ledger.ts). */
  lbLoad: number;
  completed: number;
  /** EWMA of task run time in ms, from engine-reported started/completed. */
  avgTaskMs: number | undefined;
  /** Monotonic stamp of the last load-balanced assignment, for LRU ordering. */
  lastAssigned: number;
  /** Tasks the controller has sent the engine, counted: orders its direct tasks among them. */
  dispatched: number;
  /** What the engine's direct socket dropped, as it last reported (`engine_dropped`). */
  directDropped?: Record<string, number>;
}

export class Registry {
  private readonly byId = new Map<number, EngineEntry>();
  private readonly byUuid = new Map<string, EngineEntry>();
  private nextId = 0;
  /**
   * Counts registrations and unregistrations. Every engine list and notification carries it, so
   * a client that hears them in another order (replies and notifications travel on different
   * sockets) keeps the newest view and never revives an engine that left.
   */
  seq = 0;

  get size(): number {
    return this.byId.size;
  }

  ids(): number[] {
    return [...this.byId.keys()].sort((a, b) => a - b);
  }

  all(): EngineEntry[] {
    return [...this.byId.values()];
  }

  get(id: number): EngineEntry | undefined {
    return this.byId.get(id);
  }

  getByUuid(uuid: string): EngineEntry | undefined {
    return this.byUuid.get(uuid);
  }

  /**
   * A new id, or the requested one when it is free (an engine re-registering with a restarted
   * controller keeps its id, as ipyparallel honours requested ids).
   */
  add(
    desc: Omit<
      EngineEntry,
      | "id"
      | "registeredAt"
      | "lastBeat"
      | "heardAtPing"
      | "beating"
      | "lbLoad"
      | "completed"
      | "avgTaskMs"
      | "lastAssigned"
      | "dispatched"
    >,
    requestedId?: number,
  ): EngineEntry {
    let id: number;
    if (requestedId !== undefined && Number.isInteger(requestedId) && requestedId >= 0 && !this.byId.has(requestedId)) {
      id = requestedId;
      this.nextId = Math.max(this.nextId, id + 1);
    } else {
      id = this.nextId++;
    }
    const now = Date.now();
    const entry: EngineEntry = {
      ...desc,
      id,
      registeredAt: now,
      lastBeat: now,
      heardAtPing: 0,
      beating: false,
      lbLoad: 0,
      completed: 0,
      avgTaskMs: undefined,
      lastAssigned: 0,
      dispatched: 0,
    };
    this.byId.set(id, entry);
    this.byUuid.set(entry.uuid, entry);
    this.seq++;
    return entry;
  }

  remove(id: number): EngineEntry | undefined {
    const e = this.byId.get(id);
    if (!e) return undefined;
    this.byId.delete(id);
    this.byUuid.delete(e.uuid);
    this.seq++;
    return e;
  }

  describe(e: EngineEntry): EngineDescription {
    return { id: e.id, uuid: e.uuid, pid: e.pid, hostname: e.hostname, ...(e.direct ? { direct: e.direct } : {}) };
  }

  /** The drop counters the engines' direct sockets reported, summed. */
  directDropped(): Record<string, number> {
    const sum: Record<string, number> = {};
    for (const e of this.byId.values())
      for (const [reason, n] of Object.entries(e.directDropped ?? {})) sum[reason] = (sum[reason] ?? 0) + n;
    return sum;
  }
}
