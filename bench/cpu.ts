/**
 * The per-message CPU budget: what each process of a cluster spends per no-op task, read from
 * /proc (user + system time per thread: the Node main thread, ZeroMQ's I/O threads, the rest —
 * V8's GC and compiler helpers), beside what raw zeromq.js spends on the same hop (floor.ts runs
 * those). A missed latency or throughput target is explained by these figures, not guessed at.
 */
import * as fs from "node:fs";
import { spawnSync } from "node:child_process";
import { Cluster } from "../cluster/cluster";
import { MonitorFeed } from "../client/monitor-feed";
import { connectionFile, readConnectionFile } from "../protocol/connection";
import { median, put, quick } from "./metrics";

const CLOCK_TICKS = Number(spawnSync("getconf", ["CLK_TCK"]).stdout?.toString().trim()) || 100;

/** CPU time of a process so far, in ms, by thread kind. */
export interface CpuSplit {
  main: number;
  io: number;
  other: number;
}

/** Reads every thread of `pid` (a thread gone meanwhile counts nothing). */
export function cpuSplit(pid: number): CpuSplit {
  const out: CpuSplit = { main: 0, io: 0, other: 0 };
  let tids: string[] = [];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    } catch {
      continue;
    }
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
    if (tid === String(pid)) out.main += ms;
    else if (comm.startsWith("ZMQbg")) out.io += ms;
    else out.other += ms;
  }
  return out;
}

/** Runs `work` and returns each process's CPU per unit of work, in µs, by thread kind. */
export async function cpuPer(
  pids: Record<string, number>,
  units: number,
  work: () => Promise<void>,
): Promise<Record<string, CpuSplit>> {
  const before = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, cpuSplit(p)]));
  await work();
  const out: Record<string, CpuSplit> = {};
  for (const [k, p] of Object.entries(pids)) {
    const a = before[k]!;
    const b = cpuSplit(p);
    const per = (x: number, y: number): number => ((y - x) * 1000) / units;
    out[k] = { main: per(a.main, b.main), io: per(a.io, b.io), other: per(a.other, b.other) };
  }
  return out;
}

/** One row per process and thread kind: `(cpu) <what>: <process> <thread>`. */
export function putCpu(what: string, split: Record<string, CpuSplit>): void {
  const all = Object.values(split).reduce((a, s) => a + s.main + s.io + s.other, 0);
  put(`(cpu) ${what}: every process and thread per task`, all, "us", "lower");
  for (const [proc, s] of Object.entries(split)) {
    put(`(cpu) ${what}: ${proc} main thread per task`, s.main, "us", "lower");
    put(`(cpu) ${what}: ${proc} ZeroMQ I/O per task`, s.io, "us", "lower");
    put(`(cpu) ${what}: ${proc} other threads per task`, s.other, "us", "lower");
  }
}

/** The budget of a no-op DirectView apply (a's workload) and of an LB map with chunksize 1 (c's). */
export async function cpuBudget(): Promise<void> {
  const cluster = await Cluster.start({ n: 1, profile: "bench_cpu" });
  const rc = cluster.client;
  try {
    const [engine] = await rc.engines();
    const pids = { client: process.pid, controller: cluster.pid, engine: engine!.pid };
    const e0 = rc.view(0);
    for (let i = 0; i < 300; i++) await e0.apply(() => null);
    const n = quick ? 500 : 5000;
    putCpu(
      "a apply round trip, 1 engine",
      await cpuPer(pids, n, async () => {
        for (let i = 0; i < n; i++) await e0.apply(() => null);
      }),
    );
    const lview = rc.loadBalancedView();
    const items = Array.from({ length: quick ? 500 : 5000 }, (_, i) => i);
    await lview.map((x: number) => x, items.slice(0, 200));
    putCpu(
      "c LB map chunksize 1, 1 engine",
      await cpuPer(pids, items.length, async () => {
        await lview.map((x: number) => x, items, { chunksize: 1 });
      }),
    );
  } finally {
    await cluster.stop();
  }
}

/**
 * What the monitor stream costs the controller: an LB map of no-op tasks (chunksize 1, the
 * busiest the controller gets) with nobody watching and with one watcher, rounds alternating in
 * the same cluster, the controller's CPU per task (every thread) and the throughput of each.
 */
export async function monitorOverhead(): Promise<void> {
  const cluster = await Cluster.start({ n: 2, profile: "bench_monitor" });
  const rc = cluster.client;
  try {
    const lview = rc.loadBalancedView();
    const items = Array.from({ length: quick ? 1000 : 4000 }, (_, i) => i);
    await lview.map((x: number) => x, items.slice(0, 200));
    const runs = { alone: [] as number[], watched: [] as number[] };
    const rates = { alone: [] as number[], watched: [] as number[] };
    for (let round = 0; round < (quick ? 2 : 5); round++) {
      for (const kind of ["alone", "watched"] as const) {
        const feed =
          kind === "watched"
            ? MonitorFeed.open(readConnectionFile(connectionFile("client", "bench_monitor")))
            : undefined;
        if (feed) await feed.next(10_000); // subscribed: the controller now collects
        // A watcher reads every reading, as cluster top does.
        const reading = feed
          ? (async () => {
              for await (const update of feed) void update;
            })().catch(() => undefined)
          : undefined;
        const t0 = performance.now();
        const split = await cpuPer({ controller: cluster.pid }, items.length, async () => {
          await lview.map((x: number) => x, items, { chunksize: 1 });
        });
        rates[kind].push(items.length / ((performance.now() - t0) / 1000));
        const c = split.controller!;
        runs[kind].push(c.main + c.io + c.other);
        feed?.close();
        await reading;
      }
    }
    put("(monitor) LB map chunksize 1 throughput, nobody watching", median(rates.alone), "tasks/s", "higher");
    put("(monitor) LB map chunksize 1 throughput, one watcher", median(rates.watched), "tasks/s", "higher");
    put("(monitor) controller CPU per task, nobody watching", median(runs.alone), "us", "lower");
    put("(monitor) controller CPU per task, one watcher", median(runs.watched), "us", "lower");
    put(
      "(monitor) controller CPU added by one watcher, LB map chunksize 1",
      (median(runs.watched) / median(runs.alone) - 1) * 100,
      "%",
      "lower",
    );
  } finally {
    await cluster.stop();
  }
}
