/** The client (and view) `%px` uses: set by Client.connect, `rc.activate()` and `view.activate()`. */
import type { Client } from "./client";
import type { DirectView } from "./views";

let activeClient: Client | undefined;
const activeViews = new Map<string, DirectView>();

export function setActive(client: Client | undefined, ifCurrently?: Client): void {
  if (ifCurrently && activeClient !== ifCurrently) return;
  activeClient = client;
  if (!client) activeViews.clear();
}

export function getActiveClient(): Client | undefined {
  return activeClient;
}

export function setActiveView(suffix: string, view: DirectView): void {
  activeViews.set(suffix, view);
}

export function getActiveView(suffix = ""): DirectView | undefined {
  return activeViews.get(suffix);
}

export function activeSuffixes(): string[] {
  return [...activeViews.keys()];
}
