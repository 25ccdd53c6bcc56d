import { test } from "node:test";
import assert from "node:assert/strict";
import { Session } from "../../../protocol/session";
import { DELIMITER, Signer, detachEnvelope, oversizedFrame, splitFrames } from "../../../protocol/wire";

test("a signed message round-trips and a tampered one is dropped and counted", () => {
  const a = new Session("k");
  const b = new Session("k");
  const { frames } = a.encode("stream", { name: "stdout", text: "hi" }, { identities: [Buffer.from("id")] });
  const msg = b.decode(frames);
  assert.equal(msg?.header.msg_type, "stream");
  assert.deepEqual(msg?.identities.map(String), ["id"]);
  const tampered = frames.map((f) => Buffer.from(f));
  tampered[tampered.length - 1] = Buffer.from(JSON.stringify({ name: "stdout", text: "evil" }));
  assert.equal(b.decode(tampered), undefined);
  assert.equal(b.dropped["bad-signature"], 1);
});

test("a replayed message is rejected", () => {
  const a = new Session("k");
  const b = new Session("k");
  const { frames } = a.encode("status", { execution_state: "idle" });
  assert.ok(b.decode(frames));
  assert.equal(b.decode(frames), undefined);
  assert.equal(b.dropped.replayed, 1);
});

test("a wrong key, missing delimiter, bad JSON, unknown type and too many frames are each counted", () => {
  const b = new Session("right");
  assert.equal(b.decode(new Session("wrong").encode("status", { execution_state: "idle" }).frames), undefined);
  assert.equal(b.decode([Buffer.from("x"), Buffer.from("y")]), undefined);
  const parts = ["{", "{}", "{}", "{}"].map((p) => Buffer.from(p));
  assert.equal(b.decode([DELIMITER, new Signer("right").sign(parts), ...parts]), undefined);
  const hdr = [JSON.stringify({ msg_id: "1", session: "s", msg_type: "nonsense" }), "{}", "{}", "{}"].map((p) =>
    Buffer.from(p),
  );
  assert.equal(b.decode([DELIMITER, new Signer("right").sign(hdr), ...hdr]), undefined);
  assert.equal(b.decode(Array.from({ length: 5000 }, () => Buffer.alloc(1))), undefined);
  assert.deepEqual(b.dropped, { malformed: 2, "bad-signature": 1, replayed: 0, oversized: 1, "unknown-type": 1 });
});

test("a buffer over the frame limit is named before it is sent", () => {
  const limits = { maxFrames: 10, maxJsonBytes: 10, maxMessageBytes: 2 ** 40, maxFrameBytes: 2 ** 30 };
  assert.equal(oversizedFrame([Buffer.alloc(10)], limits), undefined);
  assert.match(
    oversizedFrame([Buffer.alloc(1), { length: 2 ** 31 } as Buffer], limits) ?? "",
    /^a buffer of 2.00 GiB is over the 1.00 GiB one message frame carries: send it in parts/,
  );
});

test("limits are checked before parsing", () => {
  assert.throws(
    () =>
      splitFrames([DELIMITER, Buffer.alloc(0), Buffer.alloc(100), Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0)], {
        maxFrames: 10,
        maxJsonBytes: 10,
        maxMessageBytes: 1000,
        maxFrameBytes: 1000,
      }),
    /JSON part of 100 bytes/,
  );
});

test("detachEnvelope copies small frames out of the shared receive chunk and keeps large ones", () => {
  const chunk = Buffer.alloc(8192, 7); // as ZeroMQ's decoder hands frames over: views into one chunk
  const frames = [
    chunk.subarray(0, 16),
    DELIMITER,
    chunk.subarray(16, 80),
    ...[0, 1, 2, 3].map((i) => chunk.subarray(100 + i * 200, 300 + i * 200)),
  ];
  const big = Buffer.alloc(64 * 1024, 1);
  const env = splitFrames([...frames, big]);
  const copy = detachEnvelope(env);
  for (const [a, b] of [
    [env.identities[0]!, copy.identities[0]!],
    [env.signature, copy.signature],
    ...env.parts.map((p, i) => [p, copy.parts[i]!]),
  ] as [Buffer, Buffer][]) {
    assert.deepEqual(b, a);
    assert.notEqual(b.buffer, chunk.buffer, "a small frame must not stay a view into the chunk");
  }
  assert.equal(copy.buffers[0], big);
});

test("a batch carries signed messages that are each verified; a bad one is dropped and counted, the rest kept", () => {
  const engine = new Session("k");
  const controller = new Session("k");
  const client = new Session("k");
  const envs = [1, 2, 3].map((i) => {
    const { frames } = engine.encode(
      "apply_reply",
      { status: "ok" },
      { buffers: [Buffer.from(`result ${i}`)], identities: [Buffer.from("engine")] },
    );
    return splitFrames(frames.slice(1));
  });
  const good = client.decode(controller.batch([Buffer.from("client")], envs));
  assert.ok(good && good.header.msg_type === "batch");
  assert.equal(good.buffers.length, 1, "the inner frames travel packed in one buffer");
  const inner = client.unbatch(good as never);
  assert.deepEqual(
    inner.map(({ msg }) => String(msg.buffers[0])),
    ["result 1", "result 2", "result 3"],
  );
  // The same inner messages again are replays; a forged one fails its own signature.
  const forged = { ...envs[1]!, parts: [...envs[1]!.parts] as (typeof envs)[1]["parts"] };
  forged.parts[3] = Buffer.from(JSON.stringify({ status: "error" }));
  const fresh = [0, 1].map(() => splitFrames(engine.encode("apply_reply", { status: "ok" }).frames));
  const mixed = client.decode(controller.batch([], [fresh[0]!, forged, fresh[1]!]));
  assert.equal(client.unbatch(mixed as never).length, 2);
  assert.equal(client.dropped["bad-signature"], 1);
  assert.equal(client.unbatch(good as never).length, 0);
  assert.equal(client.dropped.replayed, 3);
  // Sizes that do not add up to the packed buffer drop the whole batch.
  const sizes = Array.from({ length: 10 }, () => 1);
  const { frames } = controller.encode("batch", { counts: [5, 5], sizes }, { buffers: [Buffer.from("x")] });
  const lying = client.decode(frames);
  assert.equal(client.unbatch(lying as never).length, 0);
  assert.equal(client.dropped.malformed, 1);
  assert.equal(client.decode(controller.encode("batch", { counts: [2], sizes: [1, 1] }).frames), undefined);
  assert.equal(client.dropped.malformed, 2);
  // Sizes for fewer frames than the counts name are refused before any splitting.
  assert.equal(client.decode(controller.encode("batch", { counts: [5], sizes: [1] }).frames), undefined);
  assert.equal(client.dropped.malformed, 3);
});
