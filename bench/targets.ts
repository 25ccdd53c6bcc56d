/** The targets and the name mapping onto ipyparallel's metrics, shared by the run and the summary. */

/** ipyparallel names "h startup 4 engines: engines launch->registered"; map ours onto theirs. */
export const ALIASES: Record<string, string> = {
  "h startup 4 engines (Cluster.start until all registered)": "h startup 4 engines (Cluster.start_and_connect_sync)",
};

/** Targets: a ratio against ipyparallel, or an absolute bound. */
export const TARGETS: Record<string, { ratio: number } | { atLeast: number } | { atMost: number }> = {
  "a apply_sync latency median": { ratio: 10 },
  "c LB map 2000 no-op chunksize=1 throughput": { ratio: 30 },
  "c LB map 2000 no-op chunksize=50 throughput": { ratio: 10 },
  "d DV map_sync 100000 items time": { ratio: 2 },
  "e push 1 MB": { ratio: 2.5 },
  "e pull 1 MB": { ratio: 2.5 },
  "e push 8 MB": { ratio: 2.5 },
  "e pull 8 MB": { ratio: 2.5 },
  "e push 64 MB": { ratio: 2.5 },
  "e pull 64 MB": { ratio: 2.5 },
  "f scatter+gather 1e6 float64": { ratio: 2.5 },
  "g load_balanced map_async speedup": { atLeast: 11.8 },
  "h startup 4 engines (Cluster.start until all registered)": { ratio: 8 },
  "(mem) idle engine RSS (max of 4, before any task)": { atMost: 60 },
  "(scale) 64 engines launched until all registered": { atMost: 5 },
  "(scale) 256 engines launched until all registered": { atMost: 30 },
  "(scale) 256 engines: ids lost and handed out again during start": { atMost: 0 },
  "(fan-out) all/one, 64 engines, DirectView": { atMost: 12 },
  "(fan-out) all/one, 64 engines, BroadcastView": { atMost: 12 },
  "(fan-out) all/one, 256 engines, BroadcastView": { atMost: 40 },
  "(broadcast) push 2 MB to 64 engines, BroadcastView speedup over DirectView": { atLeast: 3 },
  "(mem) controller RSS at rest, 256 engines": { atMost: 150 },
  "(soak) controller RSS growth over 200000 tasks": { atMost: 50 },
  "(sturdy) 100000 tasks: unordered / ordered iteration time": { atMost: 1.5 },
  "(sturdy) 100000 tasks: client heap while iterating (peak)": { atMost: 200 },
  "(sturdy) controller RSS growth from those frames": { atMost: 64 },
  "(kernel) top-level loop / the same loop in a function": { atMost: 2 },
  "(sturdy) engine RSS growth from a 1.8 GB frame to its direct socket": { atMost: 64 },
  "(monitor) controller CPU added by one watcher, LB map chunksize 1": { atMost: 5 },
  "(comm, vs mpi4py) allreduce 8 MB in place, 4 engines": { ratio: 1 / 3 },
  "(comm, vs mpi4py) allreduce 8 MB to a new array, 4 engines": { ratio: 1 / 3 },
  "(comm, vs mpi4py) bcast 8 MB in place, 4 engines": { ratio: 1 / 3 },
  "(comm, vs mpi4py) bcast 8 MB to a new array, 4 engines": { ratio: 1 / 3 },
  "(comm) allreduce 8 MB: speedup of comm (to a new array) over the route through the client": { atLeast: 5 },
};

/** The reference metric that a tsparallel metric is compared with. */
export function referenceName(name: string, quick: boolean): string {
  return ALIASES[name] ?? (quick ? name.replace(/ 2000 /, " 200 ") : name);
}

/** "met (≥10×)" / "MISSED (≤60)" for a metric with a target, "" otherwise. */
export function targetCell(name: string, value: number, ratio: number | undefined): string {
  const t = TARGETS[name];
  if (!t) return "";
  if ("ratio" in t)
    return ratio === undefined
      ? `≥${+t.ratio.toFixed(2)}× (no reference)`
      : `${ratio >= t.ratio ? "met" : "MISSED"} (≥${+t.ratio.toFixed(2)}×)`;
  if ("atLeast" in t) return `${value >= t.atLeast ? "met" : "MISSED"} (≥${t.atLeast})`;
  return `${value <= t.atMost ? "met" : "MISSED"} (≤${t.atMost})`;
}

/** Fixed-width text table, first row the header. */
export function formatTable(rows: readonly string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

export const fmt = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toFixed(4));
