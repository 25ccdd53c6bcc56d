/**
 * The typed side of activation (active.ts keeps plain objects): the client and the views `%px`
 * runs on. Apart from client.ts, which it imports and which does not import it.
 */
import { activeObject, activeViewObject, setActiveObject } from "./active";
import type { Client } from "./client";
import type { ViewHost } from "./host";
import type { DirectView } from "./views";

/**
 * The client `%px` runs on. The active client may come from another copy of this library
 * (a notebook's own node_modules), so it is typed here rather than checked with instanceof.
 */
export function getActiveClient(): Client | undefined {
  return activeObject() as Client | undefined;
}

/** The view `%px<suffix>` runs on, set by `view.activate(suffix)`. */
export function getActiveView(suffix = ""): DirectView | undefined {
  return activeViewObject(suffix) as DirectView | undefined;
}

/** `%px` forgets `host` (and its views) if it is the active one. */
export function deactivate(host: ViewHost): void {
  setActiveObject(undefined, host);
}
