/**
 * Pictures for notebooks: Vega-Lite specs rendered to SVG in Node (no browser, no canvas), and
 * HTML tables. Each returns an object with `toMimeBundle()`, so a cell's last value displays
 * itself in the tsparallel kernel, and `display(x)` shows it on an engine.
 */
import { pathToFileURL } from "node:url";
import type { MimeBundle } from "../protocol/messages";

/** vega and vega-lite are ES modules with top-level await: `require` cannot load them, import() can. */
// eslint-disable-next-line @typescript-eslint/no-implied-eval -- TypeScript compiles import() to require() under CommonJS; this keeps a real import()
const importModule = new Function("specifier", "return import(specifier)") as (specifier: string) => Promise<unknown>;

interface VegaModule {
  View: new (runtime: unknown, opts: { renderer: "none" }) => { toSVG(): Promise<string> };
  parse(spec: unknown): unknown;
}
interface VegaLiteModule {
  compile(spec: unknown): { spec: unknown };
}

let modules: Promise<[VegaModule, VegaLiteModule]> | undefined;
function vegaModules(): Promise<[VegaModule, VegaLiteModule]> {
  modules ??= Promise.all([
    importModule(pathToFileURL(require.resolve("vega")).href) as Promise<VegaModule>,
    importModule(pathToFileURL(require.resolve("vega-lite")).href) as Promise<VegaLiteModule>,
  ]);
  return modules;
}

/** A rendered chart: SVG text, shown inline by notebooks. */
export class Chart {
  constructor(
    readonly svg: string,
    readonly title: string,
  ) {}
  toMimeBundle(): MimeBundle {
    return { "image/svg+xml": this.svg, "text/plain": `<Chart: ${this.title}>` };
  }
}

/**
 * Marks a promise whose result a notebook shows when it is a cell's last expression, awaited or
 * not (the kernel awaits it): `vegaLite(spec)` on its own line draws the chart, as `table(rows)`
 * shows its table.
 */
export const DISPLAYS_WHEN_SETTLED = Symbol.for("tsparallel.displaysWhenSettled");

/** Renders a Vega-Lite spec to an SVG chart. */
export function vegaLite(spec: Record<string, unknown>): Promise<Chart> {
  return Object.assign(render(spec), { [DISPLAYS_WHEN_SETTLED]: true });
}

async function render(spec: Record<string, unknown>): Promise<Chart> {
  const [vega, vl] = await vegaModules();
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: "none" });
  const title =
    typeof spec.title === "string"
      ? spec.title
      : String((spec.title as { text?: string } | undefined)?.text ?? "chart");
  return new Chart(await view.toSVG(), title);
}

/** Rows of records as an HTML table (and aligned text where there is no front end). */
export class Table {
  readonly columns: string[];
  constructor(
    readonly rows: ReadonlyArray<Record<string, unknown>>,
    columns?: string[],
  ) {
    this.columns = columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))];
  }

  toMimeBundle(): MimeBundle {
    const esc = (v: unknown): string => cellText(v).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
    const cell = (v: unknown): string => (typeof v === "number" && !Number.isInteger(v) ? v.toFixed(3) : cellText(v));
    const head = `<tr>${this.columns.map((c) => `<th>${esc(c)}</th>`).join("")}</tr>`;
    const body = this.rows
      .map((r) => `<tr>${this.columns.map((c) => `<td>${esc(cell(r[c]))}</td>`).join("")}</tr>`)
      .join("");
    const widths = this.columns.map((c) => Math.max(c.length, ...this.rows.map((r) => cell(r[c]).length)));
    const line = (vals: string[]): string => vals.map((v, i) => v.padStart(widths[i]!)).join("  ");
    const text = [line(this.columns), ...this.rows.map((r) => line(this.columns.map((c) => cell(r[c]))))].join("\n");
    return {
      "text/html": `<table class="tsparallel-table"><thead>${head}</thead><tbody>${body}</tbody></table>`,
      "text/plain": text,
    };
  }
}

export function table(rows: ReadonlyArray<Record<string, unknown>>, columns?: string[]): Table {
  return new Table(rows, columns);
}

/** A table cell's text: strings as they are, objects as JSON rather than "[object Object]". */
function cellText(v: unknown): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint" || typeof v === "symbol")
    return v.toString();
  return JSON.stringify(v) ?? "";
}
