/**
 * The "Clusters" panel in JupyterLab's left side bar, like ipyparallel's JupyterLab extension:
 * every profile's cluster (running or stopped, its engine sets and counts, updated live), a form
 * to start one ("# of engines", under a profile name that is free), scale and stop buttons, Start
 * and Remove for a stopped profile, and "Insert connection code" for the active notebook. Its backend is the `tsparallel_lab` server extension's `/tsparallel/clusters`,
 * behind the Jupyter token; every message it shows is the backend's one line.
 */
import * as React from "react";
import type { JupyterFrontEnd, JupyterFrontEndPlugin } from "@jupyterlab/application";
import { URLExt } from "@jupyterlab/coreutils";
import { INotebookTracker, NotebookActions } from "@jupyterlab/notebook";
import { ServerConnection } from "@jupyterlab/services";
import { LabIcon, ReactWidget } from "@jupyterlab/ui-components";
import "./clusters.css";

export interface EngineSet {
  id: string;
  kind: string;
  state: string;
  n: number;
  registered: number;
  jobId?: string;
  detail?: string;
}

export interface ClusterRow {
  profile: string;
  running: boolean;
  engines: number | null;
  sets: EngineSet[];
  controllerPid: number;
}

type Action =
  | { action: "start"; profile: string; n: string; engines: string }
  | { action: "scale"; profile: string; n: string }
  | { action: "stop"; profile: string }
  | { action: "remove"; profile: string };

/** The command that opens a cluster's dashboard (dashboard.tsx), with `{ profile }`. */
export const DASHBOARD_COMMAND = "tsparallel:open-dashboard";

const settings = ServerConnection.makeSettings();
const API = URLExt.join(settings.baseUrl, "tsparallel", "clusters");

/** Calls the backend; resolves with its JSON, or rejects with its one-line message. */
async function call<T>(init: RequestInit = {}): Promise<T> {
  const response = await ServerConnection.makeRequest(API, init, settings);
  const body = (await response.json().catch(() => ({}))) as { message?: string } & T;
  if (!response.ok) throw new Error(body.message ?? `${response.status} ${response.statusText}`);
  return body;
}

/** Every profile's cluster, as `tsparallel cluster list --json` says. */
export async function listClusters(): Promise<ClusterRow[]> {
  return (await call<{ clusters: ClusterRow[] }>()).clusters;
}

const clustersIcon = new LabIcon({
  name: "tsparallel:clusters",
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161"><circle cx="12" cy="5" r="3"/><circle cx="5" cy="18" r="3"/><circle cx="19" cy="18" r="3"/><path d="M11 8h2v3.5l5 4-1.2 1.6L12 13.3l-4.8 3.8L6 15.5l5-4z"/></g></svg>',
});

/** The name the Profile field suggests: "default" unless it runs, else the first free "cluster-N". */
export function freeProfile(clusters: readonly ClusterRow[]): string {
  const taken = new Set(clusters.filter((c) => c.running).map((c) => c.profile));
  if (!taken.has("default")) return "default";
  for (let i = 2; ; i++) if (!taken.has(`cluster-${i}`)) return `cluster-${i}`;
}

export function connectionCode(profile: string): string {
  return `import { Client } from "tsparallel";\nconst rc = await Client.connect({ profile: ${JSON.stringify(profile)} });\nrc.ids`;
}

function Panel(props: {
  insert(profile: string): string | undefined;
  openDashboard(profile: string): void;
}): React.ReactElement {
  const [clusters, setClusters] = React.useState<ClusterRow[] | undefined>();
  const [busy, setBusy] = React.useState<string | undefined>();
  const [message, setMessage] = React.useState<{ text: string; error: boolean } | undefined>();
  // Until the user types a name, the field follows what is free (a running profile cannot start).
  const [typedProfile, setProfile] = React.useState<string | undefined>();
  const profile = typedProfile ?? freeProfile(clusters ?? []);
  const [n, setN] = React.useState("4");
  const [engines, setEngines] = React.useState("local");
  const [scaleBy, setScaleBy] = React.useState<Record<string, string>>({});

  const refresh = React.useCallback(async () => {
    try {
      setClusters(await listClusters());
    } catch (e) {
      setMessage({ text: (e as Error).message, error: true });
    }
  }, []);
  React.useEffect(() => {
    void refresh();
    const timer = setInterval(() => void refresh(), 2000); // engines come and go: keep the counts live
    return () => clearInterval(timer);
  }, [refresh]);

  const act = async (what: Action, label: string): Promise<void> => {
    setBusy(label);
    setMessage(undefined);
    try {
      const { message: text } = await call<{ message: string }>({ method: "POST", body: JSON.stringify(what) });
      setMessage({ text, error: false });
    } catch (e) {
      setMessage({ text: (e as Error).message, error: true });
    } finally {
      setBusy(undefined);
      await refresh();
    }
  };

  /** A button that runs one backend action, disabled while another runs. */
  const button = (label: string, mod: string, what: Action, doing: string): React.ReactElement => (
    <button
      className={`jp-mod-styled ${mod}`.trim()}
      disabled={busy !== undefined}
      onClick={() => void act(what, doing)}
    >
      {label}
    </button>
  );

  return (
    <div className="tsp-Clusters">
      <header className="tsp-Clusters-header">Clusters</header>
      <form
        className="tsp-Clusters-new"
        onSubmit={(e) => {
          e.preventDefault();
          void act({ action: "start", profile, n, engines }, `starting ${profile}`);
        }}
      >
        <label>
          Profile{" "}
          <input
            className="jp-mod-styled"
            name="profile"
            value={profile}
            onChange={(e) => setProfile(e.target.value)}
          />
        </label>
        <label>
          # of engines{" "}
          <input className="jp-mod-styled" name="engines" value={n} size={4} onChange={(e) => setN(e.target.value)} />
        </label>
        <label>
          Launcher{" "}
          <select
            className="jp-mod-styled"
            name="launcher"
            value={engines}
            onChange={(e) => setEngines(e.target.value)}
          >
            <option value="local">local</option>
            <option value="mpi">mpi</option>
          </select>
        </label>
        <button className="jp-mod-styled jp-mod-accept" type="submit" disabled={busy !== undefined}>
          Start
        </button>
      </form>
      {busy && <div className="tsp-Clusters-busy">{busy}…</div>}
      {message && <div className={message.error ? "tsp-Clusters-error" : "tsp-Clusters-message"}>{message.text}</div>}
      {clusters === undefined ? (
        <div className="tsp-Clusters-empty">Loading…</div>
      ) : clusters.length === 0 ? (
        <div className="tsp-Clusters-empty">
          No clusters yet: start one above, or run `tsparallel cluster start -n 4`.
        </div>
      ) : (
        <ul className="tsp-Clusters-list">
          {clusters.map((c) => (
            <li key={c.profile} className="tsp-Cluster" data-profile={c.profile}>
              <div className="tsp-Cluster-title">
                <b>{c.profile}</b>{" "}
                <span className={c.running ? "tsp-running" : "tsp-stopped"}>{c.running ? "running" : "stopped"}</span>{" "}
                <span className="tsp-Cluster-engines">{c.running ? `${c.engines ?? "?"} engines` : ""}</span>
              </div>
              {c.sets.map((s) => (
                <div key={s.id} className="tsp-Cluster-set">
                  {s.id}: {s.kind}, {s.state}, {s.registered} of {s.n} registered
                  {s.jobId ? `, job ${s.jobId}` : ""}
                </div>
              ))}
              {!c.running && (
                <div className="tsp-Cluster-actions">
                  {button(
                    "Start",
                    "jp-mod-accept",
                    { action: "start", profile: c.profile, n, engines },
                    `starting ${c.profile}`,
                  )}
                  {button("Remove", "jp-mod-warn", { action: "remove", profile: c.profile }, `removing ${c.profile}`)}
                </div>
              )}
              {c.running && (
                <div className="tsp-Cluster-actions">
                  <input
                    className="jp-mod-styled"
                    aria-label={`engines to add to ${c.profile}`}
                    size={3}
                    value={scaleBy[c.profile] ?? "1"}
                    onChange={(e) => setScaleBy({ ...scaleBy, [c.profile]: e.target.value })}
                  />
                  {button(
                    "Scale",
                    "",
                    { action: "scale", profile: c.profile, n: scaleBy[c.profile] ?? "1" },
                    `adding engines to ${c.profile}`,
                  )}
                  {button("Stop", "jp-mod-warn", { action: "stop", profile: c.profile }, `stopping ${c.profile}`)}
                  <button className="jp-mod-styled" onClick={() => props.openDashboard(c.profile)}>
                    Dashboard
                  </button>
                  <button
                    className="jp-mod-styled"
                    onClick={() => {
                      const problem = props.insert(c.profile);
                      setMessage(
                        problem
                          ? { text: problem, error: true }
                          : { text: `connection code for ${c.profile} inserted`, error: false },
                      );
                    }}
                  >
                    Insert connection code
                  </button>
                </div>
              )}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: "tsparallel:clusters",
  description: "The Clusters panel: start, scale and stop tsparallel clusters.",
  autoStart: true,
  optional: [INotebookTracker],
  activate: (app: JupyterFrontEnd, tracker: INotebookTracker | null) => {
    const insert = (profile: string): string | undefined => {
      const panel = tracker?.currentWidget;
      if (!panel) return "open a notebook first: the code goes below its active cell";
      NotebookActions.insertBelow(panel.content);
      panel.content.activeCell?.model.sharedModel.setSource(connectionCode(profile));
      // Focus moves to the new cell, so Shift+Enter runs it instead of pressing the button again.
      app.shell.activateById(panel.id);
      panel.content.mode = "edit";
      panel.content.activeCell?.editor?.focus();
      return undefined;
    };
    const openDashboard = (profile: string): void => void app.commands.execute(DASHBOARD_COMMAND, { profile });
    const widget = ReactWidget.create(<Panel insert={insert} openDashboard={openDashboard} />);
    widget.id = "tsparallel-clusters";
    widget.title.icon = clustersIcon;
    widget.title.caption = "Clusters";
    widget.addClass("tsp-ClustersPanel");
    app.shell.add(widget, "left", { rank: 250 });
  },
};

export default plugin;
