/**
 * The load-balanced queue. Holds tasks until their dependencies are met and an engine has room,
 * then picks the engine with a pure scheme (schemes.ts). Knows nothing of sockets: the hub gives
 * it engines and takes its decisions through `SchedulerHost`.
 *
 * Ready tasks wait in one queue per client, and engines are handed out round-robin between
 * clients: a client that submits 4 tasks behind another's 10,000 waits for about one task per
 * engine, not for the 10,000. Within a client, tasks keep their submission order.
 */
import type { LibraryErrorName } from "../protocol/errors";
import type { EngineEntry } from "./registry";
import type { TaskRecord } from "./records";
import { type Scheme, pipelineDepth } from "./schemes";

export interface SchedulerHost {
  engines(): EngineEntry[];
  lookup(msgId: string): TaskRecord | undefined;
  /** Send the task to the engine (the hub records the assignment). */
  dispatch(task: TaskRecord, engine: EngineEntry): void;
  /** Fail a task that can never run. */
  fail(task: TaskRecord, ename: LibraryErrorName, evalue: string): void;
}

type TaskRoute = Extract<TaskRecord["route"], { kind: "task" }>;

export class TaskScheduler {
  /** Runnable tasks (dependencies met) per client, oldest first; Map order is the rotation. */
  private readonly ready = new Map<string, TaskRecord[]>();
  private readyCount = 0;
  /** Tasks waiting for `after`/`follow` dependencies to finish. */
  private readonly waiting = new Set<TaskRecord>();
  private stamp = 0;

  constructor(
    private readonly host: SchedulerHost,
    private readonly scheme: Scheme,
    private readonly hwm: number,
    private readonly random: () => number = Math.random,
  ) {}

  get unassigned(): number {
    return this.readyCount + this.waiting.size;
  }

  submit(task: TaskRecord): void {
    const route = task.route as TaskRoute;
    const deps = [...(route.after ?? []), ...(route.follow ?? [])];
    const unknown = deps.filter((id) => !this.host.lookup(id));
    if (unknown.length > 0) {
      this.host.fail(task, "InvalidDependency", `unknown dependency msg id(s): ${unknown.join(", ")}`);
      return;
    }
    if (route.timeout !== undefined && route.timeout >= 0) {
      task.timer = setTimeout(() => this.expire(task), route.timeout);
      task.timer.unref();
    }
    task.state = "waiting";
    this.waiting.add(task);
    this.promote(task);
  }

  /** Put a task back at the front (its engine died before or while running it). */
  resubmit(task: TaskRecord): void {
    task.state = "pending";
    task.engineId = undefined;
    this.queueOf(task).unshift(task);
    this.readyCount++;
  }

  /** Drops every task `client` has not had assigned yet (a client that left); returns them. */
  removeClient(client: Buffer): TaskRecord[] {
    const key = clientKey(client);
    const dropped = this.ready.get(key) ?? [];
    this.ready.delete(key);
    this.readyCount -= dropped.length;
    for (const t of this.waiting) {
      if (t.client.equals(client)) {
        this.waiting.delete(t);
        dropped.push(t);
      }
    }
    return dropped;
  }

  /** Remove a not-yet-assigned task; true if it was queued here. */
  remove(task: TaskRecord): boolean {
    if (this.waiting.delete(task)) return true;
    const queue = this.ready.get(clientKey(task.client));
    const i = queue ? queue.indexOf(task) : -1;
    if (i < 0) return false;
    queue!.splice(i, 1);
    this.readyCount--;
    return true;
  }

  /** A task finished somewhere: tasks depending on it may become runnable (or impossible). */
  dependencyFinished(): void {
    for (const t of [...this.waiting]) this.promote(t);
  }

  /** Assign as many ready tasks as engines have room for, one client's task at a time in turn. */
  schedule(): void {
    if (this.readyCount === 0) return;
    const engines = this.host.engines();
    if (engines.length === 0) return;
    const hasRoom = (): boolean => engines.some((e) => e.lbLoad < pipelineDepth(e.avgTaskMs, this.hwm));
    let progressed = true;
    while (progressed && this.readyCount > 0 && hasRoom()) {
      progressed = false;
      for (const [key, queue] of [...this.ready]) {
        if (!hasRoom()) break;
        if (this.assignOne(queue, engines)) {
          progressed = true;
          // To the back of the rotation: the next engine goes to the next client.
          this.ready.delete(key);
          if (queue.length > 0) this.ready.set(key, queue);
        } else if (queue.length === 0) {
          this.ready.delete(key);
        }
      }
    }
  }

  /**
   * Dispatches the oldest task of `queue` that an engine can take now (tasks bound to busy
   * engines are skipped, looking at most `SCAN` deep). True when one was assigned or failed.
   */
  private assignOne(queue: TaskRecord[], engines: EngineEntry[]): boolean {
    for (let i = 0; i < Math.min(queue.length, SCAN); i++) {
      const task = queue[i]!;
      const candidates = this.candidates(task, engines);
      if (candidates !== "impossible" && candidates.length === 0) continue;
      queue.splice(i, 1);
      this.readyCount--;
      if (candidates === "impossible") return true;
      candidates.sort((a, b) => a.lastAssigned - b.lastAssigned);
      const engine =
        candidates[
          this.scheme(
            candidates.map((e) => e.lbLoad),
            this.random,
          )
        ] ?? candidates[0]!;
      engine.lastAssigned = ++this.stamp;
      if (task.timer) clearTimeout(task.timer);
      this.host.dispatch(task, engine);
      return true;
    }
    return false;
  }

  private queueOf(task: TaskRecord): TaskRecord[] {
    const key = clientKey(task.client);
    let queue = this.ready.get(key);
    if (!queue) this.ready.set(key, (queue = []));
    return queue;
  }

  private candidates(task: TaskRecord, engines: EngineEntry[]): EngineEntry[] | "impossible" {
    const route = task.route as TaskRoute;
    let allowed = engines;
    if (route.targets) allowed = allowed.filter((e) => route.targets!.includes(e.id));
    if (route.follow && route.follow.length > 0) {
      const where = new Set(route.follow.map((id) => this.host.lookup(id)?.engineId));
      if (where.size !== 1) {
        this.host.fail(task, "ImpossibleDependency", "follow dependencies ran on different engines");
        return "impossible";
      }
      allowed = allowed.filter((e) => where.has(e.id));
      if (!engines.some((e) => where.has(e.id))) {
        this.host.fail(task, "ImpossibleDependency", "the engine this task must follow is gone");
        return "impossible";
      }
    }
    allowed = allowed.filter((e) => !task.blacklist.has(e.id));
    return allowed.filter((e) => e.lbLoad < pipelineDepth(e.avgTaskMs, this.hwm));
  }

  private promote(task: TaskRecord): void {
    const route = task.route as TaskRoute;
    const deps = [...(route.after ?? []), ...(route.follow ?? [])];
    let met = true;
    for (const id of deps) {
      const dep = this.host.lookup(id);
      if (!dep || dep.state === "failed" || dep.state === "aborted") {
        this.waiting.delete(task);
        this.host.fail(
          task,
          "ImpossibleDependency",
          `dependency ${id} ${dep ? dep.state : "is unknown"}, so this task cannot run`,
        );
        return;
      }
      if (dep.state !== "done") met = false;
    }
    if (!met) return;
    this.waiting.delete(task);
    task.state = "pending";
    this.queueOf(task).push(task);
    this.readyCount++;
  }

  private expire(task: TaskRecord): void {
    if (task.state !== "waiting" && task.state !== "pending") return;
    this.remove(task);
    const ms = (task.route as TaskRoute).timeout;
    this.host.fail(task, "TimeoutError", `task was not assigned to an engine within its timeout of ${ms} ms`);
  }
}

/** How deep into one client's queue `schedule` looks for a task an engine can take. */
const SCAN = 64;

function clientKey(client: Buffer): string {
  return client.toString("latin1");
}
