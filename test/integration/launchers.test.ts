/**
 * Engines through real schedulers on this host: a private OpenSSH server (engines over ssh, via
 * an ssh config alias) and a private single-node Slurm (engines as a job, through the slurm and
 * the batch launchers). Each engine's ancestry must run through the scheduler that started it,
 * and stopping must leave no engine, job or session behind. Every daemon is ours, stopped by pid.
 */
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { Client, Cluster, CompositeError, RemoteError } from "../../index";
import { connectionFile, readConnectionFile } from "../../protocol/connection";
import { isGone, killQuietly, testRoot, until } from "../helpers/cluster";
import { ancestry, freePort, pidsWithArg, procInfo } from "../helpers/procs";
import { type PrivateSshd, SSHD, startSshd } from "../helpers/sshd";
import { type PrivateSlurm, slurmAvailable, startSlurm } from "../helpers/slurm";
import { CLI_PATH } from "../../paths";

let counter = 0;
const profile = (what: string): string => `${what}${process.pid}_${++counter}`;

/** Runs the CLI with the test's TSPARALLEL_DIR; resolves with its status and output. */
async function cli(args: string[]): Promise<{ status: number | null; out: string }> {
  const { stdout, stderr, code } = await run(process.execPath, [CLI_PATH, ...args]);
  return { status: code, out: stdout + stderr };
}

function run(command: string, args: string[]): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: 180_000 }, (error, stdout, stderr) =>
      resolve({ stdout, stderr, code: error ? (typeof error.code === "number" ? error.code : 1) : 0 }),
    );
  });
}

/** Processes whose arguments hold the cluster's key (none may: every local user reads them). */
function keyHolders(cluster: Cluster): string[] {
  const { key } = readConnectionFile(connectionFile("client", cluster.profile));
  return pidsWithArg(key).map(
    (pid) => `${pid}: ${fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ")}`,
  );
}

async function enginePids(cluster: Cluster): Promise<number[]> {
  return (await cluster.client.engines()).map((e) => e.pid);
}

/** Stops the cluster and waits until every engine process it had is gone (killing them if not). */
async function stopAndCheck(cluster: Cluster, pids: number[]): Promise<void> {
  await cluster.stop();
  await until(() => pids.every(isGone), 20_000, "every engine process to end").catch((e: unknown) => {
    pids.forEach((p) => killQuietly(p));
    throw e;
  });
}

describe(
  "ssh launcher (a private sshd on 127.0.0.1)",
  { skip: !fs.existsSync(SSHD) && "openssh-server is not installed" },
  () => {
    let sshd: PrivateSshd;
    let ssh: string;
    before(async () => {
      sshd = await startSshd(path.join(testRoot, "sshd"), { alias: "node-a" });
      // A second "host": the same server under another alias, as a cluster's hosts would be.
      sshd.addAlias("node-b", sshd.address, sshd.port);
      ssh = `ssh -F ${sshd.config}`;
    });
    after(async () => {
      await sshd?.stop();
    });

    test("engines start on each host of --hosts through the ssh config, under sshd, and stop with the cluster", async () => {
      const cluster = await Cluster.start({
        n: 3,
        profile: profile("ssh"),
        engines: "ssh",
        hosts: "node-a:2,node-b",
        ssh,
      });
      const pids = await enginePids(cluster);
      try {
        assert.equal(pids.length, 3);
        const squares: number[] = await cluster.client.view().map((x: number) => x * x, [1, 2, 3]);
        assert.deepEqual(squares, [1, 4, 9]);
        for (const pid of pids)
          assert.ok(ancestry(pid).includes("sshd"), `engine ${pid}: ${ancestry(pid).join(" < ")}`);
        assert.deepEqual(
          keyHolders(cluster),
          [],
          "ssh, the remote shell and the engines carry no key in their arguments",
        );
        const [set] = await cluster.engineSets();
        assert.equal(set?.kind, "ssh");
        assert.equal(set?.registered, 3);
        assert.equal(set?.state, "running");
      } finally {
        await stopAndCheck(cluster, pids);
      }
    });

    test("a host that refuses ssh fails the start with ssh's own message, and nothing is left", async () => {
      const closed = await freePort();
      sshd.addAlias("node-down", "127.0.0.1", closed);
      await assert.rejects(
        Cluster.start({ n: 1, profile: profile("sshdown"), engines: "ssh", hosts: "node-down", ssh, timeout: 30_000 }),
        /ssh to node-down failed: .*Connection refused/,
      );
    });

    test("`cluster engines` adds an ssh set to a running cluster; `cluster list` shows both sets; `cluster stop` ends all", async () => {
      const p = profile("sshadd");
      const cluster = await Cluster.start({ n: 1, profile: p });
      let pids = await enginePids(cluster);
      try {
        const added = await cli([
          "cluster",
          "engines",
          "-n",
          "2",
          "--engines",
          "ssh",
          "--hosts",
          "node-a",
          "--ssh",
          ssh,
          "--profile",
          p,
        ]);
        assert.equal(added.status, 0, added.out);
        assert.match(
          added.out,
          /Engine set ssh-1 added to cluster ".*": 2 ssh engines registered .*; the cluster has 3 engines/,
        );
        await cluster.client.waitForEngines(3, { timeout: 10_000 });
        pids = await enginePids(cluster);
        const list = await cli(["cluster", "list"]);
        assert.match(list.out, new RegExp(`${p}\\s+running\\s+3`));
        assert.match(list.out, /engine set local-0: local, running, 1 of 1 engines registered/);
        assert.match(list.out, /engine set ssh-1: ssh, running, 2 of 2 engines registered/);
        // signalEngines reaches every set's engines: SIGINT interrupts their busy loops.
        // Each loop says it runs (a file named by its pid) before the signal is sent.
        const flags = fs.mkdtempSync(path.join(testRoot, "loops-"));
        const busy = cluster.client.view().apply((dir: string) => {
          // eslint-disable-next-line @typescript-eslint/no-require-imports -- runs on the engine, as source
          (require("node:fs") as typeof fs).writeFileSync(`${dir}/${process.pid}`, "");
          for (;;);
        }, flags);
        await until(() => fs.readdirSync(flags).length === 3, 15_000, "the three loops to run");
        await cluster.signalEngines("SIGINT");
        await assert.rejects(
          busy.get({ timeout: 15_000 }),
          (e: unknown) =>
            e instanceof CompositeError &&
            e.errors.every((x) => x instanceof RemoteError && x.ename === "KeyboardInterrupt"),
        );
        assert.deepEqual(await cluster.client.view().apply(() => 1), [1, 1, 1], "the engines go on");
        const stop = await cli(["cluster", "stop", "--profile", p]);
        assert.equal(stop.status, 0, stop.out);
        await until(() => pids.every(isGone), 20_000, "every engine of both sets to end");
      } finally {
        await stopAndCheck(cluster, pids);
      }
    });

    test("Client.connect({ sshServer }) tunnels the client through ssh -L; close() ends the tunnel", async () => {
      const p = profile("tunnel");
      const cluster = await Cluster.start({ n: 2, profile: p });
      const pids = await enginePids(cluster);
      try {
        const { ports } = readConnectionFile(connectionFile("client", p));
        const rc = await Client.connect({ profile: p, sshServer: "node-a", sshCommand: ssh, activate: false });
        const tunnels = pidsWithArg(`:${ports.clients}`).filter((pid) => procInfo(pid)?.comm === "ssh");
        assert.equal(tunnels.length, 1, "one ssh process forwards the controller's ports");
        assert.deepEqual(await rc.view().apply(() => 6 * 7), [42, 42]);
        rc.close();
        await until(() => tunnels.every(isGone), 10_000, "the tunnel to end with the client");
        await assert.rejects(
          Client.connect({ profile: p, sshServer: "node-down", sshCommand: ssh, activate: false }),
          /the ssh tunnel to node-down failed: .*Connection refused/,
        );
      } finally {
        await stopAndCheck(cluster, pids);
      }
    });
  },
);

describe(
  "slurm and batch launchers (a private slurmctld + slurmd + munge)",
  { skip: slurmAvailable() ?? false },
  () => {
    let slurm: PrivateSlurm;
    const saved = process.env.SLURM_CONF;
    before(async () => {
      slurm = await startSlurm(path.join(testRoot, "slurm"));
      process.env.SLURM_CONF = slurm.conf; // as a user's shell would have it: the launcher honours it
    });
    after(async () => {
      if (saved === undefined) delete process.env.SLURM_CONF;
      else process.env.SLURM_CONF = saved;
      await slurm?.stop();
    });

    test("--engines slurm: one job that squeue shows, engines under slurmstepd, ids = task ranks; stop cancels it", async () => {
      const cluster = await Cluster.start({
        n: 3,
        profile: profile("slurm"),
        engines: "slurm",
        slurmArgs: ["--time=10", "--comment=two words"],
      });
      const pids = await enginePids(cluster);
      try {
        const [set] = await cluster.engineSets();
        assert.ok(set?.jobId, "the set has a job id");
        assert.deepEqual(slurm.jobs(), [set.jobId]);
        const comment = spawnSync("squeue", ["-h", "-j", set.jobId, "-o", "%k"], { encoding: "utf8" }).stdout.trim();
        assert.equal(comment, "two words", "an argument with a space reaches sbatch as one word");
        assert.deepEqual(cluster.client.ids, [0, 1, 2], "ids follow SLURM_PROCID");
        assert.deepEqual(
          keyHolders(cluster),
          [],
          "sbatch, srun, slurmstepd and the engines carry no key in their arguments",
        );
        const procIds: string[] = await cluster.client.view().apply(() => process.env.SLURM_PROCID ?? "");
        assert.deepEqual(procIds, ["0", "1", "2"]);
        for (const pid of pids)
          assert.ok(ancestry(pid).includes("slurmstepd"), `engine ${pid}: ${ancestry(pid).join(" < ")}`);
      } finally {
        await stopAndCheck(cluster, pids);
      }
      await until(() => slurm.jobs().length === 0, 20_000, "the job to leave squeue");
    });

    test("a submission Slurm rejects shows Slurm's message, and no controller is left", async () => {
      const p = profile("slurmbad");
      await assert.rejects(
        Cluster.start({
          n: 1,
          profile: p,
          engines: "slurm",
          slurmArgs: ["--partition=nosuchpartition"],
          timeout: 30_000,
        }),
        /sbatch failed: .*invalid partition/i,
      );
      assert.equal(slurm.jobs().length, 0);
    });

    test("engines that never register: the error says where their output went", async () => {
      await assert.rejects(
        Cluster.start({
          n: 1,
          profile: profile("slurmdead"),
          engines: "slurm",
          engineCommand: "/bin/false",
          timeout: 30_000,
        }),
        (e: Error) => {
          assert.match(
            e.message,
            /engine set slurm-0 stopped with 0 of 1 engines registered: the Slurm job ended; their output: .*engines-slurm-0\.out/,
          );
          return true;
        },
      );
    });

    test("--engines batch: a job-script template through sbatch and scancel, added with `cluster engines`", async () => {
      const p = profile("batch");
      const template = path.join(testRoot, "engines.sbatch");
      fs.writeFileSync(
        template,
        [
          "#!/bin/sh",
          "#SBATCH --ntasks={n}",
          `#SBATCH --output=${testRoot}/batch-{profile}-%j.out`,
          "echo starting {n} engines for ${SLURM_JOB_ID}",
          "srun {engine_cmd}",
          "",
        ].join("\n"),
      );
      const cluster = await Cluster.start({ n: 0, profile: p });
      let pids: number[] = [];
      try {
        const added = await cli([
          "cluster",
          "engines",
          "-n",
          "2",
          "--profile",
          p,
          "--engines",
          "batch",
          "--submit",
          "sbatch",
          "--cancel",
          "scancel",
          "--template",
          template,
        ]);
        assert.equal(added.status, 0, added.out);
        assert.match(added.out, /Engine set batch-0 added .*: 2 batch engines registered .*\(job \d+\)/);
        await cluster.client.waitForEngines(2, { timeout: 10_000 });
        pids = await enginePids(cluster);
        for (const pid of pids)
          assert.ok(ancestry(pid).includes("slurmstepd"), `engine ${pid}: ${ancestry(pid).join(" < ")}`);
        const [set] = await cluster.engineSets();
        assert.deepEqual(slurm.jobs(), [set!.jobId]);
        const out = fs.readFileSync(path.join(testRoot, `batch-${p}-${set!.jobId}.out`), "utf8");
        assert.match(
          out,
          new RegExp(`starting 2 engines for ${set!.jobId}`),
          "the template's placeholders were filled",
        );
        await cluster.stopEngines(set!.id);
        await until(() => slurm.jobs().length === 0, 20_000, "scancel to end the job");
        await until(() => pids.every(isGone), 20_000, "the batch engines to end");
        assert.equal((await cluster.engineSets())[0]?.state, "stopped");
      } finally {
        await stopAndCheck(cluster, pids);
      }
    });
  },
);
