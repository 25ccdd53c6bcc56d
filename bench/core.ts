/**
 * Workloads a–h on tsparallel, with the sizes and engine counts of bench/ipyparallel/bench.py,
 * so each figure has an ipyparallel twin of the same name.
 */
import { Cluster } from "../cluster/cluster";
import { MB, median, p99, put, quick, timed } from "./metrics";

export async function smallCluster(): Promise<void> {
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
    for (let i = 0; i < (quick ? 30 : 100); i++)
      ex.push((await timed(() => dview.execute("globalThis.x = 1").get()))[0]);
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
    for (let r = 0; r < (quick ? 1 : 3); r++)
      dm.push((await timed(() => dview.map((x: number) => x * 2, big).get()))[0]);
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

export async function loadBalance(): Promise<void> {
  const n = 12;
  const cluster = await Cluster.start({ n, profile: "bench_g" });
  const rc = cluster.client;
  try {
    const total = n * n + 2;
    const times = Array.from({ length: total }, (_, i) => (i < Math.floor(total / n) ? 1.0 : 0.2));
    const sleep = async (t: number): Promise<number> => new Promise((r) => setTimeout(() => r(t), t * 1000));
    await rc.view().apply(sleep, 0);
    for (const [name, view] of [
      ["load_balanced", rc.loadBalancedView()],
      ["direct", rc.view()],
    ] as const) {
      const ar = view.map(sleep, times);
      await ar;
      put(`g ${name} map_async speedup`, ar.serialTime / ar.wallTime, "x", "higher");
      put(`g ${name} map_async wall_time (12 engines)`, ar.wallTime, "s", "lower");
    }
  } finally {
    await cluster.stop();
  }
}

export async function startup(): Promise<void> {
  const runs: number[] = [];
  for (let r = 0; r < (quick ? 1 : 3); r++) {
    const [t, cluster] = await timed(() => Cluster.start({ n: 4, profile: `bench_h${r}` }));
    runs.push(t);
    await cluster.stop();
  }
  put("h startup 4 engines (Cluster.start until all registered)", median(runs), "s", "lower");
}
