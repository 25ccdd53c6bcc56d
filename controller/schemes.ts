/**
 * Load-balancing schemes as pure functions (ipyparallel's task_scheduler.py choosers).
 *
 * `loads[i]` is the number of outstanding tasks on candidate i, and candidates come in
 * least-recently-used order (index 0 waited longest). Each returns the index to use.
 */
export type Scheme = (loads: readonly number[], random: () => number) => number;

/** The least recently used engine, whatever its load. */
export const lru: Scheme = () => 0;

/** Fewest outstanding tasks; ties go to the least recently used (ipyparallel's default). */
export const leastload: Scheme = (loads) => {
  let best = 0;
  for (let i = 1; i < loads.length; i++) if (loads[i]! < loads[best]!) best = i;
  return best;
};

export const plainrandom: Scheme = (loads, random) => Math.floor(random() * loads.length);

/** Two random candidates; take the one that waited longer (lower LRU index). */
export const twobin: Scheme = (loads, random) => {
  const a = Math.floor(random() * loads.length);
  const b = Math.floor(random() * loads.length);
  return Math.min(a, b);
};

/** Two random candidates drawn with weight 1/(load+1); take the less loaded one. */
export const weighted: Scheme = (loads, random) => {
  const weights = loads.map((l) => 1 / (l + 1));
  const total = weights.reduce((a, b) => a + b, 0);
  const draw = (): number => {
    let r = random() * total;
    for (let i = 0; i < weights.length; i++) {
      r -= weights[i]!;
      if (r < 0) return i;
    }
    return weights.length - 1;
  };
  const a = draw();
  const b = draw();
  return loads[a]! <= loads[b]! ? a : b;
};

export const SCHEMES = { leastload, lru, twobin, plainrandom, weighted } as const;
export type SchemeName = keyof typeof SCHEMES;

export function isSchemeName(s: string): s is SchemeName {
  return Object.hasOwn(SCHEMES, s);
}

/**
 * How many tasks an engine may hold at once. ipyparallel's hwm=1 idles engines for a round
 * trip between tiny tasks; a fixed large hwm strands tasks behind long ones (a skewed
 * workload, as in the views tutorial). So the window adapts: enough tasks to cover `windowMs` of the engine's recent
 * average task time, at least 1 and at most `hwm`.
 */
export function pipelineDepth(avgTaskMs: number | undefined, hwm: number, windowMs = 2): number {
  if (hwm <= 1) return Math.max(hwm, 1);
  if (avgTaskMs === undefined) return 1;
  return Math.max(1, Math.min(hwm, 1 + Math.floor(windowMs / Math.max(avgTaskMs, 1e-3))));
}
