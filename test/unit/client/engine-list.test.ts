/**
 * The client's engine list against a scripted controller (real ZeroMQ, fake controller): replies
 * and notifications travel on different sockets, so they may arrive out of order.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import * as zmq from "zeromq";
import { Client } from "../../../client/client";
import type { EngineDescription } from "../../../protocol/messages";
import { Session } from "../../../protocol/session";

const engine = (id: number): EngineDescription => ({ id, uuid: `u${id}`, pid: 1, hostname: os.hostname() });

test("an older engine list does not revive an engine whose unregistration came first", async () => {
  const key = "k";
  const session = new Session(key, "fake-controller");
  const router = new zmq.Router({ linger: 0 });
  const pub = new zmq.Publisher({ linger: 0 });
  await router.bind("tcp://127.0.0.1:*");
  await pub.bind("tcp://127.0.0.1:*");
  const port = (s: zmq.Socket): number => Number(/:(\d+)$/.exec(s.lastEndpoint!)![1]);
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "engine-list-")), "client.json");
  fs.writeFileSync(
    file,
    JSON.stringify({
      transport: "tcp",
      ip: "127.0.0.1",
      ports: { clients: port(router), notification: port(pub), engines: 1, ping: 1, heartbeat: 1 },
      key,
      signature_scheme: "hmac-sha256",
      controller_pid: process.pid,
      location: os.hostname(),
    }),
  );
  // Answers: first the true list (seq 2: engines 0 and 1), then always a stale copy of it.
  let replies = 0;
  const answering = (async () => {
    for await (const frames of router) {
      const msg = session.decode(frames);
      if (!msg || msg.header.msg_type !== "connection_request") continue;
      replies++;
      const content = {
        status: "ok",
        engines: [engine(0), engine(1)],
        controller: "c",
        heartbeat_period: 1000,
        seq: 2,
      };
      await router.send(
        session.encode("connection_reply", content as never, { identities: msg.identities, parent: msg.header }).frames,
      );
    }
  })();
  const rc = await Client.connect({ file, activate: false, timeout: 5000 });
  try {
    assert.deepEqual(rc.ids, [0, 1]);
    // Engine 1 leaves (seq 3); the subscriber needs a moment to join, so publish until heard.
    const gone = session.encode("unregistration_notification", { ...engine(1), reason: "test", seq: 3 }).frames;
    const heard = new Promise((r) => rc.once("unregistration", r));
    const publishing = setInterval(() => void pub.send(gone), 50);
    await heard;
    clearInterval(publishing);
    assert.deepEqual(rc.ids, [0]);
    // waitForEngines polls the controller, which still answers with the seq-2 list.
    const before = replies;
    await assert.rejects(rc.waitForEngines(2, { timeout: 1500 }), /only 1 of 2 engines/);
    assert.ok(replies > before, "the client polled the controller");
    assert.deepEqual(rc.ids, [0]);
  } finally {
    rc.close();
    router.close();
    pub.close();
    await answering.catch(() => undefined);
  }
});
