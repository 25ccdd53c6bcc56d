/**
 * Workloads beyond the reference script: memory at rest, 16 to 256 engines, a 200,000-task soak, and the
 * kernel as a notebook user meets it (start time, a `%px` no-op through a Jupyter client).
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import * as os from "node:os";
import { performance } from "node:perf_hooks";
import * as fs from "node:fs";
import * as path from "node:path";
import { Cluster } from "../cluster/cluster";
import type { Client } from "../client/client";
import { MB, median, put, quick, timed } from "./metrics";
import { CLI_PATH, PACKAGE_ROOT } from "../paths";
import { chaos } from "../test/helpers/chaos";

const PYTHON = "/usr/bin/python3";
const ROOT = PACKAGE_ROOT;
const CLI = CLI_PATH;

/** Resident memory of a local process, read from /proc without disturbing it. */
function rssOf(pid: number, field: "VmRSS" | "RssAnon" = "VmRSS"): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** CPU time (user + system, all threads) a local process has used so far, in ms. */
function cpuMsOf(pid: number): number {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0; // gone meanwhile
  }
}
const CLOCK_TICKS = Number(spawnSync("getconf", ["CLK_TCK"]).stdout?.toString().trim()) || 100;

/** RSS of a freshly started controller and its engines, before any task has run. */
export async function memoryAtRest(): Promise<void> {
  const cluster = await Cluster.start({ n: 4, profile: "bench_mem" });
  try {
    await new Promise((r) => setTimeout(r, 1000)); // let start-up garbage be collected
    const engines = await cluster.client.engines();
    put(
      "(mem) idle engine RSS (max of 4, before any task)",
      Math.max(...engines.map((e) => rssOf(e.pid))) / MB,
      "MB",
      "lower",
    );
    // RSS counts the node binary's pages, shared by every Node process; RssAnon is the engine's own.
    put(
      "(mem) idle engine private memory (RssAnon, max of 4)",
      Math.max(...engines.map((e) => rssOf(e.pid, "RssAnon"))) / MB,
      "MB",
      "lower",
    );
    put("(mem) idle controller RSS (4 engines)", rssOf(cluster.pid) / MB, "MB", "lower");
  } finally {
    await cluster.stop();
  }
}

/** `n` processes of plain `node -e 0`, `window` at a time: what starting any Node process costs here. */
async function bareNodeStarts(n: number, window: number): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next++ < n)
      await new Promise<void>((resolve, reject) =>
        spawn(process.execPath, ["-e", "0"], { stdio: "ignore" })
          .on("exit", () => resolve())
          .on("error", reject),
      );
  };
  await Promise.all(Array.from({ length: window }, worker));
  return (performance.now() - t0) / 1000;
}

const TWO_MB = new Float64Array((2 * MB) / 8).map((_, i) => i);

/**
 * Many engines on this machine: start and registration (ids must be 0..n-1, none lost and
 * registered again), `execute` on all of them against one of them (DirectView and
 * BroadcastView), a 2 MB push through each at 64, and the controller's memory at rest. Each
 * size is measured beside its floor: bare Node processes started the same way, and the same
 * 2 MB read by every engine from /dev/shm with no network at all.
 */
export async function scale(): Promise<void> {
  for (const n of quick ? [16] : [16, 64, 256]) {
    const [t, cluster] = await timed(() => Cluster.start({ n, profile: `bench_scale_${n}`, timeout: 600_000 }));
    try {
      const rc = cluster.client;
      put(`(scale) ${n} engines launched until all registered`, t, "s", "lower");
      const { seq } = await rc.query("connection_request", {});
      put(`(scale) ${n} engines: ids lost and handed out again during start`, seq - n, "ids", "lower");
      await new Promise((r) => setTimeout(r, 2000)); // let start-up garbage be collected
      put(`(mem) controller RSS at rest, ${n} engines`, rssOf(cluster.pid) / MB, "MB", "lower");
      const one = rc.view(0);
      const dview = rc.view();
      const bview = rc.broadcastView();
      for (let i = 0; i < 3; i++) await dview.execute("globalThis.x = 1").get();
      // Warm up until engine 0's direct link is up (client/direct.ts): a task that goes through
      // the controller while the link still shakes hands would be measured as the other path.
      for (let i = 0; i < 50; i++) {
        const sent = rc.directTasks;
        await one.execute("globalThis.x = 1").get();
        if (rc.directTasks > sent) break;
      }
      const reps = n >= 256 ? 7 : 15;
      const runs = async (f: () => Promise<unknown>): Promise<number> => {
        const out: number[] = [];
        for (let i = 0; i < reps; i++) out.push((await timed(f))[0] * 1e3);
        return median(out);
      };
      const oneMs = await runs(() => one.execute("globalThis.x = 1").get());
      const allMs = await runs(() => dview.execute("globalThis.x = 1").get());
      const pids = (await rc.engines()).map((e) => e.pid);
      const cpuBefore = pids.reduce((a, p) => a + cpuMsOf(p), 0);
      const bcastMs = await runs(() => bview.execute("globalThis.x = 1").get());
      // What the engines alone burn per broadcast execute, spread over every core: no fan-out
      // can finish sooner, whatever carries the messages.
      const engineCpuMs = (pids.reduce((a, p) => a + cpuMsOf(p), 0) - cpuBefore) / reps / os.cpus().length;
      put(`(fan-out) execute('x=1') on 1 of ${n} engines median`, oneMs, "ms", "lower");
      put(`(fan-out) execute('x=1') on all ${n} engines median`, allMs, "ms", "lower");
      put(`(fan-out) execute('x=1') on all ${n} engines, BroadcastView median`, bcastMs, "ms", "lower");
      put(`(fan-out) all/one, ${n} engines, DirectView`, allMs / oneMs, "×", "lower");
      put(`(fan-out) all/one, ${n} engines, BroadcastView`, bcastMs / oneMs, "×", "lower");
      put(`(floor) engines' CPU per execute on all ${n}, over ${os.cpus().length} cores`, engineCpuMs, "ms", "lower");
      put(
        `(floor) all/one at best, ${n} engines: engines' CPU over the cores / one`,
        engineCpuMs / oneMs,
        "×",
        "lower",
      );
      if (n === 64) {
        const direct = await runs(() => dview.push({ pushed: TWO_MB }).get());
        const broadcast = await runs(() => bview.push({ pushed: TWO_MB }).get());
        put("(broadcast) push 2 MB to 64 engines, DirectView", direct, "ms", "lower");
        put("(broadcast) push 2 MB to 64 engines, BroadcastView", broadcast, "ms", "lower");
        put(
          "(broadcast) push 2 MB to 64 engines, BroadcastView speedup over DirectView",
          direct / broadcast,
          "×",
          "higher",
        );
        const file = `/dev/shm/tsparallel-bench-${process.pid}`;
        fs.writeFileSync(file, Buffer.from(TWO_MB.buffer));
        try {
          const noop = await runs(() => bview.apply(() => 0).get());
          const read = await runs(() =>
            bview.apply((f: string) => process.getBuiltinModule("node:fs").readFileSync(f).byteLength, file).get(),
          );
          put(
            "(floor) 2 MB read by each of 64 engines from /dev/shm (one copy, no network)",
            read - noop,
            "ms",
            "lower",
          );
        } finally {
          fs.rmSync(file, { force: true });
        }
      }
    } finally {
      await cluster.stop();
    }
    const window = Math.max(8, 8 * os.availableParallelism());
    put(`(floor) ${n} bare node processes started, ${window} at a time`, await bareNodeStarts(n, window), "s", "lower");
  }
}

/** Many tiny load-balanced tasks; the controller's RSS is sampled after every batch. */
export async function soak(): Promise<void> {
  const total = quick ? 20_000 : 200_000;
  const batch = 10_000;
  const cluster = await Cluster.start({ n: 2, profile: "bench_soak" });
  const rc = cluster.client;
  try {
    const lv = rc.loadBalancedView();
    await lv
      .map(
        (x: number) => x,
        Array.from({ length: 1000 }, (_, i) => i),
      )
      .get();
    const first = (await rc.stats()).rss;
    const firstAtRest = await statsAtRest(rc);
    const samples: number[] = [];
    const t0 = performance.now();
    for (let done = 0; done < total; done += batch) {
      const xs = Array.from({ length: batch }, (_, i) => done + i);
      const out = await lv.map((x: number) => x + 1, xs).get();
      if (out[batch - 1] !== done + batch) throw new Error("soak: wrong result");
      samples.push((await rc.stats()).rss);
    }
    const secs = (performance.now() - t0) / 1000;
    const last = samples[samples.length - 1]!;
    const lastAtRest = await statsAtRest(rc);
    const secondHalf = samples.slice(Math.floor(samples.length / 2));
    put(`(soak) ${total} tasks throughput`, total / secs, "tasks/s", "higher");
    put(`(soak) controller RSS after ${total} tasks`, last / MB, "MB", "lower");
    put(`(soak) controller RSS growth over ${total} tasks`, (last - first) / MB, "MB", "lower");
    put(
      `(soak) controller RSS growth at rest over ${total} tasks`,
      (lastAtRest.rss - firstAtRest.rss) / MB,
      "MB",
      "lower",
    );
    put(
      `(soak) controller heap in use, growth at rest over ${total} tasks`,
      (lastAtRest.heap - firstAtRest.heap) / MB,
      "MB",
      "lower",
    );
    put(
      "(soak) controller RSS growth over the second half",
      (Math.max(...secondHalf) - secondHalf[0]!) / MB,
      "MB",
      "lower",
    );
  } finally {
    await cluster.stop();
  }
}

/**
 * The controller's memory once it has been quiet for a few seconds: its idle collection (see
 * controller/idle-gc.ts) has run, so what remains is what it keeps, not the garbage of the last burst.
 */
async function statsAtRest(rc: Client): Promise<{ rss: number; heap: number }> {
  await new Promise((r) => setTimeout(r, 4000));
  const { rss, heap } = await rc.stats();
  return { rss, heap };
}

/**
 * The long chaos run: 20,000 load-balanced tasks with retries on 4 engines with
 * --restart-engines, one random fault (SIGKILL, a 3 s SIGSTOP, a task calling process.exit)
 * every 0.5 s. Every result must arrive; the figure is the number of faults survived.
 */
export async function chaosRun(): Promise<void> {
  const cluster = await Cluster.start({ n: 4, profile: "bench_chaos", restartEngines: true });
  try {
    const report = await chaos(cluster, {
      tasks: quick ? 5000 : 20_000,
      everyMs: 500,
      log: (l) => process.stderr.write(`[bench] ${l}\n`),
    });
    const { kill, stop, exit } = report.faults;
    put("(chaos) faults survived, all results correct", kill + stop + exit, "faults", "higher");
    put("(chaos) run time", report.seconds, "s", "lower");
  } finally {
    await cluster.stop();
  }
}

type KernelFigures = { start_s: number[]; px_s: number[]; loop_s: { toplevel: number[]; function: number[] } };

function kernelBench(spec: Record<string, unknown>, env: NodeJS.ProcessEnv): KernelFigures {
  const run = spawnSync(PYTHON, ["-Xfrozen_modules=off", path.join(ROOT, "bench", "kernel_bench.py")], {
    input: JSON.stringify(spec),
    encoding: "utf8",
    env: { ...env, PYDEVD_DISABLE_FILE_VALIDATION: "1" },
    timeout: 15 * 60_000,
    maxBuffer: 16 << 20,
  });
  if (run.status !== 0) throw new Error(`kernel_bench.py failed (${run.status}): ${run.stderr.slice(-2000)}`);
  return JSON.parse(run.stdout) as KernelFigures;
}

/**
 * Kernel start (launch until kernel_info answers) and a `%px` no-op on 4 engines (execute_request
 * until execute_reply), for tsparallel's kernel and for IPython's with ipyparallel, both through
 * jupyter_client. Returns ipyparallel's figures under the same names, or why they are missing.
 */
export async function kernel(): Promise<Record<string, { value: number; unit: string }> | string> {
  if (spawnSync(PYTHON, ["-c", "import jupyter_client"]).status !== 0) {
    return "jupyter_client not installed (apt-get install python3-jupyter-client): kernel figures skipped";
  }
  const home = fs.mkdtempSync(path.join(process.env.TSPARALLEL_DIR ?? "/tmp", "jupyter-"));
  execFileSync(process.execPath, [CLI, "install", "--prefix", home]);
  const env = {
    ...process.env,
    JUPYTER_PATH: path.join(home, "share", "jupyter"),
    JUPYTER_DATA_DIR: path.join(home, "data"),
  };
  const starts = quick ? 3 : 5;
  const runs = quick ? 30 : 100;
  const names = {
    start: "(kernel) start until kernel_info reply",
    px: "(kernel) %px no-op on 4 engines, Jupyter client round trip",
  };
  const cluster = await Cluster.start({ n: 4, profile: "default" });
  try {
    const ts = kernelBench(
      {
        kernel: "tsparallel",
        starts,
        runs,
        cwd: home,
        setup: 'import { Client } from "tsparallel";\nconst rc = await Client.connect();\nrc.activate();',
        px: "%px void 0",
        loops: {
          toplevel: "let s = 0;\nfor (let i = 0; i < 2e8; i++) s += i;",
          function: "(() => {\n  let s = 0;\n  for (let i = 0; i < 2e8; i++) s += i;\n  return s;\n})();",
        },
      },
      env,
    );
    put(names.start, median(ts.start_s), "s", "lower");
    put(names.px, median(ts.px_s) * 1e3, "ms", "lower");
    put("(kernel) a top-level loop of 2e8, seconds", median(ts.loop_s.toplevel), "s", "lower");
    put("(kernel) the same loop in a function, seconds", median(ts.loop_s.function), "s", "lower");
    put(
      "(kernel) top-level loop / the same loop in a function",
      median(ts.loop_s.toplevel) / median(ts.loop_s.function),
      "x",
      "lower",
    );
  } finally {
    await cluster.stop();
  }
  if (spawnSync(PYTHON, ["-c", "import ipyparallel, ipykernel"]).status !== 0)
    return "ipyparallel/ipykernel not installed: their kernel figures skipped";
  const ipp = kernelBench(
    {
      kernel: "python3",
      starts,
      runs,
      cwd: home,
      ipp_engines: 4,
      setup:
        "import ipyparallel as ipp\nrc = ipp.Client(profile_dir='{profile_dir}')\nrc.wait_for_engines(4)\nrc.activate()",
      px: "%px pass",
    },
    env,
  );
  return {
    [names.start]: { value: median(ipp.start_s), unit: "s" },
    [names.px]: { value: median(ipp.px_s) * 1e3, unit: "ms" },
  };
}
