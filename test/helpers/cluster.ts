/**
 * Test fixtures: a real controller and real engine processes in a private TSPARALLEL_DIR; every
 * process is killed by pid in teardown, whatever state the test left. The heartbeat is the
 * product's (1 s, 5 misses): a tighter one declares busy engines lost on a loaded CI machine.
 * Tests of the heartbeat itself ask for a fast one.
 */
import { afterEach } from "node:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Cluster, type ClusterOptions } from "../../cluster/cluster";
import type { Client } from "../../client/client";
import { isAlive } from "../../protocol/connection";

let counter = 0;
export const testRoot = fs.mkdtempSync(path.join(os.tmpdir(), "tsparallel-test-"));
process.env.TSPARALLEL_DIR = testRoot;

export interface TestCluster {
  cluster: Cluster;
  rc: Client;
  profile: string;
  pids(): Promise<number[]>;
  stop(): Promise<void>;
}

export async function startCluster(n: number, opts: ClusterOptions = {}): Promise<TestCluster> {
  const profile = `t${process.pid}_${++counter}`;
  const cluster = await Cluster.start({ n, profile, timeout: 60_000, ...opts });
  const rc = cluster.client;
  const known = new Set<number>();
  const pids = async (): Promise<number[]> => {
    const list = (await rc.engines()).map((e) => e.pid);
    list.forEach((p) => known.add(p));
    return list;
  };
  await pids();
  rc.on("registration", (e: { pid: number }) => known.add(e.pid));
  return {
    cluster,
    rc,
    profile,
    pids,
    stop: async () => {
      await cluster.stop();
      for (const pid of known) killQuietly(pid);
    },
  };
}

export function killQuietly(pid: number, signal: NodeJS.Signals = "SIGKILL"): void {
  try {
    process.kill(pid, signal);
  } catch {
    /* already gone */
  }
}

/** Polls until `cond` holds, failing after `ms` (a deadline, not a sleep). */
export async function until(cond: () => boolean | Promise<boolean>, ms = 10_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** One cluster per test in a suite, stopped after each test whatever happened. */
export function clusterPerTest(): { start(n: number, opts?: ClusterOptions): Promise<TestCluster> } {
  let current: TestCluster | undefined;
  afterEach(async () => {
    await current?.stop();
    current = undefined;
  });
  return { start: async (n, opts) => (current = await startCluster(n, opts)) };
}

/** True once no process has this pid (a zombie, exited but not reaped, counts as gone). */
export function isGone(pid: number): boolean {
  return !isAlive(pid);
}
