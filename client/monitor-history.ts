/**
 * What a live view keeps of the monitor stream's readings: the task stream's marks (the newest
 * `STREAM_MARKS`, as bars on seconds since the first task started), and throughput and queue
 * depth over the last `HISTORY_MS`. Each reading added says which marks came and went, so a chart
 * can stream them in rather than redraw. Pure (no Node module): `cluster top` and the JupyterLab
 * dashboard share it.
 */
import type { MonitorUpdate, MonitoredProgress } from "../protocol/monitor";
import type { TaskStreamMark } from "./task-stream";

/** Most marks the live task stream keeps (older ones leave it). */
export const STREAM_MARKS = 5000;
/** How far back throughput and queue depth go. */
export const HISTORY_MS = 5 * 60_000;
/** Readings the throughput is averaged over (a reading comes every quarter second). */
const RATE_READINGS = 4;

/** Throughput and queue depth at one reading. */
export interface RatePoint {
  /** ms since the epoch. */
  at: number;
  tasksPerSecond: number;
  /** Tasks held by engines plus load-balanced tasks not yet assigned. */
  queued: number;
}

export interface HistoryChange {
  inserted: TaskStreamMark[];
  removed: TaskStreamMark[];
  rate: RatePoint;
  /** Rate points that fell out of the window. */
  expired: RatePoint[];
}

export class MonitorHistory {
  readonly marks: TaskStreamMark[] = [];
  readonly rates: RatePoint[] = [];
  /** ms of the first task's start: the stream's zero. */
  private t0: number | undefined;
  private order = 0;
  private readonly recent: Array<{ tasks: number; ms: number }> = [];

  add(u: MonitorUpdate): HistoryChange {
    const inserted: TaskStreamMark[] = [];
    for (const t of u.tasks) {
      if (t.started === null || t.engine_id === null) continue; // never ran: no bar
      const start = Date.parse(t.started);
      this.t0 ??= start;
      inserted.push({
        engine: t.engine_id,
        start: (start - this.t0) / 1000,
        end: (Date.parse(t.completed) - this.t0) / 1000,
        label: t.label,
        order: this.order++,
        failed: t.status !== "done",
        msgId: t.msg_id,
        ...(t.error !== undefined ? { error: t.error } : {}),
      });
    }
    this.marks.push(...inserted);
    const removed = this.marks.length > STREAM_MARKS ? this.marks.splice(0, this.marks.length - STREAM_MARKS) : [];
    const rate: RatePoint = {
      at: Date.parse(u.at),
      tasksPerSecond: this.tasksPerSecond(u),
      queued: u.queued + u.unassigned,
    };
    this.rates.push(rate);
    let old = 0;
    while (old < this.rates.length && this.rates[old]!.at < rate.at - HISTORY_MS) old++;
    return { inserted, removed, rate, expired: this.rates.splice(0, old) };
  }

  /** Tasks finished per second over the last few readings, this one included. */
  private tasksPerSecond(u: MonitorUpdate): number {
    this.recent.push({ tasks: u.tasks.length + u.dropped, ms: u.interval_ms });
    if (this.recent.length > RATE_READINGS) this.recent.shift();
    const tasks = this.recent.reduce((a, w) => a + w.tasks, 0);
    const ms = this.recent.reduce((a, w) => a + w.ms, 0);
    return ms > 0 ? (tasks * 1000) / ms : 0;
  }
}

/**
 * Seconds left for an AsyncResult at the pace it has kept since its first task was submitted;
 * undefined before any task ended (no pace yet) and once all have.
 */
export function etaSeconds(
  p: Pick<MonitoredProgress, "size" | "done" | "failed" | "started" | "finished">,
  now: number,
): number | undefined {
  const ended = p.done + p.failed;
  if (ended === 0 || p.finished !== null || ended >= p.size) return undefined;
  const elapsed = Math.max(now - Date.parse(p.started), 0) / 1000;
  return (elapsed / ended) * (p.size - ended);
}
