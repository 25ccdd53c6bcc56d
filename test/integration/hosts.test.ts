/**
 * Three hosts on one machine: network namespaces joined by a bridge (all addresses are the test's
 * own, inside namespaces it creates and removes), each with its own sshd.
 *
 * host A runs the controller, bound to its bridge address with CURVE; hosts B and C get engines
 * over ssh; a client on host C reaches the controller through an ssh tunnel to A. During a
 * load-balanced map with retries, every engine process on B is killed: all results must arrive.
 * Then `cluster stop` must leave no process of ours in any namespace.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { killQuietly, testRoot, until } from "../helpers/cluster";
import { type PrivateSshd, SSHD, startSshd } from "../helpers/sshd";
import { procInfo } from "../helpers/procs";
import { CLI_PATH, PACKAGE_ROOT } from "../../paths";

const tag = String(process.pid % 100000);
const SWITCH = `tsps${tag}`;
const HOSTS = [
  { name: "hostA", ns: `tspa${tag}`, address: "10.213.7.1" },
  { name: "hostB", ns: `tspb${tag}`, address: "10.213.7.2" },
  { name: "hostC", ns: `tspc${tag}`, address: "10.213.7.3" },
] as const;
const SSH_PORT = 2222;
const profile = `hosts${tag}`;

function ip(...args: string[]): void {
  const r = spawnSync("ip", args);
  if (r.status !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr.toString().trim()}`);
}

function nsPids(ns: string): number[] {
  const r = spawnSync("ip", ["netns", "pids", ns]);
  return (r.stdout?.toString() ?? "")
    .split(/\s+/)
    .filter((s) => s.length > 0)
    .map(Number);
}

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
  } catch {
    return "";
  }
}

/** Runs our CLI inside a namespace; resolves with its exit code and output. */
function cliIn(ns: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn("ip", ["netns", "exec", ns, process.execPath, CLI_PATH, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

const canRun = ((): string | false => {
  if (!fs.existsSync(SSHD)) return "openssh-server is not installed";
  if (process.getuid?.() !== 0) return "network namespaces need root";
  const probe = spawnSync("ip", ["netns", "add", `tspprobe${tag}`]);
  if (probe.status !== 0) return `ip netns is not available: ${probe.stderr.toString().trim()}`;
  spawnSync("ip", ["netns", "delete", `tspprobe${tag}`]);
  return false;
})();

const sshds: PrivateSshd[] = [];
let sshConfig = "";

before(async () => {
  if (canRun) return;
  ip("netns", "add", SWITCH);
  ip("-n", SWITCH, "link", "add", "br0", "type", "bridge");
  ip("-n", SWITCH, "link", "set", "br0", "up");
  for (const [i, h] of HOSTS.entries()) {
    ip("netns", "add", h.ns);
    ip("-n", h.ns, "link", "set", "lo", "up");
    ip("-n", h.ns, "link", "add", "eth0", "type", "veth", "peer", "name", `port${i}`, "netns", SWITCH);
    ip("-n", SWITCH, "link", "set", `port${i}`, "master", "br0");
    ip("-n", SWITCH, "link", "set", `port${i}`, "up");
    ip("-n", h.ns, "addr", "add", `${h.address}/24`, "dev", "eth0");
    ip("-n", h.ns, "link", "set", "eth0", "up");
  }
  const dir = path.join(testRoot, "hosts");
  for (const h of HOSTS) {
    const sshd = await startSshd(dir, { alias: h.name, address: h.address, netns: h.ns, port: SSH_PORT });
    sshds.push(sshd);
    sshConfig = sshd.config;
  }
});

after(async () => {
  if (canRun) return;
  for (const s of sshds) await s.stop();
  for (const h of HOSTS) for (const pid of nsPids(h.ns)) killQuietly(pid);
  for (const ns of [...HOSTS.map((h) => h.ns), SWITCH]) spawnSync("ip", ["netns", "delete", ns]);
});

test(
  "controller on A (--ip, --curve), engines over ssh on B and C, a tunnelled client on C; B's engines die mid-map",
  { skip: canRun },
  async () => {
    const [A, B, C] = HOSTS;
    const ssh = `ssh -F ${sshConfig}`;
    const started = await cliIn(A.ns, [
      "cluster",
      "start",
      "-n",
      "4",
      "--profile",
      profile,
      "--daemon",
      "--engines",
      "ssh",
      "--hosts",
      `${B.name}:2,${C.name}:2`,
      "--ssh",
      ssh,
      "--ip",
      A.address,
      "--curve",
    ]);
    let client: ChildProcess | undefined;
    try {
      assert.equal(started.code, 0, started.out);
      assert.match(started.out, /4 engines registered/);
      const engineOn = (ns: string): number[] =>
        nsPids(ns).filter((p) => cmdline(p).startsWith(`${process.execPath} ${CLI_PATH} engine`));
      const seen = (ns: string): string =>
        nsPids(ns)
          .map((p) => `${p}: ${cmdline(p)}`)
          .join("; ");
      assert.equal(engineOn(B.ns).length, 2, `two engines on host B: ${seen(B.ns)}`);
      assert.equal(engineOn(C.ns).length, 2, "two engines on host C");
      for (const pid of [...engineOn(B.ns), ...engineOn(C.ns)])
        assert.equal(procInfo(procInfo(procInfo(pid)!.ppid)!.ppid)?.comm, "sshd", `engine ${pid} runs under sshd`);

      // A client on A sends DirectView tasks straight to the engines on B and C (CURVE, each
      // engine's own key): a round in which all four went direct.
      const direct = path.join(testRoot, "hosts-direct.js");
      fs.writeFileSync(
        direct,
        `
const { Client } = require(${JSON.stringify(PACKAGE_ROOT)});
(async () => {
  const rc = await Client.connect({ profile: ${JSON.stringify(profile)} });
  for (let round = 0; round < 300; round++) {
    const before = rc.directTasks;
    const hosts = await rc.view().apply(() => require("node:os").networkInterfaces().eth0[0].address);
    if (rc.directTasks - before === 4) { console.log("DIRECT " + JSON.stringify(hosts.sort())); break; }
  }
  rc.close();
})().catch((e) => { console.log("FAILED " + e.message); process.exit(1); });
`,
      );
      const directRun = spawnSync("ip", ["netns", "exec", A.ns, process.execPath, direct], { timeout: 60_000 });
      assert.match(
        directRun.stdout.toString(),
        /DIRECT \["10\.213\.7\.2","10\.213\.7\.2","10\.213\.7\.3","10\.213\.7\.3"\]/,
        directRun.stderr.toString(),
      );

      // The client on C: through an ssh tunnel to A, an LB map with retries; it says when it is halfway.
      const script = path.join(testRoot, "hosts-client.js");
      fs.writeFileSync(
        script,
        `
const { Client } = require(${JSON.stringify(PACKAGE_ROOT)});
(async () => {
  const rc = await Client.connect({ profile: ${JSON.stringify(profile)}, sshServer: "${A.name}", sshCommand: ${JSON.stringify(ssh)} });
  const hosts = await rc.view().apply(() => require("node:os").networkInterfaces().eth0[0].address);
  console.log("HOSTS " + JSON.stringify(hosts) + " DIRECT " + rc.directTasks);
  // Engines on B and C talk to each other, CURVE-encrypted: an 800 KB allreduce, chunks exchanged pairwise.
  // (The simulated hosts share this machine's /dev/shm; hosts apart would not, so the sockets.)
  await rc.view().comm({ sharedMemory: false });
  const sums = await rc.view().apply(async () => {
    const c = globalThis.comm;
    const v = await c.allreduce(new Float64Array(100000).fill(c.rank + 1), "sum");
    return [c.rank, c.size, v[0], v[99999]];
  });
  console.log("COMM " + JSON.stringify(sums));
  const lv = rc.loadBalancedView().with({ retries: 3 });
  const items = Array.from({ length: 60 }, (_, i) => i);
  const ar = lv.map((x) => { const end = Date.now() + 60; while (Date.now() < end); return x * 2; }, items);
  let said = false;
  const poll = setInterval(() => { if (!said && ar.progress >= 12) { said = true; console.log("HALFWAY"); } }, 20);
  const out = await ar;
  clearInterval(poll);
  const ok = out.every((v, i) => v === items[i] * 2);
  console.log("RESULT " + (ok ? "ok" : "wrong") + " " + out.length + " engines " + rc.ids.length);
  rc.close();
})().catch((e) => { console.log("FAILED " + e.message); process.exit(1); });
`,
      );
      client = spawn("ip", ["netns", "exec", C.ns, process.execPath, script], {
        stdio: ["ignore", "pipe", "pipe"],
        env: process.env,
      });
      let out = "";
      client.stdout!.on("data", (c: Buffer) => (out += c.toString()));
      client.stderr!.on("data", (c: Buffer) => (out += c.toString()));
      const exited = new Promise<number | null>((r) => client!.on("exit", (code) => r(code)));
      await until(() => out.includes("HALFWAY") || out.includes("FAILED"), 60_000, "the map to be under way");
      assert.match(
        out,
        /HOSTS \["10\.213\.7\.[23]","10\.213\.7\.[23]","10\.213\.7\.[23]","10\.213\.7\.[23]"\] DIRECT 0/,
        "through the tunnel, nothing goes direct",
      );
      assert.match(out, /COMM \[\[0,4,10,10\],\[1,4,10,10\],\[2,4,10,10\],\[3,4,10,10\]\]/, "engines across hosts");
      const killed = engineOn(B.ns);
      for (const pid of killed) killQuietly(pid);
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([
        exited,
        new Promise<"late">((r) => (timer = setTimeout(() => r("late"), 90_000))),
      ]);
      clearTimeout(timer);
      assert.equal(code, 0, out);
      assert.match(out, /RESULT ok 60 engines 2/, "every result arrived, from the two engines left on C");
    } finally {
      if (client && client.exitCode === null) client.kill("SIGKILL");
      const stopped = await cliIn(A.ns, ["cluster", "stop", "--profile", profile]);
      assert.equal(stopped.code, 0, stopped.out);
    }
    // Nothing of ours is left on any host: only each host's sshd listener.
    const sshdPids = new Set(sshds.map((s) => s.daemon.pid));
    await until(
      () => HOSTS.every((h) => nsPids(h.ns).every((p) => sshdPids.has(p))),
      20_000,
      "every engine, session and controller to leave the hosts",
    ).catch((e: unknown) => {
      const left = HOSTS.flatMap((h) =>
        nsPids(h.ns)
          .filter((p) => !sshdPids.has(p))
          .map((p) => `${h.name}: ${cmdline(p)}`),
      );
      throw new Error(`${String(e)}; left: ${left.join("; ")}`);
    });
  },
);

test(
  "a controller on a network address without --curve says in one line what that exposes",
  { skip: canRun },
  async () => {
    const [A] = HOSTS;
    const plain = `${profile}-plain`;
    const started = await cliIn(A.ns, [
      "cluster",
      "start",
      "-n",
      "1",
      "--profile",
      plain,
      "--daemon",
      "--ip",
      A.address,
    ]);
    try {
      assert.equal(started.code, 0, started.out);
      const log = fs.readFileSync(path.join(testRoot, `profile_${plain}`, "log", "controller.log"), "utf8");
      const warnings = log.split("\n").filter((l) => l.includes("without --curve"));
      assert.equal(warnings.length, 1, log);
      assert.match(warnings[0]!, /listening on 10\.213\.7\.1 without --curve: .*notification feed \(engine ids, pids/);
    } finally {
      const stopped = await cliIn(A.ns, ["cluster", "stop", "--profile", plain]);
      assert.equal(stopped.code, 0, stopped.out);
    }
  },
);
