/**
 * A JupyterLab 4 notebook page from the npm @jupyterlab/* packages (PyPI's prebuilt JupyterLab
 * cannot be installed here, and Debian has none): services, document manager, notebook widget,
 * CodeMirror 6 cells and the standard renderers, Shift+Enter to run. Bundled by esbuild
 * (test/helpers/lab.ts) and served as a static page by Jupyter Server; the browser test types
 * a `%%px` cell into it. Not the whole Lab shell: no file browser, launcher or extensions.
 *
 * URL: .../static/lab/index.html?token=T&path=NOTEBOOK.ipynb
 */
import "@jupyterlab/application/style/index.css";
import "@jupyterlab/codemirror/style/index.css";
import "@jupyterlab/notebook/style/index.css";
import "@jupyterlab/theme-light-extension/style/theme.css";
import { CommandRegistry } from "@lumino/commands";
import { Signal } from "@lumino/signaling";
import { BoxPanel, Widget } from "@lumino/widgets";
import { PageConfig } from "@jupyterlab/coreutils";
import { ServiceManager } from "@jupyterlab/services";
import { DocumentManager } from "@jupyterlab/docmanager";
import { DocumentRegistry } from "@jupyterlab/docregistry";
import { RenderMimeRegistry, standardRendererFactories } from "@jupyterlab/rendermime";
import { NotebookActions, NotebookModelFactory, NotebookPanel, NotebookWidgetFactory } from "@jupyterlab/notebook";
import {
  CodeMirrorEditorFactory,
  CodeMirrorMimeTypeService,
  EditorExtensionRegistry,
  EditorLanguageRegistry,
  EditorThemeRegistry,
  ybinding,
} from "@jupyterlab/codemirror";

function editorServices() {
  const languages = new EditorLanguageRegistry();
  EditorLanguageRegistry.getDefaultLanguages().forEach((l) => languages.addLanguage(l));
  const themes = new EditorThemeRegistry();
  EditorThemeRegistry.getDefaultThemes().forEach((t) => themes.addTheme(t));
  const extensions = new EditorExtensionRegistry();
  EditorExtensionRegistry.getDefaultExtensions({ themes }).forEach((e) => extensions.addExtension(e));
  // Cell text lives in the shared (Yjs) model: bind each editor to it, as Lab's own plugin does.
  extensions.addExtension({
    name: "shared-model-binding",
    factory: (options) =>
      EditorExtensionRegistry.createImmutableExtension(
        ybinding({
          ytext: (options.model.sharedModel as unknown as { ysource: Parameters<typeof ybinding>[0]["ytext"] }).ysource,
        }),
      ),
  });
  return {
    factory: new CodeMirrorEditorFactory({ extensions, languages }),
    mimeTypeService: new CodeMirrorMimeTypeService(languages),
  };
}

async function main(): Promise<void> {
  const query = new URLSearchParams(location.search);
  PageConfig.setOption("token", query.get("token") ?? "");
  PageConfig.setOption("baseUrl", new URL("../../", location.href).pathname); // page is at <base>/static/lab/
  const manager = new ServiceManager();
  await manager.ready;

  const editors = editorServices();
  const registry = new DocumentRegistry();
  const opened = new Signal<unknown, never>({});
  const docManager = new DocumentManager({ registry, manager, opener: { open: () => undefined, opened } as never });
  registry.addModelFactory(new NotebookModelFactory({}));
  registry.addWidgetFactory(
    new NotebookWidgetFactory({
      name: "Notebook",
      modelName: "notebook",
      fileTypes: ["notebook"],
      defaultFor: ["notebook"],
      preferKernel: true,
      canStartKernel: true,
      rendermime: new RenderMimeRegistry({ initialFactories: standardRendererFactories }),
      contentFactory: new NotebookPanel.ContentFactory({ editorFactory: editors.factory.newInlineEditor }),
      mimeTypeService: editors.mimeTypeService,
    }),
  );
  const notebook = docManager.open(query.get("path") ?? "Untitled.ipynb") as NotebookPanel;

  const panel = new BoxPanel();
  panel.id = "main";
  panel.addWidget(notebook);
  BoxPanel.setStretch(notebook, 1);
  Widget.attach(panel, document.body);
  window.addEventListener("resize", () => panel.update());

  const commands = new CommandRegistry();
  document.addEventListener("keydown", (e) => commands.processKeydownEvent(e), true);
  commands.addCommand("run-and-advance", {
    execute: () => NotebookActions.runAndAdvance(notebook.content, notebook.context.sessionContext),
  });
  commands.addKeyBinding({ selector: ".jp-Notebook", keys: ["Shift Enter"], command: "run-and-advance" });
  // The kernel's status on <body>, for people and for the browser test.
  notebook.context.sessionContext.statusChanged.connect((_, status) => (document.body.dataset.kernelStatus = status));
}

window.addEventListener(
  "load",
  () =>
    void main().catch((e: unknown) => {
      document.body.dataset.error = String(e);
      console.error(e);
    }),
);
