/**
 * Another local user on the same machine (`nobody`, in a private mount namespace with its own
 * /dev/shm): the shared-memory path must neither leak a user's buffers nor write through links
 * that user planted, and files the dead leave behind are removed by the survivors.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { runScenario, sharedHostUnavailable } from "../helpers/shared-host";

const SCENARIOS = path.join(__dirname, "..", "helpers", "shared-host-scenarios.js");
const skip = sharedHostUnavailable();

describe("a second user on the host", { skip }, () => {
  test("a folder another user made first, open to all and full of links, is not used: one warning, data intact", async () => {
    const { status, report, stderr } = await runScenario(SCENARIOS, ["takeover"], "64m");
    assert.equal(status, 0, stderr);
    assert.equal(report.lootBytes, 0, "nothing reached the attacker's hard-linked file");
    assert.equal(report.preciousIntact, true, "nothing was written through the attacker's symlink");
    assert.equal(report.pulledOk, true);
    assert.equal(report.sum, 2 + (4 * 1024 * 1024) / 8 - 1 + 2);
    assert.deepEqual(report.ours, []);
    assert.match(stderr, /not using shared memory for large buffers: \/dev\/shm\/tsparallel-0 belongs to uid 65534/);
    assert.equal(stderr.match(/not using shared memory/g)?.length, 1, "one warning from the client");
  });

  test("our own folder is 0700 with unguessable names; a killed client's and engine's files go at once", async () => {
    const { status, report, stderr } = await runScenario(SCENARIOS, ["privateFolder"], "64m");
    assert.equal(status, 0, stderr);
    assert.equal(report.mode, "700");
    assert.equal(report.owner, 0);
    assert.match(String((report.ours as string[])[0]), /^\d+-\d+\.[A-Za-z0-9_-]{16}$/);
    assert.notEqual(report.listStatus, 0, "nobody cannot list the folder");
    assert.notEqual(report.readStatus, 0, "nobody cannot read a file in it, even by name");
    assert.match(String(report.readStderr), /Permission denied/);
    assert.equal((report.othersFiles as string[]).length, 1, "the other client's push was held in a file");
    assert.ok((report.beforeLoss as string[]).length >= 3, "both pushes and the marker, until the engine is lost");
    assert.match(String(report.heldError), /Engine 0 died/);
    assert.deepEqual(report.after, []);
  });

  test("a /dev/shm too small for a buffer leaves no partial file, and the data takes the controller path", async () => {
    const { status, report, stderr } = await runScenario(SCENARIOS, ["full"], "6m");
    assert.equal(status, 0, stderr);
    assert.equal(report.pulledOk, true);
    assert.equal((report.left as string[]).length, 1, `only the engine's marker: ${String(report.left)}`);
  });
});

describe("comm on a /dev/shm too small for its windows", { skip }, () => {
  test("the allreduce fails on every member in one line saying what to do, leaves nothing, and works over the sockets", async () => {
    const { status, report, stderr } = await runScenario(SCENARIOS, ["commFull"], "6m");
    assert.equal(status, 0, stderr);
    assert.equal(report.shared, true);
    assert.match(
      String(report.failed),
      /rank \d \(engine \d\) of communicator \S+ failed: ENOSPC.*\/dev\/shm is full: form the communicator with view\.comm\(\{ sharedMemory: false \}\)/,
    );
    assert.equal((report.left as string[]).length, 3, `only the engines' markers: ${String(report.left)}`);
    assert.equal(report.sockets, false);
    assert.deepEqual(report.sums, [6, 6, 6]);
  });
});

describe("the task database on a failing file system", { skip }, () => {
  for (const [scenario, what] of [
    ["dbFull", "that fills up (ENOSPC)"],
    ["dbReadOnly", "turned read-only mid-run (EROFS)"],
  ] as const)
    test(`on a file system ${what}: one line in the log, the controller keeps serving and stops when asked`, async () => {
      const { status, report, stderr } = await runScenario(SCENARIOS, [scenario], "64m");
      assert.equal(status, 0, stderr);
      assert.deepEqual(
        report.results,
        Array.from({ length: 24 }, (_, i) => 256 * 1024 + i),
        "every task ran and answered",
      );
      assert.equal(report.early, 256 * 1024, "an early result is still fetched");
      const failures = report.failures as string[];
      assert.equal(failures.length, 1, failures.join("\n"));
      const errno = scenario === "dbFull" ? "ENOSPC" : "EROFS";
      assert.match(
        failures[0]!,
        new RegExp(`task database: using /tmp/tsp-db-\\w+/tasks\\.sqlite failed \\(.*${errno}.*\\); from now on`),
      );
      assert.equal(report.stopped, 0, "SIGTERM stops it, with status 0");
      assert.deepEqual(report.left, []);
    });
});
