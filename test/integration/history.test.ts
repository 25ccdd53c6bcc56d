/** Task history and results across clients, as ipyparallel's Hub queries give them; and their SQLite store. */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { promisify } from "node:util";
import { Client, Cluster, RemoteError } from "../../index";
import { CLI_PATH } from "../../paths";
import { connectionFile, readConnectionFile } from "../../protocol/connection";
import { clusterPerTest, isGone, killQuietly, testRoot, until } from "../helpers/cluster";

const run = promisify(execFile);

describe("task history across clients", () => {
  const clusters = clusterPerTest();

  test("a second client fetches a first client's results by msg id, finished and live, output included", async () => {
    const t = await clusters.start(2);
    const first = t.rc.view(0).apply(() => {
      console.log("hello from the first client");
      return 41 + 1;
    });
    assert.equal(await first, 42);
    const slow = t.rc.loadBalancedView().apply(async () => new Promise((r) => setTimeout(() => r("late"), 300)));
    const second = await Client.connect({ profile: t.profile, activate: false });
    try {
      const fetched = second.getResult<number>(first.msgIds[0]!);
      assert.equal(await fetched, 42);
      assert.equal(fetched.stdout[0], "hello from the first client\n");
      assert.equal(await second.getResult(slow.msgIds[0]!), "late");
      assert.deepEqual(await second.resultStatus([first.msgIds[0]!, slow.msgIds[0]!]), {
        pending: [],
        completed: [first.msgIds[0]!, slow.msgIds[0]!],
      });
      const history = await second.history();
      assert.ok(first.msgIds.every((id) => history.includes(id)));
      await assert.rejects(second.getResult("no-such-id"), /unknown msg id\(s\): no-such-id/);
    } finally {
      second.close();
    }
  });

  test("labels, dbQuery, resubmit and purgeResults", async () => {
    const t = await clusters.start(2);
    const lv = t.rc.loadBalancedView();
    const since = new Date(Date.now() - 1000);
    await lv.map((x: number) => x + 1, [1, 2, 3], { label: "stage-1" });
    const failing = lv.with({ label: "stage-2" }).apply(() => {
      throw new RangeError("bad stage");
    });
    await assert.rejects(failing, RemoteError);
    const stage1 = await t.rc.dbQuery({ label: "stage-1", completed: { $gt: since } }, ["engineId", "state"]);
    assert.equal(stage1.length, 3);
    assert.ok(stage1.every((r) => r.state === "done" && typeof r.engineId === "number" && !("stdout" in r)));
    assert.deepEqual(
      (await t.rc.dbQuery({ label: { $in: ["stage-2"] }, state: "failed" })).map((r) => r.msgId),
      failing.msgIds,
    );
    await assert.rejects(t.rc.dbQuery({ colour: "red" }), /malformed dbQuery: unknown field "colour"/);
    await assert.rejects(t.rc.dbQuery({ label: { $like: "x" } }), /unknown operator \$like on label/);

    const again = t.rc.resubmit(stage1[0]!.msgId as string);
    // A map task's result is its chunk: one item here.
    const chunk = (await again) as number[];
    assert.ok(chunk.length === 1 && [2, 3, 4].includes(chunk[0]!), String(chunk));
    assert.notEqual(again.msgIds[0], stage1[0]!.msgId);
    const running = lv.apply(async () => new Promise((r) => setTimeout(r, 2000)));
    await until(async () => (await t.rc.resultStatus(running.msgIds)).pending.length === 1);
    await assert.rejects(t.rc.resubmit(running.msgIds), /cannot resubmit tasks that have not finished/);
    await assert.rejects(t.rc.resubmit("no-such-id"), /unknown msg id/);
    await assert.rejects(t.rc.purgeResults(running.msgIds), /cannot purge tasks that have not finished/);

    const purged = await t.rc.purgeResults(failing.msgIds);
    assert.deepEqual(purged, failing.msgIds);
    assert.ok(!(await t.rc.history()).includes(failing.msgIds[0]!));
    await running;
  });
});

test("a SQLite-backed controller restarted with --reuse still answers getResult for finished tasks", async () => {
  const profile = `db${process.pid}`;
  const file = path.join(testRoot, `tasks-${process.pid}.sqlite`);
  const cluster = await Cluster.start({ n: 1, profile, controllerArgs: ["--db", `sqlite:${file}`] });
  const pids = (await cluster.client.engines()).map((e) => e.pid);
  let restarted: number | undefined;
  try {
    const ar = cluster.client.view(0).apply(() => ({ answer: 42, at: "first controller" }));
    await ar;
    const id = ar.msgIds[0]!;
    await cluster.stop();
    assert.ok(fs.existsSync(file));
    // A new controller on the same connection files and the saved records (no engines).
    restarted = await reuseController(profile, file);
    const rc = await Client.connect({ profile, activate: false, timeout: 10_000 });
    try {
      assert.deepEqual(await rc.getResult(id), { answer: 42, at: "first controller" });
      assert.equal((await rc.dbQuery({ msgId: id }, ["state"]))[0]?.state, "done");
    } finally {
      rc.close();
    }
  } finally {
    await stopAll(restarted, pids);
  }
});

test("--db at a path that cannot be written says so in one line, and nothing is left running", async () => {
  const profile = `baddb${process.pid}`;
  const result = await run(
    process.execPath,
    [CLI_PATH, "controller", "--profile", profile, "--db", "sqlite:/etc/hostname/tasks.sqlite"],
    {
      env: { ...process.env, TSPARALLEL_DIR: testRoot },
      timeout: 30_000,
    },
  ).then(
    () => assert.fail("the controller started"),
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(result.code, 1);
  assert.match(
    result.stderr,
    /^tsparallel: cannot use the task database at \/etc\/hostname\/tasks\.sqlite: .*writable path\n$/,
  );
});

/** Stops the restarted controller (SIGTERM, as a user would) and kills the first cluster's engines. */
async function stopAll(restarted: number | undefined, enginePids: number[]): Promise<void> {
  if (restarted) killQuietly(restarted, "SIGTERM");
  if (restarted) await until(() => isGone(restarted), 10_000, "the restarted controller to stop");
  enginePids.forEach((p) => killQuietly(p));
}

/** A controller alone on a profile's connection files and a task database (no engines). */
async function reuseController(profile: string, file: string, extra: string[] = []): Promise<number> {
  const controller = spawn(
    process.execPath,
    [CLI_PATH, "controller", "--profile", profile, "--reuse", "--db", `sqlite:${file}`, ...extra],
    { stdio: "ignore", env: { ...process.env, TSPARALLEL_DIR: testRoot } },
  );
  await until(() => readConnectionFile(connectionFile("client", profile)).controller_pid === controller.pid, 20_000);
  return controller.pid!;
}

test("the task database keeps what memory lets go, written in place, and a restarted controller answers for every record", async () => {
  const profile = `dbbig${process.pid}`;
  const file = path.join(testRoot, `tasks-big-${process.pid}.sqlite`);
  const cluster = await Cluster.start({ n: 2, profile, controllerArgs: ["--db", `sqlite:${file}`] });
  const pids = (await cluster.client.engines()).map((e) => e.pid);
  let restarted: number | undefined;
  try {
    const lview = cluster.client.loadBalancedView();
    // 200 requests of 900 KB: more than the 128 MB of payloads the controller keeps in memory.
    const arg = new Uint8Array(900 * 1024);
    const ids: string[] = [];
    const first = lview.apply((b: Uint8Array, i: number) => b.length + i, arg, 0);
    await first;
    ids.push(first.msgIds[0]!);
    const inode = fs.statSync(file).ino;
    for (let i = 1; i < 200; i += 20) {
      const batch = Array.from({ length: 20 }, (_, k) =>
        lview.apply((b: Uint8Array, j: number) => b.length + j, arg, i + k),
      );
      await Promise.all(batch);
      ids.push(...batch.map((ar) => ar.msgIds[0]!));
    }
    assert.equal(await cluster.client.getResult(ids[0]!), 900 * 1024, "memory let its payload go; the file has it");
    assert.equal(fs.statSync(file).ino, inode, "the file is written in place, not replaced whole");
    assert.deepEqual(
      fs.readdirSync(testRoot).filter((f) => f.startsWith(path.basename(file)) && f.endsWith(".tmp")),
      [],
    );
    await cluster.stop();
    restarted = await reuseController(profile, file);
    const rc = await Client.connect({ profile, activate: false, timeout: 10_000 });
    try {
      const history = await rc.history();
      assert.ok(
        ids.every((id) => history.includes(id)),
        "history names every recorded task",
      );
      for (const [i, id] of ids.entries()) assert.equal(await rc.getResult(id), 900 * 1024 + i);
      const [oldest] = await rc.dbQuery({ msgId: ids[0]! }, ["hasResult", "state"]);
      assert.deepEqual(oldest, { msgId: ids[0], hasResult: true, state: "done" });
    } finally {
      rc.close();
    }
  } finally {
    await stopAll(restarted, pids);
  }
});

test("--db-max-mb bounds the file: the oldest records go first", async () => {
  const profile = `dbcap${process.pid}`;
  const file = path.join(testRoot, `tasks-cap-${process.pid}.sqlite`);
  const cluster = await Cluster.start({
    n: 1,
    profile,
    controllerArgs: ["--db", `sqlite:${file}`, "--db-max-mb", "8"],
  });
  const pids = (await cluster.client.engines()).map((e) => e.pid);
  let restarted: number | undefined;
  try {
    const arg = new Uint8Array(900 * 1024);
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      const ar = cluster.client.loadBalancedView().apply((b: Uint8Array) => b.length, arg);
      await ar;
      ids.push(ar.msgIds[0]!);
    }
    await cluster.stop();
    assert.ok(fs.statSync(file).size <= 9 * 2 ** 20, `the file is ${fs.statSync(file).size} bytes`);
    restarted = await reuseController(profile, file, ["--db-max-mb", "8"]);
    const rc = await Client.connect({ profile, activate: false, timeout: 10_000 });
    try {
      const history = await rc.history();
      assert.ok(history.includes(ids.at(-1)!), "the newest record is kept");
      assert.ok(!history.includes(ids[0]!), "the oldest went first");
      assert.ok(history.length >= 5 && history.length < 40, `${history.length} records kept`);
    } finally {
      rc.close();
    }
  } finally {
    await stopAll(restarted, pids);
  }
});
