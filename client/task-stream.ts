/**
 * The task stream (Dask's name): a bar per task on its engine's row over time, coloured by label,
 * failures red. One Vega-Lite spec draws it everywhere: `ar.timeline()`, the performance report
 * and the JupyterLab dashboard, which streams tasks into the spec's named data set. Pure (no
 * Node module), so the browser bundle imports it too.
 */

/** One bar: seconds since the stream's first task started. */
export interface TaskStreamMark {
  engine: number;
  start: number;
  end: number;
  label: string;
  order: number;
  failed: boolean;
  /** For the tooltip, when known: the task's msg id and the first line of its error. */
  msgId?: string;
  error?: string;
}

/** The data set the dashboard streams marks into (`view.change(TASK_STREAM_DATA, …)`). */
export const TASK_STREAM_DATA = "tasks";

export interface TaskStreamOptions {
  title: string;
  /** Pixels, or "container": the width of the element the view is drawn in. */
  width?: number | "container";
  /**
   * "label" colours by label; "order" by task order (one map's tasks: the views tutorial's
   * picture). Left out: by order when the marks have one label, else by label.
   */
  colorBy?: "label" | "order";
  /** No values: the marks come later, into the named data set. */
  streaming?: boolean;
  /** Vega-Lite config (the dashboard's theme colours); a white background when left out. */
  config?: Record<string, unknown>;
}

export function taskStreamSpec(tasks: readonly TaskStreamMark[], opts: TaskStreamOptions): Record<string, unknown> {
  const colorBy = opts.colorBy ?? (new Set(tasks.map((t) => t.label)).size > 1 ? "label" : "order");
  const color =
    colorBy === "label"
      ? { field: "label", type: "nominal", title: "label", scale: { scheme: "tableau10" } }
      : { field: "order", type: "quantitative", title: "task order", scale: { scheme: "viridis" } };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: opts.title,
    width: opts.width ?? 560,
    height: { step: 22 },
    // A width that follows the page: only the width fits, the height is a step per engine.
    ...(opts.width === "container" ? { autosize: { type: "fit-x", contains: "padding" } } : {}),
    ...(opts.config ? { config: opts.config } : { background: "white" }),
    data: opts.streaming ? { name: TASK_STREAM_DATA } : { values: tasks },
    transform: [{ calculate: "datum.end - datum.start", as: "seconds" }],
    mark: { type: "bar", stroke: opts.config?.background ?? "white", strokeWidth: 0.5 },
    encoding: {
      y: { field: "engine", type: "ordinal", title: "engine" },
      x: { field: "start", type: "quantitative", title: "seconds since the first task started" },
      x2: { field: "end" },
      color: { condition: { test: "datum.failed", value: "#d62728" }, ...color },
      tooltip: [
        { field: "msgId", title: "msg id" },
        { field: "label" },
        { field: "engine" },
        { field: "seconds", title: "duration (s)", format: ".3f" },
        { field: "error" },
      ],
    },
  };
}
