/**
 * The Dashboard: one cluster's work, live (Dask's dashboard, for tsparallel). Opened from each
 * running cluster in the Clusters panel and from the command palette. Its one websocket,
 * /tsparallel/monitor/<profile> (the tsparallel_lab server extension), carries the controller's
 * monitor readings, four a second; the panel shows
 *
 * - the AsyncResults in flight, per client, with done/total and an ETA;
 * - throughput and queue depth over the last minutes, and the task stream (one bar per task on
 *   its engine's row, the picture `ar.timeline()` and the performance report draw: one Vega-Lite
 *   spec, client/task-stream.ts), both Vega views that readings stream into;
 * - the engines, in the Lab UI kit's sortable table.
 *
 * Colours come from the Lab theme's variables, read again when the theme changes.
 */
import * as React from "react";
import type { JupyterFrontEnd, JupyterFrontEndPlugin } from "@jupyterlab/application";
import { ICommandPalette, IThemeManager, InputDialog, MainAreaWidget, showErrorMessage } from "@jupyterlab/apputils";
import { URLExt } from "@jupyterlab/coreutils";
import { ServerConnection } from "@jupyterlab/services";
import { LabIcon, ReactWidget, Table, UseSignal } from "@jupyterlab/ui-components";
import { Signal } from "@lumino/signaling";
import type { MonitorUpdate, MonitoredEngine, MonitoredProgress } from "../../protocol/monitor";
import { type HistoryChange, HISTORY_MS, MonitorHistory, etaSeconds } from "../../client/monitor-history";
import { TASK_STREAM_DATA, taskStreamSpec } from "../../client/task-stream";
import { DASHBOARD_COMMAND, listClusters } from "./clusters";
import "./dashboard.css";

type Status = { state: "connecting" | "live" } | { state: "ended"; message: string };

/** One dashboard's connection and what it keeps of the readings. */
export class DashboardModel {
  readonly history = new MonitorHistory();
  latest: MonitorUpdate | undefined;
  status: Status = { state: "connecting" };
  readings = 0;
  /** Each reading, with the marks and rate points it adds and removes. */
  readonly changed = new Signal<this, HistoryChange>(this);
  /** The reading or the connection's state changed: redraw. */
  readonly updated = new Signal<this, void>(this);
  private socket: WebSocket | undefined;

  constructor(readonly profile: string) {
    this.connect();
  }

  connect(): void {
    this.socket?.close();
    this.status = { state: "connecting" };
    this.updated.emit();
    const settings = ServerConnection.makeSettings();
    let url = URLExt.join(settings.wsUrl, "tsparallel", "monitor", encodeURIComponent(this.profile));
    if (settings.token) url += `?token=${encodeURIComponent(settings.token)}`;
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.onmessage = (event: MessageEvent<string>) => {
      const data = JSON.parse(event.data) as MonitorUpdate | { error: string };
      if ("error" in data) return this.end(data.error);
      this.latest = data;
      this.readings++;
      this.status = { state: "live" };
      this.changed.emit(this.history.add(data));
      this.updated.emit();
    };
    socket.onclose = () => {
      if (this.socket === socket && this.status.state !== "ended") this.end("the connection to the server closed");
    };
  }

  private end(message: string): void {
    this.status = { state: "ended", message };
    this.updated.emit();
  }

  dispose(): void {
    const socket = this.socket;
    this.socket = undefined;
    socket?.close();
    Signal.clearData(this);
  }
}

/** Vega-Lite colours and fonts from the Lab theme's CSS variables (light or dark). */
function themeConfig(): Record<string, unknown> {
  const css = getComputedStyle(document.body);
  const v = (name: string, fallback: string): string => css.getPropertyValue(name).trim() || fallback;
  const fg = v("--jp-ui-font-color1", "#000");
  const muted = v("--jp-ui-font-color2", "#555");
  const grid = v("--jp-border-color2", "#ddd");
  return {
    background: v("--jp-layout-color1", "white"),
    font: v("--jp-ui-font-family", "sans-serif"),
    title: { color: fg },
    axis: { labelColor: muted, titleColor: fg, gridColor: grid, domainColor: grid, tickColor: grid },
    legend: { labelColor: muted, titleColor: fg },
    view: { stroke: grid },
  };
}

const RATES_DATA = "rates";

function ratesSpec(config: Record<string, unknown>): Record<string, unknown> {
  const x = { field: "at", type: "temporal", title: null, axis: { format: "%H:%M:%S" } };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: "Throughput and queue depth",
    width: "container",
    height: 110,
    autosize: { type: "fit-x", contains: "padding" },
    config,
    data: { name: RATES_DATA },
    layer: [
      {
        mark: { type: "line", color: "#4c78a8" },
        encoding: { x, y: { field: "tasksPerSecond", type: "quantitative", title: "tasks/s" } },
      },
      {
        mark: { type: "line", color: "#f58518", strokeDash: [4, 2] },
        encoding: { x, y: { field: "queued", type: "quantitative", title: "queued" } },
      },
    ],
    resolve: { scale: { y: "independent" } },
  };
}

/**
 * A Vega view that readings stream into: created once per theme with what the history holds,
 * then each reading's changeset (inserted marks, and those that left the window).
 */
function StreamChart(props: { model: DashboardModel; kind: "tasks" | "rates"; theme: string }): React.ReactElement {
  const { model, kind, theme } = props;
  const box = React.useRef<HTMLDivElement>(null);
  React.useEffect(() => {
    let disposed = false;
    let finalize = (): void => undefined;
    let onChange: ((sender: DashboardModel, change: HistoryChange) => void) | undefined;
    void (async () => {
      const [vega, vegaLite] = await Promise.all([import("vega"), import("vega-lite")]);
      if (disposed || !box.current) return;
      const config = themeConfig();
      const spec =
        kind === "tasks"
          ? taskStreamSpec([], { title: "Task stream", width: "container", colorBy: "label", streaming: true, config })
          : ratesSpec(config);
      const name = kind === "tasks" ? TASK_STREAM_DATA : RATES_DATA;
      // Vega-Lite warns that a width fitting its container cannot fit the height too, which
      // steps per engine on purpose: that one notice is not passed on, every other one is.
      const logger = vega.logger(vega.Warn, undefined, (method, level, args) => {
        if (!/^Dropping "fit-y"/.test(String(args[0]))) console[method](level, ...args);
      });
      const view = new vega.View(vega.parse(vegaLite.compile(spec as never, { logger }).spec), {
        renderer: "svg",
        container: box.current,
        hover: true,
      });
      finalize = () => view.finalize();
      const current = kind === "tasks" ? model.history.marks : model.history.rates;
      view.change(name, vega.changeset().insert(current.map((d) => ({ ...d }))));
      onChange = (_sender, change) => {
        const set = vega.changeset();
        if (kind === "tasks") {
          const first = model.history.marks[0]?.order ?? Infinity;
          if (change.removed.length > 0) set.remove((d: { order: number }) => d.order < first);
          set.insert(change.inserted.map((d) => ({ ...d })));
        } else {
          const cutoff = change.rate.at - HISTORY_MS;
          if (change.expired.length > 0) set.remove((d: { at: number }) => d.at < cutoff);
          set.insert([{ ...change.rate }]);
        }
        void view.change(name, set).runAsync();
      };
      model.changed.connect(onChange);
      await view.runAsync();
      box.current.dataset.ready = "true";
    })().catch((e: unknown) => console.error("tsparallel dashboard: a chart failed", e));
    return () => {
      disposed = true;
      if (onChange) model.changed.disconnect(onChange);
      finalize();
    };
  }, [model, kind, theme]);
  return <div ref={box} className={`tsp-Dashboard-chart tsp-Dashboard-${kind}`} />;
}

function seconds(s: number): string {
  return s < 60 ? `${s.toFixed(s < 10 ? 1 : 0)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function ProgressList(props: { update: MonitorUpdate }): React.ReactElement {
  const { progress, progress_more: more } = props.update;
  const now = Date.parse(props.update.at);
  if (progress.length === 0) return <div className="tsp-Dashboard-empty">No results in flight.</div>;
  const byClient = new Map<string, MonitoredProgress[]>();
  for (const p of progress) byClient.set(p.client, [...(byClient.get(p.client) ?? []), p]);
  return (
    <div className="tsp-Dashboard-progressList">
      {[...byClient].map(([client, results]) => (
        <div key={client} className="tsp-Dashboard-client">
          <div className="tsp-Dashboard-clientName">{client}</div>
          {results.map((p) => {
            const ended = p.done + p.failed;
            const eta = etaSeconds(p, now);
            return (
              <div
                key={p.id}
                className="tsp-Dashboard-progress"
                data-label={p.label}
                data-ended={ended}
                data-size={p.size}
              >
                <span className="tsp-Dashboard-progressLabel">
                  {p.label} <span className="tsp-muted">#{p.id}</span>
                </span>
                <progress max={p.size} value={ended} className={p.failed > 0 ? "tsp-failed" : ""} />
                <span className="tsp-Dashboard-progressCount">
                  {ended}/{p.size}
                  {p.failed > 0 ? ` (${p.failed} failed)` : ""}
                </span>
                <span className="tsp-muted">
                  {p.finished ? "done" : eta === undefined ? "starting" : `ETA ${seconds(eta)}`}
                </span>
              </div>
            );
          })}
        </div>
      ))}
      {more > 0 && <div className="tsp-muted">…and {more} more</div>}
    </div>
  );
}

const numeric =
  (f: (e: MonitoredEngine) => number | null) =>
  (a: MonitoredEngine, b: MonitoredEngine): number =>
    (f(a) ?? -1) - (f(b) ?? -1);

function engineColumns(now: number): Table.IColumn<MonitoredEngine>[] {
  const text = (f: (e: MonitoredEngine) => string) => (a: MonitoredEngine, b: MonitoredEngine) =>
    f(a).localeCompare(f(b));
  return [
    { id: "id", label: "Engine", renderCell: (e) => e.id, sort: numeric((e) => e.id) },
    { id: "host", label: "Host", renderCell: (e) => e.hostname, sort: text((e) => e.hostname) },
    { id: "pid", label: "PID", renderCell: (e) => e.pid, sort: numeric((e) => e.pid) },
    { id: "set", label: "Engine set", renderCell: (e) => e.engine_set ?? "", sort: text((e) => e.engine_set ?? "") },
    {
      id: "state",
      label: "State",
      renderCell: (e) => (
        <span className={`tsp-state tsp-state-${e.state}`} data-engine={e.id} data-state={e.state}>
          {e.state}
        </span>
      ),
      sort: text((e) => e.state),
    },
    {
      id: "cpu",
      label: "CPU %",
      renderCell: (e) => (e.cpu === null ? "–" : e.cpu.toFixed(0)),
      sort: numeric((e) => e.cpu),
    },
    {
      id: "rss",
      label: "RSS",
      renderCell: (e) => (e.rss === null ? "–" : `${(e.rss / 2 ** 20).toFixed(0)} MB`),
      sort: numeric((e) => e.rss),
    },
    { id: "queued", label: "Queued", renderCell: (e) => e.queued, sort: numeric((e) => e.queued) },
    { id: "done", label: "Done", renderCell: (e) => e.done, sort: numeric((e) => e.done) },
    { id: "failed", label: "Failed", renderCell: (e) => e.failed, sort: numeric((e) => e.failed) },
    {
      id: "running",
      label: "Running",
      renderCell: (e) =>
        e.running ? `${e.running.label} (${seconds(Math.max(now - Date.parse(e.running.since), 0) / 1000)})` : "",
      sort: text((e) => e.running?.label ?? ""),
    },
  ];
}

function Dashboard(props: { model: DashboardModel; themes: IThemeManager | null }): React.ReactElement {
  const { model, themes } = props;
  const [theme, setTheme] = React.useState(themes?.theme ?? "");
  React.useEffect(() => {
    if (!themes) return;
    // The new theme's variables apply once its stylesheet has loaded: read them a frame later.
    const changed = (): void => void requestAnimationFrame(() => setTheme(themes.theme ?? ""));
    themes.themeChanged.connect(changed);
    return () => void themes.themeChanged.disconnect(changed);
  }, [themes]);
  return (
    <UseSignal signal={model.updated}>
      {() => {
        const u = model.latest;
        const status = model.status;
        const busy = u?.engines.filter((e) => e.state === "busy").length ?? 0;
        const live = u?.engines.filter((e) => e.state === "idle" || e.state === "busy").length ?? 0;
        return (
          <div className="tsp-Dashboard" data-profile={model.profile} data-readings={model.readings}>
            <header className="tsp-Dashboard-header">
              <b>Cluster {model.profile}</b>
              {u && (
                <span>
                  {live} engines ({busy} busy) · {model.history.rates.at(-1)?.tasksPerSecond.toFixed(0) ?? 0} tasks/s ·
                  queued {u.queued} · unassigned {u.unassigned}
                </span>
              )}
              <span className={`tsp-Dashboard-status tsp-${status.state}`}>
                {status.state === "ended" ? status.message : status.state}
              </span>
              {status.state === "ended" && (
                <button className="jp-mod-styled" onClick={() => model.connect()}>
                  Reconnect
                </button>
              )}
            </header>
            <section>
              <h3>Results in flight</h3>
              {u ? (
                <ProgressList update={u} />
              ) : (
                <div className="tsp-Dashboard-empty">Waiting for the first reading…</div>
              )}
            </section>
            <section>
              <StreamChart model={model} kind="rates" theme={theme} />
            </section>
            <section>
              <StreamChart model={model} kind="tasks" theme={theme} />
            </section>
            <section className="tsp-Dashboard-engines">
              <h3>Engines</h3>
              <Table<MonitoredEngine>
                rows={(u?.engines ?? []).map((e) => ({ data: e, key: String(e.id) }))}
                columns={engineColumns(u ? Date.parse(u.at) : Date.now())}
                sortKey="id"
                blankIndicator={() => <span>No engines registered.</span>}
              />
            </section>
          </div>
        );
      }}
    </UseSignal>
  );
}

const dashboardIcon = new LabIcon({
  name: "tsparallel:dashboard",
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161"><rect x="3" y="13" width="4" height="8"/><rect x="10" y="8" width="4" height="13"/><rect x="17" y="3" width="4" height="18"/></g></svg>',
});

/** The running profile to open: the one running, or the user's choice among several. */
async function chooseProfile(): Promise<string | undefined> {
  const running = (await listClusters()).filter((c) => c.running).map((c) => c.profile);
  if (running.length === 0) {
    await showErrorMessage(
      "No cluster is running",
      "Start one in the Clusters panel, or run `tsparallel cluster start -n 4`.",
    );
    return undefined;
  }
  if (running.length === 1) return running[0];
  const choice = await InputDialog.getItem({ title: "Dashboard of which cluster?", items: running });
  return choice.button.accept && choice.value ? choice.value : undefined;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: "tsparallel:dashboard",
  description: "A cluster's live dashboard: engines, task stream, progress, throughput.",
  autoStart: true,
  optional: [ICommandPalette, IThemeManager],
  activate: (app: JupyterFrontEnd, palette: ICommandPalette | null, themes: IThemeManager | null) => {
    const open = new Map<string, MainAreaWidget<ReactWidget>>();
    app.commands.addCommand(DASHBOARD_COMMAND, {
      label: (args) =>
        typeof args.profile === "string" ? `Dashboard of cluster ${args.profile}` : "Open Cluster Dashboard",
      icon: dashboardIcon,
      execute: async (args) => {
        const profile = typeof args.profile === "string" ? args.profile : await chooseProfile();
        if (!profile) return;
        const existing = open.get(profile);
        if (existing && !existing.isDisposed) return app.shell.activateById(existing.id);
        const model = new DashboardModel(profile);
        const content = ReactWidget.create(<Dashboard model={model} themes={themes} />);
        const widget = new MainAreaWidget({ content });
        widget.id = `tsparallel-dashboard-${profile}`;
        widget.title.label = `Dashboard: ${profile}`;
        widget.title.icon = dashboardIcon;
        widget.title.closable = true;
        widget.disposed.connect(() => {
          model.dispose();
          open.delete(profile);
        });
        open.set(profile, widget);
        app.shell.add(widget, "main");
        app.shell.activateById(widget.id);
      },
    });
    palette?.addItem({ command: DASHBOARD_COMMAND, category: "tsparallel" });
  },
};

export default plugin;
