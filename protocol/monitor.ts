/**
 * The monitor stream's readings (controller/monitor.ts publishes them as `monitor_update`), as
 * types only: no Node type in them, so the JupyterLab dashboard's bundle reads them too.
 */

/** One engine as the monitor shows it. */
export interface MonitoredEngine {
  id: number;
  hostname: string;
  pid: number;
  engine_set: string | null;
  /**
   * Lost engines stay listed (without load) until one registers under the same id again; a
   * restarting one until its replacement (a new id, in the same engine set) registers.
   */
  state: "idle" | "busy" | "lost" | "restarting";
  /** As the engine last read itself (engine_stats); null before its first reading. */
  cpu: number | null;
  rss: number | null;
  /** Tasks it holds (the running one included), and those it finished, ok and failed. */
  queued: number;
  done: number;
  failed: number;
  /** The task at the head of its queue: msg id, label or function name, and since when (ISO). */
  running: { msg_id: string; label: string; since: string } | null;
}

/** One AsyncResult's tasks, as the dashboard's progress bar shows them. */
export interface MonitoredProgress {
  /** `user@session` of the client that submitted it, and its number there. */
  client: string;
  id: number;
  /** Its tasks' label, else its function's name. */
  label: string;
  size: number;
  /** Tasks the controller has seen of it, and those that ended ok or not. */
  submitted: number;
  done: number;
  failed: number;
  /** When its first task was submitted and, once all ended, when the last did (ISO). */
  started: string;
  finished: string | null;
}

/** One finished task, as the monitor's task stream draws it. */
export interface MonitoredTask {
  msg_id: string;
  engine_id: number | null;
  label: string;
  submitted: string;
  started: string | null;
  completed: string;
  status: "done" | "failed" | "aborted";
  /** The first line of the error, for a failed task. */
  error?: string;
}

export interface MonitorUpdate {
  /** When the controller took this reading, and the interval since the previous one (ms). */
  at: string;
  interval_ms: number;
  engines: MonitoredEngine[];
  /** Tasks that finished since the previous update, oldest first; `dropped` more did not fit. */
  tasks: MonitoredTask[];
  dropped: number;
  /** Load-balanced tasks not yet assigned, and tasks held by engines. */
  unassigned: number;
  queued: number;
  /** AsyncResults in flight (and those ended in the last seconds), oldest first; `progress_more` not listed. */
  progress: MonitoredProgress[];
  progress_more: number;
}

/**
 * Finished tasks as a reading carries them: one array per field, labels by index. A reading at
 * thousands of tasks a second carries thousands of them, and the controller encodes (and signs)
 * each reading: without a key per field and a date object per task, that costs about half.
 */
export interface TaskColumns {
  msg_id: string[];
  engine_id: Array<number | null>;
  /** Index into `labels`. */
  label: number[];
  labels: string[];
  /** ms since the epoch. */
  submitted: number[];
  started: Array<string | null>;
  completed: string[];
  status: Array<MonitoredTask["status"]>;
  /** The first line of the error, by row, for failed tasks. */
  errors: Record<string, string>;
}

/** `monitor_update` as it travels: a MonitorUpdate with its tasks in columns. */
export type MonitorReading = Omit<MonitorUpdate, "tasks"> & { tasks: TaskColumns };

export function emptyColumns(): TaskColumns {
  return {
    msg_id: [],
    engine_id: [],
    label: [],
    labels: [],
    submitted: [],
    started: [],
    completed: [],
    status: [],
    errors: {},
  };
}

/** The rows of a reading's task columns, oldest first. */
export function taskRows(c: TaskColumns): MonitoredTask[] {
  return c.msg_id.map((msgId, i) => {
    const t: MonitoredTask = {
      msg_id: msgId,
      engine_id: c.engine_id[i] ?? null,
      label: c.labels[c.label[i]!] ?? "",
      submitted: new Date(c.submitted[i]!).toISOString(),
      started: c.started[i] ?? null,
      completed: c.completed[i]!,
      status: c.status[i]!,
    };
    const error = c.errors[String(i)];
    if (error !== undefined) t.error = error;
    return t;
  });
}

/** A reading as its readers take it: its tasks as rows. */
export function readingUpdate(r: MonitorReading): MonitorUpdate {
  return { ...r, tasks: taskRows(r.tasks) };
}
