/**
 * The stylesheets of every bundled extension (each package's `style/index.js` pulls in its
 * dependencies' too), as JupyterLab's builder writes them into its `style.js`. Themes are not
 * here: the theme manager loads them at run time from the themes directory (lab/build.ts).
 */
import "@jupyterlab/application-extension/style/index.js";
import "@jupyterlab/apputils-extension/style/index.js";
import "@jupyterlab/celltags-extension/style/index.js";
import "@jupyterlab/codemirror-extension/style/index.js";
import "@jupyterlab/completer-extension/style/index.js";
import "@jupyterlab/console-extension/style/index.js";
import "@jupyterlab/csvviewer-extension/style/index.js";
import "@jupyterlab/docmanager-extension/style/index.js";
import "@jupyterlab/documentsearch-extension/style/index.js";
import "@jupyterlab/filebrowser-extension/style/index.js";
import "@jupyterlab/fileeditor-extension/style/index.js";
import "@jupyterlab/help-extension/style/index.js";
import "@jupyterlab/htmlviewer-extension/style/index.js";
import "@jupyterlab/imageviewer-extension/style/index.js";
import "@jupyterlab/inspector-extension/style/index.js";
import "@jupyterlab/json-extension/style/index.js";
import "@jupyterlab/launcher-extension/style/index.js";
import "@jupyterlab/mainmenu-extension/style/index.js";
import "@jupyterlab/markdownviewer-extension/style/index.js";
import "@jupyterlab/markedparser-extension/style/index.js";
import "@jupyterlab/metadataform-extension/style/index.js";
import "@jupyterlab/notebook-extension/style/index.js";
import "@jupyterlab/rendermime-extension/style/index.js";
import "@jupyterlab/running-extension/style/index.js";
import "@jupyterlab/settingeditor-extension/style/index.js";
import "@jupyterlab/shortcuts-extension/style/index.js";
import "@jupyterlab/statusbar-extension/style/index.js";
import "@jupyterlab/terminal-extension/style/index.js";
import "@jupyterlab/toc-extension/style/index.js";
import "@jupyterlab/tooltip-extension/style/index.js";
import "@jupyterlab/translation-extension/style/index.js";
import "@jupyterlab/ui-components-extension/style/index.js";
