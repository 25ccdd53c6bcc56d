/**
 * `npm run bench [-- --quick]`: tsparallel's workloads a–h of shared/anchors/README.md and
 * ipyparallel's reference script, in the same run on the same machine, as one table of ratios.
 * Results go to bench/results/<timestamp>.json. No timings live in tests; they live here.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Cluster } from "../src/client/cluster";

const quick = process.argv.includes("--quick");
process.env.TSPARALLEL_DIR = fs.mkdtempSync(path.join(os.tmpdir(), "tsparallel-bench-"));
const MB = 1 << 20;
type Metric = { value: number; unit: string; better: "higher" | "lower" };
const ours: Record<string, Metric> = {};
const put = (name: string, value: number, unit: string, better: Metric["better"]): void => {
  ours[name] = { value, unit, better };
  process.stderr.write(`[bench] ${name}: ${value.toFixed(3)} ${unit}\n`);
};
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p99 = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const k = (s.length - 1) * 0.99;
  const lo = Math.floor(k);
  return s[lo]! + (s[Math.min(lo + 1, s.length - 1)]! - s[lo]!) * (k - lo);
};
async function timed<T>(f: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const r = await f();
  return [(performance.now() - t0) / 1000, r];
}

async function smallCluster(): Promise<void> {
  const cluster = await Cluster.start({ n: 2, profile: "bench_af" });
  const rc = cluster.client;
  try {
    const e0 = rc.view(0);
    const dview = rc.view();
    const lview = rc.loadBalancedView();
    for (let i = 0; i < 30; i++) await e0.apply(() => null);
    const lat: number[] = [];
    for (let i = 0; i < (quick ? 50 : 300); i++) lat.push((await timed(() => e0.apply(() => null).get()))[0]);
    put("a apply_sync latency median", median(lat) * 1e6, "us", "lower");
    put("a apply_sync latency p99", p99(lat) * 1e6, "us", "lower");
    const ex: number[] = [];
    for (let i = 0; i < 10; i++) await dview.execute("x = 1");
    for (let i = 0; i < (quick ? 30 : 100); i++) ex.push((await timed(() => dview.execute("globalThis.x = 1").get()))[0]);
    put("b execute('x=1') all engines median", median(ex) * 1e6, "us", "lower");
    const ntasks = quick ? 200 : 2000;
    const seq = Array.from({ length: ntasks }, (_, i) => i);
    await lview.map((x: number) => x, seq.slice(0, 50));
    for (const chunksize of [1, 50]) {
      const times: number[] = [];
      for (let r = 0; r < (quick ? 1 : 3); r++) {
        const [t, out] = await timed(() => lview.map((x: number) => x, seq, { chunksize }).get());
        if (out.length !== ntasks || out[ntasks - 1] !== ntasks - 1) throw new Error("wrong LB map result");
        times.push(t);
      }
      put(`c LB map ${ntasks} no-op chunksize=${chunksize} throughput`, ntasks / median(times), "tasks/s", "higher");
    }
    const big = Array.from({ length: 100_000 }, (_, i) => i);
    const dm: number[] = [];
    for (let r = 0; r < (quick ? 1 : 3); r++) dm.push((await timed(() => dview.map((x: number) => x * 2, big).get()))[0]);
    put("d DV map_sync 100000 items time", median(dm), "s", "lower");
    for (const size of [1, 8, 64]) {
      const arr = new Float64Array((size * MB) / 8).map(() => Math.random());
      await e0.push({ a: arr });
      await e0.pull("a");
      const pu: number[] = [];
      const pl: number[] = [];
      for (let r = 0; r < (quick ? 2 : 5); r++) {
        pu.push((await timed(() => e0.push({ a: arr }).get()))[0]);
        pl.push((await timed(() => e0.pull("a").get()))[0]);
      }
      put(`e push ${size} MB`, size / median(pu), "MB/s", "higher");
      put(`e pull ${size} MB`, size / median(pl), "MB/s", "higher");
    }
    await e0.execute("a = undefined");
    const sg = Float64Array.from({ length: 1_000_000 }, (_, i) => i);
    const tot: number[] = [];
    for (let r = 0; r < (quick ? 2 : 5); r++) {
      const [t1] = await timed(() => dview.scatter("s", sg).get());
      const [t2] = await timed(() => dview.gather("s").get());
      tot.push(t1 + t2);
    }
    put("f scatter+gather 1e6 float64", median(tot), "s", "lower");
    const stats = await rc.stats();
    put("(info) controller RSS after a-f", stats.rss / MB, "MB", "lower");
    const rss = await rc.view().apply(() => process.memoryUsage().rss);
    put("(info) engine RSS after a-f", Math.max(...rss) / MB, "MB", "lower");
  } finally {
    await cluster.stop();
  }
}

async function loadBalance(): Promise<void> {
  const n = 12;
  const cluster = await Cluster.start({ n, profile: "bench_g" });
  const rc = cluster.client;
  try {
    const total = n * n + 2;
    const times = Array.from({ length: total }, (_, i) => (i < Math.floor(total / n) ? 1.0 : 0.2));
    const sleep = async (t: number): Promise<number> => new Promise((r) => setTimeout(() => r(t), t * 1000));
    await rc.view().apply(sleep, 0);
    for (const [name, view] of [["load_balanced", rc.loadBalancedView()], ["direct", rc.view()]] as const) {
      const ar = view.map(sleep, times);
      await ar;
      put(`g ${name} map_async speedup`, ar.serialTime / ar.wallTime, "x", "higher");
      put(`g ${name} map_async wall_time (12 engines)`, ar.wallTime, "s", "lower");
    }
  } finally {
    await cluster.stop();
  }
}

async function startup(): Promise<void> {
  const runs: number[] = [];
  for (let r = 0; r < (quick ? 1 : 3); r++) {
    const [t, cluster] = await timed(() => Cluster.start({ n: 4, profile: `bench_h${r}` }));
    runs.push(t);
    await cluster.stop();
  }
  put("h startup 4 engines (Cluster.start until all registered)", median(runs), "s", "lower");
}

function ipyparallel(): Record<string, { value: number; unit: string }> | string {
  const script = path.join(__dirname, "..", "..", "..", "shared", "anchors", "ipyparallel_bench.py");
  const probe = spawnSync("/usr/bin/python3", ["-c", "import ipyparallel, numpy"], { encoding: "utf8" });
  if (probe.status !== 0) return "ipyparallel not installed (apt-get install python3-ipyparallel python3-numpy): skipped";
  if (!fs.existsSync(script)) return `reference script not found at ${script}: skipped`;
  const out = path.join(os.tmpdir(), `ipp-bench-${process.pid}.json`);
  const run = spawnSync("/usr/bin/python3", [script, "--out", out, ...(quick ? ["--quick"] : [])], { stdio: ["ignore", "ignore", "inherit"], timeout: 15 * 60_000 });
  if (run.status !== 0 && !fs.existsSync(out)) return `reference script failed (${run.status})`;
  return (JSON.parse(fs.readFileSync(out, "utf8")) as { metrics: Record<string, { value: number; unit: string }> }).metrics;
}

/** ipyparallel names "h startup 4 engines: engines launch->registered"; map ours onto theirs. */
const ALIASES: Record<string, string> = { "h startup 4 engines (Cluster.start until all registered)": "h startup 4 engines (Cluster.start_and_connect_sync)" };

async function main(): Promise<void> {
  await smallCluster();
  await loadBalance();
  await startup();
  const ref = ipyparallel();
  const rows: string[][] = [["workload", "tsparallel", "ipyparallel", "ratio (×, >1 = tsparallel better)"]];
  for (const [name, m] of Object.entries(ours)) {
    const theirs = typeof ref === "string" ? undefined : ref[ALIASES[name] ?? name.replace(/ 200 /, ` ${quick ? 200 : 2000} `)];
    const ratio = theirs ? (m.better === "higher" ? m.value / theirs.value : theirs.value / m.value) : undefined;
    const fmt = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toFixed(4));
    rows.push([name, `${fmt(m.value)} ${m.unit}`, theirs ? `${fmt(theirs.value)} ${theirs.unit}` : "-", ratio ? ratio.toFixed(2) : "-"]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  console.log(rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ")).join("\n"));
  if (typeof ref === "string") console.log(`\nipyparallel: ${ref}`);
  const file = path.join(__dirname, "..", "..", "bench", "results", `${new Date().toISOString().replace(/[:.]/g, "-")}${quick ? "-quick" : ""}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify({ machine: { cpus: os.cpus().length, node: process.version }, quick, tsparallel: ours, ipyparallel: ref }, null, 1));
  console.log(`\nwrote ${path.relative(process.cwd(), file)}`);
}

main().catch((e: unknown) => {
  console.error(`bench failed: ${String(e)}`);
  process.exitCode = 1;
});
