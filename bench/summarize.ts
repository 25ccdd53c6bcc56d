/**
 * `npm run bench:summary [-- file.json ...]`: the median table, with ranges, of several full
 * `npm run bench` runs (default: the three newest in bench/results/), as Markdown for
 * bench/RESULTS.md. Each run measured ipyparallel in the same invocation; ratios are taken per run,
 * then their median, so a slow moment of the machine weighs on both sides alike.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Metric } from "./metrics";
import { fmt, referenceName, targetCell } from "./targets";
import { PACKAGE_ROOT } from "../paths";

interface Run {
  file: string;
  machine: Record<string, unknown>;
  quick: boolean;
  tsparallel: Record<string, Metric>;
  ipyparallel: Record<string, { value: number; unit: string }>;
  ratios: Record<string, number>;
}

const dir = path.join(PACKAGE_ROOT, "bench", "results");
const given = process.argv.slice(2);
const files =
  given.length > 0
    ? given
    : fs
        .readdirSync(dir)
        .filter((f) => f.endsWith(".json") && !f.includes("quick") && !f.includes("-only-"))
        .sort()
        .slice(-3)
        .map((f) => path.join(dir, f));
if (files.length === 0) throw new Error(`no full runs in ${dir}: run \`npm run bench\` first`);
const runs: Run[] = files.map((file) => ({
  file,
  ...(JSON.parse(fs.readFileSync(file, "utf8")) as Omit<Run, "file">),
}));

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length / 2;
  return s.length % 2 ? s[Math.floor(m)]! : (s[m - 1]! + s[m]!) / 2;
};
/** "1.23 (1.10–1.31)": the median and, over several runs, the range. */
const spread = (xs: readonly number[], unit = ""): string => {
  if (xs.length === 0) return "-";
  const u = unit ? ` ${unit}` : "";
  return xs.length === 1
    ? `${fmt(xs[0]!)}${u}`
    : `${fmt(median(xs))}${u} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;
};

const names = [...new Set(runs.flatMap((r) => Object.keys(r.tsparallel)))];
const lines = [
  `${runs.length} run(s): ${runs.map((r) => path.basename(r.file)).join(", ")}`,
  `machine: ${JSON.stringify(runs[0]!.machine)}`,
  "",
  "| workload | tsparallel | ipyparallel | ratio (×, >1 = tsparallel better) | target |",
  "|---|---|---|---|---|",
];
for (const name of names) {
  const ours = runs.flatMap((r) => r.tsparallel[name]?.value ?? []);
  const unit = runs.map((r) => r.tsparallel[name]?.unit).find(Boolean) ?? "";
  const ref = runs.flatMap((r) => {
    const m = r.ipyparallel[referenceName(name, r.quick)] ?? r.ipyparallel[name];
    return m ? [m.value] : [];
  });
  const refUnit =
    runs.map((r) => (r.ipyparallel[referenceName(name, r.quick)] ?? r.ipyparallel[name])?.unit).find(Boolean) ?? "";
  const ratios = runs.flatMap((r) => r.ratios[name] ?? []);
  const ratio = ratios.length > 0 ? median(ratios) : undefined;
  lines.push(
    `| ${name} | ${spread(ours, unit)} | ${spread(ref, refUnit)} | ${spread(ratios)} | ${targetCell(name, median(ours), ratio)} |`,
  );
}
console.log(lines.join("\n"));
