/**
 * A chaos run: a load-balanced map with retries on a cluster with --restart-engines, while every
 * `everyMs` one fault is picked at random: SIGKILL an engine, SIGSTOP one for 3 s then SIGCONT
 * it, or send a task that calls process.exit. The seed is printed, so a failing run can be
 * replayed with TSPARALLEL_CHAOS_SEED. Used by the test (short) and the benchmark (long).
 */
import assert from "node:assert/strict";
import type { Cluster } from "../../cluster/cluster";

export interface ChaosOptions {
  tasks: number;
  everyMs: number;
  seed?: number;
  log?: (line: string) => void;
}

export interface ChaosReport {
  seed: number;
  faults: { kill: number; stop: number; exit: number };
  seconds: number;
}

/** mulberry32: a small seeded generator, so a run's faults can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function chaos(cluster: Cluster, opts: ChaosOptions): Promise<ChaosReport> {
  const seed = opts.seed ?? (Number(process.env.TSPARALLEL_CHAOS_SEED) || Math.floor(Math.random() * 2 ** 31));
  const log = opts.log ?? ((l: string) => console.log(l));
  log(`chaos seed ${seed} (replay with TSPARALLEL_CHAOS_SEED=${seed})`);
  const next = random(seed);
  const rc = cluster.client;
  const faults = { kill: 0, stop: 0, exit: 0 };
  const stopped = new Set<number>();
  const xs = Array.from({ length: opts.tasks }, (_, i) => i);
  const t0 = Date.now();
  const ar = rc.loadBalancedView({ retries: 50 }).map(async (x: number) => {
    if (x % 7 === 0) await new Promise((r) => setTimeout(r, 1));
    return x * 2 + 1;
  }, xs);
  const exits: Array<Promise<unknown>> = [];
  const fault = async (): Promise<void> => {
    const engines = await rc.engines();
    if (engines.length === 0) return;
    const victim = engines[Math.floor(next() * engines.length)]!;
    const roll = next();
    try {
      if (roll < 1 / 3) {
        faults.kill++;
        process.kill(victim.pid, "SIGKILL");
      } else if (roll < 2 / 3) {
        if (stopped.has(victim.pid)) return;
        faults.stop++;
        stopped.add(victim.pid);
        process.kill(victim.pid, "SIGSTOP");
        setTimeout(() => {
          stopped.delete(victim.pid);
          try {
            process.kill(victim.pid, "SIGCONT");
          } catch {
            // killed meanwhile
          }
        }, 3000).unref();
      } else {
        faults.exit++;
        // Its own task, without retries: it must fail with EngineError, not hang.
        exits.push(
          rc
            .view(victim.id)
            .apply(() => process.exit(7))
            .then(
              () => assert.fail("a task that exits its engine returned"),
              (e: unknown) => assert.match(String(e), /EngineError|is not registered|died/),
            ),
        );
      }
    } catch {
      // the engine was gone already
    }
  };
  const timer = setInterval(() => void fault().catch(() => undefined), opts.everyMs);
  try {
    const out = await ar.get({ timeout: Math.max(120_000, opts.tasks * 20) });
    assert.equal(out.length, xs.length);
    for (let i = 0; i < xs.length; i++) if (out[i] !== i * 2 + 1) assert.fail(`result ${i} is ${String(out[i])}`);
  } finally {
    clearInterval(timer);
    for (const pid of stopped) {
      try {
        process.kill(pid, "SIGCONT");
      } catch {
        // gone
      }
    }
  }
  await Promise.all(exits);
  const report = { seed, faults, seconds: (Date.now() - t0) / 1000 };
  log(`chaos survived ${faults.kill} kills, ${faults.stop} stops, ${faults.exit} exits in ${report.seconds} s`);
  return report;
}
