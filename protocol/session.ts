/**
 * A signing session: turns typed messages into frames and frames back into typed messages.
 *
 * Decoding never throws: a malformed, oversized, badly signed or replayed message returns
 * `undefined` and is counted in `dropped` by reason (the hostile-traffic tests read these
 * counters), so one bad peer can never take a receive loop down.
 */
import { randomUUID } from "node:crypto";
import {
  DEFAULT_LIMITS,
  DELIMITER,
  type DropReason,
  type Envelope,
  type Limits,
  ReplayGuard,
  Signer,
  WireError,
  joinFrames,
  splitFrames,
} from "./wire";
import { type AnyMessage, type ContentOf, type Header, type Message, type MsgType, isMsgType } from "./messages";
import { malformation } from "./validate";

export interface SendOptions {
  parent?: Header | Record<string, never>;
  metadata?: Record<string, unknown>;
  buffers?: readonly Buffer[];
  identities?: readonly Buffer[];
  /** Use this msg_id instead of a fresh one. */
  msgId?: string;
}

export type DropCounts = Record<DropReason, number>;

/** How a batch's header names its type (our own headers: JSON.stringify, no spaces). */
const BATCH_TYPE = Buffer.from('"msg_type":"batch"');

export class Session {
  readonly id = randomUUID();
  readonly dropped: DropCounts = { malformed: 0, "bad-signature": 0, replayed: 0, oversized: 0, "unknown-type": 0 };
  /** Last drop, for logs and tests. */
  lastDrop: { reason: DropReason; message: string } | undefined;
  private readonly signer: Signer;
  private readonly replay = new ReplayGuard();
  private counter = 0;

  constructor(
    readonly key: string,
    readonly username = "tsparallel",
    readonly limits: Limits = DEFAULT_LIMITS,
  ) {
    this.signer = new Signer(key);
  }

  /** msg ids are `<session>_<n>`: unique without a uuid per message (ipyparallel does the same). */
  newMsgId(): string {
    return `${this.id}_${++this.counter}`;
  }

  header<T extends MsgType>(msgType: T, msgId = this.newMsgId()): Header<T> {
    return {
      msg_id: msgId,
      msg_type: msgType,
      session: this.id,
      username: this.username,
      date: new Date().toISOString(),
      version: "5.3",
    };
  }

  /** Frames for a new message; returns the header so callers can track the msg_id. */
  encode<T extends MsgType>(
    msgType: T,
    content: ContentOf<T>,
    opts: SendOptions = {},
  ): { frames: Buffer[]; header: Header<T> } {
    const header = this.header(msgType, opts.msgId);
    const parts = [
      Buffer.from(JSON.stringify(header)),
      Buffer.from(JSON.stringify(opts.parent ?? {})),
      Buffer.from(JSON.stringify(opts.metadata ?? {})),
      Buffer.from(JSON.stringify(content)),
    ];
    return { frames: joinFrames(opts.identities ?? [], this.signer.sign(parts), parts, opts.buffers ?? []), header };
  }

  /** Verifies and parses; `undefined` (counted) for anything that is not a valid signed message. */
  decode(frames: readonly Buffer[]): AnyMessage | undefined {
    const env = this.open(frames);
    return env && this.parse(env);
  }

  /**
   * Every message that `frames` carry, each with its envelope: the message itself, or the
   * messages of a `batch`, each checked on its own; none when the frames fail their checks. The
   * receive loops call this, so a batch is never seen above the session.
   */
  receive(frames: readonly Buffer[]): Array<{ msg: AnyMessage; env: Envelope }> {
    const env = this.open(frames);
    const msg = env && this.parse(env);
    if (!env || !msg) return [];
    return msg.header.msg_type === "batch" ? this.unbatch(msg as Message<"batch">) : [{ msg, env }];
  }

  /** Framing, size limits, signature and replay checks, without JSON parsing. */
  open(frames: readonly Buffer[]): Envelope | undefined {
    let env: Envelope;
    try {
      env = splitFrames(frames, this.limits);
    } catch (e) {
      return this.drop(e instanceof WireError ? e.reason : "malformed", String(e));
    }
    if (!this.signer.verify(env.signature, env.parts))
      return this.drop("bad-signature", "HMAC signature does not match");
    if (!this.replay.admit(env.signature)) return this.drop("replayed", "signature seen before");
    return env;
  }

  parse(env: Envelope): AnyMessage | undefined {
    let header: unknown, parent: unknown, metadata: unknown, content: unknown;
    try {
      header = JSON.parse(env.parts[0].toString("utf8"));
      parent = JSON.parse(env.parts[1].toString("utf8"));
      metadata = JSON.parse(env.parts[2].toString("utf8"));
      content = JSON.parse(env.parts[3].toString("utf8"));
    } catch (e) {
      return this.drop("malformed", `invalid JSON: ${String(e)}`);
    }
    if (!isObject(header) || typeof header.msg_id !== "string" || typeof header.session !== "string") {
      return this.drop("malformed", "header lacks msg_id/session");
    }
    if (!isMsgType(header.msg_type)) return this.drop("unknown-type", `unknown msg_type ${String(header.msg_type)}`);
    if (!isObject(parent) || !isObject(metadata) || !isObject(content)) {
      return this.drop("malformed", "parent_header, metadata and content must be objects");
    }
    const wrong = malformation(header.msg_type, content, metadata);
    if (wrong) return this.drop("malformed", `${header.msg_type}: ${wrong}`);
    const msg: Message = {
      identities: env.identities,
      header: header as unknown as Header,
      parent_header: parent as unknown as Header,
      metadata,
      content: content,
      buffers: env.buffers,
    };
    return msg as AnyMessage;
  }

  /**
   * The same request under a new header and metadata, signed again: the content part and the
   * buffers are reused as they are (buffers are not signed), so fanning one large request out
   * to many engines costs a small HMAC per engine, never a copy of the payload.
   */
  resign(env: Envelope, header: Header, metadata: Record<string, unknown>): Envelope {
    const parts: Envelope["parts"] = [
      Buffer.from(JSON.stringify(header)),
      env.parts[1],
      Buffer.from(JSON.stringify(metadata)),
      env.parts[3],
    ];
    return { identities: [], signature: this.signer.sign(parts), parts, buffers: env.buffers };
  }

  /**
   * One signed `batch` message carrying several signed messages, each still verifiable on its
   * own. Their frames travel packed in one buffer: ZeroMQ's cost is per frame (a batch of 300
   * replies was 1,800 frames), and copying small messages together is cheap (only messages
   * under 64 KB are ever joined).
   */
  batch(identities: readonly Buffer[], envs: readonly Envelope[]): Buffer[] {
    const counts = envs.map((e) => 1 + e.parts.length + e.buffers.length);
    const frames = envs.flatMap((e) => [e.signature, ...e.parts, ...e.buffers]);
    const sizes = frames.map((f) => f.length);
    return this.encode("batch", { counts, sizes }, { identities, buffers: [Buffer.concat(frames)] }).frames;
  }

  /**
   * The messages inside a `batch`, each opened (signature, replay, limits) and parsed like a
   * message of its own, with its envelope (addressed from the batch's sender); a bad inner
   * message is dropped and counted, the others are kept.
   */
  unbatch(msg: Message<"batch">): Array<{ msg: AnyMessage; env: Envelope }> {
    const inners = batchedFrames(msg.content, msg.buffers);
    if (!inners) {
      this.drop("malformed", "batch: its sizes do not add up to its one packed buffer");
      return [];
    }
    const out: Array<{ msg: AnyMessage; env: Envelope }> = [];
    for (const frames of inners) {
      const env = this.open([...msg.identities, DELIMITER, ...frames]);
      const inner = env && this.parse(env);
      // A batch inside a batch is refused: the nesting would be unbounded.
      if (inner && inner.header.msg_type === "batch") this.drop("malformed", "batch: nested batch");
      else if (inner && env) out.push({ msg: inner, env });
    }
    return out;
  }

  /**
   * An Outbox's `coalesce`: signed messages to one peer, joined into one `batch` to that peer. A
   * batch among them is flattened into its messages, as batches never nest.
   */
  readonly coalesce = (messages: readonly Buffer[][]): Buffer[] => {
    const envs = messages.flatMap((m) => {
      const env = splitFrames(m);
      if (!env.parts[0].includes(BATCH_TYPE)) return [env];
      const content = JSON.parse(env.parts[3].toString("utf8")) as ContentOf<"batch">;
      return (batchedFrames(content, env.buffers) ?? []).map((frames) => ({
        ...splitFrames([DELIMITER, ...frames]),
        identities: env.identities,
      }));
    });
    return this.batch(envs[0]!.identities, envs);
  };

  /** Re-address an already signed message without touching its signature or bytes. */
  static forward(identities: readonly Buffer[], env: Envelope): Buffer[] {
    return joinFrames(identities, env.signature, env.parts, env.buffers);
  }

  private drop(reason: DropReason, message: string): undefined {
    this.dropped[reason]++;
    this.lastDrop = { reason, message };
    return undefined;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * A batch's inner messages, each as its frames (views into the packed buffer, no copy), or
 * undefined when the sizes do not cover the packed buffer exactly.
 */
function batchedFrames(content: ContentOf<"batch">, buffers: readonly Buffer[]): Buffer[][] | undefined {
  const packed = buffers[0];
  if (buffers.length !== 1 || !packed) return undefined;
  if (content.sizes.reduce((a, b) => a + b, 0) !== packed.length) return undefined;
  const out: Buffer[][] = [];
  let frame = 0;
  let at = 0;
  for (const n of content.counts) {
    const frames: Buffer[] = [];
    for (const size of content.sizes.slice(frame, frame + n)) {
      frames.push(packed.subarray(at, at + size));
      at += size;
    }
    frame += n;
    out.push(frames);
  }
  return out;
}
