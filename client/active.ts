/**
 * Which client (and which views) `%px` runs on: set by Client.connect, `rc.activate()` and
 * `view.activate()`.
 *
 * Kept on globalThis under a registered symbol: a notebook that imports its own copy of
 * tsparallel and the kernel's magics must agree on which client is active. Because the value
 * may come from another copy of the library, this module stores plain objects and imports
 * neither the client nor the views; `client.ts` gives the typed accessors.
 */

/** Anything activatable belongs to a client: a view is dropped when its client is replaced. */
export interface ActiveView {
  readonly client: object;
}

interface ActiveState {
  client: object | undefined;
  views: Map<string, ActiveView>;
}

const KEY = Symbol.for("tsparallel.active");

function state(): ActiveState {
  const g = globalThis as Record<symbol, ActiveState | undefined>;
  return (g[KEY] ??= { client: undefined, views: new Map() });
}

/** Makes `client` active (or none); with `ifCurrently`, only when that one is active now. */
export function setActiveObject(client: object | undefined, ifCurrently?: object): void {
  const s = state();
  if (ifCurrently && s.client !== ifCurrently) return;
  s.client = client;
  if (!client) s.views.clear();
  else for (const [suffix, view] of s.views) if (view.client !== client) s.views.delete(suffix);
}

export function activeObject(): object | undefined {
  return state().client;
}

export function setActiveView(suffix: string, view: ActiveView): void {
  state().views.set(suffix, view);
}

export function activeViewObject(suffix: string): ActiveView | undefined {
  return state().views.get(suffix);
}
