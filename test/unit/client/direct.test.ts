import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as zmq from "zeromq";
import { DIRECT_MAX_FANOUT, DirectLinks } from "../../../client/direct";
import { Session } from "../../../protocol/session";
import { until } from "../../helpers/cluster";

/** A task's end, settled by the test. */
function pending(): { done: Promise<unknown>; finish: () => void } {
  let finish!: () => void;
  const done = new Promise<unknown>((r) => (finish = () => r(undefined)));
  return { done, finish };
}

/** Lets the `settled.then` handlers of finished tasks run. */
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("DirectLinks: which path a task takes", () => {
  // A real ROUTER stands in for an engine's direct socket: the handshake is ZeroMQ's own.
  const engine = new zmq.Router({ linger: 0 });
  let endpoint = "";
  const links = new DirectLinks({
    routingId: "client-under-test",
    coalesce: new Session("k").coalesce,
    curve: undefined,
    onFrames: () => undefined,
  });
  before(async () => {
    await engine.bind("tcp://127.0.0.1:*");
    endpoint = engine.lastEndpoint!;
  });
  after(() => {
    links.close();
    engine.close();
  });

  test("controller until the handshake, then direct; never overtaking a task on the other path", async () => {
    const direct = { endpoint };
    const first = pending();
    assert.equal(links.route("e1", direct, first.done, 1), undefined, "no handshake yet");
    // The link comes up, but a task is still in flight through the controller: stay there.
    await until(() => links.isUp("e1"), 10_000, "the handshake");
    const second = pending();
    assert.equal(links.route("e1", direct, second.done, 1), undefined, "the first task is still in flight");
    first.finish();
    second.finish();
    await turn();
    const third = pending();
    assert.ok(links.route("e1", direct, third.done, 1), "nothing in flight: direct");
    // A wide request joins the path in flight rather than overtaking it.
    const wide = pending();
    assert.ok(links.route("e1", direct, wide.done, DIRECT_MAX_FANOUT + 4), "a direct task is in flight");
    third.finish();
    wide.finish();
    await turn();
    const wideAlone = pending();
    assert.equal(links.route("e1", direct, wideAlone.done, DIRECT_MAX_FANOUT + 4), undefined, "wide: controller");
    wideAlone.finish();
    await turn();
    assert.ok(links.sent >= 2);
  });

  test("an engine without a direct socket, and a client with the path off, use the controller", () => {
    const t = pending();
    assert.equal(links.route("e2", undefined, t.done, 1), undefined);
    links.enabled = false;
    assert.equal(links.route("e1", { endpoint }, t.done, 1), undefined);
    links.enabled = true;
    t.finish();
  });
});
