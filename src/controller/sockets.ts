/**
 * The controller's four sockets, one role each:
 *   clients  ROUTER  requests, queries and replies to clients (client DEALERs connect)
 *   engines  ROUTER  registration, tasks, engine output (engine DEALERs connect, identity = uuid)
 *   heartbeat ROUTER engine hearts beat here, from a thread that keeps beating while user code runs
 *   notification PUB registration/unregistration notices and the controller's own heartbeat
 * Receive loops decode and hand typed messages to the hub; nothing else happens here.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import * as zmq from "zeromq";
import { Session } from "../protocol/session";
import { Outbox, receiveLoop } from "../protocol/socket";
import type { Hub } from "./hub";

export interface Curve {
  publicKey: string;
  secretKey: string;
}

export function serverSocket<T extends zmq.Router | zmq.Publisher>(socket: T, curve?: Curve): T {
  socket.sendHighWaterMark = 0; // like ipyparallel: never drop or block on a burst of tasks
  socket.linger = 0;
  if (socket instanceof zmq.Router) socket.receiveHighWaterMark = 0;
  if (curve) {
    socket.curveServer = true;
    socket.curveSecretKey = curve.secretKey;
  }
  return socket;
}

/** Client and engine ROUTERs: decode, count drops, hand to the hub. */
export function routeLoop(socket: zmq.Router, session: Session, handle: (msg: NonNullable<ReturnType<Session["parse"]>>, env: NonNullable<ReturnType<Session["open"]>>) => void, log: (l: string) => void): Promise<void> {
  return receiveLoop(socket, (frames) => {
    const env = session.open(frames);
    if (!env) return;
    const msg = session.parse(env);
    if (msg) handle(msg, env);
  }, (e) => log(`receive error: ${String(e)}`));
}

/**
 * Heartbeat frames: `[identity, seq, hmac(key, "<uuid>:<seq>")]`. Signed so a forged beat cannot
 * keep a dead engine "alive"; the reply `[identity, controllerSession, "ok"|"unknown"]` tells the
 * engine the controller is up and whether it must re-register (after a controller restart).
 */
export class HeartbeatRole {
  readonly outbox: Outbox;
  private readonly key: Buffer;
  private readonly lastSeq = new Map<string, number>();

  constructor(private readonly socket: zmq.Router, key: string, private readonly hub: Hub) {
    this.outbox = new Outbox(socket);
    this.key = Buffer.from(key);
  }

  start(log: (l: string) => void): Promise<void> {
    return receiveLoop(this.socket, (frames) => this.onBeat(frames), (e) => log(`heartbeat error: ${String(e)}`));
  }

  private onBeat(frames: Buffer[]): void {
    const [identity, seqFrame, mac] = frames;
    // Drops are counted in the controller session's counters, so stats() covers every socket.
    const dropped = this.hub.session.dropped;
    if (frames.length !== 3 || !identity || !seqFrame || !mac || seqFrame.length > 20 || identity.length > 64) {
      dropped.malformed++;
      return;
    }
    const uuid = identity.toString("latin1");
    const expected = Buffer.from(beatMac(this.key, uuid, seqFrame.toString()));
    const seq = Number(seqFrame.toString());
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected) || !Number.isSafeInteger(seq)) {
      dropped["bad-signature"]++;
      return;
    }
    if (seq <= (this.lastSeq.get(uuid) ?? -1)) {
      dropped.replayed++;
      return;
    }
    this.lastSeq.set(uuid, seq);
    if (this.lastSeq.size > 100_000) this.lastSeq.clear();
    const known = this.hub.beat(uuid);
    this.outbox.send([identity, Buffer.from(this.hub.session.id), Buffer.from(known ? "ok" : "unknown")]);
  }
}

export function beatMac(key: Buffer, uuid: string, seq: string): string {
  return createHmac("sha256", key).update(`${uuid}:${seq}`).digest("hex");
}
