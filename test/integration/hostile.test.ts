import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as zmq from "zeromq";
import { type TestCluster, startCluster, until } from "../helpers/cluster";
import { floodUntilCutOff, rssMB } from "../helpers/flood";
import { Session } from "../../protocol/session";
import { encodePing } from "../../protocol/heartbeat";
import { Signer } from "../../protocol/wire";
import { connectionFile, endpoint, readConnectionFile } from "../../protocol/connection";
import { isAlive } from "../../protocol/connection";

/**
 * At least 10,000 forged, replayed, truncated, oversized and random messages at every socket the
 * controller reads from (its ping PUB reads nothing; an engine's direct socket gets its own in
 * direct.test.ts). Afterwards nothing has died, the cluster computes correctly, and the drop counters
 * account for every bad message.
 */
describe("hostile traffic", () => {
  let t: TestCluster;
  before(async () => (t = await startCluster(2)));
  after(async () => t.stop());

  test("every bad message is dropped and counted; the cluster still computes", async () => {
    const info = readConnectionFile(connectionFile("client", t.profile));
    const enginePids = await t.pids();
    const before = await t.rc.stats();
    const droppedBefore = Object.values(before.dropped).reduce((a, b) => a + b, 0);
    const forger = new Session("not-the-key");
    const honest = new Session(info.key);
    let sent = 0;
    const sockets: zmq.Dealer[] = [];
    // The heartbeat socket takes echoed pings: a real one (echoed once honestly, then replayed)
    // and ones signed with the wrong key.
    const pings = new zmq.Subscriber({ linger: 0 });
    pings.subscribe();
    pings.connect(endpoint(info, info.ports.ping));
    const [ping] = await pings.receive();
    pings.close();
    assert.ok(ping);
    for (const port of [info.ports.clients, info.ports.engines, info.ports.heartbeat]) {
      const sock = new zmq.Dealer({ linger: 0, sendHighWaterMark: 0 });
      sockets.push(sock);
      sock.connect(endpoint(info, port));
      const heart = port === info.ports.heartbeat;
      const valid = heart ? [ping] : honest.encode("stats_request", {}).frames; // for replays: sent once honestly here
      await sock.send(valid);
      for (let i = 0; i < 2500; i++) {
        await sock.send(
          heart
            ? encodePing(new Signer("not-the-key"), { controller: "forged", seq: i })
            : forger.encode("queue_request", {}).frames,
        ); // forged: wrong key
        await sock.send(valid); // replayed
        const v = honest.encode("queue_request", {}).frames;
        await sock.send(v.slice(0, 2 + (i % 3))); // truncated
        await sock.send(Array.from({ length: 1 + (i % 5) }, () => randomBytes(1 + (i % 50)))); // random frames
        sent += 4;
      }
      for (let i = 0; i < 10; i++) {
        await sock.send(Array.from({ length: 5000 }, () => Buffer.alloc(1))); // oversized: too many frames
        sent++;
      }
    }
    assert.ok(sent >= 10_000);
    await until(
      async () => {
        const s = await t.rc.stats();
        return Object.values(s.dropped).reduce((a, b) => a + b, 0) - droppedBefore >= sent;
      },
      60_000,
      "the drop counters to account for every bad message",
    );
    const afterStats = await t.rc.stats();
    const counted = Object.values(afterStats.dropped).reduce((a, b) => a + b, 0) - droppedBefore;
    assert.equal(counted, sent, JSON.stringify(afterStats.dropped));
    for (const s of sockets) s.close();
    assert.ok(isAlive(t.cluster.pid) && enginePids.every(isAlive), "no process died");
    assert.deepEqual(await t.rc.view().map((x: number) => x * 2, [1, 2, 3, 4]), [2, 4, 6, 8]);
    assert.deepEqual(t.rc.ids, [0, 1]);
  });
});

/**
 * A request recorded off the wire (no CURVE) and sent again, to other engines' direct sockets and
 * to the controller: it ran once where it was addressed, and nowhere again.
 */
describe("replayed requests", () => {
  let t: TestCluster;
  before(async () => (t = await startCluster(4)));
  after(async () => t.stop());

  test("a signed request runs once, on the engine it was addressed to", async () => {
    const { rc } = t;
    const info = readConnectionFile(connectionFile("client", t.profile));
    // What an eavesdropper on loopback would have: the exact frames the client sent.
    const recorded: Buffer[][] = [];
    const session = (rc as unknown as { session: Session }).session;
    const encode = session.encode.bind(session);
    session.encode = ((...args: Parameters<typeof encode>) => {
      const out = encode(...args);
      if (args[0] === "execute_request" || args[0] === "apply_request")
        recorded.push(out.frames.map((f) => Buffer.from(f)));
      return out;
    }) as typeof encode;
    let balancedTo = -1;
    try {
      await rc.view(0).execute("globalThis.hits = ((globalThis.hits as number | undefined) ?? 0) + 1");
      const balanced = rc.loadBalancedView().apply(() => {
        const g = globalThis as { hits?: number };
        g.hits = (g.hits ?? 0) + 1;
      });
      await balanced;
      balancedTo = balanced.metadata[0]!.engineId!;
    } finally {
      session.encode = encode;
    }
    assert.equal(recorded.length, 2);
    const before = await rc.stats();
    const engines = await rc.engines();
    const sockets: zmq.Dealer[] = [];
    const replay = async (address: string, frames: Buffer[]): Promise<void> => {
      const sock = new zmq.Dealer({ linger: 0 });
      sockets.push(sock);
      sock.connect(address);
      await sock.send(frames);
    };
    try {
      for (const e of engines.filter((x) => x.id !== 0)) await replay(e.direct!.endpoint, recorded[0]!);
      for (const frames of recorded) await replay(endpoint(info, info.ports.clients), frames);
      await until(
        async () => {
          const s = await rc.stats();
          return (
            (s.engines_dropped?.replayed ?? 0) - (before.engines_dropped?.replayed ?? 0) >= 3 &&
            (s.dropped.replayed ?? 0) - (before.dropped.replayed ?? 0) >= 2
          );
        },
        20_000,
        "the replays to be dropped and counted",
      );
    } finally {
      for (const s of sockets) s.close();
    }
    const expected = [1, 0, 0, 0];
    expected[balancedTo]!++;
    assert.deepEqual(await rc.view().apply(() => (globalThis as { hits?: number }).hits ?? 0), expected);
  });
});

describe("floods without the key", () => {
  let t: TestCluster;
  before(async () => (t = await startCluster(2)));
  after(async () => t.stop());

  test("a 1.8 GB frame to an engine's direct socket and 2 × 512 MB to the controller are cut off unread", async () => {
    const { rc } = t;
    const info = readConnectionFile(connectionFile("client", t.profile));
    const engines = await rc.engines();
    const engine = engines.find((e) => e.id === 0)!;
    const engineBefore = rssMB(engine.pid);
    const controllerBefore = rssMB(t.cluster.pid);
    // allocUnsafe: pages nobody wrote are not resident here either, and only the first of them is sent.
    await floodUntilCutOff(engine.direct!.endpoint, [Buffer.allocUnsafe(1800 * 1024 * 1024)]);
    const half = Buffer.allocUnsafe(512 * 1024 * 1024);
    await floodUntilCutOff(endpoint(info, info.ports.clients), [half, half]);
    await floodUntilCutOff(endpoint(info, info.ports.engines), [half, half]);
    assert.deepEqual(await rc.view().apply((x: number) => x + 1, 1), [2, 2], "the cluster still computes");
    const engineGrew = rssMB(engine.pid) - engineBefore;
    const controllerGrew = rssMB(t.cluster.pid) - controllerBefore;
    assert.ok(engineGrew < 64, `the engine grew by ${engineGrew.toFixed(0)} MB`);
    assert.ok(controllerGrew < 64, `the controller grew by ${controllerGrew.toFixed(0)} MB`);
    // A client that means to send such a buffer is told at once, in one line.
    const remote = rc.view(0);
    await assert.rejects(
      rc.loadBalancedView().apply((b: Uint8Array) => b.length, new Uint8Array(300 * 1024 * 1024)),
      /a buffer of 0.29 GiB is over the 0.25 GiB one message frame carries: send it in parts/,
    );
    assert.equal(await remote.apply(() => 1), 1);
  });
});
