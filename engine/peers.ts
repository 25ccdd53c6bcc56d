/**
 * The engine's side of `comm`: its links to the other engines and the communicators it is a
 * member of.
 *
 * A link is a DEALER connected to the peer engine's direct socket (direct.ts), the ROUTER that
 * clients send DirectView tasks to: no new port, signed with the cluster's key, and CURVE with
 * the peer's advertised server key when the cluster encrypts. Each pair of engines has one link
 * each way, shared by all the communicators they are both in, and ZeroMQ keeps each link's
 * messages in order, which the collectives' message matching relies on.
 */
import * as zmq from "zeromq";
import { SharedWindow, WindowReader, sharesMemoryWith } from "../protocol/bulk";
import type { Session } from "../protocol/session";
import { Outbox, receiveLimits } from "../protocol/socket";
import type { MessageOf } from "../protocol/messages";
import { CURRENT_COMM, CommError, type CommMember, type CommMemory, type CommTransport, Communicator } from "./comm";

/** What `rc.view(targets).comm()` sends each member (the `comm_open` builtin's argument). */
export interface CommOpen {
  id: string;
  members: CommMember[];
  /** false: large arrays take the sockets even when every member shares this host's memory. */
  sharedMemory?: boolean;
}

/** How long a communicator rests before a new one takes its windows' memory back. */
const RELEASE_IDLE_MS = 10_000;

/** Communicators whose messages are kept before this engine joins them (the oldest go first). */
const EARLY_COMMS = 64;

export class Peers implements CommTransport {
  private readonly links = new Map<string, { socket: zmq.Dealer; outbox: Outbox }>();
  private readonly comms = new Map<string, Communicator>();
  /**
   * Messages for communicators not joined yet, by comm id: a member that formed it (or split it)
   * first may send before this engine's part of `comm_open` (or `split`) has run.
   */
  private readonly early = new Map<string, Array<MessageOf<"comm_msg">>>();
  /** Engines the controller said were lost, with why: a communicator naming one is broken at once. */
  private readonly lost = new Map<string, string>();

  constructor(
    private readonly uuid: string,
    private readonly session: Session,
    private readonly curve: { publicKey: string; secretKey: string } | undefined,
  ) {}

  /** Joins a communicator: it becomes the global `comm`. Resolves once every member can be reached. */
  async open({ id, members, sharedMemory }: CommOpen): Promise<{ rank: number; size: number; sharedMemory: boolean }> {
    const rank = members.findIndex((m) => m.uuid === this.uuid);
    if (rank < 0) throw new CommError(`this engine is not a member of communicator ${id}`);
    // An engine keeps every communicator it joined (programs may hold on to one), but not the
    // shared memory of those that rest: formed again and again, they would fill /dev/shm.
    for (const c of this.comms.values()) c.releaseMemory(RELEASE_IDLE_MS);
    const comm = new Communicator(id, rank, members, this, (c) => this.join(c));
    this.join(comm);
    for (const m of members) {
      const why = this.lost.get(m.uuid);
      if (why) comm.break(lostError(comm, m.uuid, why));
    }
    (globalThis as Record<PropertyKey, unknown>)[CURRENT_COMM] = comm;
    (globalThis as Record<string, unknown>).comm = comm;
    // Shared memory only if every member sees every other's marker in this user's private
    // /dev/shm folder: one host (or one /dev/shm), and a verdict all members reach together.
    const sees = sharedMemory !== false && members.every((m) => sharesMemoryWith(m.uuid));
    if ((await comm.allreduce(sees ? 1 : 0, "min")) === 1) comm.shareMemory(() => new EngineCommMemory());
    return { rank, size: comm.size, sharedMemory: comm.sharesMemory };
  }

  send(to: CommMember, header: { comm: string; from: number; tag: string }, frames: Buffer[]): void {
    const link = this.link(to);
    link.outbox.send(this.session.encode("comm_msg", header, { buffers: frames }).frames);
  }

  /** A `comm_msg` from a peer's link, checked by the direct socket's session. */
  deliver(msg: MessageOf<"comm_msg">): void {
    const { comm, from, tag } = msg.content;
    const c = this.comms.get(comm);
    if (c) return c.deliver(from, tag, msg.buffers);
    const waiting = this.early.get(comm);
    if (waiting) return void waiting.push(msg);
    this.early.set(comm, [msg]);
    if (this.early.size > EARLY_COMMS) this.early.delete(this.early.keys().next().value!);
  }

  private join(c: Communicator): void {
    this.comms.set(c.id, c);
    for (const m of this.early.get(c.id) ?? []) c.deliver(m.content.from, m.content.tag, m.buffers);
    this.early.delete(c.id);
  }

  /** The controller lost engine `uuid`: every communicator it is in fails, on this member too. */
  peerLost(uuid: string, reason: string): void {
    this.lost.set(uuid, reason);
    for (const c of this.comms.values()) if (c.rankOf(uuid) !== undefined) c.break(lostError(c, uuid, reason));
    const link = this.links.get(uuid);
    link?.outbox.close();
    link?.socket.close();
    this.links.delete(uuid);
  }

  /** The running cell was interrupted: what it waited for fails, and the communicators with it. */
  interrupt(): void {
    for (const c of this.comms.values())
      if (c.waiting)
        c.break(
          new CommError(
            `communicator ${c.id} was interrupted (its members may be at different steps): form a new one with rc.view(targets).comm()`,
          ),
        );
  }

  close(): void {
    for (const c of this.comms.values()) c.break(new CommError(`communicator ${c.id} was closed: its engine stops`));
    for (const { socket, outbox } of this.links.values()) {
      outbox.close();
      socket.close();
    }
    this.links.clear();
  }

  private link(to: CommMember): { socket: zmq.Dealer; outbox: Outbox } {
    let link = this.links.get(to.uuid);
    if (link) return link;
    const socket = new zmq.Dealer({ routingId: this.uuid, linger: 0, sendHighWaterMark: 0, ...receiveLimits() });
    if (to.curveKey && this.curve) {
      socket.curveServerKey = to.curveKey;
      socket.curvePublicKey = this.curve.publicKey;
      socket.curveSecretKey = this.curve.secretKey;
    }
    socket.connect(to.endpoint);
    link = { socket, outbox: new Outbox(socket, { coalesce: this.session.coalesce }) };
    this.links.set(to.uuid, link);
    return link;
  }
}

/** A communicator's windows in the private /dev/shm folder, made on first use, removed when it breaks. */
class EngineCommMemory implements CommMemory {
  private readonly windows = new Map<string, SharedWindow>();
  private readonly reader = new WindowReader();

  window(use: "scatter" | "gather" | "bcast0" | "bcast1"): SharedWindow {
    let w = this.windows.get(use);
    if (!w) this.windows.set(use, (w = new SharedWindow()));
    return w;
  }

  read(window: string, offset: number, into: ArrayBufferView): void {
    this.reader.read(window, offset, into);
  }

  close(): void {
    for (const w of this.windows.values()) w.close();
    this.windows.clear();
    this.reader.close();
  }
}

function lostError(c: Communicator, uuid: string, reason: string): CommError {
  return new CommError(`${c.whoIs(c.rankOf(uuid)!)} was lost: ${reason}`);
}
