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
