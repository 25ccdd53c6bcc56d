/**
 * The controller's monitor stream on a real cluster: readings while someone watches, task events
 * carried once with their labels and errors, a killed engine gone from the next reading, a
 * wrong key hearing nothing; and `tsparallel cluster top --once` printing one row per engine.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { after, test } from "node:test";
import { clusterPerTest, killQuietly, testRoot, until } from "../helpers/cluster";
import { MonitorFeed } from "../../client/monitor-feed";
import { connectionFile, readConnectionFile } from "../../protocol/connection";
import type { MonitorUpdate } from "../../protocol/messages";
import { CLI_PATH } from "../../paths";

const run = promisify(execFile);
const clusters = clusterPerTest();
const feeds: MonitorFeed[] = [];
after(() => feeds.forEach((f) => f.close()));

/** Reads the feed in the background, keeping every reading. */
function watch(feed: MonitorFeed): MonitorUpdate[] {
  const seen: MonitorUpdate[] = [];
  void (async () => {
    try {
      for await (const u of feed) seen.push(u);
    } catch {
      // closed
    }
  })();
  return seen;
}

test("a watcher gets readings: every finished task once, with its label and first error line", async () => {
  const { rc, profile } = await clusters.start(2);
  const feed = MonitorFeed.open(readConnectionFile(connectionFile("client", profile)));
  feeds.push(feed);
  const seen = watch(feed);
  await until(() => seen.length > 0, 20_000, "a first reading");
  assert.deepEqual(
    seen[0]!.engines.map((e) => e.id),
    [0, 1],
  );
  const lview = rc.loadBalancedView();
  const ar = lview.with({ label: "square" }).map((x: number) => x * x, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.deepEqual(await ar, [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]);
  await assert.rejects(
    rc.view(1).apply(function explode() {
      throw new RangeError("too big\nsecond line");
    }),
  );
  const tasks = (): MonitorUpdate["tasks"] => seen.flatMap((u) => u.tasks);
  await until(() => tasks().length >= 11, 10_000, "the 11 tasks in the stream");
  const all = tasks();
  assert.equal(new Set(all.map((t) => t.msg_id)).size, all.length, "each task carried once");
  const squares = all.filter((t) => t.label === "square");
  assert.equal(squares.length, 10);
  assert.deepEqual(new Set(ar.msgIds), new Set(squares.map((t) => t.msg_id)));
  const failed = all.find((t) => t.status === "failed")!;
  assert.equal(failed.label, "explode");
  assert.equal(failed.engine_id, 1);
  assert.equal(failed.error, "RangeError: too big");
  const last = seen.at(-1)!;
  assert.equal(
    last.engines.reduce((a, e) => a + e.done + e.failed, 0),
    11,
    "per-engine counts add up",
  );
  // Each result's progress: the map's 10 and the apply's 1, from this client.
  const progress = (): MonitorUpdate["progress"] => seen.at(-1)!.progress;
  await until(() => progress().filter((p) => p.finished !== null).length === 2, 10_000, "both results ended");
  assert.deepEqual(
    progress().map((p) => [p.label, p.size, p.submitted, p.done, p.failed]),
    [
      ["square", 10, 10, 10, 0],
      ["explode", 1, 1, 0, 1],
    ],
  );
  // Each engine reads its own CPU and memory once a second.
  await until(() => seen.at(-1)!.engines.every((e) => e.rss !== null), 10_000, "every engine's own reading");
  assert.ok(seen.at(-1)!.engines.every((e) => e.rss! > 10 * 2 ** 20 && e.cpu! >= 0));
});

test("an engine killed with SIGKILL reads lost, a restarted one restarting; a wrong key hears nothing", async () => {
  const t = await clusters.start(3);
  const { rc, profile } = t;
  const info = readConnectionFile(connectionFile("client", profile));
  const feed = MonitorFeed.open(info);
  feeds.push(feed);
  const seen = watch(feed);
  await until(() => seen.at(-1)?.engines.length === 3, 20_000, "three engines in a reading");
  const [, victim] = await t.pids();
  killQuietly(victim!);
  const states = (): Array<[number, string]> => seen.at(-1)!.engines.map((e) => [e.id, e.state]);
  await until(() => states().some(([, s]) => s === "lost"), 10_000, "the killed engine lost in the readings");
  assert.deepEqual(states(), [
    [0, "idle"],
    [1, "lost"],
    [2, "idle"],
  ]);
  // A direct map over the two left: one result of 2 tasks, counted from the engines' copies.
  const doubled = await rc.view([0, 2]).map((x: number) => 2 * x, [1, 2, 3, 4]);
  assert.deepEqual(doubled, [2, 4, 6, 8]);
  await until(
    () => seen.at(-1)!.progress.some((p) => p.size === 2 && p.done === 2),
    10_000,
    "the direct map's progress, 2 of 2",
  );
  // Restarted by its launcher: it comes back under a new id, which takes its row (no stale
  // "restarting" row is left; the state between is the unit test's, as readings may miss it).
  await rc.restartEngine(2);
  await until(() => states().length === 3 && states()[2]![0] > 2, 60_000, "engine 2's replacement in its place");
  assert.deepEqual(states(), [
    [0, "idle"],
    [1, "lost"],
    [states()[2]![0], "idle"],
  ]);
  const forged = MonitorFeed.open({ ...info, key: "not-the-key" });
  feeds.push(forged);
  await assert.rejects(forged.next(1500), /no reading from the controller's monitor stream/);
  assert.ok((forged.dropped["bad-signature"] ?? 0) > 0, "its readings were dropped as unsigned");
  await rc.view(0).apply(() => 1);
});

test("cluster top --once prints one row per engine of a cluster running a map", async () => {
  const { rc, profile } = await clusters.start(4);
  const busy = rc.loadBalancedView().map(
    (x: number) => {
      const until = Date.now() + 25;
      while (Date.now() < until);
      return x;
    },
    Array.from({ length: 400 }, (_, i) => i),
  );
  await until(async () => (await rc.queueStatus()).unassigned < 380, 20_000, "the map under way");
  const env = { ...process.env, TSPARALLEL_DIR: testRoot };
  const { stdout } = await run(process.execPath, [CLI_PATH, "cluster", "top", "--once", "--profile", profile], {
    env,
    timeout: 30_000,
  });
  const rows = stdout.split("\n").filter((l) => /^│ \d+ /.test(l));
  assert.equal(rows.length, 4, stdout);
  for (const row of rows) {
    const cells = row.split("│").map((c) => c.trim());
    const [queued, done] = [Number(cells[8]), Number(cells[9])];
    assert.ok(queued + done > 0, `a non-zero task count: ${row}`);
  }
  assert.match(stdout, /4 engines/);
  await busy;
  await assert.rejects(
    run(process.execPath, [CLI_PATH, "cluster", "top", "--once", "--profile", `${profile}-none`], { env }),
    (e: { stderr: string }) => /^tsparallel: no connection file at .*\n$/.test(e.stderr),
  );
});
