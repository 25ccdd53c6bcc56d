/**
 * `npm run bench [-- --quick] [-- --only name,name]`: tsparallel's workloads and ipyparallel's
 * reference script (shared/anchors/) in the same run on the same machine, printed as one table of
 * ratios with the targets of issue 6, and written to bench/results/<timestamp>.json.
 * No timings live in tests; they live here.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { loadBalance, smallCluster, startup } from "./core";
import { kernel, memoryAtRest, scale64, soak } from "./extra";
import { type Metric, ours, quick } from "./metrics";

process.env.TSPARALLEL_DIR = fs.mkdtempSync(path.join(os.tmpdir(), "tsparallel-bench-"));
type Reference = Record<string, { value: number; unit: string }>;

function ipyparallel(): Reference | string {
  const script = path.join(__dirname, "..", "..", "..", "shared", "anchors", "ipyparallel_bench.py");
  const probe = spawnSync("/usr/bin/python3", ["-c", "import ipyparallel, numpy"], { encoding: "utf8" });
  if (probe.status !== 0) return "ipyparallel not installed (apt-get install python3-ipyparallel python3-numpy): skipped";
  if (!fs.existsSync(script)) return `reference script not found at ${script}: skipped`;
  const out = path.join(os.tmpdir(), `ipp-bench-${process.pid}.json`);
  const run = spawnSync("/usr/bin/python3", [script, "--out", out, ...(quick ? ["--quick"] : [])], { stdio: ["ignore", "ignore", "inherit"], timeout: 15 * 60_000 });
  if (run.status !== 0 && !fs.existsSync(out)) return `reference script failed (${run.status})`;
  return (JSON.parse(fs.readFileSync(out, "utf8")) as { metrics: Reference }).metrics;
}

/** ipyparallel names "h startup 4 engines: engines launch->registered"; map ours onto theirs. */
const ALIASES: Record<string, string> = { "h startup 4 engines (Cluster.start until all registered)": "h startup 4 engines (Cluster.start_and_connect_sync)" };

/** Issue 6's targets: a ratio against ipyparallel, or an absolute bound. */
const TARGETS: Record<string, { ratio: number } | { atLeast: number } | { atMost: number }> = {
  "a apply_sync latency median": { ratio: 10 },
  "c LB map 2000 no-op chunksize=1 throughput": { ratio: 30 },
  "e push 64 MB": { ratio: 2.5 },
  "e pull 64 MB": { ratio: 2.5 },
  "g load_balanced map_async speedup": { atLeast: 11.8 },
  "h startup 4 engines (Cluster.start until all registered)": { ratio: 8 },
  "(mem) idle engine RSS (max of 4, before any task)": { atMost: 60 },
};

function targetCell(name: string, value: number, ratio: number | undefined): string {
  const t = TARGETS[name];
  if (!t) return "";
  if ("ratio" in t) return ratio === undefined ? `≥${t.ratio}× (no reference)` : `${ratio >= t.ratio ? "met" : "MISSED"} (≥${t.ratio}×)`;
  if ("atLeast" in t) return `${value >= t.atLeast ? "met" : "MISSED"} (≥${t.atLeast})`;
  return `${value <= t.atMost ? "met" : "MISSED"} (≤${t.atMost})`;
}

const WORKLOADS: Record<string, () => Promise<unknown>> = { af: smallCluster, g: loadBalance, h: startup, mem: memoryAtRest, scale: scale64, soak, kernel, ipp: async () => undefined };

async function main(): Promise<void> {
  const onlyArg = process.argv.indexOf("--only");
  const only = onlyArg > 0 ? new Set((process.argv[onlyArg + 1] ?? "").split(",")) : undefined;
  const ref: Reference = {};
  const notes: string[] = [];
  for (const [name, run] of Object.entries(WORKLOADS)) {
    if (only && !only.has(name)) continue;
    const got = name === "ipp" ? ipyparallel() : await run();
    if (typeof got === "string") notes.push(got);
    else if (got && typeof got === "object") Object.assign(ref, got);
  }
  const rows: string[][] = [["workload", "tsparallel", "ipyparallel", "ratio (×, >1 = tsparallel better)", "target"]];
  const ratios: Record<string, number> = {};
  const fmt = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toFixed(4));
  for (const [name, m] of Object.entries(ours)) {
    const theirs = ref[ALIASES[name] ?? (quick ? name.replace(/ 2000 /, " 200 ") : name)] ?? ref[name];
    const ratio = theirs ? (m.better === "higher" ? m.value / theirs.value : theirs.value / m.value) : undefined;
    if (ratio !== undefined) ratios[name] = ratio;
    rows.push([name, `${fmt(m.value)} ${m.unit}`, theirs ? `${fmt(theirs.value)} ${theirs.unit}` : "-", ratio ? ratio.toFixed(2) : "-", targetCell(name, m.value, ratio)]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  console.log(rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n"));
  for (const n of notes) console.log(`\nnote: ${n}`);
  const file = path.join(__dirname, "..", "..", "bench", "results", `${new Date().toISOString().replace(/[:.]/g, "-")}${quick ? "-quick" : ""}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const machine = { cpus: os.cpus().length, model: os.cpus()[0]?.model, memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, platform: `${os.type()} ${os.release()}` };
  fs.writeFileSync(file, JSON.stringify({ machine, quick, tsparallel: ours satisfies Record<string, Metric>, ipyparallel: ref, ratios, notes }, null, 1));
  console.log(`\nwrote ${path.relative(process.cwd(), file)}`);
}

main().catch((e: unknown) => {
  console.error(`bench failed: ${e instanceof Error ? e.stack : String(e)}`);
  process.exitCode = 1;
});
