/**
 * Ordinary use at scale: unordered iteration of a big load-balanced map against ordered
 * iteration of the same map in the same run, with the client's heap while it iterates; and
 * what unauthenticated floods cost the controller and an engine.
 */
import { Cluster } from "../cluster/cluster";
import { MB, median, put, quick, timed } from "./metrics";
import { connectionFile, endpoint, readConnectionFile } from "../protocol/connection";
import { floodUntilCutOff, rssMB } from "../test/helpers/flood";

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

/**
 * Frames from a peer without the key: one of 1.8 GB to an engine's direct socket and to the
 * controller, and 2 × 512 MB to the controller. ZeroMQ should cut each off unread.
 */
export async function flood(): Promise<void> {
  const cluster = await Cluster.start({ n: 1, profile: "bench_flood" });
  try {
    const info = readConnectionFile(connectionFile("client", "bench_flood"));
    const [engine] = await cluster.client.engines();
    const before = { controller: rssMB(cluster.pid), engine: rssMB(engine!.pid) };
    const huge = Buffer.allocUnsafe(1800 * MB);
    const half = Buffer.allocUnsafe(512 * MB);
    if (engine?.direct) await floodUntilCutOff(engine.direct.endpoint, [huge]);
    await floodUntilCutOff(endpoint(info, info.ports.clients), [huge]);
    await floodUntilCutOff(endpoint(info, info.ports.clients), [half, half]);
    await cluster.client.view().apply(() => 1); // still computing
    put(
      "(sturdy) controller RSS after 1.8 GB and 2 × 512 MB frames without the key",
      rssMB(cluster.pid),
      "MB",
      "lower",
    );
    put("(sturdy) controller RSS growth from those frames", rssMB(cluster.pid) - before.controller, "MB", "lower");
    put(
      "(sturdy) engine RSS growth from a 1.8 GB frame to its direct socket",
      rssMB(engine!.pid) - before.engine,
      "MB",
      "lower",
    );
  } finally {
    await cluster.stop();
  }
}
