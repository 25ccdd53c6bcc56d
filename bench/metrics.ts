/** What every bench workload records, and the small statistics they share. */
import { performance } from "node:perf_hooks";

export type Metric = { value: number; unit: string; better: "higher" | "lower"; range?: [number, number] };
export const MB = 1 << 20;
export const quick = process.argv.includes("--quick");

export const ours: Record<string, Metric> = {};

export function put(name: string, value: number, unit: string, better: Metric["better"]): void {
  ours[name] = { value, unit, better };
  process.stderr.write(`[bench] ${name}: ${value.toFixed(3)} ${unit}\n`);
}

export const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export function p99(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const k = (s.length - 1) * 0.99;
  const lo = Math.floor(k);
  return s[lo]! + (s[Math.min(lo + 1, s.length - 1)]! - s[lo]!) * (k - lo);
}

export async function timed<T>(f: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const r = await f();
  return [(performance.now() - t0) / 1000, r];
}
