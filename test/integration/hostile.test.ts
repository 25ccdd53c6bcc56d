import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as zmq from "zeromq";
import { type TestCluster, startCluster, until } from "../helpers/cluster";
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
