/** The monitor's readings on plain records: nothing collected unwatched, each task carried once. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Monitor, TASKS_PER_UPDATE, taskLabel } from "../../../controller/monitor";
import type { TaskRecord } from "../../../controller/records";
import type { EngineEntry } from "../../../controller/registry";
import { renderTop } from "../../../cluster/top";
import { engineEntry, taskRecord } from "../../helpers/records";

const engine = (id: number, completed = 0): EngineEntry =>
  engineEntry(id, { hostname: "node-a", engineSet: "local-0", completed });

const record = (msgId: string, over: Partial<TaskRecord> = {}): TaskRecord =>
  taskRecord(msgId, {
    state: "done",
    engineId: 0,
    submitted: Date.parse("2026-12-03T10:00:00Z"),
    started: "2026-12-03T10:00:01.000Z",
    completed: "2026-12-03T10:00:02.000Z",
    ...over,
  });

function source(engines: EngineEntry[], queues: Record<number, string[]>, records: Record<string, TaskRecord>) {
  return {
    engines: () => engines,
    queue: (id: number) => queues[id] ?? [],
    runningSince: (id: number) => ((queues[id] ?? []).length > 0 ? Date.parse("2026-12-03T10:00:05Z") : undefined),
    record: (id: string) => records[id],
    unassigned: () => 7,
  };
}

test("unwatched, the monitor collects no task; watched, each finished task is carried once", () => {
  const m = new Monitor();
  m.finished(record("a"));
  const src = source([engine(0, 1)], {}, {});
  assert.deepEqual(m.update(src).tasks, [], "nobody watched");
  m.watchers = 1;
  m.finished(record("b", { label: "stage-2" }));
  m.finished(record("c", { state: "failed", error: "RangeError: too big" }));
  const u = m.update(src);
  assert.deepEqual(
    u.tasks.map((t) => [t.msg_id, t.label, t.status, t.error]),
    [
      ["b", "stage-2", "done", undefined],
      ["c", "apply", "failed", "RangeError: too big"],
    ],
  );
  assert.equal(u.tasks[0]!.submitted, "2026-12-03T10:00:00.000Z");
  assert.deepEqual(m.update(src).tasks, [], "carried once");
});

test("engines read busy or idle from their queues, with the running task's label and failures", () => {
  const m = new Monitor();
  m.finished(record("f", { state: "failed", engineId: 1 })); // counted even unwatched
  m.engineStats(1, 97.5, 64 * 2 ** 20);
  const running = record("r", { state: "assigned", name: "simulate", engineId: 1 });
  const u = m.update(
    source([engine(1, 5), engine(0, 2)], { 1: ["r", "q"] }, { r: running }),
    Date.parse("2026-12-03T10:00:09Z"),
  );
  assert.deepEqual(
    u.engines.map((e) => [e.id, e.state, e.queued, e.done, e.failed, e.cpu, e.running?.label ?? null]),
    [
      [0, "idle", 0, 2, 0, null, null],
      [1, "busy", 2, 4, 1, 97.5, "simulate"],
    ],
  );
  assert.equal(u.queued, 2);
  assert.equal(u.unassigned, 7);
  const text = renderTop(u, "default", 12);
  assert.match(text, /2 engines \(1 busy\) · queued 2 · unassigned 7 · 12 tasks\/s/);
  assert.match(text, /simulate \(4\.0s\)/, "running for 4 s when the reading was taken");
  assert.match(text, /98 .*64 MB/);
});

test("a reading carries at most TASKS_PER_UPDATE tasks and counts the rest as dropped", () => {
  const m = new Monitor();
  m.watchers = 1;
  for (let i = 0; i < TASKS_PER_UPDATE + 3; i++) m.finished(record(`t${i}`));
  const u = m.update(source([], {}, {}));
  assert.equal(u.tasks.length, TASKS_PER_UPDATE);
  assert.equal(u.dropped, 3);
});

test("a task is named by its label, else its function, else its kind", () => {
  assert.equal(taskLabel(record("a", { label: "L", name: "f" })), "L");
  assert.equal(taskLabel(record("a", { name: "f" })), "f");
  assert.equal(taskLabel(record("a", { msgType: "execute_request" })), "execute");
});
