/** The monitor's readings on plain records: nothing collected unwatched, each task carried once. */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  ABANDONED_MS,
  ENDED_SHOWN_MS,
  LOST_KEPT,
  Monitor,
  PROGRESS_KEPT,
  PROGRESS_PER_UPDATE,
  TASKS_PER_UPDATE,
  taskLabel,
} from "../../../controller/monitor";
import type { TaskRecord } from "../../../controller/records";
import type { EngineEntry } from "../../../controller/registry";
import { renderTop } from "../../../cluster/top";
import { type MonitorUpdate, readingUpdate } from "../../../protocol/monitor";
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

/** A reading as MonitorFeed hands it over: its task columns as rows. */
function update(m: Monitor, src: Parameters<Monitor["update"]>[0], now?: number): MonitorUpdate {
  return readingUpdate(m.update(src, now));
}

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
  assert.deepEqual(update(m, src).tasks, [], "nobody watched");
  m.watchers = 1;
  m.finished(record("b", { label: "stage-2" }));
  m.finished(record("c", { state: "failed", error: "RangeError: too big" }));
  const u = update(m, src);
  assert.deepEqual(
    u.tasks.map((t) => [t.msg_id, t.label, t.status, t.error]),
    [
      ["b", "stage-2", "done", undefined],
      ["c", "apply", "failed", "RangeError: too big"],
    ],
  );
  assert.equal(u.tasks[0]!.submitted, "2026-12-03T10:00:00.000Z");
  assert.deepEqual(update(m, src).tasks, [], "carried once");
});

test("engines read busy or idle from their queues, with the running task's label and failures", () => {
  const m = new Monitor();
  m.finished(record("f", { state: "failed", engineId: 1 })); // counted even unwatched
  m.engineStats(1, 97.5, 64 * 2 ** 20);
  const running = record("r", { state: "assigned", name: "simulate", engineId: 1 });
  const u = update(
    m,
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
  const u = update(m, source([], {}, {}));
  assert.equal(u.tasks.length, TASKS_PER_UPDATE);
  assert.equal(u.dropped, 3);
});

test("a task is named by its label, else its function, else its kind", () => {
  assert.equal(taskLabel(record("a", { label: "L", name: "f" })), "L");
  assert.equal(taskLabel(record("a", { name: "f" })), "f");
  assert.equal(taskLabel(record("a", { msgType: "execute_request" })), "execute");
});

test("an AsyncResult's tasks are counted per client and tag, watched or not, and shown a while after they end", () => {
  const m = new Monitor();
  const t0 = Date.parse("2026-12-03T10:00:00Z");
  const tagged = (
    id: string,
    session: string,
    progress: { id: number; size: number },
    over: Partial<TaskRecord> = {},
  ) =>
    record(id, {
      progress,
      label: "stage-2",
      submitted: t0,
      header: { msg_id: id, msg_type: "apply_request", session, username: "ada", date: "", version: "5.3" },
      ...over,
    });
  const mine = [0, 1, 2].map((i) => tagged(`m${i}`, "session-aaaaaaaa", { id: 1, size: 3 }));
  const theirs = tagged("o0", "session-bbbbbbbb", { id: 1, size: 2 }); // the same number, another client
  for (const r of [...mine, theirs]) m.submitted(r);
  m.finished(mine[0]!, t0 + 1000);
  m.finished({ ...mine[1]!, state: "failed" }, t0 + 2000);
  const src = source([engine(0)], {}, {});
  const u = update(m, src, t0 + 2000);
  assert.deepEqual(
    u.progress.map((p) => [p.client, p.id, p.label, p.size, p.submitted, p.done, p.failed, p.finished]),
    [
      ["ada@session-", 1, "stage-2", 3, 3, 1, 1, null],
      ["ada@session-", 1, "stage-2", 2, 1, 0, 0, null],
    ],
  );
  m.watchers = 1; // someone watches: the ended result stays listed a while
  m.finished(mine[2]!, t0 + 3000);
  const ended = update(m, src, t0 + 3000).progress[0]!;
  assert.equal(ended.finished, new Date(t0 + 3000).toISOString());
  assert.equal(update(m, src, t0 + 3000 + ENDED_SHOWN_MS - 1).progress.length, 2, "still shown, full");
  assert.equal(update(m, src, t0 + 3000 + ENDED_SHOWN_MS + 1).progress.length, 1, "then let go");
  // A client that stopped submitting halfway: forgotten once nothing of it has moved for long.
  m.finished(theirs, t0 + 4000);
  assert.equal(update(m, src, t0 + 4000 + ABANDONED_MS + 1).progress.length, 0);
});

test("unwatched, an ended result is let go at once, and at most PROGRESS_KEPT are counted", () => {
  const m = new Monitor();
  const header = (id: string) =>
    ({ msg_id: id, msg_type: "apply_request", session: "s", username: "u", date: "", version: "5.3" }) as const;
  const one = record("a", { progress: { id: 1, size: 1 }, header: header("a") });
  m.submitted(one);
  m.finished(one);
  m.watchers = 1;
  assert.equal(update(m, source([], {}, {})).progress.length, 0, "nothing left of it");
  m.watchers = 0;
  for (let i = 0; i < PROGRESS_KEPT + 2; i++)
    m.submitted(record(`t${i}`, { progress: { id: 100 + i, size: 2 }, header: header(`t${i}`) }));
  m.watchers = 1;
  const u = update(m, source([], {}, {}));
  assert.equal(u.progress.length + u.progress_more, PROGRESS_KEPT);
  assert.equal(u.progress[0]!.id, 102, "the oldest went first");
});

test("a reading lists at most PROGRESS_PER_UPDATE results and counts the rest", () => {
  const m = new Monitor();
  for (let i = 0; i < PROGRESS_PER_UPDATE + 3; i++)
    m.submitted(
      record(`t${i}`, {
        progress: { id: i, size: 2 },
        header: { msg_id: `t${i}`, msg_type: "apply_request", session: "s", username: "u", date: "", version: "5.3" },
      }),
    );
  m.watchers = 1; // shown while watched
  const u = update(m, source([], {}, {}));
  assert.equal(u.progress.length, PROGRESS_PER_UPDATE);
  assert.equal(u.progress_more, 3);
  assert.deepEqual(
    u.progress.slice(0, 2).map((p) => p.id),
    [0, 1],
    "oldest first",
  );
});

test("a lost engine stays listed as lost, a restarted one as restarting, until its id registers again", () => {
  const m = new Monitor();
  m.finished(record("f", { state: "failed", engineId: 1 }));
  m.engineGone(engine(1, 4));
  m.restarting(2);
  m.engineGone(engine(2, 1));
  const u = update(m, source([engine(0)], {}, {}));
  assert.deepEqual(
    u.engines.map((e) => [e.id, e.state, e.done, e.failed, e.cpu, e.queued]),
    [
      [0, "idle", 0, 0, null, 0],
      [1, "lost", 3, 1, null, 0],
      [2, "restarting", 1, 0, null, 0],
    ],
  );
  const states = (ids: number[]): string =>
    update(
      m,
      source(
        ids.map((id) => engine(id)),
        {},
        {},
      ),
    )
      .engines.map((e) => `${e.id}:${e.state}`)
      .join(" ");
  assert.equal(
    states([0, 1]),
    "0:idle 1:idle 2:restarting",
    "engine 1 registered again under its own id: it replaces nobody",
  );
  assert.equal(states([0, 1, 3]), "0:idle 1:idle 3:idle", "engine 3, new in local-0, took restarting engine 2's place");
  for (let id = 10; id < 10 + LOST_KEPT + 5; id++) m.engineGone(engine(id));
  assert.equal(update(m, source([], {}, {})).engines.length, LOST_KEPT, "the newest lost engines are kept");
});
