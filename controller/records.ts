/**
 * Task records: what the controller knows about every task (ipyparallel's TaskRecord, typed).
 *
 * Finished records are kept for dependency checks and queries (history, results for any client,
 * resubmission), but only the newest `finishedLimit` of them, their output only up to
 * `outputLimit` characters, and their request and reply frames only while all of those together
 * stay under `payloadLimit` bytes (older ones lose their payload, not their metadata): memory
 * stays bounded however many tasks run (the 200,000-task soak in the benchmark measures this).
 */
import type { Envelope } from "../protocol/wire";
import type { Header, MessageOf, ProgressTag, Route } from "../protocol/messages";

export type TaskState = "waiting" | "pending" | "assigned" | "done" | "failed" | "aborted";

/** Whether a task in this state has ended (its record is final). */
export function isFinished(state: TaskState | undefined): boolean {
  return state === "done" || state === "failed" || state === "aborted";
}

export interface TaskRecord {
  msgId: string;
  msgType: "apply_request" | "execute_request";
  client: Buffer;
  route: Route;
  state: TaskState;
  engineId: number | undefined;
  submitted: number;
  started?: string;
  completed?: string;
  stdout: string;
  stderr: string;
  /** The signed request, kept until done so a load-balanced task can be resubmitted. */
  envelope: Envelope | undefined;
  retriesLeft: number;
  /** Engines this task must not go to again (they died or failed it). */
  blacklist: Set<number>;
  /** The request header, the parent of any reply the controller fabricates. */
  header?: import("../protocol/messages").Header;
  timer?: NodeJS.Timeout;
  /** A label given at submission (`{ label: "stage-2" }`), for history queries. */
  label?: string;
  /** The applied function's name (the monitor shows it when there is no label). */
  name?: string;
  /** The AsyncResult it is one of, as its client tagged it (the monitor's progress). */
  progress?: ProgressTag;
  /** The first line of its error, when it failed (the monitor shows it). */
  error?: string;
  /** The request and the reply, as signed frames, kept after the task for getResult/resubmit. */
  request?: Envelope;
  reply?: Envelope;
  /**
   * The client sent it to the engine itself (engine/direct.ts): the engine sends its output and
   * reply to that client, so the controller only records them (and still answers for it when the
   * engine is lost or the task is aborted before it runs).
   */
  direct?: boolean;
  /** Its number among the tasks the controller sent its engine (`EngineEntry.dispatched`). */
  dispatchSeq?: number;
  /** The broadcast (its client's msg id) this task is one engine's part of. */
  broadcast?: string;
  /** Its reply is in the task database (memory may have let it go). */
  replyArchived?: boolean;
  /** Other clients waiting for this task's reply and output (`rc.getResult` of a live task). */
  watchers?: Buffer[];
}

/**
 * Where finished records are kept beyond memory (database.ts): the newest records' metadata stays
 * in `Records`, and what left memory (payloads, older records) is read back from here.
 */
export interface TaskArchive {
  save(r: TaskRecord): void;
  /** Removes these records (all with `undefined`); returns the msg ids it held. */
  remove(msgIds: readonly string[] | undefined): string[];
  /** A record with its request and reply, as saved. */
  find(msgId: string): TaskRecord | undefined;
  /** Records `skip` does not want, oldest first, without payloads. */
  older(skip: (msgId: string) => boolean): Iterable<TaskRecord>;
  /** Why the archive can no longer be written, once a write failed. */
  readonly failure: string | undefined;
}

/** Bytes of an envelope's frames. */
export function envelopeBytes(env: Envelope | undefined): number {
  if (!env) return 0;
  let n = env.signature.length;
  for (const p of env.parts) n += p.length;
  for (const b of env.buffers) n += b.length;
  return n;
}

/** Finished records kept in memory (older ones live on in the task database, when there is one). */
export const RECORDS_IN_MEMORY = 10_000;

export class Records {
  private readonly live = new Map<string, TaskRecord>();
  private readonly finished = new Map<string, TaskRecord>();

  /** Bytes of request and reply frames kept by finished records. */
  private payloadBytes = 0;

  constructor(
    private readonly finishedLimit = RECORDS_IN_MEMORY,
    private readonly outputLimit = 64 * 1024,
    private readonly payloadLimit = 128 * 1024 * 1024,
  ) {}

  /** Every record, oldest first: finished ones, then live ones. */
  *all(): IterableIterator<TaskRecord> {
    yield* this.finished.values();
    yield* this.live.values();
  }

  /** Forgets finished records (all, or these msg ids); live ones stay. Returns what was dropped. */
  purge(msgIds?: readonly string[]): string[] {
    const ids = msgIds ?? [...this.finished.keys()];
    const dropped: string[] = [];
    for (const id of ids) {
      const r = this.finished.get(id);
      if (!r) continue;
      this.payloadBytes -= envelopeBytes(r.request) + envelopeBytes(r.reply);
      this.finished.delete(id);
      dropped.push(id);
    }
    return dropped;
  }

  /** Adds a finished record as it was (loaded from the task database). */
  restore(r: TaskRecord): void {
    this.finished.set(r.msgId, r);
    this.payloadBytes += envelopeBytes(r.request) + envelopeBytes(r.reply);
    this.trim();
  }

  add(r: TaskRecord): void {
    this.live.set(r.msgId, r);
  }

  get(msgId: string): TaskRecord | undefined {
    return this.live.get(msgId) ?? this.finished.get(msgId);
  }

  getLive(msgId: string): TaskRecord | undefined {
    return this.live.get(msgId);
  }

  get size(): number {
    return this.live.size + this.finished.size;
  }

  appendOutput(r: TaskRecord, name: "stdout" | "stderr", text: string): void {
    const cur = r[name];
    if (cur.length < this.outputLimit) r[name] = (cur + text).slice(0, this.outputLimit);
  }

  finish(r: TaskRecord, state: "done" | "failed" | "aborted"): void {
    r.state = state;
    r.envelope = undefined;
    if (r.timer) clearTimeout(r.timer);
    r.timer = undefined;
    r.watchers = undefined;
    this.live.delete(r.msgId);
    this.finished.set(r.msgId, r);
    this.payloadBytes += envelopeBytes(r.request) + envelopeBytes(r.reply);
    this.trim();
  }

  /** Drops the oldest finished records beyond the count, then the oldest payloads beyond the bytes. */
  private trim(): void {
    // Maps iterate in insertion order: the first keys are the oldest.
    for (const [k, old] of this.finished) {
      if (this.finished.size <= this.finishedLimit) break;
      this.payloadBytes -= envelopeBytes(old.request) + envelopeBytes(old.reply);
      this.finished.delete(k);
    }
    for (const old of this.finished.values()) {
      if (this.payloadBytes <= this.payloadLimit) break;
      this.payloadBytes -= envelopeBytes(old.request) + envelopeBytes(old.reply);
      old.request = undefined;
      old.reply = undefined;
    }
  }
}

/** A pending task's record, before any routing: envelope and retries are the caller's to set. */
export function newRecord(
  request: MessageOf<"apply_request" | "execute_request">,
  header: Header,
  client: Buffer,
  route: Route,
): TaskRecord {
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
  if (request.metadata.label !== undefined) record.label = request.metadata.label;
  if (request.metadata.progress !== undefined) record.progress = request.metadata.progress;
  if ("call" in request.content && request.content.call.name) record.name = request.content.call.name;
  return record;
}
