/** The short chaos run (the benchmark runs the long one): no result lost, nothing left running. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { chaos } from "../helpers/chaos";
import { isGone, killQuietly, startCluster, until } from "../helpers/cluster";

test("chaos: kills, stops and exits during an 8,000-task map; every result arrives, in order", async () => {
  const t = await startCluster(4, { restartEngines: true });
  const pids = new Set((await t.rc.engines()).map((e) => e.pid));
  t.rc.on("registration", (e: { pid: number }) => pids.add(e.pid));
  const controller = t.cluster.pid;
  try {
    const report = await chaos(t.cluster, { tasks: 8000, everyMs: 250 });
    assert.ok(report.faults.kill + report.faults.stop + report.faults.exit > 0, "some faults were injected");
  } finally {
    await t.stop();
    for (const pid of pids) killQuietly(pid, "SIGCONT");
  }
  await until(() => isGone(controller) && [...pids].every(isGone), 15_000, "every process of the cluster to end");
});
