import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type TestCluster, clusterPerTest, until } from "../helpers/cluster";
import { Client } from "../../client/client";
import { connectionFile, readConnectionFile } from "../../protocol/connection";

describe("security and shutdown", () => {
  const clusters = clusterPerTest();
  let t: TestCluster | undefined;

  test("--curve encrypts: the connection file carries the server key; clients, engines and direct tasks work", async () => {
    t = await clusters.start(2, { controllerArgs: ["--curve"], heartbeatPeriod: 200 });
    let lost = 0;
    t.rc.on("unregistration", () => lost++);
    const info = readConnectionFile(connectionFile("client", t.profile));
    assert.match(info.curve_serverkey ?? "", /^.{40}$/);
    const secret = JSON.parse(fs.readFileSync(connectionFile("controller", t.profile), "utf8")) as {
      curve?: { secretKey: string };
    };
    assert.ok(
      secret.curve?.secretKey && !JSON.stringify(info).includes(secret.curve.secretKey),
      "the server secret stays out of client.json",
    );
    assert.deepEqual(await t.rc.view().apply((x: number) => x + 1, 1), [2, 2]);
    // DirectView tasks reach the engines' own sockets through CURVE too (each engine's key).
    const rc = t.rc;
    await until(async () => (await rc.view(1).apply(() => 1)) === 1 && rc.directTasks > 0, 15_000, "a direct task");
    // The hearts echo through CURVE too: past the 1 s (5 × 200 ms) a silent one would be lost in.
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(lost, 0);
    assert.deepEqual(t.rc.ids, [0, 1]);
  });

  test("a client with the wrong key is told what may be wrong, and nothing crashes", async () => {
    t = await clusters.start(1);
    const info = readConnectionFile(connectionFile("client", t.profile));
    const forged = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "tsp-key-")), "client.json");
    fs.writeFileSync(forged, JSON.stringify({ ...info, key: "wrong" }));
    await assert.rejects(
      Client.connect({ file: forged, timeout: 500, activate: false }),
      /did not answer within 500 ms: the cluster is not running .*its key is not the controller's .*has no curve_serverkey/,
    );
    // A connection file whose controller has exited fails at once with its own message (the pid
    // check), not after the 10 s connection timeout.
    const stale = path.join(path.dirname(forged), "stale.json");
    fs.writeFileSync(stale, JSON.stringify({ ...info, controller_pid: 2 ** 22 + 17 }));
    await assert.rejects(
      Client.connect({ file: stale, timeout: 10_000, activate: false }),
      /its controller \(pid 4194321\) has exited; start one with `tsparallel cluster start -n 4`/,
    );
    assert.ok(((await t.rc.stats()).dropped["bad-signature"] ?? 0) >= 1);
    assert.equal(await t.rc.view(0).apply(() => 1), 1);
  });

  test("shutdown stops engines, then the controller with hub: true", async () => {
    t = await clusters.start(2);
    await t.rc.shutdown({ targets: 1 });
    await until(() => t!.rc.ids.length === 1, 5000, "engine 1 to stop");
    assert.deepEqual(t.rc.ids, [0]);
    const exited = new Promise((r) => t!.cluster.process!.once("exit", r));
    await t.rc.shutdown({ hub: true });
    await exited;
  });
});
