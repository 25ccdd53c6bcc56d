import { test } from "node:test";
import assert from "node:assert/strict";
import { Signer } from "../../../protocol/wire";
import { encodePing, parsePing } from "../../../protocol/heartbeat";

test("a ping survives its echo; a forged, altered or malformed one is named", () => {
  const signer = new Signer("k");
  const ping = encodePing(signer, { controller: "c-1:x", seq: 42 });
  assert.deepEqual(parsePing(signer, ping), { controller: "c-1:x", seq: 42 });
  assert.equal(parsePing(new Signer("other"), ping), "bad-signature");
  assert.equal(parsePing(signer, Buffer.from(ping.toString().replace(":42:", ":43:"))), "bad-signature");
  assert.equal(parsePing(signer, Buffer.from("nonsense")), "malformed");
  assert.equal(parsePing(signer, Buffer.alloc(300, 58)), "oversized");
});
