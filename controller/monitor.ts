/**
 * The monitor stream's readings (what `tsparallel cluster top` and the dashboard show): each
 * engine's state, load and own CPU and memory, and the tasks that finished since the last
 * reading. Task events are only collected while someone watches (`watching`), and leave
 * coalesced, a few times a second, in one signed message: a cluster running thousands of tasks a
 * second pays for a few hundred small objects per reading, not a message per task.
 */
import type { MonitoredEngine, MonitoredProgress } from "../protocol/messages";
import { type MonitorReading, type TaskColumns, emptyColumns } from "../protocol/monitor";
import type { TaskRecord } from "./records";
import type { EngineEntry } from "./registry";

/** Most finished tasks one reading carries; more are counted as dropped. */
export const TASKS_PER_UPDATE = 5000;
/** Most AsyncResults one reading lists (the rest are counted), and lost engines it keeps listing. */
export const PROGRESS_PER_UPDATE = 50;
/** Most AsyncResults counted at once (each is a few numbers). */
export const PROGRESS_KEPT = 10_000;
export const LOST_KEPT = 256;
/** An ended AsyncResult stays listed this long, so its bar is seen full. */
export const ENDED_SHOWN_MS = 10_000;
/** An AsyncResult with nothing running and no news this long is forgotten (its client stopped submitting). */
export const ABANDONED_MS = 10 * 60_000;

/** One AsyncResult's counts, by client session and tag id. */
interface ProgressCount {
  client: string;
  id: number;
  label: string;
  size: number;
  submitted: number;
  ended: number;
  failed: number;
  started: number;
  lastNews: number;
  finished: number | undefined;
}

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
  private tasks: TaskColumns = emptyColumns();
  /** Each label's index in this reading's `tasks.labels`. */
  private labelIndex = new Map<string, number>();
  private dropped = 0;
  private last = Date.now();
  /** Per engine id: its own last reading, and how many of its tasks failed. */
  private readonly stats = new Map<number, { cpu: number; rss: number }>();
  private readonly failures = new Map<number, number>();
  /**
   * Per AsyncResult, counted whether or not anyone watches, so a dashboard opened halfway through
   * a map shows it right: one map lookup per task, and entries leave when their tasks have ended.
   */
  private readonly progress = new Map<string, ProgressCount>();
  /** Engines lost, as last seen, by id (a Map keeps them oldest first); and ids being restarted. */
  private readonly lost = new Map<number, MonitoredEngine>();
  private readonly restarts = new Set<number>();
  /** Engine ids registered at the last reading: one that is new there replaces a restarting one. */
  private liveIds: Set<number> | undefined;
  /** Subscribers right now (XPUB tells): nothing is collected while there are none. */
  watchers = 0;

  get watching(): boolean {
    return this.watchers > 0;
  }

  engineStats(engineId: number, cpu: number, rss: number): void {
    this.stats.set(engineId, { cpu, rss });
  }

  /**
   * An engine left the registry: it stays listed as lost until its id returns, or as restarting
   * until an engine of its set registers in its place.
   */
  engineGone(e: EngineEntry): void {
    const failed = this.failures.get(e.id) ?? 0;
    this.lost.delete(e.id);
    this.lost.set(e.id, {
      ...engineRow(e, failed),
      state: this.restarts.delete(e.id) ? "restarting" : "lost",
    });
    if (this.lost.size > LOST_KEPT) this.lost.delete(this.lost.keys().next().value!);
    this.stats.delete(e.id);
    this.failures.delete(e.id);
  }

  /** The controller asked this engine's launcher to restart it. */
  restarting(engineId: number): void {
    this.restarts.add(engineId);
  }

  /** A task was recorded: its AsyncResult's count goes up. */
  submitted(r: TaskRecord): void {
    if (!r.progress || !r.header) return;
    const key = `${r.header.session}/${r.progress.id}`;
    let p = this.progress.get(key);
    if (!p) {
      p = {
        client: `${r.header.username}@${r.header.session.slice(0, 8)}`,
        id: r.progress.id,
        label: taskLabel(r),
        size: r.progress.size,
        submitted: 0,
        ended: 0,
        failed: 0,
        started: r.submitted,
        lastNews: r.submitted,
        finished: undefined,
      };
      this.progress.set(key, p);
      // Results whose client stopped submitting halfway, unwatched, are let go oldest first.
      if (this.progress.size > PROGRESS_KEPT) this.progress.delete(this.progress.keys().next().value!);
    }
    p.submitted++;
    p.lastNews = r.submitted;
  }

  /** A task ended (replied, failed, aborted). */
  finished(r: TaskRecord, now = Date.now()): void {
    if (r.state === "failed" && r.engineId !== undefined)
      this.failures.set(r.engineId, (this.failures.get(r.engineId) ?? 0) + 1);
    const p = r.progress && r.header ? this.progress.get(`${r.header.session}/${r.progress.id}`) : undefined;
    if (p) {
      p.ended++;
      if (r.state !== "done") p.failed++;
      p.lastNews = now;
      if (p.ended >= p.size) p.finished = now;
      // Readings let ended results go; with nobody watching there are none, so it goes now.
      if (p.finished !== undefined && !this.watching) this.progress.delete(`${r.header!.session}/${r.progress!.id}`);
    }
    if (!this.watching) return;
    const t = this.tasks;
    if (t.msg_id.length >= TASKS_PER_UPDATE) {
      this.dropped++;
      return;
    }
    const label = taskLabel(r);
    let index = this.labelIndex.get(label);
    if (index === undefined) {
      index = t.labels.push(label) - 1;
      this.labelIndex.set(label, index);
    }
    const status = r.state === "done" ? "done" : r.state === "aborted" ? "aborted" : "failed";
    if (status === "failed" && r.error) t.errors[String(t.msg_id.length)] = r.error;
    t.msg_id.push(r.msgId);
    t.engine_id.push(r.engineId ?? null);
    t.label.push(index);
    t.submitted.push(r.submitted);
    t.started.push(r.started ?? null);
    t.completed.push(r.completed ?? new Date(now).toISOString());
    t.status.push(status);
  }

  /** The reading now; the tasks it carries are not carried again. */
  update(source: MonitorSource, now = Date.now()): MonitorReading {
    let queued = 0;
    const returned = new Set<number>();
    const live = [...source.engines()].map((e): MonitoredEngine => {
      if (this.lost.delete(e.id)) returned.add(e.id); // registered again under its id
      const queue = source.queue(e.id);
      queued += queue.length;
      const head = queue[0] === undefined ? undefined : source.record(queue[0]);
      const own = this.stats.get(e.id);
      return {
        ...engineRow(e, this.failures.get(e.id) ?? 0),
        state: queue.length > 0 ? "busy" : "idle",
        cpu: own?.cpu ?? null,
        rss: own?.rss ?? null,
        queued: queue.length,
        running: head
          ? {
              msg_id: head.msgId,
              label: taskLabel(head),
              since: new Date(source.runningSince(e.id) ?? head.submitted).toISOString(),
            }
          : null,
      };
    });
    this.replaceRestarted(live, returned);
    const engines = [...live, ...this.lost.values()].sort((a, b) => a.id - b.id);
    const { progress, more } = this.progressNow(now);
    const update: MonitorReading = {
      at: new Date(now).toISOString(),
      interval_ms: now - this.last,
      engines,
      tasks: this.tasks,
      dropped: this.dropped,
      unassigned: source.unassigned(),
      queued,
      progress,
      progress_more: more,
    };
    this.tasks = emptyColumns();
    this.labelIndex = new Map();
    this.dropped = 0;
    this.last = now;
    return update;
  }

  /**
   * A restarted engine comes back under a new id: each engine new since the last reading takes
   * the place of the oldest restarting row of its engine set, which leaves the list.
   */
  private replaceRestarted(live: readonly MonitoredEngine[], returned: ReadonlySet<number>): void {
    for (const e of live) {
      if (!this.liveIds || this.liveIds.has(e.id) || returned.has(e.id)) continue;
      for (const [id, row] of this.lost)
        if (row.state === "restarting" && row.engine_set === e.engine_set) {
          this.lost.delete(id);
          break;
        }
    }
    this.liveIds = new Set(live.map((e) => e.id));
  }

  /** The AsyncResults to show, oldest first; ended and abandoned ones are let go. */
  private progressNow(now: number): { progress: MonitoredProgress[]; more: number } {
    const progress: MonitoredProgress[] = [];
    let more = 0;
    for (const [key, p] of this.progress) {
      const idle = p.ended >= p.submitted && now - p.lastNews > ABANDONED_MS;
      if ((p.finished !== undefined && now - p.finished > ENDED_SHOWN_MS) || idle) {
        this.progress.delete(key);
        continue;
      }
      if (progress.length >= PROGRESS_PER_UPDATE) {
        more++;
        continue;
      }
      progress.push({
        client: p.client,
        id: p.id,
        label: p.label,
        size: p.size,
        submitted: p.submitted,
        done: p.ended - p.failed,
        failed: p.failed,
        started: new Date(p.started).toISOString(),
        finished: p.finished === undefined ? null : new Date(p.finished).toISOString(),
      });
    }
    return { progress, more };
  }
}

/** An engine's row without its load (what a lost engine keeps). */
function engineRow(e: EngineEntry, failed: number): MonitoredEngine {
  return {
    id: e.id,
    hostname: e.hostname,
    pid: e.pid,
    engine_set: e.engineSet ?? null,
    state: "lost",
    cpu: null,
    rss: null,
    queued: 0,
    done: Math.max(0, e.completed - failed),
    failed,
    running: null,
  };
}

/** What a task is called on a dashboard: its label, else its function's name, else its kind. */
export function taskLabel(r: TaskRecord): string {
  return r.label ?? r.name ?? (r.msgType === "execute_request" ? "execute" : "apply");
}
