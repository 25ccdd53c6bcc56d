/**
 * The monitor stream's readings (what `tsparallel cluster top` and the dashboard show): each
 * engine's state, load and own CPU and memory, and the tasks that finished since the last
 * reading. Task events are only collected while someone watches (`watching`), and leave
 * coalesced, a few times a second, in one signed message: a cluster running thousands of tasks a
 * second pays for a few hundred small objects per reading, not a message per task.
 */
import type { MonitorUpdate, MonitoredTask } from "../protocol/messages";
import type { TaskRecord } from "./records";
import type { EngineEntry } from "./registry";

/** Most finished tasks one reading carries; more are counted as dropped. */
export const TASKS_PER_UPDATE = 5000;

/** What the monitor needs of the hub, read at each reading. */
export interface MonitorSource {
  engines(): Iterable<EngineEntry>;
  queue(engineId: number): readonly string[];
  /** When the head of that queue got there (ms). */
  runningSince(engineId: number): number | undefined;
  record(msgId: string): TaskRecord | undefined;
  unassigned(): number;
}

export class Monitor {
  private tasks: MonitoredTask[] = [];
  private dropped = 0;
  private last = Date.now();
  /** Per engine id: its own last reading, and how many of its tasks failed. */
  private readonly stats = new Map<number, { cpu: number; rss: number }>();
  private readonly failures = new Map<number, number>();
  /** Subscribers right now (XPUB tells): nothing is collected while there are none. */
  watchers = 0;

  get watching(): boolean {
    return this.watchers > 0;
  }

  engineStats(engineId: number, cpu: number, rss: number): void {
    this.stats.set(engineId, { cpu, rss });
  }

  engineGone(engineId: number): void {
    this.stats.delete(engineId);
    this.failures.delete(engineId);
  }

  /** A task ended (replied, failed, aborted). */
  finished(r: TaskRecord): void {
    if (r.state === "failed" && r.engineId !== undefined)
      this.failures.set(r.engineId, (this.failures.get(r.engineId) ?? 0) + 1);
    if (!this.watching) return;
    if (this.tasks.length >= TASKS_PER_UPDATE) {
      this.dropped++;
      return;
    }
    const status = r.state === "done" ? "done" : r.state === "aborted" ? "aborted" : "failed";
    const task: MonitoredTask = {
      msg_id: r.msgId,
      engine_id: r.engineId ?? null,
      label: taskLabel(r),
      submitted: new Date(r.submitted).toISOString(),
      started: r.started ?? null,
      completed: r.completed ?? new Date().toISOString(),
      status,
    };
    if (status === "failed" && r.error) task.error = r.error;
    this.tasks.push(task);
  }

  /** The reading now; the tasks it carries are not carried again. */
  update(source: MonitorSource, now = Date.now()): MonitorUpdate {
    let queued = 0;
    const engines = [...source.engines()]
      .sort((a, b) => a.id - b.id)
      .map((e) => {
        const queue = source.queue(e.id);
        queued += queue.length;
        const head = queue[0] === undefined ? undefined : source.record(queue[0]);
        const own = this.stats.get(e.id);
        const failed = this.failures.get(e.id) ?? 0;
        return {
          id: e.id,
          hostname: e.hostname,
          pid: e.pid,
          engine_set: e.engineSet ?? null,
          state: queue.length > 0 ? ("busy" as const) : ("idle" as const),
          cpu: own?.cpu ?? null,
          rss: own?.rss ?? null,
          queued: queue.length,
          done: Math.max(0, e.completed - failed),
          failed,
          running: head
            ? {
                msg_id: head.msgId,
                label: taskLabel(head),
                since: new Date(source.runningSince(e.id) ?? head.submitted).toISOString(),
              }
            : null,
        };
      });
    const update: MonitorUpdate = {
      at: new Date(now).toISOString(),
      interval_ms: now - this.last,
      engines,
      tasks: this.tasks,
      dropped: this.dropped,
      unassigned: source.unassigned(),
      queued,
    };
    this.tasks = [];
    this.dropped = 0;
    this.last = now;
    return update;
  }
}

/** What a task is called on a dashboard: its label, else its function's name, else its kind. */
export function taskLabel(r: TaskRecord): string {
  return r.label ?? r.name ?? (r.msgType === "execute_request" ? "execute" : "apply");
}
