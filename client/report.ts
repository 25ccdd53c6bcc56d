/**
 * A saved performance report (Dask's `performance_report`): one self-contained HTML file, opened
 * offline (no script, no CDN; the charts are SVG drawn in Node), with the task stream, each
 * engine's utilisation, the slowest tasks and a summary, from the controller's task records
 * (`rc.dbQuery`). The records themselves are embedded as JSON in
 * `<script type="application/json" id="tsparallel-tasks">`, one object per task, for other tools.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { type Chart, vegaLite } from "./charts";
import { taskStreamSpec } from "./task-stream";

/** One task as the report embeds it (ISO times; `started` null for a task that never ran). */
export interface ReportTask {
  msgId: string;
  engineId: number | null;
  label: string | null;
  submitted: string;
  started: string | null;
  completed: string;
  status: "done" | "failed" | "aborted";
}

/** The fields of `rc.dbQuery` the report reads. */
export const REPORT_KEYS = ["msgId", "msgType", "engineId", "label", "state", "submitted", "started", "completed"];

/** Finished tasks from dbQuery records (those not finished are left out), oldest first. */
export function reportTasks(records: ReadonlyArray<Record<string, unknown>>): ReportTask[] {
  const out: ReportTask[] = [];
  for (const r of records) {
    const state = r.state;
    if (state !== "done" && state !== "failed" && state !== "aborted") continue;
    if (typeof r.msgId !== "string" || typeof r.submitted !== "string" || typeof r.completed !== "string") continue;
    out.push({
      msgId: r.msgId,
      engineId: typeof r.engineId === "number" ? r.engineId : null,
      label: typeof r.label === "string" ? r.label : null,
      submitted: r.submitted,
      started: typeof r.started === "string" ? r.started : null,
      completed: r.completed,
      status: state,
    });
  }
  return out.sort((a, b) => Date.parse(a.submitted) - Date.parse(b.submitted));
}

interface Summary {
  tasks: number;
  failed: number;
  engines: number;
  spanSeconds: number;
  busySeconds: number;
  medianMs: number;
  slowest: Array<ReportTask & { ms: number }>;
  perEngine: Array<{ engine: number; tasks: number; busySeconds: number; utilisation: number }>;
}

function summarise(tasks: readonly ReportTask[]): Summary {
  const ran = tasks.filter((t) => t.started !== null && t.engineId !== null);
  const ms = (t: ReportTask): number => Date.parse(t.completed) - Date.parse(t.started ?? t.completed);
  const first = Math.min(...ran.map((t) => Date.parse(t.started!)));
  const last = Math.max(...ran.map((t) => Date.parse(t.completed)));
  const span = ran.length > 0 ? Math.max(last - first, 1) / 1000 : 0;
  const byEngine = new Map<number, { tasks: number; busy: number }>();
  for (const t of ran) {
    const e = byEngine.get(t.engineId!) ?? { tasks: 0, busy: 0 };
    e.tasks++;
    e.busy += ms(t) / 1000;
    byEngine.set(t.engineId!, e);
  }
  const durations = ran.map(ms).sort((a, b) => a - b);
  return {
    tasks: tasks.length,
    failed: tasks.filter((t) => t.status !== "done").length,
    engines: byEngine.size,
    spanSeconds: span,
    busySeconds: durations.reduce((a, b) => a + b, 0) / 1000,
    medianMs: durations[Math.floor(durations.length / 2)] ?? 0,
    slowest: ran
      .map((t) => ({ ...t, ms: ms(t) }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 10),
    perEngine: [...byEngine]
      .sort(([a], [b]) => a - b)
      .map(([engine, e]) => ({
        engine,
        tasks: e.tasks,
        busySeconds: e.busy,
        utilisation: span > 0 ? e.busy / span : 0,
      })),
  };
}

/** The task stream of `tasks` as an SVG chart. */
export async function taskStream(tasks: readonly ReportTask[], title: string): Promise<Chart | undefined> {
  const ran = tasks.filter((t) => t.started !== null && t.engineId !== null);
  if (ran.length === 0) return undefined;
  const t0 = Math.min(...ran.map((t) => Date.parse(t.started!)));
  const values = ran.map((t, order) => ({
    engine: t.engineId!,
    start: (Date.parse(t.started!) - t0) / 1000,
    end: (Date.parse(t.completed) - t0) / 1000,
    label: t.label ?? "(none)",
    order,
    failed: t.status !== "done",
    msgId: t.msgId,
  }));
  return vegaLite(taskStreamSpec(values, { title }));
}

const escape = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

/** The report's HTML: self-contained, no script runs, no request leaves it. */
export async function reportHtml(
  tasks: readonly ReportTask[],
  opts: { title: string; generated: Date },
): Promise<string> {
  const s = summarise(tasks);
  const stream = await taskStream(tasks, `${s.tasks} tasks on ${s.engines} engines`);
  const utilisation =
    s.perEngine.length === 0
      ? undefined
      : await vegaLite({
          $schema: "https://vega.github.io/schema/vega-lite/v6.json",
          title: "utilisation: busy time over the span",
          width: 360,
          height: { step: 18 },
          background: "white",
          data: { values: s.perEngine.map((e) => ({ engine: e.engine, utilisation: Math.min(e.utilisation, 1) })) },
          mark: "bar",
          encoding: {
            y: { field: "engine", type: "ordinal" },
            x: { field: "utilisation", type: "quantitative", axis: { format: "%" }, scale: { domain: [0, 1] } },
          },
        });
  const row = (cells: Array<string | number>): string =>
    `<tr>${cells.map((c) => `<td>${escape(String(c))}</td>`).join("")}</tr>`;
  // `<` inside the JSON would let a label close the script element early.
  const json = JSON.stringify(tasks).replace(/</g, "\\u003c");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${escape(opts.title)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
th { background: #f3f3f3; }
.chart svg { max-width: 100%; height: auto; }
</style>
</head>
<body>
<h1>${escape(opts.title)}</h1>
<p>Generated ${escape(opts.generated.toISOString())} by tsparallel from the controller's task records.</p>
<h2>Summary</h2>
<table id="summary">
${row(["tasks", s.tasks])}
${row(["failed or aborted", s.failed])}
${row(["engines", s.engines])}
${row(["span (first start to last end)", `${s.spanSeconds.toFixed(3)} s`])}
${row(["task time, summed", `${s.busySeconds.toFixed(3)} s`])}
${row(["median task time", `${s.medianMs.toFixed(1)} ms`])}
${row(["throughput", s.spanSeconds > 0 ? `${(s.tasks / s.spanSeconds).toFixed(1)} tasks/s` : "-"])}
</table>
<h2>Task stream</h2>
<div class="chart" id="task-stream">${stream?.svg ?? "<p>No task ran.</p>"}</div>
<h2>Engines</h2>
<div class="chart" id="utilisation">${utilisation?.svg ?? ""}</div>
<table id="engines">
<tr><th>engine</th><th>tasks</th><th>busy</th><th>utilisation</th></tr>
${s.perEngine.map((e) => row([e.engine, e.tasks, `${e.busySeconds.toFixed(3)} s`, `${(e.utilisation * 100).toFixed(1)} %`])).join("\n")}
</table>
<h2>Slowest tasks</h2>
<table id="slowest">
<tr><th>msg id</th><th>label</th><th>engine</th><th>time</th><th>status</th></tr>
${s.slowest.map((t) => row([t.msgId, t.label ?? "", t.engineId ?? "", `${t.ms} ms`, t.status])).join("\n")}
</table>
<script type="application/json" id="tsparallel-tasks">${json}</script>
</body>
</html>
`;
}

/** Writes the report of `records` (dbQuery rows) to `file`; returns the tasks it holds. */
export async function writeReport(
  file: string,
  records: ReadonlyArray<Record<string, unknown>>,
  title = "tsparallel performance report",
): Promise<ReportTask[]> {
  const tasks = reportTasks(records);
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(file, await reportHtml(tasks, { title, generated: new Date() }));
  return tasks;
}
