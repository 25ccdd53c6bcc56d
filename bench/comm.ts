/**
 * The comm workload: allreduce of 8 bytes and of 8 MB and bcast of 8 MB on 4 engines, timed on
 * the engines themselves, beside the same with mpi4py on Open MPI (bench/comm_mpi4py.py, run by
 * mpiexec on the same cores in the same run) and beside the route through the client (pull every
 * engine's array, sum here, push the sum back).
 *
 * Each 8 MB figure is taken both ways a program can ask: in place (into an array the program
 * already has) beside mpi4py's buffer calls (`Allreduce(big, out)`, `Bcast(big)`), and to a new
 * array beside mpi4py's object calls (`allreduce(big)`, `bcast(big)`, which pickle). And over
 * the sockets alone, as between hosts: the pairwise exchange it picks for 4 ranks beside the
 * recursive doubling it takes for small values, to show the choice is right.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Cluster } from "../cluster/cluster";
import type { Communicator } from "../engine/comm";
import { PACKAGE_ROOT } from "../paths";
import { median, put, quick, timed } from "./metrics";

type Reference = Record<string, { value: number; unit: string }>;

type Kind = "small" | "inPlace" | "newArray" | "doubling" | "bcastInPlace" | "bcastNew";

/**
 * Seconds per operation, the median over rounds (all ranks start each round together) of the
 * slowest rank: a bcast's root is done once its sends are queued, its last receiver is not.
 */
async function onEngines(rc: Cluster["client"], kind: Kind, repeat: number, rounds: number): Promise<number> {
  return slowest(
    rc,
    async (kind: Kind, repeat: number, rounds: number) => {
      const comm = (globalThis as unknown as { comm: Communicator }).comm;
      const big = new Float64Array(1 << 20).fill(comm.rank + 1);
      const small = new Float64Array([comm.rank]);
      const addInto = (a: unknown, b: unknown): unknown => {
        const x = a as Float64Array;
        const y = b as Float64Array;
        for (let i = 0; i < x.length; i++) x[i] = x[i]! + y[i]!;
        return x;
      };
      const runs: Record<Kind, () => Promise<unknown>> = {
        small: () => comm.allreduce(small, "sum"),
        inPlace: () => comm.allreduce(big, "sum", { inPlace: true }),
        newArray: () => comm.allreduce(big, "sum"),
        doubling: () => comm.allreduce(big.slice(), addInto), // a function: recursive doubling, as for small values
        bcastInPlace: () => comm.bcast(big, 0, { inPlace: true }),
        bcastNew: () => comm.bcast(comm.rank === 0 ? big : undefined, 0),
      };
      const run = runs[kind];
      const times: number[] = [];
      for (let r = 0; r < rounds; r++) {
        await comm.barrier();
        const t0 = performance.now();
        for (let i = 0; i < repeat; i++) await run();
        times.push((performance.now() - t0) / 1000 / repeat);
      }
      return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
    },
    kind,
    repeat,
    rounds,
  );
}

/** The slowest engine's figure: `measure` (which returns its own median) applied on every engine. */
async function slowest<A extends unknown[]>(
  rc: Cluster["client"],
  measure: (...args: A) => Promise<number>,
  ...args: A
): Promise<number> {
  return Math.max(...[await rc.view().apply(measure, ...args)].flat());
}

/**
 * The floor under the figures through shared memory: the same engines making the same copies
 * through the same windows (protocol/bulk.ts), with no message, no wait and no arithmetic.
 * Allreduce: each writes 6 MB and 2 MB to its windows and reads 2 MB from 3 others' of each;
 * bcast: one writes 8 MB, 3 read it. Seconds per round, the slowest engine's median.
 */
async function copiesOnEngines(rc: Cluster["client"], kind: "allreduce" | "bcast", rounds: number): Promise<number> {
  const bulk = path.join(PACKAGE_ROOT, "dist", "protocol", "bulk.js");
  return slowest(
    rc,
    async (kind: string, rounds: number, bulk: string) => {
      const comm = (globalThis as unknown as { comm: Communicator }).comm;
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- the engine's own copy of the module
      const { SharedWindow, WindowReader } = require(bulk) as typeof import("../protocol/bulk");
      const { rank, size } = comm;
      const n = 1 << 20;
      const chunk = n / size;
      const input = new Float64Array(n).fill(rank);
      const out = new Float64Array(n);
      const scratch = new Float64Array(32768);
      const scatter = new SharedWindow();
      const gather = new SharedWindow();
      const reader = new WindowReader();
      const names = await comm.allgather([scatter.name, gather.name]);
      scatter.write(0, input);
      gather.write(0, input);
      await comm.barrier();
      const times: number[] = [];
      try {
        for (let r = 0; r < rounds; r++) {
          const t0 = performance.now();
          if (kind === "bcast") {
            if (rank === 0) scatter.write(0, input);
            else reader.read(names[0]![0]!, 0, out);
          } else {
            scatter.write(0, input.subarray(0, rank * chunk));
            scatter.write((rank + 1) * chunk * 8, input.subarray((rank + 1) * chunk));
            for (let q = 0; q < size; q++)
              if (q !== rank)
                for (let at = 0; at < chunk; at += scratch.length)
                  reader.read(names[q]![0]!, (rank * chunk + at) * 8, scratch);
            gather.write(rank * chunk * 8, out.subarray(rank * chunk, (rank + 1) * chunk));
            for (let q = 0; q < size; q++)
              if (q !== rank) reader.read(names[q]![1]!, q * chunk * 8, out.subarray(q * chunk, (q + 1) * chunk));
          }
          times.push((performance.now() - t0) / 1000);
        }
      } finally {
        await comm.barrier();
        reader.close();
        scatter.close();
        gather.close();
      }
      return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
    },
    kind,
    rounds,
    bulk,
  );
}

function mpi4py(): Reference | string {
  const probe = spawnSync("/usr/bin/python3", ["-c", "import mpi4py, numpy"], { encoding: "utf8" });
  if (probe.status !== 0) return "mpi4py not installed (apt-get install python3-mpi4py): comm reference skipped";
  if (!fs.existsSync("/usr/bin/mpiexec"))
    return "mpiexec not installed (apt-get install openmpi-bin): comm reference skipped";
  const out = path.join(os.tmpdir(), `comm-mpi4py-${process.pid}.json`);
  const run = spawnSync(
    "/usr/bin/mpiexec",
    [
      "-n",
      "4",
      "--oversubscribe",
      // 4 ranks on 2 cores: a waiting rank must give its core up, as our engines' event loops do.
      "--mca",
      "mpi_yield_when_idle",
      "1",
      "/usr/bin/python3",
      path.join(PACKAGE_ROOT, "bench", "comm_mpi4py.py"),
      out,
      ...(quick ? ["--quick"] : []),
    ],
    {
      stdio: ["ignore", "ignore", "inherit"],
      timeout: 5 * 60_000,
      env: { ...process.env, OMPI_ALLOW_RUN_AS_ROOT: "1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: "1" },
    },
  );
  if (run.status !== 0 || !fs.existsSync(out)) return `mpi4py reference failed (${String(run.status)})`;
  return JSON.parse(fs.readFileSync(out, "utf8")) as Reference;
}

export async function commCollectives(): Promise<Reference | string> {
  const cluster = await Cluster.start({ n: 4, profile: "bench_comm" });
  const rc = cluster.client;
  const rounds = quick ? 3 : 7;
  const big = quick ? 2 : 5;
  const ms = async (kind: Kind, repeat = big): Promise<number> => (await onEngines(rc, kind, repeat, rounds)) * 1000;
  try {
    // The sockets alone first (as between hosts), then shared memory (one host), in one cluster.
    await rc.view().comm({ sharedMemory: false });
    await onEngines(rc, "small", 10, 1); // warm: links up, code compiled
    put("(comm) allreduce 8 MB, 4 engines, sockets only: pairwise exchange", await ms("newArray"), "ms", "lower");
    put(
      "(comm) allreduce 8 MB, 4 engines, sockets only: recursive doubling instead",
      await ms("doubling"),
      "ms",
      "lower",
    );
    put("(comm) bcast 8 MB, 4 engines, sockets only: the tree", await ms("bcastNew"), "ms", "lower");
    const shared = await rc.view().comm();
    if (!shared.sharedMemory) return "the bench's engines do not share memory: comm figures skipped";
    await onEngines(rc, "small", 10, 1);
    put("(comm, vs mpi4py) allreduce 8 bytes, 4 engines", await ms("small", quick ? 20 : 100), "ms", "lower");
    put("(comm, vs mpi4py) allreduce 8 MB in place, 4 engines", await ms("inPlace"), "ms", "lower");
    const newArray = await ms("newArray");
    put("(comm, vs mpi4py) allreduce 8 MB to a new array, 4 engines", newArray, "ms", "lower");
    put("(comm, vs mpi4py) bcast 8 MB in place, 4 engines", await ms("bcastInPlace"), "ms", "lower");
    put("(comm, vs mpi4py) bcast 8 MB to a new array, 4 engines", await ms("bcastNew"), "ms", "lower");
    put(
      "(comm floor) allreduce 8 MB: its copies through the windows alone, 4 engines",
      (await copiesOnEngines(rc, "allreduce", quick ? 5 : 21)) * 1000,
      "ms",
      "lower",
    );
    put(
      "(comm floor) bcast 8 MB: its copies through the window alone, 4 engines",
      (await copiesOnEngines(rc, "bcast", quick ? 5 : 21)) * 1000,
      "ms",
      "lower",
    );
    // The route without a communicator: every array to the client, the sum back to every engine.
    await rc.view().execute("globalThis.part = new Float64Array(1 << 20).fill(1)");
    const times: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const [s] = await timed(async () => {
        const parts = [await rc.view().pull<Float64Array>("part")].flat();
        const sum = parts[0]!.slice();
        for (const p of parts.slice(1)) for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + p[i]!;
        await rc.view().push({ total: sum });
      });
      times.push(s * 1000);
    }
    const clientRoute = median(times);
    put("(comm) allreduce 8 MB, 4 engines, through the client (pull, sum, push)", clientRoute, "ms", "lower");
    put(
      "(comm) allreduce 8 MB: speedup of comm (to a new array) over the route through the client",
      clientRoute / newArray,
      "×",
      "higher",
    );
  } finally {
    await cluster.stop();
  }
  return mpi4py();
}
