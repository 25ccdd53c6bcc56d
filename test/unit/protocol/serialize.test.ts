import { test } from "node:test";
import assert from "node:assert/strict";
import { UnserializableError, deserialize, serialize } from "../../../protocol/serialize";

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

test("a Proxy is named by its path, not reported as an anonymous clone failure", () => {
  assert.throws(
    () => serialize([{ ok: 1 }, { p: new Proxy({}, {}) }], "push({ ... })"),
    (e: unknown) => e instanceof UnserializableError && e.path === "push({ ... })[1].p" && /Proxy/.test(e.message),
  );
});
