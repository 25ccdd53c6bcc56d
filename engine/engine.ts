/**
 * An engine: one Node process that registers with the controller and runs tasks one at a
 * time in a persistent namespace, streaming output while they run.
 *
 *   controller ─► DEALER ─► control messages (abort, shutdown): handled at once
 *                        └► execute/apply requests: queued, run in order by `TaskQueue` (tasks.ts)
 *   Executor output ─► OutputCapture ─► stream/display_data ─► controller ─► client
 */
import * as os from "node:os";
import * as util from "node:util";
import { randomUUID } from "node:crypto";
import * as zmq from "zeromq";
import { Session } from "../protocol/session";
import { ReplayGuard } from "../protocol/wire";
import { markEngine } from "../protocol/bulk";
import {
  type CurveClientKeys,
  Outbox,
  curveClientKeys,
  receiveLimits,
  receiveLoop,
  withCurve,
} from "../protocol/socket";
import { type ConnectionInfo, endpoint } from "../protocol/connection";
import {
  type AnyMessage,
  type Header,
  type MessageOf,
  type MsgType,
  type ContentOf,
  isMsg,
} from "../protocol/messages";
import { Executor } from "./executor";
import { TaskQueue } from "./tasks";
import { type SigintWatch, onSigint } from "./sigint";
import { OutputCapture, makeDisplay } from "./output";
import { Heart } from "../protocol/heart";
import { type ControllerEvent, ControllerWatch } from "./heart";
import { TsParallelError } from "../protocol/errors";
import { DirectSocket, type DirectTask } from "./direct";
import { type CommOpen, Peers } from "./peers";

/** How often the engine reads its own CPU and memory for the monitor (ms). */
const STATS_MS = 1000;

export interface EngineOptions {
  /** Give up when the controller stays unreachable this long (ms). */
  controllerTimeout?: number;
  cwd?: string;
  log?: (line: string) => void;
  /** The id to ask for (an MPI rank); the controller gives another when it is taken. */
  requestedId?: number;
  /** The launcher's engine set this engine belongs to. */
  engineSet?: string;
}

export class Engine {
  readonly uuid = randomUUID();
  id: number | undefined;
  private readonly session: Session;
  private readonly socket: zmq.Dealer;
  private readonly outbox: Outbox;
  private readonly capture: OutputCapture;
  private readonly executor: Executor;
  private readonly tasks: TaskQueue;
  private sigint: SigintWatch | undefined;
  /** Clients that can reach this host send DirectView tasks here, not through the controller. */
  private direct: DirectSocket | undefined;
  /** Tasks received from the controller, counted: places each direct task among them (hub.ts). */
  private fromController = 0;
  /** Replies sent, counted: each carries its number (ReplyMetadata.seq). */
  private repliesSent = 0;
  /**
   * The msg ids of tasks taken, by either path: a task runs here once. With the direct socket's
   * check that a task names this engine, a request recorded off the wire and sent again, to us
   * or to another engine, runs nowhere a second time (each socket's session only knows its own
   * signatures, and the controller signs what it forwards anew).
   */
  private readonly taken = new ReplayGuard();
  private heart: Heart | undefined;
  private watch: ControllerWatch | undefined;
  private controller = "";
  private registering: Promise<void> | undefined;
  private closed = false;
  private lostSince: number | undefined;
  private readonly log: (line: string) => void;
  /** This engine's CURVE keys, shared by its sockets, when the controller encrypts. */
  private readonly curveKeys: CurveClientKeys | undefined;
  /** Its links to other engines, and the communicators it is in (`comm`). */
  private readonly peers: Peers;

  constructor(
    private readonly info: ConnectionInfo,
    private readonly opts: EngineOptions = {},
  ) {
    this.log = opts.log ?? ((l) => process.stderr.write(`[engine ${this.id ?? "?"}] ${l}\n`));
    this.session = new Session(info.key, `engine`);
    this.curveKeys = curveClientKeys(info.curve_serverkey);
    this.socket = new zmq.Dealer({ routingId: this.uuid, linger: 0, sendHighWaterMark: 0, ...receiveLimits() });
    withCurve(this.socket, this.curveKeys);
    this.outbox = new Outbox(this.socket, { coalesce: this.session.coalesce });
    this.capture = new OutputCapture({
      stream: (parent, name, text) => this.send("stream", { name, text }, parent),
      data: (parent, buffers) => this.send("data_pub", {}, parent, undefined, buffers),
      display: (parent, data, metadata, displayId, update) =>
        update && displayId
          ? this.send("update_display_data", { data, metadata, transient: { display_id: displayId } }, parent)
          : this.send(
              "display_data",
              { data, metadata, ...(displayId ? { transient: { display_id: displayId } } : {}) },
              parent,
            ),
    });
    this.peers = new Peers(this.uuid, this.session, this.curveKeys);
    this.executor = new Executor(
      opts.cwd ?? process.cwd(),
      {
        display: makeDisplay(this.capture),
        publishData: (data: unknown) => this.capture.publishData(data),
      },
      { comm_open: (args) => this.peers.open(args[0] as CommOpen) },
    );
    this.tasks = new TaskQueue(this.executor, this.capture, {
      send: (type, content, parent, metadata, buffers) => this.send(type, content, parent, metadata, buffers),
      identity: () => ({ engineId: this.id ?? -1, uuid: this.uuid }),
      nextReplySeq: () => ++this.repliesSent,
      resume: () => {
        this.outbox.pump();
        this.direct?.pump();
      },
      busy: (on) => this.sigint?.busy(on),
    });
  }

  async start(): Promise<void> {
    this.capture.install();
    // Every way out of the process (process.exit from a task, a fatal error, the end of main)
    // passes here: free the heart's thread so the exit completes.
    process.on("exit", () => this.heart?.terminateNow());
    // Clients on this host that see the marker hand large buffers over through /dev/shm.
    const unmark = markEngine(this.uuid);
    process.on("exit", unmark);
    // User code's stray errors (a throwing setTimeout, a rejected promise nobody awaited) must not
    // cost the engine its namespace, as ipykernel survives an exception in a thread.
    // stderr is a pipe to the controller that started us; when it is gone, writes fail with EPIPE.
    // That must not become an "uncaught exception" that is reported on stderr, and so on forever.
    for (const stream of [process.stdout, process.stderr]) stream.on("error", () => undefined);
    process.on("uncaughtException", (e) => this.strayError(e, "uncaught exception"));
    process.on("unhandledRejection", (e) => this.strayError(e, "unhandled promise rejection"));
    this.sigint = onSigint(() => {
      this.peers.interrupt();
      if (!this.executor.interrupt()) this.log("SIGINT while idle: ignored");
    });
    this.direct = await DirectSocket.open(this.info, this.log);
    this.direct?.listen(
      (task) => this.admitDirect(task),
      (task) => this.onDirectTask(task),
      (dropped) => this.send("engine_dropped", { dropped }),
      (msg) => this.peers.deliver(msg),
    );
    this.socket.connect(endpoint(this.info, this.info.ports.engines));
    void receiveLoop(
      this.socket,
      (frames) => this.onFrames(frames),
      (e) => this.log(`receive error: ${String(e)}`),
    );
    await this.register();
  }

  /** Register (or re-register with the same id after a controller restart), retrying until the deadline. */
  private register(): Promise<void> {
    this.registering ??= (async () => {
      const deadline = Date.now() + (this.opts.controllerTimeout ?? 30_000);
      while (!this.closed) {
        const reply = this.pendingRegistration();
        this.send("registration_request", {
          uuid: this.uuid,
          pid: process.pid,
          hostname: os.hostname(),
          cwd: this.executor.cwd,
          ...((this.id ?? this.opts.requestedId) !== undefined
            ? { requested_id: this.id ?? this.opts.requestedId }
            : {}),
          ...(this.opts.engineSet !== undefined ? { engine_set: this.opts.engineSet } : {}),
          ...(this.direct ? { direct: this.direct.advertised } : {}),
        });
        const got = await Promise.race([reply, delay(1000).then(() => undefined)]);
        if (got && got.content.status === "ok") {
          this.id = got.content.id;
          if (this.controller && got.content.controller !== this.controller) {
            // A restarted controller knows none of our tasks and their clients have failed them:
            // drop the queued ones and stop the running one so the engine is free for new work.
            this.tasks.clear();
            this.fromController = 0;
          }
          this.controller = got.content.controller;
          this.lostSince = undefined;
          this.startHeart(got.content.heartbeat_period);
          this.startStats();
          return;
        }
        if (got && got.content.status === "error")
          throw new TsParallelError(`registration refused: ${got.content.evalue}`);
        if (Date.now() > deadline) {
          throw new TsParallelError(
            `no controller answered at ${endpoint(this.info, this.info.ports.engines)} within ${this.opts.controllerTimeout ?? 30_000} ms; is the cluster running?`,
          );
        }
      }
    })().finally(() => (this.registering = undefined));
    return this.registering;
  }

  private waitingRegistration: ((m: MessageOf<"registration_reply">) => void) | undefined;
  private pendingRegistration(): Promise<MessageOf<"registration_reply">> {
    return new Promise((resolve) => (this.waitingRegistration = resolve));
  }

  private startHeart(period: number): void {
    if (this.heart) return;
    this.heart = new Heart(
      {
        pingEndpoint: endpoint(this.info, this.info.ports.ping),
        pongEndpoint: endpoint(this.info, this.info.ports.heartbeat),
        uuid: this.uuid,
        ...(this.curveKeys ? { curve: this.curveKeys } : {}),
      },
      this.log,
    );
    this.heart.start();
    this.watch = new ControllerWatch(
      endpoint(this.info, this.info.ports.ping),
      this.info.key,
      this.curveKeys,
      period,
      5,
      (e) => this.onController(e),
    );
  }

  /** Once a second, the engine's own CPU and memory for the controller's monitor (engine_stats). */
  private startStats(): void {
    if (this.statsTimer) return;
    let cpu = process.cpuUsage();
    let at = performance.now();
    this.statsTimer = setInterval(() => {
      const now = performance.now();
      const used = process.cpuUsage(cpu);
      const percent = ((used.user + used.system) / 1000 / Math.max(now - at, 1)) * 100;
      cpu = process.cpuUsage();
      at = now;
      this.send("engine_stats", { cpu: Math.round(percent * 10) / 10, rss: process.memoryUsage.rss() });
    }, STATS_MS);
    this.statsTimer.unref();
  }

  private statsTimer: NodeJS.Timeout | undefined;

  private async stopHeart(): Promise<void> {
    this.watch?.close();
    await this.heart?.stop();
  }

  private onController(e: ControllerEvent): void {
    if (e.type === "silent") {
      this.lostSince ??= Date.now() - e.silentMs;
      this.log(`controller silent for ${e.silentMs} ms; waiting for it to come back`);
      const limit = this.opts.controllerTimeout ?? 30_000;
      const check: NodeJS.Timeout = setInterval(() => {
        if (this.lostSince === undefined) return clearInterval(check);
        if (Date.now() - this.lostSince > limit) {
          this.log(`controller gone for over ${limit} ms: exiting`);
          clearInterval(check);
          void this.close().then(() => process.exit(1));
        }
      }, 1000);
      return;
    }
    this.lostSince = undefined;
    if (e.controller !== this.controller && !this.registering) this.registerAgain("controller changed");
  }

  /** Fails the task that is running with the error, or reports it on the last task's stderr. */
  private strayError(error: unknown, kind: string): void {
    if ((error as NodeJS.ErrnoException | null)?.code === "EPIPE") return; // a log reader went away
    if (this.reportingStray) return; // an error while reporting one: do not loop
    this.reportingStray = true;
    try {
      this.reportStray(error, kind);
    } finally {
      this.reportingStray = false;
    }
  }

  private reportingStray = false;

  private reportStray(error: unknown, kind: string): void {
    this.log(`${kind} in user code: ${util.inspect(error)}`);
    if (this.executor.failCurrent(error)) return;
    const text = error instanceof Error ? (error.stack ?? `${error.name}: ${error.message}`) : util.inspect(error);
    this.capture.writeToLast("stderr", `${kind} after the task returned: ${text}\n`);
  }

  private registerAgain(why: string): void {
    this.log(`${why}: registering again as ${this.id}`);
    this.register().catch((err: unknown) => this.log(String(err)));
  }

  private onFrames(frames: Buffer[]): void {
    for (const { msg } of this.session.receive(frames)) this.handle(msg);
  }

  /** Whether a task from the direct socket is for this engine and new to it. */
  private admitDirect({ msg }: DirectTask): boolean {
    const route = msg.metadata.route;
    const ours = route?.kind === "direct" && route.engine === this.id;
    return ours && this.taken.admitKey(msg.header.msg_id);
  }

  /** A client's task: the controller gets the request for its records first, then it queues. */
  private onDirectTask({ msg, env }: DirectTask): void {
    const copy = this.session.resign(env, msg.header, { ...msg.metadata, queuedAfter: this.fromController });
    this.outbox.send(Session.forward([], copy));
    this.tasks.push(msg);
  }

  private handle(msg: AnyMessage): void {
    if (isMsg(msg, "registration_reply")) return this.waitingRegistration?.(msg);
    if (isMsg(msg, "reregistration_request"))
      return this.registering ? undefined : this.registerAgain(msg.content.reason);
    if (isMsg(msg, "execute_request") || isMsg(msg, "apply_request")) {
      this.fromController++;
      if (!this.taken.admitKey(msg.header.msg_id)) {
        this.session.dropped.replayed++;
        return this.log(`dropped task ${msg.header.msg_id}: it was taken before`);
      }
      return this.tasks.push(msg);
    }
    if (isMsg(msg, "peer_lost")) return this.peers.peerLost(msg.content.uuid, msg.content.reason);
    if (isMsg(msg, "abort_request")) {
      this.tasks.abort(msg.content.msg_ids);
      return this.send("abort_reply", { status: "ok", aborted: msg.content.msg_ids }, msg.header);
    }
    if (isMsg(msg, "shutdown_request")) {
      this.send("shutdown_reply", { status: "ok", restart: false }, msg.header);
      void this.close().then(() => process.exit(0));
      return;
    }
  }

  private send<T extends MsgType>(
    type: T,
    content: ContentOf<T>,
    parent?: Header,
    metadata?: Record<string, unknown>,
    buffers?: Buffer[],
  ): void {
    const { frames } = this.session.encode(type, content, {
      ...(parent ? { parent } : {}),
      metadata: metadata ?? { engine: this.uuid },
      ...(buffers ? { buffers } : {}),
    });
    // A direct task's output and reply go to its client first, then to the controller's records:
    // the controller's copy is off the reply's path. (Holding the copies back to join them in
    // one send was measured: two small messages joined cost more than two sends, and a burst's
    // copies are joined by the outbox anyway while a send is in flight.)
    const peer = parent?.msg_id === undefined ? undefined : this.direct?.peerOf(parent.msg_id);
    if (peer) this.direct!.send(peer, frames);
    this.outbox.send(frames);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.statsTimer);
    this.capture.flush();
    await delay(50); // let the outbox hand the last replies to ZeroMQ
    await this.stopHeart();
    this.outbox.close();
    this.socket.close();
    this.direct?.close();
    this.peers.close();
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
