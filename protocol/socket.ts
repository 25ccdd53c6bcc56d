/**
 * Socket plumbing shared by every role: a serial outbox (zeromq.js allows one pending send per
 * socket, as in its examples/queue/queue.ts) and a receive loop that survives any handler error.
 */
import * as zmq from "zeromq";
import { DEFAULT_LIMITS, type Limits } from "./wire";

export type Frames = Buffer[];

/** Messages a socket holds per peer before it stops reading from that peer (TCP then pushes back). */
export const RECEIVE_HWM = 1000;

/**
 * The receive limits every socket gets: ZeroMQ cuts off a peer that announces a frame over the
 * protocol's limit before allocating it (no key needed to try, so it must cost nothing), and a
 * flood waits in the sender's memory, not ours.
 */
export function receiveLimits(limits: Limits = DEFAULT_LIMITS): {
  maxMessageSize: number;
  receiveHighWaterMark: number;
} {
  return { maxMessageSize: limits.maxFrameBytes, receiveHighWaterMark: RECEIVE_HWM };
}

/**
 * Joins several signed messages to one peer into one (`Session.coalesce`): how an outbox sends
 * what queued up while its previous send was in flight, as one message instead of many.
 */
export type Coalesce = (messages: readonly Frames[]) => Frames;

export interface OutboxOptions {
  coalesce?: Coalesce;
  /** A ROUTER's outbox: the first frame names the peer, and only one peer's messages are joined. */
  routed?: boolean;
}

/** What may be joined: small messages (a large one gains nothing and would be copied), up to a total. */
const JOIN_MESSAGE_BYTES = 64 * 1024;
const JOIN_TOTAL_BYTES = 4 * 1024 * 1024;
const JOIN_TOTAL_FRAMES = 4000;
/** How far into the queue a head looks for more messages to its peer (the scan is per send). */
const JOIN_SCAN = 8192;

export class Outbox {
  private readonly queue: Frames[] = [];
  /** The send ZeroMQ is working on (the head of `queue`), with its completion handler attached. */
  private inFlight: Promise<void> | undefined;
  private closed = false;
  /** Sends that failed (peer gone, socket closing): counted, never thrown at the caller. */
  failures = 0;

  constructor(
    private readonly socket: zmq.Writable & { closed: boolean },
    private readonly opts: OutboxOptions = {},
  ) {}

  /**
   * Queues frames and starts sending at once: an engine's reply must leave even while the next
   * task in its batch holds the thread. Never throws.
   *
   * Every state change happens in the send's completion handler, after the frames left, and the
   * head leaves the queue only then: an engine sends from within a vm call that a SIGINT may
   * terminate at any statement, and a send cut off there must not lose the message nor wedge the
   * outbox. At worst a message goes twice (the receivers drop duplicates), and `pump()` after the
   * interrupted call resumes sending.
   */
  send(frames: Frames): void {
    if (this.closed) return;
    this.queue.push(frames);
    this.pump();
  }

  /**
   * Sends the head of the queue unless a send is in flight; called again by each completion.
   * Small messages to the same peer that queued up behind it leave with it, as one batch
   * (Dask's batched sends): a burst of tasks or replies costs one ZeroMQ send and one receive.
   */
  pump(): void {
    if (this.inFlight || this.closed || this.socket.closed) return;
    const head = this.queue[0];
    if (!head) return;
    const taken = this.joinable(head);
    const frames = taken.length > 1 ? this.opts.coalesce!(taken) : head;
    let sending: Promise<void>;
    try {
      sending = this.socket.send(frames);
    } catch (e) {
      return this.settle(head, taken, e);
    }
    this.inFlight = sending.then(
      () => this.settle(head, taken, undefined),
      (e: unknown) => this.settle(head, taken, e),
    );
  }

  /**
   * The messages that may leave as one, the head first: only the head unless several small ones
   * wait. A ROUTER's queue interleaves peers (a load-balanced burst alternates between engines),
   * so its head gathers the later messages to the same peer from anywhere in the queue: order
   * matters only per peer, and it is kept, since a message to that peer that cannot join ends
   * the gathering.
   */
  private joinable(head: Frames): Frames[] {
    if (!this.opts.coalesce || this.queue.length < 2) return [head];
    const peer = this.opts.routed ? head[0] : undefined;
    const taken: Frames[] = [];
    let bytes = 0;
    let frames = 0;
    for (let i = 0; i < this.queue.length && i < JOIN_SCAN; i++) {
      const m = this.queue[i]!;
      const samePeer = !peer || m[0]?.equals(peer) === true;
      if (!samePeer) continue;
      const size = m.reduce((a, f) => a + f.length, 0);
      if (size > JOIN_MESSAGE_BYTES || bytes + size > JOIN_TOTAL_BYTES || frames + m.length > JOIN_TOTAL_FRAMES) break;
      bytes += size;
      frames += m.length;
      taken.push(m);
    }
    return taken.length > 0 ? taken : [head];
  }

  private settle(head: Frames, taken: readonly Frames[], error: unknown): void {
    this.inFlight = undefined;
    if (isBusy(error)) {
      // A send started in a terminated call is still in progress: try again shortly.
      setImmediate(() => this.pump());
      return;
    }
    if (error !== undefined) this.failures += taken.length;
    if (this.queue[0] === head) {
      if (taken.length === 1) this.queue.shift();
      else {
        const sent = new Set(taken);
        let kept = 0;
        for (const m of this.queue) if (!sent.has(m)) this.queue[kept++] = m;
        this.queue.length = kept;
      }
    }
    this.pump();
  }

  get pending(): number {
    return this.queue.length;
  }

  /** Resolves once everything queued so far has been handed to ZeroMQ (or the outbox closed). */
  async idle(): Promise<void> {
    while ((this.inFlight || this.queue.length > 0) && !this.closed && !this.socket.closed) {
      this.pump();
      await new Promise((r) => setImmediate(r));
    }
  }

  close(): void {
    this.closed = true;
    this.queue.length = 0;
  }
}

/** zeromq.js refuses a second concurrent send on a socket with EBUSY. */
function isBusy(error: unknown): boolean {
  return (
    (error as { code?: string } | undefined)?.code === "EBUSY" ||
    /busy/i.test(String((error as Error | undefined)?.message ?? ""))
  );
}

/**
 * Runs `handle` for every message until the socket closes. A handler error is logged and the
 * loop goes on: one bad message must never stop a role.
 */
export async function receiveLoop(
  socket: AsyncIterable<Frames> & { closed: boolean },
  handle: (frames: Frames) => void | Promise<void>,
  onError: (e: unknown) => void,
): Promise<void> {
  try {
    for await (const frames of socket) {
      try {
        await handle(frames);
      } catch (e) {
        onError(e);
      }
    }
  } catch (e) {
    // A closed socket ends the iteration with an error on some versions: that is a normal end.
    if (!socket.closed) onError(e);
  }
}

/** A connecting socket's CURVE keys for a controller that encrypts (`curve_serverkey` in its connection file). */
export interface CurveClientKeys {
  serverKey: string;
  publicKey: string;
  secretKey: string;
}

/** A fresh key pair for this process, or undefined when the controller does not encrypt. */
export function curveClientKeys(serverKey: string | undefined): CurveClientKeys | undefined {
  return serverKey ? { serverKey, ...zmq.curveKeyPair() } : undefined;
}

export function withCurve<S extends zmq.Socket>(socket: S, keys: CurveClientKeys | undefined): S {
  if (keys) {
    socket.curveServerKey = keys.serverKey;
    socket.curvePublicKey = keys.publicKey;
    socket.curveSecretKey = keys.secretKey;
  }
  return socket;
}
