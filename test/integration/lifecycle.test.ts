/** Who owns a cluster: one start per profile at a time, and a script's cluster ends with the script. */
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { connectionFile, profileDir, readConnectionFile, recordedControllerPid } from "../../protocol/connection";
import { CLI_PATH, PACKAGE_ROOT } from "../../paths";
import { isGone, killQuietly, testRoot, until } from "../helpers/cluster";

const run = promisify(execFile);
const env = { ...process.env, TSPARALLEL_DIR: testRoot };

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

test("two cluster starts on one profile at the same moment: exactly one wins, the other says why", async () => {
  const profile = `race${process.pid}`;
  const starts = [0, 1].map(() =>
    spawn(process.execPath, [CLI_PATH, "cluster", "start", "-n", "1", "--daemon", "--profile", profile], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  const stderr = ["", ""];
  starts.forEach((s, i) => s.stderr.on("data", (d: Buffer) => (stderr[i] += d.toString())));
  try {
    const codes = await Promise.all(starts.map(exitOf));
    assert.deepEqual([...codes].sort(), [0, 1], stderr.join("\n"));
    const loser = stderr[codes.indexOf(1)]!;
    assert.match(loser, /^tsparallel: (another process \(pid \d+\) is starting|a cluster is already running)/);
    assert.equal(loser.trim().split("\n").length, 1, "one line");
  } finally {
    await run(process.execPath, [CLI_PATH, "cluster", "stop", "--profile", profile], { env, timeout: 30_000 });
  }
  assert.ok(!fs.existsSync(path.join(profileDir(profile), "start.lock")), "the lock is released");
});

test("a script's cluster ends when the script is killed, however it dies; the profile is free again", async () => {
  const profile = `owned${process.pid}`;
  const script = `const { Cluster } = require(${JSON.stringify(path.join(PACKAGE_ROOT, "dist", "index.js"))});
Cluster.start({ n: 2, profile: ${JSON.stringify(profile)} }).then(async (c) => {
  console.log(JSON.stringify((await c.client.engines()).map((e) => e.pid)));
});
setInterval(() => {}, 1000);`;
  const owner = spawn(process.execPath, ["-e", script], { env, stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  owner.stdout.on("data", (d: Buffer) => (out += d.toString()));
  let controller: number | undefined;
  let engines: number[] = [];
  try {
    await until(() => out.includes("]"), 60_000, "the script's cluster to start");
    engines = JSON.parse(out) as number[];
    controller = recordedControllerPid(connectionFile("client", profile));
    assert.ok(controller);
    killQuietly(owner.pid!, "SIGKILL");
    await until(() => isGone(controller!), 10_000, "the controller to notice its owner is gone");
    await until(() => engines.every(isGone), 10_000, "the engines to stop");
    // The log holds users' crash output: owner-only.
    const log = path.join(profileDir(profile), "log");
    assert.equal(fs.statSync(log).mode & 0o777, 0o700);
    assert.equal(fs.statSync(path.join(log, "controller.log")).mode & 0o777, 0o600);
    const again = await run(
      process.execPath,
      [CLI_PATH, "cluster", "start", "-n", "1", "--daemon", "--profile", profile],
      {
        env,
        timeout: 60_000,
      },
    );
    assert.match(again.stdout, /1 engines registered/);
    assert.notEqual(readConnectionFile(connectionFile("client", profile)).controller_pid, controller);
  } finally {
    killQuietly(owner.pid!);
    if (controller) killQuietly(controller);
    engines.forEach((p) => killQuietly(p));
    await run(process.execPath, [CLI_PATH, "cluster", "stop", "--profile", profile], { env, timeout: 30_000 });
  }
});
