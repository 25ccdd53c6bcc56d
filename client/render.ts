/**
 * How engine outputs appear in the notebook, in ipyparallel's formats:
 *   `[stdout:0] text`, `[stderr:1] text`, `[output:2]` before rich display data,
 *   `Out[2:7]: value` (engine 2, its execution count 7), errors as `[3:execute]: TypeError: …`.
 * Pure: task metadata in, a list of notebook outputs out; the kernel publishes them for `%px`,
 * `ar.displayOutputs()` through the display hook. It lives in the client, not in magics/,
 * because both use it and the library may not import the kernel's magics.
 */
import type { OutputEvent, ResultMetadata } from "./task";
import type { MimeBundle } from "../protocol/messages";

/** How outputs of several engines are ordered: by engine, in arrival order, or by kind. */
export type GroupBy = "engine" | "order" | "type";
import { plainText } from "../protocol/mime";

export type Rendered =
  | { kind: "stream"; name: "stdout" | "stderr"; text: string }
  | { kind: "display"; data: MimeBundle; metadata: Record<string, unknown> };

export function streamText(engine: number | undefined, name: "stdout" | "stderr", text: string): string {
  return `[${name}:${engine ?? "?"}] ${text}${text.endsWith("\n") ? "" : "\n"}`;
}

/** `Out[2:7]: 5`; a multi-line repr starts on the next line; rich data follows its prefix. */
export function renderResult(engine: number | undefined, count: number | undefined, data: MimeBundle): Rendered[] {
  const prefix = `Out[${engine ?? "?"}:${count ?? " "}]:`;
  const text = plainText(data);
  const rich = Object.keys(data).some((k) => k !== "text/plain");
  const meta = { engine };
  if (!rich)
    return [
      {
        kind: "display",
        data: { "text/plain": `${prefix}${text.includes("\n") ? "\n" : " "}${text}` },
        metadata: meta,
      },
    ];
  return [
    { kind: "stream", name: "stdout", text: `${prefix}\n` },
    { kind: "display", data, metadata: meta },
  ];
}

/** A display_data from engine N: `[output:N]` then the data itself. */
export function renderDisplay(
  engine: number | undefined,
  data: MimeBundle,
  metadata: Record<string, unknown>,
): Rendered[] {
  return [
    { kind: "stream", name: "stdout", text: `[output:${engine ?? "?"}]\n` },
    { kind: "display", data, metadata: { ...metadata, engine } },
  ];
}

/** One engine's rich outputs (errors are the cell's error, not rendered here). */
function richOutputs(m: ResultMetadata): Rendered[] {
  return m.outputs.flatMap((o: OutputEvent): Rendered[] => {
    if (o.type === "display_data") return renderDisplay(m.engineId, o.data, o.metadata);
    if (o.type === "execute_result") return renderResult(m.engineId, o.executionCount, o.data);
    return [];
  });
}

function streams(m: ResultMetadata): Rendered[] {
  const out: Rendered[] = [];
  if (m.stdout) out.push({ kind: "stream", name: "stdout", text: streamText(m.engineId, "stdout", m.stdout) });
  if (m.stderr) out.push({ kind: "stream", name: "stderr", text: streamText(m.engineId, "stderr", m.stderr) });
  return out;
}

/**
 * Everything the tasks printed and displayed, grouped as `--group-outputs` asks:
 *   type   all stdout, then all stderr, then displays, then all `Out[…]` (the default)
 *   engine everything of engine 0, then of engine 1, …
 *   order  the n-th output of every engine together
 */
export function renderOutputs(metas: readonly ResultMetadata[], groupBy: GroupBy): Rendered[] {
  if (groupBy === "engine") return metas.flatMap((m) => [...streams(m), ...richOutputs(m)]);
  if (groupBy === "order") {
    const perEngine = metas.map((m) => [...streams(m), ...richOutputs(m)]);
    const longest = Math.max(0, ...perEngine.map((p) => p.length));
    const out: Rendered[] = [];
    for (let i = 0; i < longest; i++) for (const p of perEngine) if (p[i]) out.push(p[i]!);
    return out;
  }
  const isResult = (r: Rendered): boolean => r.kind === "display" && plainText(r.data).startsWith("Out[");
  const rich = metas.flatMap(richOutputs);
  return [
    ...metas.flatMap((m) => streams(m).filter((r) => r.kind === "stream" && r.name === "stdout")),
    ...metas.flatMap((m) => streams(m).filter((r) => r.kind === "stream" && r.name === "stderr")),
    ...rich.filter((r) => !isResult(r)),
    ...rich.filter(isResult),
  ];
}

/** `Parallel execution on engine(s): all` / `[0, 1, 2, 3, ..., 12, 13, 14, 15]`. */
export function verboseLine(block: boolean, targets: string | undefined, ids: readonly number[]): string {
  const shown =
    targets === undefined || targets === "all"
      ? "all"
      : ids.length > 10
        ? `[${[...ids.slice(0, 4), "...", ...ids.slice(-4)].join(", ")}]`
        : `[${ids.join(", ")}]`;
  return `${block ? "Parallel" : "Async parallel"} execution on engine(s): ${shown}\n`;
}
