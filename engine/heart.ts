/**
 * The engine's side of the heartbeat (frames in protocol/heartbeat.ts), in two parts:
 *
 *   Heart            (protocol/heart.ts) echoes the controller's pings from a native thread.
 *   ControllerWatch  reads the same pings on the main thread, conflated to the newest: a new
 *                    controller id means the controller restarted (register again); silence means
 *                    it is gone. Nothing here is urgent, so it may wait while user code runs.
 */
import * as zmq from "zeromq";
import { PING_MAX_BYTES, parsePing } from "../protocol/heartbeat";
import { type CurveClientKeys, receiveLoop, withCurve } from "../protocol/socket";
import { Signer } from "../protocol/wire";

export type ControllerEvent = { type: "ping"; controller: string } | { type: "silent"; silentMs: number };

export class ControllerWatch {
  private readonly socket = new zmq.Subscriber({ conflate: true, linger: 0, maxMessageSize: PING_MAX_BYTES });
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
