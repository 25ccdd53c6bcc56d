/**
 * Socket plumbing shared by every role: a serial outbox (zeromq.js allows one pending send per
 * socket, as in its examples/queue/queue.ts) and a receive loop that survives any handler error.
 */
import * as zmq from "zeromq";

export type Frames = Buffer[];

export class Outbox {
  private readonly queue: Frames[] = [];
  private draining = false;
  private closed = false;
  /** Sends that failed (peer gone, socket closing): counted, never thrown at the caller. */
  failures = 0;

  constructor(private readonly socket: zmq.Writable & { closed: boolean }) {}

  /**
   * Queue frames for sending. Never throws. The drain starts from a microtask, never inside the
   * caller's stack: an engine replies from within a vm call that a SIGINT may terminate, and a
   * drain cut off half-way would stay "draining" forever, silently keeping every later reply.
   */
  send(frames: Frames): void {
    if (this.closed) return;
    this.queue.push(frames);
    if (this.draining || this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      void this.drain();
    });
  }

  private scheduled = false;

  get pending(): number {
    return this.queue.length;
  }

  /** Resolves once everything queued so far has been handed to ZeroMQ (or the outbox closed). */
  async idle(): Promise<void> {
    while ((this.draining || this.scheduled || this.queue.length > 0) && !this.closed)
      await new Promise((r) => setImmediate(r));
  }

  close(): void {
    this.closed = true;
    this.queue.length = 0;
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      let frames: Frames | undefined;
      while ((frames = this.queue.shift()) !== undefined) {
        if (this.closed || this.socket.closed) return;
        try {
          await this.socket.send(frames);
        } catch {
          this.failures++;
        }
      }
    } finally {
      this.draining = false;
    }
  }
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
