/**
 * The client (and views) `%px` uses: set by Client.connect, `rc.activate()` and `view.activate()`.
 * Kept on globalThis under a registered symbol: a notebook that imports its own copy of
 * tsparallel and the kernel's magics must agree on which client is active.
 */
import type { Client } from "./client";
import type { DirectView } from "./views";

interface ActiveState {
  client: Client | undefined;
  views: Map<string, DirectView>;
}

const KEY = Symbol.for("tsparallel.active");

function state(): ActiveState {
  const g = globalThis as Record<symbol, ActiveState | undefined>;
  return (g[KEY] ??= { client: undefined, views: new Map() });
}

export function setActive(client: Client | undefined, ifCurrently?: Client): void {
  const s = state();
  if (ifCurrently && s.client !== ifCurrently) return;
  s.client = client;
  if (!client) s.views.clear();
  else for (const [suffix, view] of s.views) if (view.client !== client) s.views.delete(suffix);
}

export function getActiveClient(): Client | undefined {
  return state().client;
}

export function setActiveView(suffix: string, view: DirectView): void {
  state().views.set(suffix, view);
}

export function getActiveView(suffix = ""): DirectView | undefined {
  return state().views.get(suffix);
}

export function activeSuffixes(): string[] {
  return [...state().views.keys()];
}
