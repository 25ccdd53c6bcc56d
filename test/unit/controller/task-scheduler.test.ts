import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { LibraryErrorName } from "../../../protocol/errors";
import type { Route } from "../../../protocol/messages";
import type { TaskRecord } from "../../../controller/records";
import type { EngineEntry } from "../../../controller/registry";
import { leastload } from "../../../controller/schemes";
import { type SchedulerHost, TaskScheduler } from "../../../controller/task-scheduler";
import { engineEntry, taskRecord } from "../../helpers/records";

/** A host that records every decision the scheduler makes; engines take tasks until told to finish. */
class FakeHost implements SchedulerHost {
  readonly engineList: EngineEntry[] = [];
  readonly records = new Map<string, TaskRecord>();
  readonly dispatched: Array<{ task: string; engine: number }> = [];
  readonly failed: Array<{ task: string; ename: LibraryErrorName }> = [];

  /** Per engine id, the tasks it holds in order (the ledger's job in the hub). */
  readonly queues = new Map<number, string[]>();

  engines(): EngineEntry[] {
    return this.engineList;
  }
  queueOf(e: EngineEntry): string[] {
    let q = this.queues.get(e.id);
    if (!q) this.queues.set(e.id, (q = []));
    return q;
  }
  lookup(msgId: string): TaskRecord | undefined {
    return this.records.get(msgId);
  }
  dispatch(task: TaskRecord, engine: EngineEntry): void {
    task.state = "assigned";
    task.engineId = engine.id;
    engine.lbLoad++;
    this.queueOf(engine).push(task.msgId);
    this.dispatched.push({ task: task.msgId, engine: engine.id });
  }
  fail(task: TaskRecord, ename: LibraryErrorName): void {
    task.state = "failed";
    this.failed.push({ task: task.msgId, ename });
  }

  addEngine(id: number): EngineEntry {
    const e = engineEntry(id, { uuid: `e${id}`, identity: Buffer.from(`e${id}`), pid: 1000 + id });
    this.engineList.push(e);
    return e;
  }

  task(msgId: string, client = "A", route: Partial<Extract<Route, { kind: "task" }>> = {}): TaskRecord {
    const r = taskRecord(msgId, { client: Buffer.from(client), route: { kind: "task", ...route } });
    this.records.set(msgId, r);
    return r;
  }

  /** The engine finishes its oldest task. */
  finish(engine: EngineEntry, state: "done" | "failed" = "done"): string {
    const id = this.queueOf(engine).shift()!;
    engine.lbLoad--;
    this.records.get(id)!.state = state;
    return id;
  }
}

/** hwm 1: each engine holds one task, so every decision is visible. */
function setup(engines = 2): { host: FakeHost; scheduler: TaskScheduler; engines: EngineEntry[] } {
  const host = new FakeHost();
  const list = Array.from({ length: engines }, (_, i) => host.addEngine(i));
  return { host, scheduler: new TaskScheduler(host, leastload, 1), engines: list };
}

describe("TaskScheduler", () => {
  test("assigns ready tasks in submission order while engines have room", () => {
    const { host, scheduler } = setup(2);
    for (const id of ["t1", "t2", "t3"]) scheduler.submit(host.task(id));
    scheduler.schedule();
    assert.deepEqual(
      host.dispatched.map((d) => d.task),
      ["t1", "t2"],
    );
    assert.equal(scheduler.unassigned, 1);
  });

  test("interleaves clients, so a newcomer waits about one task per engine", () => {
    const { host, scheduler, engines } = setup(2);
    for (let i = 0; i < 100; i++) scheduler.submit(host.task(`big${i}`, "big"));
    scheduler.schedule();
    for (let i = 0; i < 4; i++) scheduler.submit(host.task(`small${i}`, "small"));
    const order: string[] = [];
    while (scheduler.unassigned > 0 && order.filter((t) => t.startsWith("small")).length < 4) {
      for (const e of engines) if (host.queueOf(e).length > 0) order.push(host.finish(e));
      scheduler.schedule();
    }
    const afterSmallArrived = host.dispatched.slice(2).map((d) => d.task);
    // Every second assignment goes to the small client until it is done.
    assert.deepEqual(
      afterSmallArrived.slice(0, 8).filter((t) => t.startsWith("small")),
      ["small0", "small1", "small2", "small3"],
    );
  });

  test("a task bound to a busy engine does not hold back the tasks behind it", () => {
    const { host, scheduler } = setup(2);
    scheduler.submit(host.task("busy0", "A"));
    scheduler.schedule(); // engine 0 (least loaded, first) takes it
    scheduler.submit(host.task("only0", "A", { targets: [0] }));
    scheduler.submit(host.task("any", "A"));
    scheduler.schedule();
    assert.deepEqual(host.dispatched.at(-1), { task: "any", engine: 1 });
    assert.equal(scheduler.unassigned, 1);
  });

  test("a task waits for its after-dependencies, and a failure cascades down the chain", () => {
    const { host, scheduler, engines } = setup(1);
    const first = host.task("first");
    scheduler.submit(first);
    scheduler.schedule();
    scheduler.submit(host.task("second", "A", { after: ["first"] }));
    scheduler.submit(host.task("third", "A", { after: ["second"] }));
    host.finish(engines[0]!, "failed");
    scheduler.dependencyFinished();
    assert.deepEqual(
      host.failed.map((f) => [f.task, f.ename]),
      [
        ["second", "ImpossibleDependency"],
        ["third", "ImpossibleDependency"],
      ],
    );
  });

  test("an unknown dependency fails at once with InvalidDependency", () => {
    const { host, scheduler } = setup(1);
    scheduler.submit(host.task("t", "A", { after: ["nope"] }));
    assert.deepEqual(host.failed, [{ task: "t", ename: "InvalidDependency" }]);
  });

  test("a resubmitted task goes first and avoids its blacklisted engine", () => {
    const { host, scheduler, engines } = setup(2);
    scheduler.submit(host.task("a"));
    scheduler.submit(host.task("b"));
    scheduler.schedule();
    const lost = host.records.get("a")!;
    host.queues.set(0, []);
    engines[0]!.lbLoad = 0;
    lost.blacklist.add(0);
    scheduler.resubmit(lost);
    host.finish(engines[1]!);
    scheduler.submit(host.task("c"));
    scheduler.schedule();
    assert.deepEqual(host.dispatched.slice(2), [
      { task: "a", engine: 1 },
      { task: "c", engine: 0 },
    ]);
  });

  test("removeClient drops the queued and waiting tasks of a client that left", () => {
    const { host, scheduler } = setup(1);
    scheduler.submit(host.task("keep", "A"));
    for (let i = 0; i < 3; i++) scheduler.submit(host.task(`gone${i}`, "B"));
    scheduler.submit(host.task("waits", "B", { after: ["keep"] }));
    scheduler.schedule();
    const dropped = scheduler.removeClient(Buffer.from("B"));
    assert.deepEqual(dropped.map((t) => t.msgId).sort(), ["gone0", "gone1", "gone2", "waits"]);
    assert.equal(scheduler.unassigned, 0);
  });
});
