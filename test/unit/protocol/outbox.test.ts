import { test } from "node:test";
import assert from "node:assert/strict";
import { Session } from "../../../protocol/session";
import { type Frames, Outbox } from "../../../protocol/socket";

/** A socket whose sends complete when the test says so. */
class FakeSocket {
  closed = false;
  readonly sent: Frames[] = [];
  private pending: Array<() => void> = [];
  send(frames: Frames): Promise<void> {
    this.sent.push(frames);
    return new Promise((resolve) => this.pending.push(resolve));
  }
  async complete(): Promise<void> {
    const all = this.pending;
    this.pending = [];
    all.forEach((r) => r());
    await new Promise((r) => setImmediate(r));
  }
}

const texts = (session: Session, frames: Frames): string[] => {
  const msg = session.decode(frames);
  if (!msg) return ["(dropped)"];
  if (msg.header.msg_type !== "batch") return [(msg.content as { text: string }).text];
  return session.unbatch(msg as never).map(({ msg: m }) => (m.content as { text: string }).text);
};

/** A ROUTER's outbox over a fake socket, and `to(peer, text)` making a signed message to a peer. */
function routedOutbox(): {
  receiver: Session;
  socket: FakeSocket;
  outbox: Outbox;
  to: (peer: string, text: string, pad?: number) => Frames;
} {
  const sender = new Session("k");
  const socket = new FakeSocket();
  const to = (peer: string, text: string, pad = 0): Frames =>
    sender.encode("stream", { name: "stdout", text: text + " ".repeat(pad) }, { identities: [Buffer.from(peer)] })
      .frames;
  return {
    receiver: new Session("k"),
    socket,
    outbox: new Outbox(socket as never, { coalesce: sender.coalesce, routed: true }),
    to,
  };
}

test("what queues behind a send in flight leaves as one batch, in order; large messages and other peers do not join", async () => {
  const { receiver, socket, outbox, to } = routedOutbox();
  outbox.send(to("c1", "a"));
  for (const t of ["b", "c", "d"]) outbox.send(to("c1", t));
  outbox.send(to("c2", "e"));
  outbox.send(to("c2", "big", 100_000));
  outbox.send(to("c2", "f"));
  assert.equal(socket.sent.length, 1);
  for (let i = 0; i < 5; i++) await socket.complete();
  const got = socket.sent.map((f) => [String(f[0]), texts(receiver, f).map((t) => t.trim())]);
  assert.deepEqual(got, [
    ["c1", ["a"]],
    ["c1", ["b", "c", "d"]],
    ["c2", ["e"]],
    ["c2", ["big"]],
    ["c2", ["f"]],
  ]);
  assert.equal(outbox.pending, 0);
});

test("a router's queue that alternates peers still leaves as one batch per peer, each peer's messages in order", async () => {
  const { receiver, socket, outbox, to } = routedOutbox();
  outbox.send(to("e0", "first"));
  for (let i = 0; i < 4; i++) {
    outbox.send(to("e0", `a${i}`));
    outbox.send(to("e1", `b${i}`));
  }
  outbox.send(to("e0", "large", 100_000));
  outbox.send(to("e1", "b4"));
  outbox.send(to("e0", "after"));
  for (let i = 0; i < 6; i++) await socket.complete();
  const got = socket.sent.map((f) => [String(f[0]), texts(receiver, f).map((t) => t.trim())]);
  assert.deepEqual(got, [
    ["e0", ["first"]],
    ["e0", ["a0", "a1", "a2", "a3"]],
    ["e1", ["b0", "b1", "b2", "b3", "b4"]],
    ["e0", ["large"]],
    ["e0", ["after"]],
  ]);
  assert.equal(outbox.pending, 0);
});

test("a batch queued with other messages is flattened: batches never nest", async () => {
  const sender = new Session("k");
  const receiver = new Session("k");
  const socket = new FakeSocket();
  const outbox = new Outbox(socket as never, { coalesce: sender.coalesce });
  const msg = (text: string): Frames => sender.encode("stream", { name: "stdout", text }).frames;
  const envs = ["x", "y"].map((t) => {
    const frames = msg(t);
    return { identities: [], signature: frames[1]!, parts: frames.slice(2, 6) as never, buffers: [] };
  });
  outbox.send(msg("first"));
  outbox.send(sender.batch([], envs));
  outbox.send(msg("z"));
  await socket.complete();
  assert.deepEqual(texts(receiver, socket.sent[1]!), ["x", "y", "z"]);
});
