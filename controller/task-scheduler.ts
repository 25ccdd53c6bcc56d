/**
 * The load-balanced queue. Holds tasks until their dependencies are met and an engine has room,
 * then picks the engine with a pure scheme (schemes.ts). Knows nothing of sockets: the hub gives
 * it engines and takes its decisions through `SchedulerHost`.
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
  /** Runnable tasks (dependencies met), oldest first. */
  private readonly ready: TaskRecord[] = [];
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
    return this.ready.length + this.waiting.size;
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
    this.ready.unshift(task);
  }

  /** Remove a not-yet-assigned task; true if it was queued here. */
  remove(task: TaskRecord): boolean {
    if (this.waiting.delete(task)) return true;
    const i = this.ready.indexOf(task);
    if (i < 0) return false;
    this.ready.splice(i, 1);
    return true;
  }

  /** A task finished somewhere: tasks depending on it may become runnable (or impossible). */
  dependencyFinished(): void {
    for (const t of [...this.waiting]) this.promote(t);
  }

  /** Assign as many ready tasks as engines have room for. */
  schedule(): void {
    if (this.ready.length === 0) return;
    const engines = this.host.engines();
    if (engines.length === 0) return;
    const blocked: TaskRecord[] = [];
    let room = engines.some((e) => e.lbLoad < pipelineDepth(e.avgTaskMs, this.hwm));
    while (room && this.ready.length > 0) {
      const task = this.ready.shift()!;
      const candidates = this.candidates(task, engines);
      if (candidates === "impossible") continue;
      if (candidates.length === 0) {
        blocked.push(task);
        continue;
      }
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
      room = engines.some((e) => e.lbLoad < pipelineDepth(e.avgTaskMs, this.hwm));
    }
    this.ready.unshift(...blocked);
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
    this.ready.push(task);
  }

  private expire(task: TaskRecord): void {
    if (task.state !== "waiting" && task.state !== "pending") return;
    this.remove(task);
    const ms = (task.route as TaskRoute).timeout;
    this.host.fail(task, "TimeoutError", `task was not assigned to an engine within its timeout of ${ms} ms`);
  }
}
