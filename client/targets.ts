/**
 * Target specs: `"all"`, an id, a list, or a Python-style slice string (`"::2"`, `"1:3"`,
 * `"-1"`, `"1,3"`) over the sorted engine ids, checked at the door with messages that say
 * what was wrong.
 */
/** `"all"`, an id, a list of ids, or a slice string such as `"::2"` or `"1:3"`. */
export type Targets = number | readonly number[] | string;

/** Resolves a spec against the registered ids. `scalar` is true for a single integer target. */
export function resolveTargets(spec: Targets | undefined, ids: readonly number[]): { ids: number[]; scalar: boolean } {
  if (spec === undefined || spec === "all") return { ids: [...ids], scalar: false };
  if (typeof spec === "number") return { ids: [pickId(spec, ids)], scalar: true };
  if (Array.isArray(spec)) return { ids: spec.map((t) => pickId(checkInt(t), ids)), scalar: false };
  if (typeof spec !== "string")
    throw new TypeError(`targets must be "all", an id, a list of ids or a slice string like "::2"; got ${typeof spec}`);
  const text = spec.trim();
  if (/^-?\d+$/.test(text)) return { ids: [pickId(Number(text), ids)], scalar: true };
  if (/^-?\d+(\s*,\s*-?\d+)+$/.test(text))
    return { ids: text.split(",").map((t) => pickId(Number(t), ids)), scalar: false };
  const m = /^\[?\s*(-?\d*)\s*:\s*(-?\d*)\s*(?::\s*(-?\d*)\s*)?\]?$/.exec(text);
  if (!m)
    throw new RangeError(
      `bad target string ${JSON.stringify(spec)}: use "all", an id like "2", a list like "1,3" or a slice like "::2" or "1:3"`,
    );
  return { ids: slice(ids, m[1], m[2], m[3]), scalar: false };
}

function checkInt(t: unknown): number {
  if (typeof t !== "number" || !Number.isInteger(t))
    throw new TypeError(`engine ids are integers; got ${JSON.stringify(t)}`);
  return t;
}

function pickId(t: number, ids: readonly number[]): number {
  if (!Number.isInteger(t)) throw new TypeError(`engine ids are integers; got ${t}`);
  // Negative ids count from the end, as in rc[-1].
  const id = t < 0 ? ids[ids.length + t] : t;
  if (id === undefined || !ids.includes(id)) {
    throw new RangeError(`no engine with id ${t}; registered engines are [${ids.join(", ")}]`);
  }
  return id;
}

/** Python slice semantics over a list. */
export function slice<T>(items: readonly T[], startText?: string, stopText?: string, stepText?: string): T[] {
  const n = items.length;
  const step = stepText ? Number(stepText) : 1;
  if (step === 0) throw new RangeError("slice step cannot be zero");
  const norm = (v: string | undefined, dflt: number): number => {
    if (v === undefined || v === "") return dflt;
    let x = Number(v);
    if (x < 0) x += n;
    return step > 0 ? Math.min(Math.max(x, 0), n) : Math.min(Math.max(x, -1), n - 1);
  };
  const start = norm(startText, step > 0 ? 0 : n - 1);
  const stop = norm(stopText, step > 0 ? n : -1);
  const out: T[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(items[i]!);
  return out;
}

/** Contiguous partitions of `n` items into `k` chunks, sizes differing by at most one. */
export function partition(n: number, k: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const base = Math.floor(n / k);
  const extra = n % k;
  let start = 0;
  for (let i = 0; i < k; i++) {
    const size = base + (i < extra ? 1 : 0);
    out.push([start, start + size]);
    start += size;
  }
  return out;
}
