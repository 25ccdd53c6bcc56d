/**
 * Communicators on real engines (engine/comm.ts): every operation on 1, 2, 3 and 4 engines,
 * checked against the serial computation, through shared memory and over the sockets alone; a
 * 1 MB Float64Array allreduce and bcast both ways (the windows, the sockets), in place and to a new
 * array, on an odd and an even number of engines; sub-communicators; a member SIGKILLed during
 * allreduce and during recv, with every other member failing, naming the rank and engine, within
 * the deadline, and its windows swept; an interrupt ending a pending recv.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as fs from "node:fs";
import { clusterPerTest, until } from "../helpers/cluster";
import { bulkDir } from "../../protocol/bulk";
import type { Communicator } from "../../engine/comm";

const clusters = clusterPerTest();

/**
 * `p`, or a failure once `ms` have passed: a lost member must fail the others within the
 * heartbeat's deadline (5 missed beats of 1 s, plus the notice's way), never hang them.
 */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not end within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
const DEADLINE_MS = 10_000;

/** The shared-memory windows (protocol/bulk.ts) the process `pid` has in the private folder. */
function windowsOf(pid: number): string[] {
  const names = fs.existsSync(bulkDir()) ? fs.readdirSync(bulkDir()) : [];
  return names.filter((n) => n.startsWith(`${pid}-${pid}.w`));
}

/** Everything a member does, in one apply: its results by operation. */
async function everyOperation(): Promise<Record<string, unknown>> {
  const comm = (globalThis as unknown as { comm: Communicator }).comm;
  const { rank: r, size: n } = comm;
  const out: Record<string, unknown> = { rank: r, size: n };
  await comm.send((r + 1) % n, r * 10, { tag: 7 });
  out.ring = await comm.recv((r - 1 + n) % n, { tag: 7 });
  await comm.send(0, `from ${r}`, { tag: "any" });
  if (r === 0) {
    const got: unknown[] = [];
    for (let i = 0; i < n; i++) got.push(await comm.recv(undefined, { tag: "any" }));
    out.anySource = got.sort();
  }
  out.bcast = await comm.bcast(r === n - 1 ? { hello: "root", arr: new Float64Array([1.5, 2.5]) } : undefined, n - 1);
  out.scatter = await comm.scatter(r === 0 ? Array.from({ length: n }, (_, i) => i * 100) : undefined, 0);
  out.gather = await comm.gather(r, 0);
  out.allgather = await comm.allgather(r * r);
  out.reduceProd = await comm.reduce(r + 1, "prod", n - 1);
  out.sum = await comm.allreduce(r, "sum");
  out.min = await comm.allreduce(r + 5, "min");
  out.max = await comm.allreduce(r + 5, "max");
  out.fn = await comm.allreduce(r, (a, b) => Math.max(Number(a), Number(b)) + 0);
  out.vector = Array.from(await comm.allreduce(new Float64Array([r, 1, -r, 2 ** r, 0.5]), "sum"));
  out.ints = Array.from(await comm.allreduce(new Int32Array([r, 3]), "max"));
  await comm.barrier();
  const half = await comm.split(r % 2);
  out.sub = { rank: half!.rank, size: half!.size, sum: await half!.allreduce(r, "sum") };
  const none = await comm.split(r === 0 ? null : 1);
  out.splitNone = none === undefined;
  return out;
}

/** What rank r of n must have seen. */
function expected(r: number, n: number): Record<string, unknown> {
  const ranks = Array.from({ length: n }, (_, i) => i);
  const same = ranks.filter((i) => i % 2 === r % 2);
  return {
    rank: r,
    size: n,
    ring: ((r - 1 + n) % n) * 10,
    ...(r === 0 ? { anySource: ranks.map((i) => `from ${i}`).sort() } : {}),
    bcast: { hello: "root", arr: new Float64Array([1.5, 2.5]) },
    scatter: r * 100,
    gather: r === 0 ? ranks : undefined,
    allgather: ranks.map((i) => i * i),
    reduceProd: r === n - 1 ? ranks.reduce((a, i) => a * (i + 1), 1) : undefined,
    sum: ranks.reduce((a, b) => a + b, 0),
    min: 5,
    max: n - 1 + 5,
    fn: n - 1,
    vector: [
      ranks.reduce((a, b) => a + b, 0),
      n,
      -ranks.reduce((a, b) => a + b, 0),
      ranks.reduce((a, i) => a + 2 ** i, 0),
      0.5 * n,
    ],
    ints: [n - 1, 3],
    sub: { rank: same.indexOf(r), size: same.length, sum: same.reduce((a, b) => a + b, 0) },
    splitNone: r === 0,
  };
}

describe("comm", () => {
  test("every operation on 1, 2, 3 and 4 engines matches the serial computation, through shared memory or not", async () => {
    const { rc } = await clusters.start(4);
    for (const sharedMemory of [true, false])
      for (const targets of [[2], [0, 1], [3, 1, 2], [0, 1, 2, 3]]) {
        const info = await rc.view(targets).comm({ sharedMemory });
        assert.deepEqual(info.engines, targets, "ranks in target order");
        assert.equal(info.sharedMemory, sharedMemory, "one host: shared memory unless refused");
        const results = [await rc.view(targets).apply(everyOperation)].flat();
        results.forEach((got, k) =>
          assert.deepEqual(got, expected(k, targets.length), `rank ${k} of ${targets.length}, ${info.sharedMemory}`),
        );
      }
  });

  test("1 MB allreduce and bcast through the windows and over the sockets, in place or not, on 3 and 4 engines; the windows go with their engines", async () => {
    const t = await clusters.start(4);
    const { rc } = t;
    for (const sharedMemory of [true, false])
      for (const targets of [
        [0, 1, 2],
        [0, 1, 2, 3],
      ]) {
        await rc.view(targets).comm({ sharedMemory });
        const sums = await rc.view(targets).apply(async () => {
          const comm = (globalThis as unknown as { comm: Communicator }).comm;
          const local = new Float64Array(131072).map((_, i) => i + comm.rank);
          const total = await comm.allreduce(local, "sum");
          const max = await comm.allreduce(local, "max");
          let checksum = 0;
          for (let i = 0; i < total.length; i++) checksum += total[i]! - comm.size * i + max[i]! - i;
          const mine = local.slice();
          const inPlace = await comm.allreduce(mine, "sum", { inPlace: true });
          const ints = await comm.allreduce(new Int32Array(100_003).fill(comm.rank + 1), "sum");
          const root = comm.size - 1;
          const sent = new Float64Array(200_001).map((_, i) => i * 0.5);
          const got = await comm.bcast(comm.rank === root ? { sent, label: "big" } : undefined, root);
          const buf = comm.rank === 0 ? sent.slice() : new Float64Array(sent.length);
          const landed = await comm.bcast(buf, 0, { inPlace: true });
          const half = await comm.split(comm.rank % 2);
          const part = await half!.allreduce(new Float64Array(100_000).fill(comm.rank), "sum");
          return {
            checksum,
            first: total[0],
            last: total.at(-1),
            untouched: local[5] === 5 + comm.rank,
            n: total.length,
            inPlace: inPlace === mine && inPlace.every((v, i) => v === total[i]),
            ints: [ints[0], ints[100_002], ints.constructor.name],
            bcast: got?.label === "big" && got.sent.length === sent.length && got.sent.every((v, i) => v === i * 0.5),
            bcastInPlace: landed === buf && buf.every((v, i) => v === i * 0.5),
            sub: [part[0], part[99_999]],
          };
        });
        const n = targets.length;
        const rankSum = (n * (n - 1)) / 2;
        const intSum = (n * (n + 1)) / 2;
        for (const [k, s] of (sums as Array<Record<string, unknown>>).entries()) {
          const same = Array.from({ length: n }, (_, i) => i).filter((i) => i % 2 === k % 2);
          const subSum = same.reduce((a, b) => a + b, 0);
          assert.deepEqual(
            s,
            {
              checksum: 131072 * (rankSum + n - 1),
              first: rankSum,
              last: 131071 * n + rankSum,
              untouched: true,
              n: 131072,
              inPlace: true,
              ints: [intSum, intSum, "Int32Array"],
              bcast: true,
              bcastInPlace: true,
              sub: [subSum, subSum],
            },
            `rank ${k} of ${n}, shared memory ${sharedMemory}`,
          );
        }
      }
    const pids = await t.pids();
    assert.ok(
      pids.some((pid) => windowsOf(pid).length > 0),
      "the communicators through shared memory have windows while their engines run",
    );
    await t.stop();
    for (const pid of pids) assert.deepEqual(windowsOf(pid), [], `engine ${pid} left no window behind`);
  });

  test("a member SIGKILLed during allreduce, or during a recv from it, fails every other member naming its rank and engine", async () => {
    const t = await clusters.start(4);
    const { rc } = t;
    await rc.view([0, 1, 2, 3]).comm();
    const engines = await rc.engines();
    const pidOf = (id: number): number => engines.find((e) => e.id === id)!.pid;
    // One large allreduce first: every member, rank 3 too, has windows in the private folder.
    await rc.view([0, 1, 2, 3]).apply(async () => {
      const comm = (globalThis as unknown as { comm: Communicator }).comm;
      return (await comm.allreduce(new Float64Array(200_000).fill(1), "sum"))[0];
    });
    assert.notDeepEqual(windowsOf(pidOf(3)), [], "rank 3 has windows before it is killed");
    // Ranks 0–2 wait in allreduce for rank 3, whose engine is stuck in a busy loop, then killed.
    const waiting = rc.view([0, 1, 2]).apply(async () => {
      const comm = (globalThis as unknown as { comm: Communicator }).comm;
      return comm.allreduce(new Float64Array(200_000).fill(1), "sum");
    });
    void rc
      .view(3)
      .apply(() => {
        for (;;);
      })
      .catch(() => undefined);
    await until(async () => (await rc.queueStatus(3))[3]?.queue === 1, 10_000, "rank 3 busy");
    process.kill(pidOf(3), "SIGKILL");
    const failed = await within(waiting, DEADLINE_MS, "the allreduce").then(
      () => assert.fail("the allreduce should fail"),
      (e: unknown) => e,
    );
    assert.match(String(failed), /rank 3 \(engine 3\) of communicator \S+ was lost/);
    // The windows of the killed engine (it could not remove them) are swept by the controller.
    await until(() => windowsOf(pidOf(3)).length === 0, DEADLINE_MS, "the killed engine's windows to be swept");

    // A second communicator over the three left: rank 0 waits for rank 1's message; 1 is killed.
    await rc.view([0, 1, 2]).comm();
    const receiving = rc.view(0).apply(async () => {
      const comm = (globalThis as unknown as { comm: Communicator }).comm;
      return comm.recv(1);
    });
    await until(async () => (await rc.queueStatus(0))[0]?.queue === 1, 10_000, "rank 0 in recv");
    process.kill(pidOf(1), "SIGKILL");
    await assert.rejects(
      within(receiving, DEADLINE_MS, "the recv"),
      /rank 1 \(engine 1\) of communicator \S+ was lost/,
    );
    // And the member that was not waiting finds out at its next call.
    await assert.rejects(
      rc.view(2).apply(async () => (globalThis as unknown as { comm: Communicator }).comm.barrier()),
      /rank 1 \(engine 1\) .* was lost/,
    );
  });

  test("an interrupt ends a pending recv on every member; the communicator then says to form a new one", async () => {
    const { rc } = await clusters.start(2);
    await rc.view().comm();
    const stuck = rc.view().apply(async () => {
      const comm = (globalThis as unknown as { comm: Communicator }).comm;
      return comm.recv((comm.rank + 1) % comm.size, { tag: "never sent" });
    });
    await until(async () => (await rc.queueStatus())[0]?.queue === 1, 10_000, "both in recv");
    await rc.interrupt();
    await assert.rejects(stuck, /KeyboardInterrupt|interrupted/);
    await assert.rejects(
      rc.view(0).apply(async () => (globalThis as unknown as { comm: Communicator }).comm.barrier()),
      /was interrupted .* form a new one with rc\.view\(targets\)\.comm\(\)/,
    );
    await rc.view().comm();
    assert.deepEqual(
      await rc.view().apply(async () => (globalThis as unknown as { comm: Communicator }).comm.allreduce(1, "sum")),
      [2, 2],
    );
  });
});
