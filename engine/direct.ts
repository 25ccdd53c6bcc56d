/**
 * The engine's direct socket: a ROUTER that clients able to reach this host connect to, so a
 * DirectView task takes two hops (client → engine → client) instead of four through the
 * controller, whose JavaScript then leaves the critical path (as ipyparallel's MonitoredQueue
 * takes its hub off it). The controller still keeps every task's record: the engine forwards it
 * each direct request on arrival and sends it every output and reply as before (engine.ts), and
 * the controller does not pass those on to the client, which has them already.
 *
 * Messages are checked as on every socket (signature, replay, limits, shape) by a session of
 * their own, whose drop counters the engine reports to the controller (`engine_dropped`), so
 * `rc.stats()` accounts for hostile traffic here too. Only execute and apply requests are taken,
 * and other engines' `comm_msg`s (engine/peers.ts: the engines' links end here).
 */
import * as os from "node:os";
import * as zmq from "zeromq";
import { Session } from "../protocol/session";
import { Outbox, receiveLimits, receiveLoop } from "../protocol/socket";
import type { ConnectionInfo } from "../protocol/connection";
import { type DirectEndpoint, type MessageOf, isMsg } from "../protocol/messages";
import type { Envelope } from "../protocol/wire";

/** How many recent direct tasks keep their client: output a task's timers print later still reaches it. */
const PEERS_KEPT = 1000;
/** The least time between two drop reports to the controller. */
const REPORT_MS = 1000;

export type DirectTask = { msg: MessageOf<"execute_request" | "apply_request">; env: Envelope };

export class DirectSocket {
  readonly session: Session;
  private readonly socket: zmq.Router;
  private readonly outbox: Outbox;
  /** Client routing id by direct task msg id (insertion order: the oldest go first). */
  private readonly peers = new Map<string, Buffer>();
  private reported = 0;
  private reportTimer: NodeJS.Timeout | undefined;

  private constructor(
    key: string,
    readonly advertised: DirectEndpoint,
    socket: zmq.Router,
  ) {
    this.session = new Session(key, "engine");
    this.socket = socket;
    this.outbox = new Outbox(socket, { coalesce: this.session.coalesce, routed: true });
  }

  /**
   * Binds on the interface this host reaches the controller through, or returns undefined when
   * `TSPARALLEL_ENGINE_DIRECT=off` or nothing can be bound (clients then use the controller path).
   * `TSPARALLEL_ENGINE_DIRECT=tcp://host:port` advertises that endpoint instead of the bound one,
   * for an engine behind NAT or a port forward.
   */
  static async open(info: ConnectionInfo, log: (l: string) => void): Promise<DirectSocket | undefined> {
    const setting = process.env.TSPARALLEL_ENGINE_DIRECT;
    if (setting === "off") return undefined;
    const address = bindAddress(info.ip);
    if (!address) return undefined;
    const curve = info.curve_serverkey ? zmq.curveKeyPair() : undefined;
    const socket = new zmq.Router({ linger: 0, sendHighWaterMark: 0, ...receiveLimits() });
    if (curve) {
      socket.curveServer = true;
      socket.curveSecretKey = curve.secretKey;
    }
    try {
      await socket.bind(`tcp://${address}:*`);
    } catch (e) {
      log(`no direct socket (${String(e)}): clients send this engine's tasks through the controller`);
      socket.close();
      return undefined;
    }
    const bound = socket.lastEndpoint ?? "";
    const endpoint = setting?.startsWith("tcp://") ? setting : bound;
    return new DirectSocket(info.key, { endpoint, ...(curve ? { curveKey: curve.publicKey } : {}) }, socket);
  }

  /**
   * Reads tasks until closed; those `admit` refuses (addressed to another engine, or taken
   * before) are dropped and counted as replays. `report` is called with the drop counters when
   * they changed.
   */
  listen(
    admit: (task: DirectTask) => boolean,
    onTask: (task: DirectTask) => void,
    report: (dropped: Record<string, number>) => void,
    onComm: (msg: MessageOf<"comm_msg">) => void,
  ): void {
    void receiveLoop(
      this.socket,
      (frames) => {
        for (const { msg, env } of this.session.receive(frames)) {
          if (isMsg(msg, "comm_msg")) {
            onComm(msg); // another engine's, for a communicator (peers.ts)
            continue;
          }
          if (!isMsg(msg, "execute_request") && !isMsg(msg, "apply_request")) {
            this.session.dropped["unknown-type"]++; // control messages come from the controller only
            continue;
          }
          const t: DirectTask = { msg, env };
          const peer = msg.identities[0];
          if (!peer) continue;
          if (!admit(t)) {
            this.session.dropped.replayed++;
            continue;
          }
          this.peers.set(t.msg.header.msg_id, Buffer.from(peer));
          if (this.peers.size > PEERS_KEPT) this.peers.delete(this.peers.keys().next().value as string);
          onTask(t);
        }
        this.scheduleReport(report);
      },
      () => undefined,
    );
  }

  /** The client of a direct task (or of a recent one), to send its output and reply to. */
  peerOf(msgId: string): Buffer | undefined {
    return this.peers.get(msgId);
  }

  send(peer: Buffer, frames: Buffer[]): void {
    this.outbox.send([peer, ...frames]);
  }

  /** Sends again after a vm call was terminated (see Outbox.send). */
  pump(): void {
    this.outbox.pump();
  }

  private scheduleReport(report: (dropped: Record<string, number>) => void): void {
    const total = Object.values(this.session.dropped).reduce((a, b) => a + b, 0);
    if (total === this.reported || this.reportTimer) return;
    this.reportTimer = setTimeout(() => {
      this.reportTimer = undefined;
      this.reported = Object.values(this.session.dropped).reduce((a, b) => a + b, 0);
      report({ ...this.session.dropped });
    }, REPORT_MS);
    this.reportTimer.unref();
  }

  close(): void {
    clearTimeout(this.reportTimer);
    this.outbox.close();
    this.socket.close();
  }
}

/**
 * The local address to bind: loopback when the controller is on it; otherwise this host's
 * address on the controller's network (the interface whose subnet holds the controller's
 * address), else its first external IPv4 address.
 */
export function bindAddress(controllerIp: string, interfaces = os.networkInterfaces()): string | undefined {
  if (controllerIp === "localhost" || controllerIp.startsWith("127.") || controllerIp === "::1") return "127.0.0.1";
  const v4 = Object.values(interfaces)
    .flat()
    .filter((a): a is os.NetworkInterfaceInfoIPv4 => a !== undefined && a.family === "IPv4" && !a.internal);
  const same = v4.find((a) => sameSubnet(a.address, controllerIp, a.netmask));
  return (same ?? v4[0])?.address;
}

function sameSubnet(a: string, b: string, mask: string): boolean {
  const n = (s: string): number[] => s.split(".").map(Number);
  const [x, y, m] = [n(a), n(b), n(mask)];
  return y.length === 4 && m.every((byte, i) => (x[i]! & byte) === (y[i]! & byte));
}
