/**
 * The notebook cell executor, as JupyterLab's own (`runCell`), except that a cell run while the
 * notebook's kernel is still starting waits for it. JupyterLab's skips such cells silently (it
 * finds "No Kernel" and clears them), or asks for a kernel in a dialog: pressing Run All as soon
 * as a tutorial opens ran nothing, or offered Python 3.
 */
import type { JupyterFrontEndPlugin } from "@jupyterlab/application";
import { INotebookCellExecutor, runCell } from "@jupyterlab/notebook";

/** The id of JupyterLab's executor, which this one replaces. */
export const REPLACED_EXECUTOR = "@jupyterlab/notebook-extension:cell-executor";

const plugin: JupyterFrontEndPlugin<INotebookCellExecutor> = {
  id: "tsparallel:cell-executor",
  description: "Runs notebook cells, waiting for a kernel that is still starting.",
  autoStart: true,
  provides: INotebookCellExecutor,
  activate: () =>
    Object.freeze({
      runCell: async (options: INotebookCellExecutor.IRunCellOptions): Promise<boolean> => {
        const session = options.sessionContext;
        if (session && !session.isReady) await session.ready;
        return runCell(options);
      },
    }),
};

export default plugin;
