/**
 * Jupyter wire framing and HMAC signing: the only place that splits and joins frames.
 *
 * `[identities…, "<IDS|MSG>", hmac, header, parent_header, metadata, content, buffers…]`,
 * Jupyter's wire protocol.
 *
 * Everything here is checked before anything is parsed: frame count and sizes (so a hostile
 * peer cannot make us JSON.parse a gigabyte), the delimiter, and the signature, compared in
 * constant time with lengths checked first (a `==` on digests leaks timing).
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { TsParallelError } from "./errors";

export const DELIMITER = Buffer.from("<IDS|MSG>");

/** Why a message was dropped; every receiving socket counts these. */
export type DropReason = "malformed" | "bad-signature" | "replayed" | "oversized" | "unknown-type";

export class WireError extends TsParallelError {
  override name = "WireError";
  override readonly code = "ERR_WIRE";
  constructor(
    readonly reason: DropReason,
    message: string,
  ) {
    super(message);
  }
}

export interface Limits {
  /** Most frames in one message, identities and buffers included. */
  maxFrames: number;
  /** Largest JSON part (header, parent, metadata, content). */
  maxJsonBytes: number;
  /** Largest whole message. */
  maxMessageBytes: number;
  /**
   * Largest single frame (one buffer of a value). ZeroMQ enforces it as its maximum message
   * size on every socket, before it allocates anything: a peer without the key cannot make a
   * process reserve gigabytes by announcing a huge frame. 256 MiB: larger buffers between a
   * client and engines on one host go through shared memory (bulk.ts) and are not frames;
   * across hosts, they are sent in parts.
   */
  maxFrameBytes: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxFrames: 4096,
  maxJsonBytes: 64 * 1024 * 1024,
  maxMessageBytes: 2 * 1024 * 1024 * 1024 - 1,
  maxFrameBytes: 256 * 1024 * 1024,
};

/** A received message after framing checks, before any JSON is parsed. */
export interface Envelope {
  identities: Buffer[];
  signature: Buffer;
  /** header, parent_header, metadata, content: still raw JSON bytes. */
  parts: [Buffer, Buffer, Buffer, Buffer];
  buffers: Buffer[];
}

/**
 * Why these buffers cannot travel as frames of one message (one is larger than ZeroMQ will
 * take: the receiver would cut the connection and the message would be lost unseen), or
 * undefined. Senders check before sending, and fail the task in one line instead.
 */
export function oversizedFrame(buffers: readonly Buffer[], limits: Limits = DEFAULT_LIMITS): string | undefined {
  const big = buffers.find((b) => b.length > limits.maxFrameBytes);
  if (big === undefined) return undefined;
  const gib = (n: number): string => `${(n / 2 ** 30).toFixed(2)} GiB`;
  return `a buffer of ${gib(big.length)} is over the ${gib(limits.maxFrameBytes)} one message frame carries: send it in parts (scatter, or several pushes)`;
}

export function splitFrames(frames: readonly Buffer[], limits: Limits = DEFAULT_LIMITS): Envelope {
  if (frames.length > limits.maxFrames) {
    throw new WireError("oversized", `message has ${frames.length} frames (limit ${limits.maxFrames})`);
  }
  let total = 0;
  let delimiterAt = -1;
  for (let i = 0; i < frames.length; i++) {
    const f = frames[i]!;
    total += f.length;
    if (delimiterAt < 0 && f.length === DELIMITER.length && f.equals(DELIMITER)) delimiterAt = i;
  }
  if (total > limits.maxMessageBytes) {
    throw new WireError("oversized", `message of ${total} bytes (limit ${limits.maxMessageBytes})`);
  }
  if (delimiterAt < 0) throw new WireError("malformed", "no <IDS|MSG> delimiter");
  if (frames.length < delimiterAt + 6) throw new WireError("malformed", "fewer than 5 frames after the delimiter");
  const parts = frames.slice(delimiterAt + 2, delimiterAt + 6) as [Buffer, Buffer, Buffer, Buffer];
  for (const p of parts) {
    if (p.length > limits.maxJsonBytes) {
      throw new WireError("oversized", `JSON part of ${p.length} bytes (limit ${limits.maxJsonBytes})`);
    }
  }
  return {
    identities: frames.slice(0, delimiterAt),
    signature: frames[delimiterAt + 1]!,
    parts,
    buffers: frames.slice(delimiterAt + 6),
  };
}

/**
 * The envelope with its small frames copied out of ZeroMQ's receive chunks, for a message kept a
 * while (a queued task): a received frame is a view into a chunk of 8 KB or more shared with its
 * neighbours, and V8, told only the frame's length, would let old views pin hundreds of MB.
 * Large frames have a chunk of their own, of their own size, and are kept as they are.
 */
export function detachEnvelope(env: Envelope): Envelope {
  const copy = (b: Buffer): Buffer => (b.length < 64 * 1024 ? Buffer.from(b) : b);
  return {
    identities: env.identities.map(copy),
    signature: copy(env.signature),
    parts: env.parts.map(copy) as Envelope["parts"],
    buffers: env.buffers.map(copy),
  };
}

export function joinFrames(
  identities: readonly Buffer[],
  signature: Buffer,
  parts: readonly Buffer[],
  buffers: readonly Buffer[],
): Buffer[] {
  return [...identities, DELIMITER, signature, ...parts, ...buffers];
}

/** HMAC-SHA256 signer over the four JSON parts, hex encoded as Jupyter does. */
export class Signer {
  private readonly key: Buffer;

  constructor(key: string) {
    this.key = Buffer.from(key, "utf8");
  }

  get enabled(): boolean {
    return this.key.length > 0;
  }

  sign(parts: readonly Buffer[]): Buffer {
    if (!this.enabled) return Buffer.alloc(0);
    const h = createHmac("sha256", this.key);
    for (const p of parts) h.update(p);
    return Buffer.from(h.digest("hex"), "latin1");
  }

  verify(signature: Buffer, parts: readonly Buffer[]): boolean {
    const expected = this.sign(parts);
    // timingSafeEqual throws on unequal lengths: check them first (Deno's kernel does the same).
    return signature.length === expected.length && timingSafeEqual(signature, expected);
  }
}

/**
 * Rejects a signature seen before. Two generations of sets keep memory bounded while
 * remembering at least `capacity` recent digests (ipyparallel culls its digest_history alike).
 */
export class ReplayGuard {
  private current = new Set<string>();
  private previous = new Set<string>();

  constructor(private readonly capacity = 1 << 17) {}

  /** True the first time a digest is seen, false on a replay. */
  admit(signature: Buffer): boolean {
    if (signature.length === 0) return true; // unsigned sessions cannot detect replays
    return this.admitKey(signature.toString("latin1"));
  }

  /** True the first time `key` (a digest, or a request's msg id) is seen. */
  admitKey(key: string): boolean {
    if (this.current.has(key) || this.previous.has(key)) return false;
    this.current.add(key);
    if (this.current.size >= this.capacity) {
      this.previous = this.current;
      this.current = new Set();
    }
    return true;
  }
}
