/**
 * Task records: what the controller knows about every task (ipyparallel's TaskRecord, typed).
 *
 * Finished records are kept for dependency checks and queries, but only the newest
 * `finishedLimit` of them, and their output only up to `outputLimit` characters: memory stays
 * bounded however many tasks run (the 200,000-task soak in the benchmark measures this).
 */
import type { Envelope } from "../protocol/wire";
import type { Route } from "../protocol/messages";

export type TaskState = "waiting" | "pending" | "assigned" | "done" | "failed" | "aborted";

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
}

export class Records {
  private readonly live = new Map<string, TaskRecord>();
  private readonly finished = new Map<string, TaskRecord>();

  constructor(
    private readonly finishedLimit = 10_000,
    private readonly outputLimit = 64 * 1024,
  ) {}

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
    this.live.delete(r.msgId);
    this.finished.set(r.msgId, r);
    if (this.finished.size > this.finishedLimit) {
      // Maps iterate in insertion order: the first keys are the oldest.
      const excess = this.finished.size - this.finishedLimit;
      let i = 0;
      for (const k of this.finished.keys()) {
        if (i++ >= excess) break;
        this.finished.delete(k);
      }
    }
  }
}
