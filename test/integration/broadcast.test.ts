import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as util from "node:util";
import { type TestCluster, clusterPerTest, killQuietly, startCluster, until } from "../helpers/cluster";
import { CompositeError, EngineError, RemoteError } from "../../index";

declare const big: Float64Array, tag: string, odd: boolean;

describe("BroadcastView on 4 real engines: the DirectView's values and errors from one message", () => {
  let t: TestCluster;
  before(async () => (t = await startCluster(4)));
  after(async () => t.stop());

  test("execute, apply, push and pull give what the DirectView gives", async () => {
    const { rc } = t;
    const bv = rc.broadcastView();
    const dv = rc.view();
    assert.equal(util.inspect(bv), "<BroadcastView [0, 1, 2, 3]>");
    const data = Float64Array.from({ length: 300_000 }, (_, i) => i / 3);
    await bv.push({ big: data, tag: "b" });
    assert.deepEqual(
      await bv.apply(() => [big.length, big[299_999], tag]),
      await dv.apply(() => [big.length, big[299_999], tag]),
    );
    assert.deepEqual(await bv.pull("tag"), ["b", "b", "b", "b"]);
    assert.deepEqual(await bv.pull(["tag"], { targets: [1, 3] }), [["b"], ["b"]]);
    const ar = bv.apply(() => process.pid);
    const pids = await ar;
    assert.deepEqual(pids, await dv.apply(() => process.pid));
    // One task per engine, named after the broadcast's msg id, with the engine's metadata.
    const ids = ar.msgIds;
    assert.equal(new Set(ids.map((id) => id.replace(/:\d+$/, ""))).size, 1);
    assert.deepEqual(
      ar.metadata.map((m) => m.engineId),
      [0, 1, 2, 3],
    );
    const ex = await bv.execute("globalThis.fromBroadcast = 40 + 2; console.log('hello from', fromBroadcast)");
    assert.equal(ex.length, 4);
    assert.deepEqual(await dv.pull("fromBroadcast"), [42, 42, 42, 42]);
    assert.deepEqual(
      ex.map((r) => r.stdout),
      ["hello from 42\n", "hello from 42\n", "hello from 42\n", "hello from 42\n"],
    );
    // A single-integer target gives a scalar, as rc.view(2) does.
    assert.equal(await rc.broadcastView(2).apply(() => 7), 7);
    // The tasks are in the controller's history like any other.
    const history = await rc.history();
    for (const id of ids) assert.ok(history.includes(id), `${id} in history`);
  });

  test("errors: one CompositeError naming each failing engine, as the DirectView raises", async () => {
    const { rc } = t;
    const boom = (): number => {
      throw new RangeError("broadcast boom");
    };
    const viaBroadcast = await rc
      .broadcastView()
      .apply(boom)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    const viaDirect = await rc
      .view()
      .apply(boom)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    assert.ok(viaBroadcast instanceof CompositeError && viaDirect instanceof CompositeError);
    assert.equal(viaBroadcast.errors.length, 4);
    assert.deepEqual(
      viaBroadcast.errors.map((e) => [e.name, (e as RemoteError).ename, (e as RemoteError).engineId]),
      viaDirect.errors.map((e) => [e.name, (e as RemoteError).ename, (e as RemoteError).engineId]),
    );
    assert.match(viaBroadcast.message, /RangeError: broadcast boom/);
    // Only the engines that fail appear, as with the DirectView.
    await Promise.all(rc.ids.map((i) => rc.view(i).push({ odd: i % 2 === 1 })));
    const partial = await rc
      .broadcastView()
      .apply(() => {
        if (odd) throw new Error("odd engine");
        return 1;
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    assert.ok(partial instanceof CompositeError);
    assert.deepEqual(
      partial.errors.map((e) => (e as RemoteError).engineId),
      [1, 3],
    );
  });
});

describe("BroadcastView when an engine dies", () => {
  const clusters = clusterPerTest();

  test("an engine killed mid-broadcast fails its part with EngineError; the others return", async () => {
    const t = await clusters.start(3);
    const { rc } = t;
    const pids = await rc.view().apply(() => process.pid);
    // Engine 1 is busy in a loop it never leaves: its part of the broadcast waits behind it.
    void rc
      .view(1)
      .apply(() => {
        for (;;);
      })
      .get()
      .catch(() => undefined);
    const ar = rc.broadcastView().apply(() => 5);
    await until(async () => (await rc.queueStatus())["1"]!.queue >= 2, 10_000, "the broadcast queued on engine 1");
    killQuietly(pids[1]!);
    const err = await ar.get().then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof CompositeError, String(err));
    assert.equal(err.errors.length, 1);
    assert.ok(err.errors[0] instanceof EngineError);
    assert.match(err.errors[0].message, /Engine 1 died before running task .*:1/);
    // The coalesced replies still carry the engines that answered.
    assert.deepEqual(
      ar.metadata.filter((m) => m.status === "ok").map((m) => m.engineId),
      [0, 2],
    );
    assert.deepEqual(await rc.broadcastView().apply(() => 6), [6, 6]);
  });
});
