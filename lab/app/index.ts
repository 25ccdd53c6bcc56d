/**
 * tsparallel's JupyterLab: the JupyterLab 4 application assembled from npm's @jupyterlab/*
 * extension packages (as JupyterLab's own `examples/app` does), plus the Clusters panel. Bundled
 * by lab/build.ts and served by the `tsparallel_lab` Jupyter Server extension (lab/server/).
 */
import { JupyterLab, type JupyterFrontEndPlugin } from "@jupyterlab/application";
import { IConnectionStatus, IServiceManager } from "@jupyterlab/services";
import { PluginRegistry } from "@lumino/coreutils";
import "./styles";
import clustersPlugin from "./clusters";
import dashboardPlugin from "./dashboard";
import cellExecutorPlugin, { REPLACED_EXECUTOR } from "./cell-executor";

type PluginModule = { default: JupyterFrontEndPlugin<unknown> | JupyterFrontEndPlugin<unknown>[] };

/**
 * Plugins of an extension package; language-server plugins are left out (no LSP server here), and
 * so is the cell executor ours replaces (cell-executor.ts).
 */
function pluginsOf(mod: PluginModule): JupyterFrontEndPlugin<unknown>[] {
  const all = Array.isArray(mod.default) ? mod.default : [mod.default];
  return all.filter((p) => !p.id.includes(":language-server") && p.id !== REPLACED_EXECUTOR);
}

async function main(): Promise<void> {
  const extensions = await Promise.all([
    import("@jupyterlab/services-extension"),
    import("@jupyterlab/application-extension"),
    import("@jupyterlab/apputils-extension"),
    import("@jupyterlab/celltags-extension"),
    import("@jupyterlab/codemirror-extension"),
    import("@jupyterlab/completer-extension"),
    import("@jupyterlab/console-extension"),
    import("@jupyterlab/csvviewer-extension"),
    import("@jupyterlab/docmanager-extension"),
    import("@jupyterlab/documentsearch-extension"),
    import("@jupyterlab/filebrowser-extension"),
    import("@jupyterlab/fileeditor-extension"),
    import("@jupyterlab/help-extension"),
    import("@jupyterlab/htmlviewer-extension"),
    import("@jupyterlab/imageviewer-extension"),
    import("@jupyterlab/inspector-extension"),
    import("@jupyterlab/launcher-extension"),
    import("@jupyterlab/mainmenu-extension"),
    import("@jupyterlab/markdownviewer-extension"),
    import("@jupyterlab/markedparser-extension"),
    import("@jupyterlab/metadataform-extension"),
    import("@jupyterlab/notebook-extension"),
    import("@jupyterlab/rendermime-extension"),
    import("@jupyterlab/running-extension"),
    import("@jupyterlab/settingeditor-extension"),
    import("@jupyterlab/shortcuts-extension"),
    import("@jupyterlab/statusbar-extension"),
    import("@jupyterlab/terminal-extension"),
    import("@jupyterlab/theme-dark-extension"),
    import("@jupyterlab/theme-light-extension"),
    import("@jupyterlab/toc-extension"),
    import("@jupyterlab/tooltip-extension"),
    import("@jupyterlab/translation-extension"),
    import("@jupyterlab/ui-components-extension"),
  ]);
  // Plain objects: Lab calls hasOwnProperty on them, which an ES module namespace lacks.
  const mimeExtensions = (await Promise.all([import("@jupyterlab/json-extension")])).map((m) => ({
    __esModule: true,
    default: m.default,
  }));
  // As JupyterLab's own app does since 4.4: the service manager (kernels, sessions, contents) comes
  // from the services plugins, so the plugins that ask for the kernel manager get it.
  const pluginRegistry = new PluginRegistry();
  pluginRegistry.registerPlugins([
    ...extensions.flatMap((m) => pluginsOf(m as PluginModule)),
    cellExecutorPlugin,
    clustersPlugin,
    dashboardPlugin,
  ]);
  const connectionStatus = await pluginRegistry.resolveOptionalService(IConnectionStatus);
  const serviceManager = await pluginRegistry.resolveRequiredService(IServiceManager);
  const lab = new JupyterLab({
    pluginRegistry,
    serviceManager,
    mimeExtensions,
    ...(connectionStatus ? { connectionStatus } : {}),
  });
  await lab.start();
  await lab.restored;
  document.body.dataset.labRestored = "true"; // for the browser tests
}

window.addEventListener(
  "load",
  () =>
    void main().catch((e: unknown) => {
      document.body.dataset.labError = String(e);
      console.error(e);
    }),
);
