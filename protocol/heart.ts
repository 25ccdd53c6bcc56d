/**
 * A heart: a native ZeroMQ proxy, SUB (pings) ─► DEALER (identity = uuid) ─► the controller's
 * pong ROUTER. It runs in a libuv thread, so it echoes while user code holds the JavaScript
 * thread, as ipyparallel's C-level heart device does; a worker thread for the same job cost a V8
 * isolate (10 MB of an idle engine's 63). Every engine has one; the controller has one too, whose
 * echoes tell it how far behind its own reading is (see controller/sockets.ts).
 */
import * as zmq from "zeromq";
import { type CurveClientKeys, withCurve } from "./socket";
import { PING_MAX_BYTES } from "./heartbeat";

export interface HeartConfig {
  pingEndpoint: string;
  pongEndpoint: string;
  uuid: string;
  curve?: CurveClientKeys;
}

export class Heart {
  private proxy: zmq.Proxy<zmq.Subscriber, zmq.Dealer> | undefined;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly cfg: HeartConfig,
    private readonly log: (line: string) => void,
  ) {}

  start(): void {
    const sub = withCurve(
      new zmq.Subscriber({ linger: 0, receiveHighWaterMark: 4, maxMessageSize: PING_MAX_BYTES }),
      this.cfg.curve,
    );
    const dealer = withCurve(
      new zmq.Dealer({ routingId: this.cfg.uuid, linger: 0, sendHighWaterMark: 2, maxMessageSize: PING_MAX_BYTES }),
      this.cfg.curve,
    );
    sub.subscribe();
    sub.connect(this.cfg.pingEndpoint);
    dealer.connect(this.cfg.pongEndpoint);
    const proxy = (this.proxy = new zmq.Proxy(sub, dealer));
    this.running = proxy.run().then(
      () => this.again("it ended"),
      // A signal that lands on the proxy's thread ends its poll with EINTR; start a new one.
      (e: unknown) => this.again(String(e)),
    );
  }

  private again(why: string): void {
    if (this.stopped) return;
    this.log(`heart stopped (${why}); starting it again`);
    setTimeout(() => this.stopped || this.start(), 100).unref();
  }

  /**
   * Ends the proxy's poll now, synchronously: called as the process exits. A proxy still polling
   * holds a libuv pool thread that Node joins on exit, so without this a `process.exit()` from
   * user code would hang forever, with the heart still echoing pings for a dead engine.
   */
  terminateNow(): void {
    this.stopped = true;
    try {
      this.proxy?.terminate();
    } catch {
      // already ended
    }
  }

  /** Stop the proxy (it closes its sockets); a proxy stuck sending to a gone controller is left to exit. */
  async stop(): Promise<void> {
    this.stopped = true;
    try {
      this.proxy?.terminate();
    } catch {
      return; // already ended
    }
    await Promise.race([this.running, new Promise((r) => setTimeout(r, 500).unref())]);
  }
}
