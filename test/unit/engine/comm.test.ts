/**
 * The collectives' algorithms on in-process communicators joined by a fake transport that
 * delivers each message later and out of step (the real links are peers.ts's): trees for every
 * root, the ring for sizes 2 to 7, against the serial answer; the shared-memory paths over fake
 * windows (each read copies what the window holds at that moment, so a window rewritten too
 * early shows as a wrong sum), calls issued before the last one ended; in place; the one-line
 * errors.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  CommError,
  type CommMember,
  type CommMemory,
  Communicator,
  LARGE_BYTES,
  PAIRWISE_MAX,
} from "../../../engine/comm";
import { combine } from "../../../engine/reduce";

/** Windows in this process, one Buffer each, grown as written; a read copies what is there now. */
const windows = new Map<string, Buffer>();
let memories = 0;
class FakeMemory implements CommMemory {
  private readonly id = ++memories;
  window(use: string): { name: string; write(offset: number, data: ArrayBufferView): void } {
    const name = `${this.id}-${use}`;
    return {
      name,
      write: (offset, data) => {
        const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
        let b = windows.get(name) ?? Buffer.alloc(0);
        if (b.length < offset + bytes.length) b = Buffer.concat([b, Buffer.alloc(offset + bytes.length - b.length)]);
        bytes.copy(b, offset);
        windows.set(name, b);
      },
    };
  }
  read(window: string, offset: number, into: ArrayBufferView): void {
    const b = windows.get(window);
    if (!b || b.length < offset + into.byteLength) throw new Error(`window ${window} is short`);
    b.copy(Buffer.from(into.buffer, into.byteOffset, into.byteLength), 0, offset, offset + into.byteLength);
  }
  closes = 0;
  close(): void {
    this.closes++;
  }
}

/** The FakeMemory of each rank of the latest shared world. */
const memoryOf: FakeMemory[] = [];

/** n communicators whose messages cross in random order between pairs (each pair keeps its order). */
function world(n: number, seed = 1, shared = false): Communicator[] {
  const members: CommMember[] = Array.from({ length: n }, (_, i) => ({ engineId: i, uuid: `u${i}`, endpoint: "" }));
  let state = seed;
  const random = (): number => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const lanes = new Map<string, Promise<void>>();
  const comms: Communicator[] = members.map(
    (_, rank) =>
      new Communicator("w", rank, members, {
        send: (to, header, frames) => {
          const lane = `${header.from}>${to.engineId}`;
          const after = (lanes.get(lane) ?? Promise.resolve()).then(
            () => new Promise<void>((r) => setTimeout(r, Math.floor(random() * 3))),
          );
          lanes.set(lane, after);
          // Copied only as it arrives, as ZeroMQ reads a large frame from the sender's memory
          // when its thread gets to it: memory written after the call shows as a wrong value.
          void after.then(() =>
            comms[to.engineId]!.deliver(
              header.from,
              header.tag,
              frames.map((f) => Buffer.from(f)),
            ),
          );
        },
      }),
  );
  if (shared) memoryOf.length = 0;
  if (shared) for (const c of comms) c.shareMemory(() => (memoryOf[c.rank] = new FakeMemory()));
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

test("over the sockets, allreduce of a large Float64Array equals the serial sum on 2 to 11 ranks (pairwise, then the ring), and leaves inputs alone", async () => {
  const length = LARGE_BYTES / 8 + 13; // not a multiple of any size: uneven chunks
  for (let n = 2; n <= PAIRWISE_MAX + 3; n++) {
    const comms = world(n, 10 + n);
    const inputs = comms.map((c) => Float64Array.from({ length }, (_, i) => i * (c.rank + 1)));
    const sums = await Promise.all(comms.map((c, k) => c.allreduce(inputs[k]!, "sum")));
    const factor = (n * (n + 1)) / 2;
    for (const s of sums) for (const i of [0, 1, length >> 1, length - 1]) assert.equal(s[i], i * factor);
    inputs.forEach((x, k) => assert.equal(x[7], 7 * (k + 1), "input untouched"));
    const maxes = await Promise.all(comms.map((c, k) => c.allreduce(inputs[k]!, "max")));
    for (const m of maxes) assert.equal(m[length - 1], (length - 1) * n);
    const inPlace = await Promise.all(comms.map((c, k) => c.allreduce(inputs[k]!, "sum", { inPlace: true })));
    inPlace.forEach((x, k) => {
      assert.equal(x, inputs[k]);
      assert.equal(x[length - 1], (length - 1) * factor);
    });
  }
});

test("through shared memory, allreduce equals the serial answer on 1 to 7 ranks, calls may overlap, in place or not", async () => {
  const length = LARGE_BYTES / 8 + 13;
  for (let n = 1; n <= 7; n++) {
    const comms = world(n, 20 + n, true);
    const inputs = comms.map((c) => Float64Array.from({ length }, (_, i) => i * (c.rank + 1)));
    // Three calls per rank issued at once: each must wait for the last to end on that rank.
    const results = await Promise.all(
      comms.map((c, k) =>
        Promise.all([
          c.allreduce(inputs[k]!, "sum"),
          c.allreduce(
            Int32Array.from({ length }, (_, i) => (i % 7) + k),
            "max",
          ),
          c.allreduce(
            BigInt64Array.from({ length: 9000 }, () => BigInt(k + 1)),
            "prod",
          ),
        ]),
      ),
    );
    const factor = (n * (n + 1)) / 2;
    let fact = 1n;
    for (let k = 1; k <= n; k++) fact *= BigInt(k);
    for (const [sum, max, prod] of results) {
      for (const i of [0, 1, length >> 1, length - 1]) assert.equal(sum[i], i * factor);
      for (const i of [0, 6, length - 1]) assert.equal(max[i], (i % 7) + n - 1);
      assert.equal(prod[0], fact);
      assert.equal(prod[8999], fact);
    }
    inputs.forEach((x, k) => assert.equal(x[7], 7 * (k + 1), "input untouched"));
    const mine = inputs.map((x) => x.slice());
    const inPlace = await Promise.all(comms.map((c, k) => c.allreduce(mine[k]!, "sum", { inPlace: true })));
    inPlace.forEach((r, k) => {
      assert.equal(r, mine[k], "the caller's own array, written");
      assert.equal(r[length - 1], (length - 1) * factor);
    });
  }
});

test("through shared memory, bcast from every root, large and small, back to back, and in place", async () => {
  for (let n = 1; n <= 5; n++) {
    const comms = world(n, 40 + n, true);
    for (let root = 0; root < n; root++) {
      const big = (k: number): Float64Array => Float64Array.from({ length: 20_000 }, (_, i) => i + k * 1000);
      // Three back to back: the root must not rewrite its window before every rank read it.
      const got = await Promise.all(
        comms.map((c) =>
          Promise.all([1, 2, 3].map((k) => c.bcast(c.rank === root ? { k, data: big(k) } : undefined, root))),
        ),
      );
      for (const per of got)
        per.forEach((v, j) => {
          assert.equal(v!.k, j + 1);
          assert.deepEqual(v!.data, big(j + 1));
        });
      const small = await Promise.all(comms.map((c) => c.bcast(c.rank === root ? "hi" : undefined, root)));
      assert.deepEqual(small, Array(n).fill("hi"));
      const bufs = comms.map((c) => (c.rank === root ? big(9) : new Float64Array(20_000)));
      const landed = await Promise.all(comms.map((c, k) => c.bcast(bufs[k]!, root, { inPlace: true })));
      landed.forEach((b, k) => {
        assert.equal(b, bufs[k]);
        assert.deepEqual(b, big(9));
      });
    }
  }
});

test("in place: small arrays too; a misfit or a value that is not a typed array says so", async () => {
  for (const shared of [false, true]) {
    const comms = world(3, 7, shared);
    const xs = comms.map((c) => new Float64Array([c.rank, 1]));
    const got = await Promise.all(comms.map((c, k) => c.allreduce(xs[k]!, "sum", { inPlace: true })));
    got.forEach((g, k) => {
      assert.equal(g, xs[k]);
      assert.deepEqual([...g], [3, 3]);
    });
    const sizes = [20_000, 20_000, 5];
    const results = await Promise.allSettled(
      comms.map((c) => c.bcast(new Float64Array(sizes[c.rank]!).fill(2), 0, { inPlace: true })),
    );
    assert.equal(results[1]!.status, "fulfilled");
    assert.match(
      String((results[2] as PromiseRejectedResult).reason),
      /bcast in place: rank 0 sent Float64Array\(20000\), which does not fit the Float64Array\(5\) this rank passed/,
    );
    // The misfit broke the communicator: the others hear of it, naming the rank.
    await assert.rejects(
      comms[0]!.barrier(),
      /rank 2 \(engine 2\) of communicator w failed: bcast in place: rank 0 sent Float64Array\(20000\)/,
    );
    await assert.rejects(world(1)[0]!.allreduce(3, "sum", { inPlace: true }), /inPlace: true \} needs a typed array/);
  }
});

test("a collective that fails on one member (a wrong shape) fails on every member, naming it, never hangs", async () => {
  for (const shared of [false, true]) {
    const comms = world(4, 3, shared);
    const settled = await Promise.allSettled(
      comms.map((c) => c.allreduce(new Float64Array(c.rank === 1 ? 3 : 2), "sum")),
    );
    for (const r of settled) {
      assert.equal(r.status, "rejected");
      assert.match(
        String(r.reason),
        /rank \d \(engine \d\) of communicator w failed: cannot combine Float64Array\(\d\) with Float64Array\(\d\)/,
      );
    }
    await assert.rejects(comms[3]!.bcast(1, 0), /failed: cannot combine/, "and the communicator stays broken");
  }
});

test("what a call sent is what arrives, though the caller writes over its arrays once the call returns", async () => {
  const big = (k: number): Float64Array => new Float64Array(LARGE_BYTES / 8 + 5).fill(k);
  const scribble = <T>(x: T): T => {
    if (x instanceof Float64Array) x.fill(-1);
    else if (Array.isArray(x)) x.forEach(scribble);
    return x;
  };
  const read = (x: unknown): unknown => {
    const first = Array.isArray(x) ? x.map((v: Float64Array) => v[0]) : (x as Float64Array | undefined)?.[0];
    scribble(x);
    return first;
  };
  for (let n = 1; n <= 5; n++) {
    const comms = world(n, 60 + n);
    const mine = comms.map((c) => big(c.rank + 1));
    const out = await Promise.all(
      comms.map(async (c) => {
        const r = c.rank;
        const own = mine[r]!;
        await c.send((r + 1) % n, own);
        scribble(own);
        own.fill(r + 1);
        const got = (await c.recv<Float64Array>((r - 1 + n) % n))[0];
        const root = n - 1;
        // Each result is read at once, then it and the inputs are written over: a bcast's inner
        // rank still forwards what it got, and the caller owns what it got.
        const input = {
          bcast: r === root ? big(7) : undefined,
          scatter: r === 0 ? comms.map((_, k) => big(k + 10)) : undefined,
          gather: big(r + 20),
          reduce: big(r + 1),
          allreduce: big(r + 1),
        };
        const then =
          (sent: unknown) =>
          (x: unknown): unknown => {
            const first = read(x);
            scribble(sent);
            return first;
          };
        const bc = await c.bcast(input.bcast, root).then(then(input.bcast));
        const sc = await c.scatter(input.scatter, 0).then(then(input.scatter));
        const ga = await c.gather(input.gather, 0).then(then(input.gather));
        const re = await c.reduce(input.reduce, "sum", 0).then(then(input.reduce));
        const add = (a: unknown, b2: unknown): unknown =>
          (a as Float64Array).map((v, i) => v + (b2 as Float64Array)[i]!);
        const ar = await c.allreduce(input.allreduce, add).then(then(input.allreduce));
        return [got, bc, sc, ga, re, ar];
      }),
    );
    const sum = (n * (n + 1)) / 2;
    out.forEach((o, r) =>
      assert.deepEqual(
        o,
        [
          ((r - 1 + n) % n) + 1,
          7,
          r + 10,
          r === 0 ? comms.map((_, k) => k + 20) : undefined,
          r === 0 ? sum : undefined,
          sum,
        ],
        `rank ${r} of ${n}`,
      ),
    );
    await Promise.all(comms.map((c) => c.barrier()));
  }
});

test("a resting communicator gives its windows back, only once nothing may still be read from them", async () => {
  const comms = world(3, 9, true);
  const big = (): Float64Array => new Float64Array(LARGE_BYTES / 8 + 1).fill(1);
  await Promise.all(comms.map((c) => c.allreduce(big(), "sum")));
  const later = Date.now() + 10_001;
  assert.equal(comms[0]!.releaseMemory(10_000), false, "just used: the others may still read");
  // The root's bcast returns before its readers are done: its window is not given back yet.
  const reading = comms.slice(1).map((c) => c.bcast(undefined, 0));
  await comms[0]!.bcast(big(), 0);
  assert.equal(comms[0]!.releaseMemory(10_000, later), false, "readers of its bcast not done");
  await Promise.all(reading);
  // Each reader's note that it read went out before this message on the same link: once these
  // are in, so are the notes.
  await Promise.all([...[1, 2].map((r) => comms[r]!.send(0, "read")), ...[1, 2].map((r) => comms[0]!.recv(r))]);
  const pending = comms[1]!.allreduce(big(), "sum"); // rank 1 waits for the others
  assert.equal(comms[1]!.releaseMemory(10_000, later), false, "a collective under way");
  await Promise.all([pending, ...[0, 2].map((r) => comms[r]!.allreduce(big(), "sum"))]);
  await Promise.all(comms.map((c) => c.barrier()));
  const afterAll = Date.now() + 10_001;
  assert.deepEqual(
    comms.map((c) => c.releaseMemory(10_000, afterAll)),
    [true, true, true],
  );
  assert.deepEqual(
    memoryOf.map((m) => m.closes),
    [1, 1, 1],
  );
  const again = await Promise.all(comms.map((c) => c.allreduce(big(), "sum")));
  for (const a of again) assert.equal(a[0], 3, "used again after: windows made anew");
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
