import { test } from "node:test";
import assert from "node:assert/strict";
import { Session } from "../../protocol/session";
import { DELIMITER, Signer, detachEnvelope, splitFrames } from "../../protocol/wire";
import { encodePing, parsePing } from "../../protocol/heartbeat";
import { ConnectionFileError, readConnectionFile } from "../../protocol/connection";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { UnserializableError, deserialize, serialize } from "../../protocol/serialize";
import { functionSource } from "../../protocol/apply";

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

test("limits are checked before parsing", () => {
  assert.throws(
    () =>
      splitFrames([DELIMITER, Buffer.alloc(0), Buffer.alloc(100), Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0)], {
        maxFrames: 10,
        maxJsonBytes: 10,
        maxMessageBytes: 1000,
      }),
    /JSON part of 100 bytes/,
  );
});

const table: Array<[string, unknown]> = [
  ["number", 3.5],
  ["string", "héllo"],
  ["bigint", 12345678901234567890n],
  ["null", null],
  ["undefined", undefined],
  ["nested", { a: [1, { b: "c" }], d: { e: true } }],
  [
    "Map",
    new Map<unknown, unknown>([
      ["k", 1],
      [2, [3]],
    ]),
  ],
  ["Set", new Set([1, "a"])],
  ["Date", new Date("2024-05-06T07:08:09Z")],
  ["RegExp", /ab+c/gi],
  ["Float64Array small", new Float64Array([1.5, -2])],
  ["Int32Array large", Int32Array.from({ length: 100_000 }, (_, i) => i - 50_000)],
  ["BigInt64Array", new BigInt64Array([1n, -2n])],
  ["Uint8Array", new Uint8Array([1, 2, 3])],
  ["ArrayBuffer", new Uint8Array([9, 8]).buffer],
];
for (const [name, value] of table) {
  test(`structured clone round trip: ${name}`, () => {
    assert.deepEqual(deserialize(serialize(value)), value);
  });
}

test("a large typed array travels out of band without a copy and respects byteOffset", () => {
  const backing = new Float64Array(20_000).map((_, i) => i);
  const view = backing.subarray(100, 19_000);
  const frames = serialize({ view });
  assert.equal(frames.length, 2);
  assert.equal(frames[1]!.buffer, backing.buffer, "the frame shares the array's memory");
  const back = deserialize(frames) as { view: Float64Array };
  assert.ok(back.view instanceof Float64Array);
  assert.deepEqual(back.view, view);
});

test("a misaligned out-of-band frame is copied to an aligned one", () => {
  const arr = new Float64Array(10_000).fill(2.5);
  const [main, oob] = serialize(arr);
  const shifted = Buffer.alloc(oob!.length + 1).subarray(1);
  oob!.copy(shifted);
  assert.deepEqual(deserialize([main!, shifted]), arr);
});

test("unserializable values name their path", () => {
  assert.throws(
    () => serialize([1, { cb: () => 1 }], "args"),
    (e: unknown) => e instanceof UnserializableError && e.path === "args[1].cb",
  );
  assert.throws(() => serialize({ s: Symbol("x") }), /value\.s: Symbol\(x\)/);
  class Secret {
    #hidden = 1;
    get h(): number {
      return this.#hidden;
    }
  }
  assert.throws(
    () => serialize({ m: new Map([["k", new Secret()]]) }),
    /value\.m\.get\("k"\): an instance of class Secret/,
  );
});

test("function sources become expressions, including method shorthand", () => {
  const obj = {
    double(x: number) {
      return x * 2;
    },
    async later() {
      return await Promise.resolve(1);
    },
  };
  // eslint-disable-next-line @typescript-eslint/unbound-method -- the method's source is the point
  assert.match(functionSource(obj.double).source, /^function double\(x\)/);
  // eslint-disable-next-line @typescript-eslint/unbound-method -- the method's source is the point
  assert.match(functionSource(obj.later).source, /^async function later\(\)/);
  assert.match(functionSource((a: number) => a).source, /^\(a\) => a/);
  assert.throws(() => functionSource(Math.max), /native function max/);
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

test("a ping survives its echo; a forged, altered or malformed one is named", () => {
  const signer = new Signer("k");
  const ping = encodePing(signer, { controller: "c-1:x", seq: 42 });
  assert.deepEqual(parsePing(signer, ping), { controller: "c-1:x", seq: 42 });
  assert.equal(parsePing(new Signer("other"), ping), "bad-signature");
  assert.equal(parsePing(signer, Buffer.from(ping.toString().replace(":42:", ":43:"))), "bad-signature");
  assert.equal(parsePing(signer, Buffer.from("nonsense")), "malformed");
  assert.equal(parsePing(signer, Buffer.alloc(300, 58)), "oversized");
});

test("a connection file without every port is refused in one line that says what to do", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsp-conn-"));
  const file = path.join(dir, "client.json");
  fs.writeFileSync(
    file,
    JSON.stringify({
      transport: "tcp",
      ip: "127.0.0.1",
      key: "k",
      ports: { clients: 1, notification: 2, engines: 3, heartbeat: 4 },
    }),
  );
  assert.throws(
    () => readConnectionFile(file),
    (e: unknown) =>
      e instanceof ConnectionFileError &&
      /has no ping port .*restart the cluster/.test(e.message) &&
      !e.message.includes("\n"),
  );
});
