/**
 * The controller's five sockets, one role each:
 *   clients  ROUTER  requests, queries and replies to clients (client DEALERs connect)
 *   engines  ROUTER  registration, tasks, engine output (engine DEALERs connect, identity = uuid)
 *   ping     PUB     a signed ping every heartbeat period (engine hearts and watchers subscribe)
 *   heartbeat ROUTER the pings echoed back by each engine's heart (identity = uuid)
 *   notification PUB registration/unregistration notices and the controller's own heartbeat
 * Receive loops decode and hand typed messages to the hub; nothing else happens here.
 */
import * as zmq from "zeromq";
import { encodePing, parsePing } from "../protocol/heartbeat";
import { Session } from "../protocol/session";
import { randomUUID } from "node:crypto";
import { Heart } from "../protocol/heart";
import { type CurveClientKeys, receiveLimits, receiveLoop } from "../protocol/socket";
import { Signer } from "../protocol/wire";
import type { Hub } from "./hub";

export interface Curve {
  publicKey: string;
  secretKey: string;
}

export function serverSocket<T extends zmq.Router | zmq.Publisher | zmq.XPublisher>(socket: T, curve?: Curve): T {
  socket.sendHighWaterMark = 0; // like ipyparallel: never drop or block on a burst of tasks
  socket.linger = 0;
  const limits = receiveLimits();
  socket.maxMessageSize = limits.maxMessageSize;
  if (socket instanceof zmq.Router) socket.receiveHighWaterMark = limits.receiveHighWaterMark;
  if (curve) {
    socket.curveServer = true;
    socket.curveSecretKey = curve.secretKey;
  }
  return socket;
}

/** Client and engine ROUTERs: decode (a batch into its messages), count drops, hand to the hub. */
export function routeLoop(
  socket: zmq.Router,
  session: Session,
  handle: (msg: NonNullable<ReturnType<Session["parse"]>>, env: NonNullable<ReturnType<Session["open"]>>) => void,
  log: (l: string) => void,
): Promise<void> {
  return receiveLoop(
    socket,
    (frames) => {
      for (const { msg, env } of session.receive(frames)) handle(msg, env);
    },
    (e) => log(`receive error: ${String(e)}`),
  );
}

/**
 * Heartbeats (frames in protocol/heartbeat.ts): `ping()` publishes the next signed ping; an echo
 * counts for its engine when it is one of the last `misses + 1` pings of this controller and the
 * first echo of that ping from that uuid. A beat from a uuid the hub does not know (an engine
 * declared lost, or registered with an earlier controller) makes the hub ask it to register again.
 *
 * The controller runs a heart of its own (the canary), connected like an engine's. An engine is
 * judged by the pings the canary answered and the controller read: a controller starved of CPU
 * (256 engines starting on 2 cores) sends fewer pings and reads late, and so falls behind
 * without declaring live engines lost; a dead or stopped engine is still found, as the canary
 * keeps answering while the engines do not.
 */
export class HeartbeatRole {
  private readonly signer: Signer;
  private seq = 0;
  private readonly lastSeq = new Map<string, number>();
  private readonly canaryId = `controller-canary-${randomUUID()}`;
  private canary: Heart | undefined;

  constructor(
    private readonly pingSocket: zmq.Publisher,
    private readonly pongSocket: zmq.Router,
    key: string,
    private readonly hub: Hub,
  ) {
    this.signer = new Signer(key);
  }

  /** Starts the canary, connected to these endpoints like an engine's heart, then reads the echoes. */
  start(log: (l: string) => void, endpoints: { ping: string; pong: string }, curve?: CurveClientKeys): Promise<void> {
    this.canary = new Heart(
      { pingEndpoint: endpoints.ping, pongEndpoint: endpoints.pong, uuid: this.canaryId, ...(curve ? { curve } : {}) },
      log,
    );
    this.canary.start();
    return receiveLoop(
      this.pongSocket,
      (frames) => this.onPong(frames),
      (e) => log(`heartbeat error: ${String(e)}`),
    );
  }

  ping(): void {
    this.seq++;
    this.hub.pinged(this.seq);
    this.pingSocket
      .send(encodePing(this.signer, { controller: this.hub.session.id, seq: this.seq }))
      .catch(() => undefined);
    // Echoes older than the window are refused anyway: forget the uuids that sent none since.
    for (const [uuid, seq] of this.lastSeq) if (seq < this.oldestAccepted()) this.lastSeq.delete(uuid);
  }

  private oldestAccepted(): number {
    return this.seq - this.hub.options.heartbeatMisses;
  }

  private onPong(frames: Buffer[]): void {
    // Drops are counted in the controller session's counters, so stats() covers every socket.
    const dropped = this.hub.session.dropped;
    const [identity, frame] = frames;
    if (frames.length !== 2 || !identity || !frame || identity.length > 64) {
      dropped.malformed++;
      return;
    }
    const ping = parsePing(this.signer, frame);
    if (typeof ping === "string") {
      dropped[ping]++;
      return;
    }
    const uuid = identity.toString("latin1");
    const stale = ping.controller !== this.hub.session.id || ping.seq > this.seq || ping.seq < this.oldestAccepted();
    if (stale || ping.seq <= (this.lastSeq.get(uuid) ?? 0)) {
      dropped.replayed++;
      return;
    }
    this.lastSeq.set(uuid, ping.seq);
    if (uuid === this.canaryId) this.hub.canaryBeat(ping.seq);
    else this.hub.beat(uuid, ping.seq);
  }

  async stop(): Promise<void> {
    await this.canary?.stop();
  }
}
