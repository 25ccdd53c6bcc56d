/**
 * `npm run bench [-- --quick] [-- --only name,name]`: tsparallel's workloads and ipyparallel's
 * (bench/ipyparallel/bench.py) in the same run on the same machine, printed as one table of
 * ratios with their targets, and written to bench/results/<timestamp>.json.
 * No timings live in tests; they live here.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PACKAGE_ROOT } from "../paths";
import { loadBalance, smallCluster, startup } from "./core";
import { chaosRun, kernel, memoryAtRest, scale, soak } from "./extra";
import { floor } from "./floor";
import { cpuBudget, monitorOverhead } from "./cpu";
import { flood, unordered } from "./sturdy";
import { commCollectives } from "./comm";
import { type Metric, ours, quick } from "./metrics";
import { fmt, formatTable, referenceName, targetCell } from "./targets";

process.env.TSPARALLEL_DIR = fs.mkdtempSync(path.join(os.tmpdir(), "tsparallel-bench-"));
type Reference = Record<string, { value: number; unit: string }>;

function ipyparallel(sections: string[]): Reference | string {
  const script = path.join(PACKAGE_ROOT, "bench", "ipyparallel", "bench.py");
  const probe = spawnSync("/usr/bin/python3", ["-c", "import ipyparallel, numpy"], { encoding: "utf8" });
  if (probe.status !== 0)
    return "ipyparallel not installed (apt-get install python3-ipyparallel python3-numpy): skipped";
  if (!fs.existsSync(script)) return `reference script not found at ${script}: skipped`;
  const out = path.join(os.tmpdir(), `ipp-bench-${process.pid}.json`);
  const run = spawnSync(
    "/usr/bin/python3",
    [script, "--out", out, "--only", sections.join(","), ...(quick ? ["--quick"] : [])],
    {
      stdio: ["ignore", "ignore", "inherit"],
      timeout: 15 * 60_000,
    },
  );
  if (run.status !== 0 && !fs.existsSync(out)) return `reference script failed (${run.status})`;
  return (JSON.parse(fs.readFileSync(out, "utf8")) as { metrics: Reference }).metrics;
}

/** The workloads bench/ipyparallel/bench.py also runs; `--only af,ipp` runs ipyparallel's af alone. */
const IPP_SECTIONS = ["af", "g", "h", "fan"];

function ippSections(only: Set<string> | undefined): string[] {
  const chosen = only ? IPP_SECTIONS.filter((s) => only.has(s)) : IPP_SECTIONS;
  return chosen.length > 0 ? chosen : IPP_SECTIONS;
}

const WORKLOADS: Record<string, () => Promise<unknown>> = {
  af: smallCluster,
  g: loadBalance,
  h: startup,
  mem: memoryAtRest,
  scale,
  soak,
  chaos: chaosRun,
  kernel,
  floor,
  cpu: cpuBudget,
  monitor: monitorOverhead,
  unordered,
  flood,
  comm: commCollectives,
  ipp: () => Promise.resolve(),
};

async function main(): Promise<void> {
  const onlyArg = process.argv.indexOf("--only");
  const only = onlyArg > 0 ? new Set((process.argv[onlyArg + 1] ?? "").split(",")) : undefined;
  const ref: Reference = {};
  const notes: string[] = [];
  for (const [name, run] of Object.entries(WORKLOADS)) {
    if (only && !only.has(name)) continue;
    // A workload that fails is a note of the run, not the end of it.
    const got =
      name === "ipp"
        ? ipyparallel(ippSections(only))
        : await run().catch((e: unknown) => `workload ${name} failed: ${e instanceof Error ? e.message : String(e)}`);
    if (typeof got === "string") notes.push(got);
    else if (got && typeof got === "object") Object.assign(ref, got);
  }
  const rows: string[][] = [["workload", "tsparallel", "ipyparallel", "ratio (×, >1 = tsparallel better)", "target"]];
  const ratios: Record<string, number> = {};
  for (const [name, m] of Object.entries(ours)) {
    const theirs = ref[referenceName(name, quick)] ?? ref[name];
    const ratio = theirs ? (m.better === "higher" ? m.value / theirs.value : theirs.value / m.value) : undefined;
    if (ratio !== undefined) ratios[name] = ratio;
    rows.push([
      name,
      `${fmt(m.value)} ${m.unit}`,
      theirs ? `${fmt(theirs.value)} ${theirs.unit}` : "-",
      ratio ? ratio.toFixed(2) : "-",
      targetCell(name, m.value, ratio),
    ]);
  }
  console.log(formatTable(rows));
  for (const n of notes) console.log(`\nnote: ${n}`);
  const file = path.join(
    PACKAGE_ROOT,
    "bench",
    "results",
    // A quick or partial run is named so: the summary takes full runs only.
    `${new Date().toISOString().replace(/[:.]/g, "-")}${quick ? "-quick" : ""}${only ? `-only-${[...only].join("-")}` : ""}.json`,
  );
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const machine = {
    cpus: os.cpus().length,
    model: os.cpus()[0]?.model,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.type()} ${os.release()}`,
  };
  fs.writeFileSync(
    file,
    JSON.stringify(
      { machine, quick, tsparallel: ours satisfies Record<string, Metric>, ipyparallel: ref, ratios, notes },
      null,
      1,
    ),
  );
  console.log(`\nwrote ${path.relative(process.cwd(), file)}`);
}

main().catch((e: unknown) => {
  console.error(`bench failed: ${e instanceof Error ? e.stack : String(e)}`);
  process.exitCode = 1;
});
