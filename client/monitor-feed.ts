/**
 * The controller's monitor stream, read: a SUB on its monitor port (CURVE when the cluster uses
 * it), every reading checked as any message is (signature, replay, limits), handed over typed.
 * `tsparallel cluster top` reads it; so can any tool of the user's.
 *
 * ```ts
 * const feed = MonitorFeed.open(readConnectionFile(connectionFile("client")));
 * for await (const update of feed) console.log(update.engines.length, update.tasks.length);
 * ```
 */
import * as zmq from "zeromq";
import type { ConnectionInfo } from "../protocol/connection";
import { endpoint } from "../protocol/connection";
import { isMsg } from "../protocol/messages";
import { type MonitorUpdate, readingUpdate } from "../protocol/monitor";
import { Session } from "../protocol/session";
import { curveClientKeys, receiveLimits, withCurve } from "../protocol/socket";
import { TimeoutError, TsParallelError } from "./errors";

export class MonitorFeed implements AsyncIterable<MonitorUpdate> {
  private readonly socket: zmq.Subscriber;
  private readonly session: Session;

  private constructor(info: ConnectionInfo, port: number) {
    this.session = new Session(info.key, "monitor");
    this.socket = withCurve(
      new zmq.Subscriber({ linger: 0, ...receiveLimits() }),
      curveClientKeys(info.curve_serverkey),
    );
    this.socket.connect(endpoint(info, port));
    this.socket.subscribe();
  }

  /** A feed from the controller `info` names; a one-line error when it has no monitor stream. */
  static open(info: ConnectionInfo): MonitorFeed {
    if (info.ports.monitor === undefined)
      throw new TsParallelError(
        "this cluster's controller has no monitor stream (its connection file predates it): restart the cluster",
      );
    return new MonitorFeed(info, info.ports.monitor);
  }

  /** The next reading; rejects with TimeoutError after `timeout` ms. Not while iterating the feed. */
  async next(timeout = 10_000): Promise<MonitorUpdate> {
    const deadline = Date.now() + timeout;
    this.socket.receiveTimeout = timeout;
    while (Date.now() < deadline) {
      let frames: Buffer[];
      try {
        frames = await this.socket.receive();
      } catch (e) {
        if ((e as { code?: string }).code === "EAGAIN") break;
        throw e;
      }
      const msg = this.session.decode(frames);
      if (msg && isMsg(msg, "monitor_update")) return readingUpdate(msg.content);
      this.socket.receiveTimeout = Math.max(1, deadline - Date.now());
    }
    throw new TimeoutError(
      `no reading from the controller's monitor stream within ${timeout} ms: is the cluster running, and is this its connection file?`,
    );
  }

  async *[Symbol.asyncIterator](): AsyncIterator<MonitorUpdate> {
    this.socket.receiveTimeout = -1;
    for await (const frames of this.socket) {
      const msg = this.session.decode(frames);
      if (msg && isMsg(msg, "monitor_update")) yield readingUpdate(msg.content);
    }
  }

  /** Messages dropped by the feed's checks (a wrong key reads as silence and counts here). */
  get dropped(): Readonly<Record<string, number>> {
    return this.session.dropped;
  }

  close(): void {
    this.socket.close();
  }
}
