/**
 * Heartbeat frames, as in ipyparallel's hb_ping / hb_pong.
 *
 * Every period the controller publishes one single-frame ping, `<controller>:<seq>:<hmac>`, and
 * each engine's heart (a native ZeroMQ proxy from a SUB to a DEALER whose identity is the
 * engine's uuid) sends the same frame straight back: the controller's ROUTER reads
 * `[uuid, ping]`. The proxy runs in a native thread, so it echoes while user code holds the
 * engine's JavaScript thread, and costs no V8 isolate. The controller signs the ping, so an echo
 * of a ping that was never sent is refused; which echoes are recent enough, and first for their
 * uuid, is the controller's to check. One frame, so an engine's watcher can read it conflated.
 */
import { type DropReason, Signer } from "./wire";

export interface Ping {
  controller: string;
  seq: number;
}

export function encodePing(signer: Signer, ping: Ping): Buffer {
  const body = `${ping.controller}:${ping.seq}`;
  return Buffer.from(`${body}:${signer.sign([Buffer.from(body)]).toString("latin1")}`);
}

/** The largest ping frame: "<controller uuid>:<seq>:<32-byte MAC>" fits with room to spare. */
export const PING_MAX_BYTES = 256;

/** A ping (or its echo) checked for shape and signature; the drop reason otherwise. */
export function parsePing(signer: Signer, frame: Buffer): Ping | DropReason {
  if (frame.length > PING_MAX_BYTES) return "oversized";
  const text = frame.toString("latin1");
  const macAt = text.lastIndexOf(":");
  const seqAt = text.lastIndexOf(":", macAt - 1);
  if (macAt < 0 || seqAt <= 0) return "malformed";
  const body = text.slice(0, macAt);
  if (!signer.verify(Buffer.from(text.slice(macAt + 1), "latin1"), [Buffer.from(body, "latin1")]))
    return "bad-signature";
  const seq = Number(text.slice(seqAt + 1, macAt));
  if (!Number.isSafeInteger(seq)) return "malformed";
  return { controller: text.slice(0, seqAt), seq };
}
