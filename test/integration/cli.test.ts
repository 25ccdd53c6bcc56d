import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import * as fs from "node:fs";
import { promisify } from "node:util";
import { killQuietly, testRoot, until } from "../helpers/cluster";
import { Client } from "../../client/client";
import { connectionFile, isAlive, readConnectionFile, recordedControllerPid } from "../../protocol/connection";
import { CLI_PATH } from "../../paths";

const run = promisify(execFile);
const CLI = CLI_PATH;
const env = { ...process.env, TSPARALLEL_DIR: testRoot };

test("cluster start --daemon / list / stop, 0600 files, an engine started by hand", async () => {
  const profile = `cli${process.pid}`;
  const started = await run(process.execPath, [CLI, "cluster", "start", "-n", "2", "--daemon", "--profile", profile], {
    env,
    timeout: 60_000,
  });
  assert.match(started.stdout, /2 engines registered \[0, 1\]/);
  const file = connectionFile("client", profile);
  const pid = readConnectionFile(file).controller_pid;
  let engine: ReturnType<typeof spawn> | undefined;
  try {
    for (const kind of ["client", "engine"] as const)
      assert.equal(fs.statSync(connectionFile(kind, profile)).mode & 0o777, 0o600);
    assert.equal(readConnectionFile(file).ip, "127.0.0.1");
    const listed = await run(process.execPath, [CLI, "cluster", "list"], { env });
    assert.match(listed.stdout, new RegExp(`${profile}\\s+running\\s+2\\s+${pid}\\s+${testRoot}/profile_${profile}/`));
    engine = spawn(process.execPath, [CLI, "engine", "--file", connectionFile("engine", profile)], {
      env,
      stdio: "ignore",
    });
    const rc = await Client.connect({ profile, activate: false });
    await rc.waitForEngines(3, { timeout: 20_000 });
    assert.deepEqual(rc.ids, [0, 1, 2]);
    assert.equal(await rc.view(2).apply(() => process.pid), engine.pid);
    rc.close();
    await assert.rejects(
      run(process.execPath, [CLI, "cluster", "remove", "--profile", profile], { env }),
      (e: { stderr: string }) =>
        /^tsparallel: cluster .* is running \(controller pid \d+\): stop it first\n$/.test(e.stderr),
    );
    const stopped = await run(process.execPath, [CLI, "cluster", "stop", "--profile", profile], {
      env,
      timeout: 30_000,
    });
    assert.match(stopped.stdout, /stopped/);
    assert.equal(isAlive(pid), false);
    // A stopped profile shows no stale controller pid.
    const after = await run(process.execPath, [CLI, "cluster", "list"], { env });
    assert.match(after.stdout, new RegExp(`${profile}\\s+stopped\\s+-\\s+-\\s`));
    // …and can be forgotten.
    const removed = await run(process.execPath, [CLI, "cluster", "remove", "--profile", profile], { env });
    assert.match(removed.stdout, /^Profile ".*" removed \(/);
    assert.doesNotMatch((await run(process.execPath, [CLI, "cluster", "list"], { env })).stdout, new RegExp(profile));
  } finally {
    killQuietly(pid);
    if (engine?.pid) killQuietly(engine.pid);
  }
});

test("clear one-line errors: no cluster, bad -n, unknown command", async () => {
  const noCluster = await run(process.execPath, [CLI, "cluster", "stop", "--profile", "nothing-here"], { env });
  assert.match(noCluster.stdout, /No cluster is running for profile "nothing-here"/);
  await assert.rejects(
    run(process.execPath, [CLI, "cluster", "start", "-n", "two"], { env }),
    (e: { stderr: string }) => /^tsparallel: -n must be a whole number of engines; got two\n$/.test(e.stderr),
  );
  await assert.rejects(run(process.execPath, [CLI, "frobnicate"], { env }), (e: { stderr: string }) =>
    /unknown command "frobnicate"/.test(e.stderr),
  );
  // Launcher inputs that ssh or a job script would run as code: refused before anything starts.
  const owned = `${testRoot}/owned-${process.pid}`;
  await assert.rejects(
    run(
      process.execPath,
      [CLI, "cluster", "start", "--engines", "ssh", `--hosts=-oProxyCommand=touch\${IFS}${owned}`],
      {
        env,
      },
    ),
    (e: { stderr: string }) =>
      /^tsparallel: bad host ".*" in --hosts: a host name cannot begin with "-"\n$/.test(e.stderr),
  );
  assert.equal(fs.existsSync(owned), false);
  await assert.rejects(
    run(process.execPath, [CLI, "cluster", "start", "--engines", "slurm", `--slurm-args=-p x\ntouch ${owned}`], {
      env,
    }),
    (e: { stderr: string }) => /^tsparallel: --slurm-args holds a control character \("\\n"\)/.test(e.stderr),
  );
  await assert.rejects(
    Client.connect({ profile: "nothing-here" }),
    /no connection file at .*: start a cluster with `tsparallel cluster start -n 4`/,
  );
});

test("a foreground cluster start exits when cluster stop runs in another shell", async () => {
  const profile = `fg${process.pid}`;
  const start = spawn(process.execPath, [CLI, "cluster", "start", "-n", "1", "--profile", profile], {
    env,
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  start.stdout.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => start.once("exit", (code) => resolve(code)));
  try {
    await until(() => out.includes("Press Ctrl-C"), 60_000, "the foreground cluster to start");
    await run(process.execPath, [CLI, "cluster", "stop", "--profile", profile], { env, timeout: 30_000 });
    const code = await Promise.race([exited, new Promise<"hung">((r) => setTimeout(() => r("hung"), 15_000))]);
    assert.equal(code, 0, `cluster start did not exit after cluster stop:\n${out}`);
    assert.match(out, /Cluster stopped\./);
  } finally {
    if (start.pid) killQuietly(start.pid);
    const pid = recordedControllerPid(connectionFile("client", profile));
    if (pid !== undefined) killQuietly(pid);
  }
});
