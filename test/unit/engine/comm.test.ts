/**
 * The collectives' algorithms on in-process communicators joined by a fake transport that
 * delivers each message later and out of step (the real links are peers.ts's): trees for every
 * root, the ring for sizes 2 to 7, against the serial answer; the reductions' one-line errors.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { CommError, type CommMember, Communicator, RING_BYTES } from "../../../engine/comm";
import { combine } from "../../../engine/reduce";

/** n communicators whose messages cross in random order between pairs (each pair keeps its order). */
function world(n: number, seed = 1): Communicator[] {
  const members: CommMember[] = Array.from({ length: n }, (_, i) => ({ engineId: i, uuid: `u${i}`, endpoint: "" }));
  let state = seed;
  const random = (): number => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const lanes = new Map<string, Promise<void>>();
  const comms: Communicator[] = members.map(
    (_, rank) =>
      new Communicator("w", rank, members, {
        send: (to, header, frames) => {
          const lane = `${header.from}>${to.engineId}`;
          const copy = frames.map((f) => Buffer.from(f)); // what leaves is a copy, as on a socket
          const after = (lanes.get(lane) ?? Promise.resolve()).then(
            () => new Promise<void>((r) => setTimeout(r, Math.floor(random() * 3))),
          );
          lanes.set(lane, after);
          void after.then(() => comms[to.engineId]!.deliver(header.from, header.tag, copy));
        },
      }),
  );
  return comms;
}

test("bcast and reduce from every root, on 1 to 6 ranks", async () => {
  for (let n = 1; n <= 6; n++) {
    const comms = world(n, n);
    for (let root = 0; root < n; root++) {
      const got = await Promise.all(comms.map((c) => c.bcast(c.rank === root ? { root, n } : undefined, root)));
      assert.deepEqual(got, Array(n).fill({ root, n }));
      const reduced = await Promise.all(comms.map((c) => c.reduce(c.rank + 1, "sum", root)));
      assert.deepEqual(
        reduced,
        comms.map((c) => (c.rank === root ? (n * (n + 1)) / 2 : undefined)),
      );
    }
  }
});

test("the ring allreduce of a large Float64Array equals the serial sum on 2 to 7 ranks, and leaves inputs alone", async () => {
  const length = RING_BYTES / 8 + 13; // not a multiple of any size: uneven chunks
  for (let n = 2; n <= 7; n++) {
    const comms = world(n, 10 + n);
    const inputs = comms.map((c) => Float64Array.from({ length }, (_, i) => i * (c.rank + 1)));
    const sums = await Promise.all(comms.map((c, k) => c.allreduce(inputs[k]!, "sum")));
    const factor = (n * (n + 1)) / 2;
    for (const s of sums) for (const i of [0, 1, length >> 1, length - 1]) assert.equal(s[i], i * factor);
    inputs.forEach((x, k) => assert.equal(x[7], 7 * (k + 1), "input untouched"));
    const maxes = await Promise.all(comms.map((c, k) => c.allreduce(inputs[k]!, "max")));
    for (const m of maxes) assert.equal(m[length - 1], (length - 1) * n);
  }
});

test("a broken communicator fails what waits and what comes, with its reason", async () => {
  const [a] = world(2);
  const waiting = a!.recv(1);
  a!.break(new CommError("rank 1 (engine 1) of communicator w was lost: gone"));
  await assert.rejects(waiting, /rank 1 \(engine 1\) .* was lost/);
  await assert.rejects(a!.allreduce(1, "sum"), /was lost/);
  await assert.rejects(a!.send(5, 1), /was lost/);
});

test("bad ranks, operators and shapes say what is wrong in one line", async () => {
  const [a] = world(2);
  await assert.rejects(a!.send(2, 1), /cannot send to rank 2: this communicator has ranks 0 to 1/);
  await assert.rejects(
    a!.allreduce(1, "avg" as never),
    /unknown reduction "avg": use "sum", "prod", "min", "max" or a function/,
  );
  assert.throws(
    () => combine("sum", new Float64Array(2), new Float64Array(3), false),
    /cannot combine Float64Array\(2\) with Float64Array\(3\)/,
  );
  assert.throws(() => combine("sum", "a", "b", false), /"sum" combines numbers, bigints, typed arrays/);
  assert.deepEqual(combine("min", [3, [1, 9]], [2, [4, 0]], false), [2, [1, 0]]);
  assert.equal(combine("prod", 3n, 4n, false), 12n);
});
