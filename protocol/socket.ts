/**
 * Socket plumbing shared by every role: a serial outbox (zeromq.js allows one pending send per
 * socket, as in its examples/queue/queue.ts) and a receive loop that survives any handler error.
 */
import * as zmq from "zeromq";

export type Frames = Buffer[];

export class Outbox {
  private readonly queue: Frames[] = [];
  /** The send ZeroMQ is working on (the head of `queue`), with its completion handler attached. */
  private inFlight: Promise<void> | undefined;
  private closed = false;
  /** Sends that failed (peer gone, socket closing): counted, never thrown at the caller. */
  failures = 0;

  constructor(private readonly socket: zmq.Writable & { closed: boolean }) {}

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

  /** Sends the head of the queue unless a send is in flight; called again by each completion. */
  pump(): void {
    if (this.inFlight || this.closed || this.socket.closed) return;
    const frames = this.queue[0];
    if (!frames) return;
    let sending: Promise<void>;
    try {
      sending = this.socket.send(frames);
    } catch (e) {
      return this.settle(frames, e);
    }
    this.inFlight = sending.then(
      () => this.settle(frames, undefined),
      (e: unknown) => this.settle(frames, e),
    );
  }

  private settle(frames: Frames, error: unknown): void {
    this.inFlight = undefined;
    if (isBusy(error)) {
      // A send started in a terminated call is still in progress: try again shortly.
      setImmediate(() => this.pump());
      return;
    }
    if (error !== undefined) this.failures++;
    if (this.queue[0] === frames) this.queue.shift();
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
