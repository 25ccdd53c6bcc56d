/** Clients share the engines: a newcomer is not stuck behind another's queue, and a gone client's queue can go. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as path from "node:path";
import { describe, test } from "node:test";
import { Client } from "../../index";
import { PACKAGE_ROOT } from "../../paths";
import { clusterPerTest, killQuietly, until } from "../helpers/cluster";

describe("fairness between clients", () => {
  const clusters = clusterPerTest();

  test("a second client's small map overtakes a first client's long one", async () => {
    const t = await clusters.start(2);
    const big = t.rc.loadBalancedView().map(
      async (x: number) => {
        await new Promise((r) => setTimeout(r, 2));
        return x;
      },
      Array.from({ length: 3000 }, (_, i) => i),
    );
    await until(() => big.progress > 100, 30_000, "the long map to get going");
    const other = await Client.connect({ profile: t.profile, activate: false });
    try {
      assert.deepEqual(await other.loadBalancedView().map((x: number) => x * 2, [1, 2, 3, 4]), [2, 4, 6, 8]);
      assert.ok(big.progress < 2000, `the small map waited for ${big.progress} of the long map's 3000 tasks`);
    } finally {
      other.close();
    }
    await big.cancel();
  });

  test("close({ abortQueued: true }) drops the closed client's queued tasks", async () => {
    const t = await clusters.start(1);
    const leaving = await Client.connect({ profile: t.profile, activate: false });
    const ar = leaving.loadBalancedView().map(
      async (x: number) => new Promise((r) => setTimeout(() => r(x), 20)),
      Array.from({ length: 500 }, (_, i) => i),
    );
    await until(() => ar.progress > 0, 10_000, "the map to start");
    leaving.close({ abortQueued: true });
    await until(async () => (await t.rc.queueStatus()).unassigned === 0, 5000, "the queued tasks to be dropped");
    assert.equal(await t.rc.loadBalancedView().apply(() => "free"), "free");
  });

  test("with --drop-orphans, the queued tasks of a client that died are dropped", async () => {
    const t = await clusters.start(1, { heartbeatPeriod: 200, controllerArgs: ["--drop-orphans"] });
    const script = `const { Client } = require(${JSON.stringify(path.join(PACKAGE_ROOT, "dist", "index.js"))});
Client.connect({ profile: ${JSON.stringify(t.profile)}, activate: false }).then((rc) => {
  rc.loadBalancedView().map(async (x) => new Promise((r) => setTimeout(() => r(x), 20)), Array.from({ length: 1000 }, (_, i) => i)).catch(() => {});
  setTimeout(() => console.log("submitted"), 300);
});`;
    const doomed = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    doomed.stdout.on("data", (d: Buffer) => (out += d.toString()));
    try {
      await until(() => out.includes("submitted"), 20_000, "the doomed client to submit");
      await until(async () => (await t.rc.queueStatus()).unassigned > 0, 10_000, "its tasks to queue");
      killQuietly(doomed.pid!);
      // 1000 × 20 ms would take 20 s; dropped after 10 silent heartbeats (2 s).
      await until(async () => (await t.rc.queueStatus()).unassigned === 0, 10_000, "the orphaned tasks to be dropped");
    } finally {
      killQuietly(doomed.pid!);
    }
  });
});
