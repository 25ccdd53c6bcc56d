/** What a live view keeps of the readings: marks in and out of the window, rates, and an ETA. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { HISTORY_MS, MonitorHistory, STREAM_MARKS, etaSeconds } from "../../../client/monitor-history";
import type { MonitorUpdate, MonitoredTask } from "../../../protocol/monitor";
import { renderTop } from "../../../cluster/top";

const t0 = Date.parse("2026-12-03T10:00:00Z");
const iso = (ms: number): string => new Date(ms).toISOString();

function task(i: number, over: Partial<MonitoredTask> = {}): MonitoredTask {
  return {
    msg_id: `m${i}`,
    engine_id: i % 2,
    label: "stage-2",
    submitted: iso(t0),
    started: iso(t0 + i * 10),
    completed: iso(t0 + i * 10 + 5),
    status: "done",
    ...over,
  };
}

function reading(at: number, tasks: MonitoredTask[], over: Partial<MonitorUpdate> = {}): MonitorUpdate {
  return {
    at: iso(at),
    interval_ms: 250,
    engines: [],
    tasks,
    dropped: 0,
    unassigned: 3,
    queued: 2,
    progress: [],
    progress_more: 0,
    ...over,
  };
}

test("marks are seconds since the first start, numbered in order; tasks that never ran draw none", () => {
  const h = new MonitorHistory();
  const change = h.add(
    reading(t0 + 250, [
      task(0),
      task(1, { status: "failed", error: "RangeError: no" }),
      task(2, { started: null, status: "aborted" }),
    ]),
  );
  assert.deepEqual(
    change.inserted.map((m) => [m.engine, m.start, m.end, m.order, m.failed, m.msgId, m.error]),
    [
      [0, 0, 0.005, 0, false, "m0", undefined],
      [1, 0.01, 0.015, 1, true, "m1", "RangeError: no"],
    ],
  );
  assert.deepEqual(change.removed, []);
  assert.equal(change.rate.queued, 5, "held by engines plus unassigned");
  assert.equal(change.rate.tasksPerSecond, 12, "3 tasks in a quarter second");
});

test("the stream keeps the newest STREAM_MARKS marks, and rates for HISTORY_MS", () => {
  const h = new MonitorHistory();
  h.add(
    reading(
      t0,
      Array.from({ length: STREAM_MARKS - 1 }, (_, i) => task(i)),
    ),
  );
  const change = h.add(reading(t0 + 250, [task(STREAM_MARKS), task(STREAM_MARKS + 1), task(STREAM_MARKS + 2)]));
  assert.deepEqual(
    change.removed.map((m) => m.order),
    [0, 1],
  );
  assert.equal(h.marks.length, STREAM_MARKS);
  assert.equal(h.marks[0]!.order, 2);
  const late = h.add(reading(t0 + HISTORY_MS + 100, []));
  assert.deepEqual(
    late.expired.map((r) => r.at),
    [t0],
    "the first reading left the window, the second is still in",
  );
  assert.equal(h.rates.length, 2);
});

test("ETA: the pace since the first submission, none before a task ended or after all did", () => {
  const p = { size: 100, done: 20, failed: 5, started: iso(t0), finished: null };
  assert.equal(etaSeconds(p, t0 + 10_000), 30, "25 in 10 s, 75 to go");
  assert.equal(etaSeconds({ ...p, done: 0, failed: 0 }, t0 + 10_000), undefined);
  assert.equal(etaSeconds({ ...p, done: 100, failed: 0, finished: iso(t0 + 9000) }, t0 + 10_000), undefined);
});

test("cluster top lists each result in flight with its count and ETA, and the lost engines", () => {
  const text = renderTop(
    reading(t0 + 10_000, [], {
      engines: [
        {
          id: 3,
          hostname: "node-a",
          pid: 42,
          engine_set: "local-0",
          state: "lost",
          cpu: null,
          rss: null,
          queued: 0,
          done: 7,
          failed: 0,
          running: null,
        },
      ],
      progress: [
        {
          client: "ada@1234abcd",
          id: 4,
          label: "simulate",
          size: 100,
          submitted: 100,
          done: 20,
          failed: 5,
          started: iso(t0),
          finished: null,
        },
      ],
      progress_more: 2,
    }),
    "default",
    undefined,
  );
  assert.match(text, /simulate #4 \(ada@1234abcd\): 25\/100 · 5 failed · ETA 30\.0s/);
  assert.match(text, /…and 2 more results in flight/);
  assert.match(text, /│ 3 +│ node-a +│ 42 +│ local-0 +│ lost /);
});
