/**
 * The engine's side of the heartbeat (frames in protocol/heartbeat.ts), in two parts:
 *
 *   Heart            a native ZeroMQ proxy, SUB (pings) ─► DEALER (identity = uuid) ─► controller.
 *                    It runs in a libuv thread, so it echoes while user code holds the JavaScript
 *                    thread, as ipyparallel's C-level heart device does; a worker thread for the
 *                    same job cost a V8 isolate (10 MB of an idle engine's 63).
 *   ControllerWatch  reads the same pings on the main thread, conflated to the newest: a new
 *                    controller id means the controller restarted (register again); silence means
 *                    it is gone. Nothing here is urgent, so it may wait while user code runs.
 */
import * as zmq from "zeromq";
import { parsePing } from "../protocol/heartbeat";
import { type CurveClientKeys, receiveLoop, withCurve } from "../protocol/socket";
import { Signer } from "../protocol/wire";

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
    const sub = withCurve(new zmq.Subscriber({ linger: 0, receiveHighWaterMark: 4 }), this.cfg.curve);
    const dealer = withCurve(
      new zmq.Dealer({ routingId: this.cfg.uuid, linger: 0, sendHighWaterMark: 2 }),
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

export type ControllerEvent = { type: "ping"; controller: string } | { type: "silent"; silentMs: number };

export class ControllerWatch {
  private readonly socket = new zmq.Subscriber({ conflate: true, linger: 0 });
  private readonly signer: Signer;
  private lastPing = Date.now();
  private reportedSilent = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    endpoint: string,
    key: string,
    curve: CurveClientKeys | undefined,
    period: number,
    misses: number,
    onEvent: (e: ControllerEvent) => void,
  ) {
    this.signer = new Signer(key);
    withCurve(this.socket, curve).subscribe();
    this.socket.connect(endpoint);
    void receiveLoop(
      this.socket,
      ([frame]) => {
        const ping = frame && parsePing(this.signer, frame);
        if (!ping || typeof ping === "string") return; // not from a controller holding our key
        this.lastPing = Date.now();
        this.reportedSilent = false;
        onEvent({ type: "ping", controller: ping.controller });
      },
      () => undefined,
    );
    let lastTick = Date.now();
    this.timer = setInterval(() => {
      const now = Date.now();
      // After user code held the thread, pings may be waiting unread: judge at the next tick.
      const late = now - lastTick > 2 * period;
      lastTick = now;
      const silent = now - this.lastPing;
      if (!late && !this.reportedSilent && silent > period * misses) {
        this.reportedSilent = true;
        onEvent({ type: "silent", silentMs: silent });
      }
    }, period);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
    this.socket.close();
  }
}
