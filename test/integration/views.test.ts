import { after, before, describe, test } from "node:test";
import * as util from "node:util";
import assert from "node:assert/strict";
import { type TestCluster, startCluster } from "../helpers/cluster";
import {
  CompositeError,
  NoEnginesError,
  Reference,
  RemoteError,
  TranspileError,
  UnserializableError,
} from "../../index";

/** An engine global that no test defines. */
declare const nobodyPushedThis: number;

declare const a: number, b: number, c: number, map: unknown, set: unknown, date: unknown, f32: unknown;

describe("DirectView and LoadBalancedView on 4 real engines", () => {
  let t: TestCluster;
  before(async () => (t = await startCluster(4)));
  after(async () => t.stop());

  test("ids, apply (scalar for one integer target), remote and parallel", async () => {
    const rc = t.rc;
    assert.deepEqual(rc.ids, [0, 1, 2, 3]);
    assert.deepEqual(await rc.view().apply((x: number) => x * 2, 21), [42, 42, 42, 42]);
    assert.equal(typeof (await rc.view(0).apply(() => process.pid)), "number");
    assert.deepEqual(await rc.view([1, 2]).apply(() => 1), [1, 1]);
    assert.deepEqual(await rc.view("::2").apply(() => 2), [2, 2]);
    const pids = await rc.view().remote(() => process.pid)();
    assert.equal(new Set(pids).size, 4);
    const pmul = rc.view().parallel((x: number, y: number) => x * y);
    assert.deepEqual(await pmul.map([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]), [6, 14, 24, 36, 50]);
    assert.deepEqual(
      await rc.view().apply(async (x: number) => {
        await new Promise((r) => setTimeout(r, 5));
        return x;
      }, 7),
      [7, 7, 7, 7],
    );
  });

  test("push/pull, free names are engine globals, Reference", async () => {
    const dv = t.rc.view();
    await dv.push({ a: 6, b: 7 });
    assert.deepEqual(await dv.pull("a"), [6, 6, 6, 6]);
    assert.deepEqual(await dv.pull(["a", "b"], { targets: 0 }), [6, 7]);
    assert.deepEqual(await dv.apply((x: number) => a + b + x, 27), [40, 40, 40, 40]);
    await Promise.all(t.rc.ids.map((i) => t.rc.view(i).push({ id: i })));
    assert.deepEqual(await dv.apply((n: number) => n * 2, Reference("id")), [0, 2, 4, 6]);
    await dv.push({ g: [10, 20] });
    assert.deepEqual(await t.rc.view(1).apply((v: number) => v, Reference("g[1]")), 20);
    await assert.rejects(
      dv.pull("nosuchname"),
      (e: unknown) =>
        e instanceof CompositeError && /nosuchname is not defined on this engine; push it first/.test(e.message),
    );
  });

  test("map: one chunk per engine, uneven and empty sequences", async () => {
    const dv = t.rc.view();
    const xs = Array.from({ length: 101 }, (_, i) => i);
    assert.deepEqual(
      await dv.map((x: number) => x ** 2, xs),
      xs.map((x) => x ** 2),
    );
    assert.deepEqual(await dv.map((x: number) => x, []), []);
    assert.deepEqual(await t.rc.view(2).map((x: number) => x + 1, [1, 2]), [2, 3]);
    const ar = dv.map((x: number) => process.pid + x * 0, xs);
    await ar;
    assert.equal(ar.length, 4);
    assert.equal(new Set(ar.metadata.map((m) => m.engineId)).size, 4);
  });

  test("execute: TypeScript, persistent names, stdout, ExecuteReply, importModule", async () => {
    const dv = t.rc.view();
    const replies = await dv.execute("const c: number = a * b;\nconsole.log('c is', c)\nc + 1");
    assert.equal(replies.length, 4);
    assert.match(String(replies[0]), /^<ExecuteReply\[\d+\]: 43>$/);
    assert.equal(replies[0]!.stdout, "c is 42\n");
    assert.deepEqual(await dv.apply(() => c), [42, 42, 42, 42]);
    await dv.importModule("node:path");
    assert.deepEqual(
      await t.rc
        .view(0)
        .execute("path.join('a', 'b')")
        .then((r) => r.text),
      "'a/b'",
    );
    await dv.execute(
      "async function later(): Promise<number> { await new Promise((r) => setTimeout(r, 1)); return 9 }",
    );
    assert.deepEqual(
      await dv.apply(() => (globalThis as unknown as { later: () => Promise<number> }).later()),
      [9, 9, 9, 9],
    );
  });

  test("scatter/gather round trip, flatten, typed arrays", async () => {
    const dv = t.rc.view();
    const xs = Array.from({ length: 16 }, (_, i) => i);
    await dv.scatter("x", xs);
    assert.deepEqual(await dv.gather("x"), xs);
    await dv.scatter("one", [5, 6, 7, 8], { flatten: true });
    assert.deepEqual(await dv.pull("one"), [5, 6, 7, 8]);
    const big = Float64Array.from({ length: 1_000_001 }, (_, i) => i / 3);
    await dv.scatter("big", big);
    const back = await dv.gather<Float64Array>("big");
    assert.ok(back instanceof Float64Array);
    assert.deepEqual(back, big);
  });

  test("structured-clone values arrive as the engine's own built-ins and come back equal", async () => {
    const e0 = t.rc.view(0);
    const values: Record<string, unknown> = {
      map: new Map<unknown, unknown>([
        ["k", 1],
        [2, { n: [3] }],
      ]),
      set: new Set([1, "a"]),
      date: new Date("2020-01-02T03:04:05Z"),
      big: 2n ** 70n,
      nested: { a: [1, { b: null, u: undefined }] },
      f32: new Float32Array([1.5, 2]),
      u8: new Uint8Array([1, 255]),
      re: /x+/g,
    };
    await e0.push(values);
    for (const [k, v] of Object.entries(values)) assert.deepEqual(await e0.pull(k), v, k);
    assert.deepEqual(
      await e0.apply(() => [map instanceof Map, set instanceof Set, date instanceof Date, f32 instanceof Float32Array]),
      [true, true, true, true],
    );
  });

  test("a 64 MB Float64Array pushes and pulls back equal", async () => {
    const e0 = t.rc.view(0);
    const arr = new Float64Array((64 * 1024 * 1024) / 8);
    for (let i = 0; i < arr.length; i += 4099) arr[i] = i * 1.5;
    await e0.push({ big64: arr });
    const back = await e0.pull<Float64Array>("big64");
    assert.equal(back.length, arr.length);
    assert.ok(Buffer.from(back.buffer, back.byteOffset, back.byteLength).equals(Buffer.from(arr.buffer)));
    await e0.execute("big64 = undefined");
  });

  test("load-balanced apply, map with chunksize and ordered/unordered iteration, metadata and timings", async () => {
    const lv = t.rc.loadBalancedView();
    assert.equal(await lv.apply((x: number) => x + 1, 1), 2);
    const xs = Array.from({ length: 100 }, (_, i) => i);
    assert.deepEqual(
      await lv.map((x: number) => x * 2, xs, { chunksize: 7 }),
      xs.map((x) => x * 2),
    );
    const ar = lv.map(
      async (ms: number) => {
        await new Promise((r) => setTimeout(r, ms));
        return ms;
      },
      [60, 1, 30, 1, 1],
      { ordered: false },
    );
    const seen: unknown[] = [];
    for await (const r of ar) seen.push(r);
    assert.deepEqual(
      [...seen].sort((p, q) => Number(p) - Number(q)),
      [1, 1, 1, 30, 60],
    );
    assert.notDeepEqual(seen, [60, 1, 30, 1, 1], "unordered iteration yields as tasks finish");
    const ordered: unknown[] = [];
    for await (const r of lv.map((x: number) => x, [3, 2, 1])) ordered.push(r);
    assert.deepEqual(ordered, [3, 2, 1]);
    const timed = lv.map(async (ms: number) => new Promise((r) => setTimeout(r, ms)), [100, 100, 100, 100]);
    await timed;
    assert.ok(timed.ready() && timed.progress === 4);
    assert.ok(timed.wallTime >= 0.09 && timed.serialTime >= 0.39, `wall ${timed.wallTime} serial ${timed.serialTime}`);
    for (const m of timed.metadata)
      assert.ok(m.engineId !== undefined && m.started && m.completed && m.started <= m.completed);
    assert.ok(timed.msgIds.every((id) => typeof id === "string"));
    const status = await t.rc.queueStatus();
    assert.deepEqual(Object.keys(status).sort(), ["0", "1", "2", "3", "unassigned"]);
  });

  test("unordered iteration of 20,000 tasks (chunksize 1) yields each result once, as an ordered one does", async () => {
    // Racing every remaining task per result made this quadratic: 10,000 ran the client out of memory.
    const lv = t.rc.loadBalancedView();
    const xs = Array.from({ length: 20_000 }, (_, i) => i);
    const seen = new Uint8Array(xs.length);
    let count = 0;
    for await (const r of lv.map((x: number) => x, xs, { ordered: false, chunksize: 1 })) {
      seen[r as number]!++;
      count++;
    }
    assert.equal(count, xs.length);
    assert.ok(
      seen.every((c) => c === 1),
      "every result exactly once",
    );
    let imapped = 0;
    for await (const r of lv.imap((x: number) => x + 1, xs.slice(0, 5000), { ordered: false, maxOutstanding: 256 }))
      imapped += r;
    assert.equal(imapped, (5000 * 5001) / 2);
  });

  test("get with a timeout, wait, stdout in metadata", async () => {
    const ar = t.rc.view(1).apply(async () => {
      console.log("printed");
      await new Promise((r) => setTimeout(r, 300));
      return 1;
    });
    await assert.rejects(ar.get(10), { name: "TimeoutError" });
    assert.equal(await ar.wait(5), false);
    assert.equal(await ar.get({ timeout: 10_000 }), 1);
    assert.equal(ar.metadata[0]!.stdout, "printed\n");
  });

  test("errors: RemoteError with TypeScript lines, CompositeError, syntax, unserializable, targets", async () => {
    const e0 = t.rc.view(0);
    await assert.rejects(
      e0.execute("const q: number = 1;\n\nconst z = (undefined as unknown as { foo: number }).foo;"),
      (e: unknown) => {
        assert.ok(e instanceof RemoteError);
        assert.equal(e.ename, "TypeError");
        assert.equal(e.engineId, 0);
        assert.match(e.render({ color: false }), /^\[0:execute\]: TypeError: Cannot read properties of undefined/);
        const trace = util.stripVTControlCharacters(e.traceback.join("\n"));
        assert.match(trace, /----> 3 const z = \(undefined/);
        assert.match(trace, /<cell>:3:/);
        return true;
      },
    );
    // A free name nobody pushed: the error names it and says what to do.
    await assert.rejects(
      e0.apply(() => nobodyPushedThis + 1),
      (e: unknown) => {
        assert.ok(e instanceof RemoteError);
        assert.equal(e.ename, "ReferenceError");
        assert.equal(
          e.evalue,
          "nobodyPushedThis is not defined on this engine; push it first (view.push({ nobodyPushedThis })) or define it with execute / %px",
        );
        return true;
      },
    );
    await assert.rejects(
      t.rc.view().apply(() => {
        throw new RangeError("bad");
      }),
      (e: unknown) =>
        e instanceof CompositeError && e.errors.length === 4 && /\[0:apply\]: RangeError: bad/.test(e.message),
    );
    assert.throws(
      () => t.rc.view().execute("const x: = 1"),
      (e: unknown) => e instanceof TranspileError && /line 1/.test(e.message),
    );
    assert.throws(
      () => e0.apply((o: unknown) => o, { cb: () => 1 }),
      (e: unknown) => e instanceof UnserializableError && e.path === "args[0].cb",
    );
    await assert.rejects(
      e0.apply(() => () => 1),
      /cannot send result: a function/,
    );
    assert.throws(() => t.rc.view(9), /no engine with id 9; registered engines are \[0, 1, 2, 3\]/);
    assert.throws(() => t.rc.view("0-3"), /bad target string/);
    assert.deepEqual(await t.rc.view().apply(() => 1), [1, 1, 1, 1], "the cluster is still usable");
    assert.ok(new NoEnginesError().message.includes("tsparallel cluster start -n 4"));
  });
});
