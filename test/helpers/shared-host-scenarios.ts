/**
 * Scenarios run by runScenario (shared-host.ts) inside a private mount namespace: this process
 * is the victim (root), `nobody` the other local user. Each prints one JSON line of findings.
 * The task-database ones mount a small file system of their own, which only this namespace sees.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { startCluster, until, type TestCluster } from "./cluster";
import { asNobody, NOBODY } from "./shared-host";
import { bulkDir } from "../../protocol/bulk";
import { connectionFile } from "../../protocol/connection";
import type { Communicator } from "../../engine/comm";

const MB = 1024 * 1024;
const names = (): string[] => (fs.existsSync(bulkDir()) ? fs.readdirSync(bulkDir()).sort() : []);
const filled = (bytes: number, seed: number): Float64Array =>
  Float64Array.from({ length: bytes / 8 }, (_, i) => i + seed);

declare const big: Float64Array;

/** Another user made our folder first, open to all, and planted links under the names we used to pick. */
async function takeover(): Promise<Record<string, unknown>> {
  const dir = bulkDir();
  const precious = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "tsp-precious-")), "precious");
  fs.writeFileSync(precious, "precious", { mode: 0o644 });
  const loot = path.join(dir, "loot");
  const plant = [
    `mkdir -m 0777 ${dir} && chmod 0777 ${dir}`,
    `: > ${loot} && chmod 0666 ${loot}`,
    // The names a client of this pid wrote first (`<pid>-<pid>.<n>`), linked to what the attacker wants.
    ...[1, 3, 5].map((n) => `ln ${loot} ${dir}/${process.pid}-${process.pid}.${n}`),
    ...[2, 4, 6].map((n) => `ln -s ${precious} ${dir}/${process.pid}-${process.pid}.${n}`),
  ].join(" && ");
  const planted = asNobody(["/bin/sh", "-c", plant]);
  if (planted.status !== 0) throw new Error(`could not plant: ${planted.stderr}`);
  const t = await startCluster(1);
  try {
    const data = filled(4 * MB, 1);
    await t.rc.view(0).push({ big: data });
    await t.rc.view(0).push({ big: filled(4 * MB, 2) });
    const back = await t.rc.view(0).pull<Float64Array>("big");
    const sum = await t.rc.view(0).apply(() => big[0]! + big[big.length - 1]!);
    return {
      lootBytes: fs.statSync(loot).size,
      preciousIntact: fs.readFileSync(precious, "utf8") === "precious",
      pulledOk: back.length === data.length && back[0] === 2,
      sum,
      ours: names().filter((n) => /^\d+-\d+\.[A-Za-z0-9_-]{16}$/.test(n)),
    };
  } finally {
    await t.stop();
  }
}

/**
 * Our own folder, with a request held in it (its engine stopped) and another client's file left
 * by a kill: nobody can list or read them, and the survivors remove what the dead left behind.
 */
async function privateFolder(): Promise<Record<string, unknown>> {
  const t: TestCluster = await startCluster(1);
  try {
    const [pid] = await t.pids();
    await until(() => names().some((n) => n.startsWith("engine-")), 10_000, "the engine's marker");
    process.kill(pid!, "SIGSTOP");
    const held = t.rc.view(0).push({ big: filled(2 * MB, 0) });
    held.catch(() => undefined);
    const ours = names().filter((n) => n.startsWith(`${process.pid}-`));
    const st = fs.lstatSync(bulkDir());
    const list = asNobody(["ls", bulkDir()]);
    const read = asNobody(["cat", path.join(bulkDir(), ours[0] ?? "none")]);
    // A second client pushes to the stopped engine, and is killed with its file still there.
    const other = spawn(process.execPath, [__filename, "client", connectionFile("client", t.profile)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let otherOut = "";
    other.stdout.on("data", (d: Buffer) => (otherOut += d.toString()));
    await until(() => otherOut.includes("sent"), 30_000, "the other client's push");
    const othersFiles = names().filter((n) => n.startsWith(`${other.pid}-`));
    other.kill("SIGKILL");
    await new Promise((r) => other.once("exit", r));
    const beforeLoss = names();
    process.kill(pid!, "SIGKILL");
    let heldError = "";
    await held.then(
      () => undefined,
      (e: unknown) => (heldError = e instanceof Error ? e.message : String(e)),
    );
    await until(() => names().length === 0, 15_000, "the files of the dead to be removed");
    return {
      mode: (st.mode & 0o777).toString(8),
      owner: st.uid,
      ours,
      listStatus: list.status,
      readStatus: read.status,
      readStderr: read.stderr.trim(),
      othersFiles,
      beforeLoss,
      heldError,
      after: names(),
    };
  } finally {
    await t.stop();
  }
}

/** A /dev/shm too small for a buffer: no partial file stays, the data takes the controller path. */
async function full(): Promise<Record<string, unknown>> {
  const t = await startCluster(1);
  try {
    await t.rc.view(0).push({ big: filled(4 * MB, 3) }); // fits the 6 MB tmpfs
    const large = filled(8 * MB, 4);
    await t.rc.view(0).push({ big: large });
    const back = await t.rc.view(0).pull<Float64Array>("big"); // the engine's write fails too
    await until(() => names().every((n) => n.startsWith("engine-")), 10_000, "only the marker to remain");
    return {
      pulledOk: back.length === large.length && back[back.length - 1] === large[large.length - 1],
      left: names(),
    };
  } finally {
    await t.stop();
  }
}

/**
 * A communicator whose windows do not fit /dev/shm (3 engines × ~4 MB in 6 MB): the allreduce
 * fails on every member with one line that says what to do, nothing is left behind, and a
 * communicator over the sockets does the same sum.
 */
async function commFull(): Promise<Record<string, unknown>> {
  const t = await startCluster(3);
  try {
    const shared = await t.rc.view().comm();
    const sum = (): Promise<unknown> =>
      t.rc.view().apply(async () => {
        const comm = (globalThis as unknown as { comm: Communicator }).comm;
        const total = await comm.allreduce(new Float64Array(512 * 1024).fill(comm.rank + 1), "sum");
        return total[total.length - 1];
      });
    const failed = await sum().then(
      () => "no error",
      (e: unknown) => String(e),
    );
    await until(() => names().every((n) => n.startsWith("engine-")), 10_000, "the windows to be removed");
    const left = names();
    const sockets = await t.rc.view().comm({ sharedMemory: false });
    return { shared: shared.sharedMemory, failed, left, sockets: sockets.sharedMemory, sums: await sum() };
  } finally {
    await t.stop();
  }
}

/**
 * The controller's task database on a file system that fills up (`full`) or turns read-only
 * mid-run (`readonly`): one line in the log, the controller keeps serving, and it stops when
 * asked. Returns what the log said and what still worked.
 */
async function taskStore(how: "full" | "readonly"): Promise<Record<string, unknown>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsp-db-"));
  const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=3m", "tsparallel-test-db", dir]);
  if (mounted.status !== 0) throw new Error(`mount: ${mounted.stderr.toString()}`);
  const logFile = path.join(os.tmpdir(), `tsp-db-${process.pid}.log`);
  const t = await startCluster(1, { controllerArgs: ["--db", `sqlite:${dir}/tasks.sqlite`], logFile });
  const task = (i: number): Promise<number> =>
    t.rc.loadBalancedView().apply((b: Uint8Array, k: number) => b.length + k, new Uint8Array(256 * 1024), i);
  const log = (): string => fs.readFileSync(logFile, "utf8");
  const results: number[] = [];
  let stopped: number | null | undefined;
  try {
    for (let i = 0; i < 4; i++) results.push(await task(i));
    // Read-only from now on: a read-only file system stacked over the folder (a remount is refused
    // while the database is open for writing), so the journal SQLite creates next fails with EROFS.
    if (how === "readonly") {
      const ro = spawnSync("mount", ["-t", "tmpfs", "-o", "ro,size=1m", "tsparallel-test-ro", dir]);
      if (ro.status !== 0) throw new Error(`mount -o ro: ${ro.stderr.toString()}`);
    }
    // 3 MB holds about ten such records: the writes fail while the tasks go on.
    for (let i = 4; i < 24; i++) results.push(await task(i));
    await until(() => log().includes("task database: using"), 10_000, "the failed write to be logged");
    const [first] = await t.rc.history();
    const early: unknown = await t.rc.getResult(first!);
    const exited = new Promise<number | null>((r) => t.cluster.process!.once("exit", (code) => r(code)));
    t.cluster.process!.kill("SIGTERM");
    stopped = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 15_000))]);
    return {
      results,
      early,
      failures: log()
        .split("\n")
        .filter((l) => l.includes("task database: using")),
      stopped: stopped === undefined ? "hung" : stopped,
      left: fs.readdirSync(dir).filter((f) => f.endsWith(".tmp")),
    };
  } finally {
    await t.stop();
    while (spawnSync("umount", ["-l", dir]).status === 0);
  }
}

/** The second client of privateFolder: pushes to the stopped engine and waits to be killed. */
async function client(file: string): Promise<void> {
  const { Client } = await import("../../client/client");
  const rc = await Client.connect({ file, activate: false });
  rc.view(0)
    .push({ big: filled(2 * MB, 9) })
    .catch(() => undefined);
  process.stdout.write("sent\n");
  await new Promise(() => undefined);
}

async function main(): Promise<void> {
  const [name, arg] = process.argv.slice(2);
  if (name === "client") return client(arg!);
  const scenarios: Record<string, () => Promise<Record<string, unknown>>> = {
    takeover,
    privateFolder,
    full,
    commFull,
    dbFull: () => taskStore("full"),
    dbReadOnly: () => taskStore("readonly"),
  };
  const run = scenarios[name ?? ""];
  if (!run) throw new Error(`unknown scenario ${name}; one of ${Object.keys(scenarios).join(", ")}`);
  const report = await run();
  process.stdout.write(`${JSON.stringify({ nobody: NOBODY, ...report })}\n`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
