/**
 * Ordinary use at scale: unordered iteration of a big load-balanced map against ordered
 * iteration of the same map in the same run, with the client's heap while it iterates.
 */
import { Cluster } from "../cluster/cluster";
import { median, put, quick, timed } from "./metrics";

export async function unordered(): Promise<void> {
  const cluster = await Cluster.start({ n: 2, profile: "bench_unordered" });
  const lview = cluster.client.loadBalancedView();
  try {
    await lview.map((x: number) => x, [1, 2, 3]);
    for (const n of quick ? [10_000] : [10_000, 100_000]) {
      const xs = Array.from({ length: n }, (_, i) => i);
      const runs: Record<"ordered" | "unordered", number[]> = { ordered: [], unordered: [] };
      let peakHeap = 0;
      for (let r = 0; r < (quick ? 1 : 3); r++) {
        for (const ordered of [true, false]) {
          const [t, count] = await timed(async () => {
            let seen = 0;
            for await (const _ of lview.map((x: number) => x, xs, { ordered, chunksize: 1 })) {
              if (++seen % 1000 === 0) peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
            }
            return seen;
          });
          if (count !== n) throw new Error(`unordered bench: ${count} of ${n} results`);
          runs[ordered ? "ordered" : "unordered"].push(t);
        }
      }
      put(`(sturdy) LB map ${n} no-op chunksize=1, ordered iteration`, median(runs.ordered), "s", "lower");
      put(`(sturdy) LB map ${n} no-op chunksize=1, unordered iteration`, median(runs.unordered), "s", "lower");
      put(
        `(sturdy) ${n} tasks: unordered / ordered iteration time`,
        median(runs.unordered) / median(runs.ordered),
        "x",
        "lower",
      );
      put(`(sturdy) ${n} tasks: client heap while iterating (peak)`, peakHeap / (1 << 20), "MB", "lower");
    }
  } finally {
    await cluster.stop();
  }
}
