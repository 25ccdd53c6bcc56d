/**
 * Workloads beyond the reference script: memory at rest, 64 engines, a 200,000-task soak, and the
 * kernel as a notebook user meets it (start time, a `%px` no-op through a Jupyter client).
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { Cluster } from "../cluster/cluster";
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

/** 64 engines launched and registered, then one execute on all of them. */
export async function scale64(): Promise<void> {
  const n = quick ? 16 : 64;
  const [t, cluster] = await timed(() => Cluster.start({ n, profile: "bench_64", timeout: 300_000 }));
  try {
    put(`(scale) ${n} engines launched until all registered`, t, "s", "lower");
    const dview = cluster.client.view();
    await dview.execute("globalThis.x = 1").get();
    const runs: number[] = [];
    for (let i = 0; i < 20; i++) runs.push((await timed(() => dview.execute("globalThis.x = 1").get()))[0]);
    put(`(scale) execute('x=1') on all ${n} engines median`, median(runs) * 1e3, "ms", "lower");
  } finally {
    await cluster.stop();
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
    const secondHalf = samples.slice(Math.floor(samples.length / 2));
    put(`(soak) ${total} tasks throughput`, total / secs, "tasks/s", "higher");
    put(`(soak) controller RSS after ${total} tasks`, last / MB, "MB", "lower");
    put(`(soak) controller RSS growth over ${total} tasks`, (last - first) / MB, "MB", "lower");
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

type KernelFigures = { start_s: number[]; px_s: number[] };

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
      },
      env,
    );
    put(names.start, median(ts.start_s), "s", "lower");
    put(names.px, median(ts.px_s) * 1e3, "ms", "lower");
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
