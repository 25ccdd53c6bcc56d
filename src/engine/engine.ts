/**
 * An engine: one Node process that registers with the controller and runs tasks one at a
 * time in a persistent namespace, streaming output while they run.
 *
 *   controller ─► DEALER ─► control messages (abort, shutdown): handled at once
 *                        └► execute/apply requests: queued, run in order by `Executor`
 *   Executor output ─► OutputCapture ─► stream/display_data ─► controller ─► client
 */
import * as os from "node:os";
import * as path from "node:path";
import { randomUUID } from "node:crypto";
import { Worker } from "node:worker_threads";
import * as util from "node:util";
import * as zmq from "zeromq";
import { Session } from "../protocol/session";
import { Outbox, receiveLoop } from "../protocol/socket";
import { type ConnectionInfo, endpoint } from "../protocol/connection";
import { type AnyMessage, type Header, type MessageOf, type TaskMetadata, type MsgType, type ContentOf, isMsg } from "../protocol/messages";
import { UnserializableError, serialize } from "../protocol/serialize";
import { Executor, TaskError } from "./executor";
import { mimeBundle } from "../client/display";
import { OutputCapture, makeDisplay } from "./output";
import type { HeartConfig, HeartEvent } from "./heart";

export interface EngineOptions {
  /** Give up when the controller stays unreachable this long (ms). */
  controllerTimeout?: number;
  cwd?: string;
  log?: (line: string) => void;
}

type Task = MessageOf<"execute_request"> | MessageOf<"apply_request">;

export class Engine {
  readonly uuid = randomUUID();
  id: number | undefined;
  private readonly session: Session;
  private readonly socket: zmq.Dealer;
  private readonly outbox: Outbox;
  private readonly capture: OutputCapture;
  private readonly executor: Executor;
  private readonly queue: Task[] = [];
  private readonly aborted = new Set<string>();
  private running = false;
  private heart: Worker | undefined;
  private controller = "";
  private registering: Promise<void> | undefined;
  private closed = false;
  private lostSince: number | undefined;
  private readonly log: (line: string) => void;

  constructor(private readonly info: ConnectionInfo, private readonly opts: EngineOptions = {}) {
    this.log = opts.log ?? ((l) => process.stderr.write(`[engine ${this.id ?? "?"}] ${l}\n`));
    this.session = new Session(info.key, `engine`);
    this.socket = new zmq.Dealer({ routingId: this.uuid, linger: 0, sendHighWaterMark: 0, receiveHighWaterMark: 0 });
    this.curve(this.socket);
    this.outbox = new Outbox(this.socket);
    this.capture = new OutputCapture({
      stream: (parent, name, text) => this.send("stream", { name, text }, parent),
      display: (parent, data, metadata, displayId, update) =>
        update && displayId
          ? this.send("update_display_data", { data, metadata, transient: { display_id: displayId } }, parent)
          : this.send("display_data", { data, metadata, ...(displayId ? { transient: { display_id: displayId } } : {}) }, parent),
    });
    this.executor = new Executor(opts.cwd ?? process.cwd(), { display: makeDisplay(this.capture) });
  }

  async start(): Promise<void> {
    this.capture.install();
    process.on("SIGINT", () => {
      if (!this.executor.interrupt()) this.log("SIGINT while idle: ignored");
    });
    this.socket.connect(endpoint(this.info, this.info.ports.engines));
    void receiveLoop(this.socket, (frames) => this.onFrames(frames), (e) => this.log(`receive error: ${String(e)}`));
    await this.register();
  }

  /** Register (or re-register with the same id after a controller restart), retrying until the deadline. */
  private register(): Promise<void> {
    this.registering ??= (async () => {
      const deadline = Date.now() + (this.opts.controllerTimeout ?? 30_000);
      while (!this.closed) {
        const reply = this.pendingRegistration();
        this.send("registration_request", {
          uuid: this.uuid, pid: process.pid, hostname: os.hostname(), cwd: this.executor.cwd,
          ...(this.id !== undefined ? { requested_id: this.id } : {}),
        });
        const got = await Promise.race([reply, delay(1000).then(() => undefined)]);
        if (got && got.content.status === "ok") {
          this.id = got.content.id;
          if (this.controller && got.content.controller !== this.controller) {
            // A restarted controller knows none of our tasks and their clients have failed them:
            // drop the queued ones and stop the running one so the engine is free for new work.
            this.queue.length = 0;
            this.executor.interrupt();
          }
          this.controller = got.content.controller;
          this.lostSince = undefined;
          this.startHeart(got.content.heartbeat_period);
          return;
        }
        if (got && got.content.status === "error") throw new Error(`registration refused: ${got.content.evalue}`);
        if (Date.now() > deadline) {
          throw new Error(`no controller answered at ${endpoint(this.info, this.info.ports.engines)} within ${this.opts.controllerTimeout ?? 30_000} ms; is the cluster running?`);
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
    const cfg: HeartConfig = {
      endpoint: endpoint(this.info, this.info.ports.heartbeat), uuid: this.uuid, key: this.info.key, period, misses: 5,
      ...(this.curveKeys ? { curve: this.curveKeys } : {}),
    };
    this.heart = new Worker(path.join(__dirname, "heart.js"), { workerData: cfg });
    this.heart.unref();
    this.heart.on("message", (e: HeartEvent) => this.onHeart(e));
    this.heart.on("error", (e) => this.log(`heart failed: ${String(e)}`));
  }

  private onHeart(e: HeartEvent): void {
    if (e.type === "lost") {
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
    if (e.controller !== this.controller || !e.known) {
      this.log(`controller ${e.known ? "changed" : "forgot this engine"}: registering again as ${this.id}`);
      this.register().catch((err: unknown) => this.log(String(err)));
    }
  }

  private onFrames(frames: Buffer[]): void {
    const msg = this.session.decode(frames);
    if (!msg) return;
    this.handle(msg);
  }

  private handle(msg: AnyMessage): void {
    if (isMsg(msg, "registration_reply")) return this.waitingRegistration?.(msg);
    if (isMsg(msg, "execute_request") || isMsg(msg, "apply_request")) {
      this.queue.push(msg);
      if (!this.running) void this.drain();
      return;
    }
    if (isMsg(msg, "abort_request")) {
      for (const id of msg.content.msg_ids) this.aborted.add(id);
      return this.send("abort_reply", { status: "ok", aborted: msg.content.msg_ids }, msg.header);
    }
    if (isMsg(msg, "shutdown_request")) {
      this.send("shutdown_reply", { status: "ok", restart: false }, msg.header);
      void this.close().then(() => process.exit(0));
      return;
    }
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      let task: Task | undefined;
      // Yield to the event loop before each task, so control messages that arrived meanwhile
      // (an abort sent while a busy loop held the thread) are read before the task starts.
      while ((await new Promise<void>((r) => setImmediate(r)), (task = this.queue.shift())) !== undefined) await this.run(task);
    } finally {
      this.running = false;
    }
  }

  private async run(task: Task): Promise<void> {
    const started = new Date().toISOString();
    const meta = task.metadata as TaskMetadata;
    const replyType = isMsg(task, "execute_request") ? "execute_reply" : "apply_reply";
    const engineInfo = { engine_id: this.id ?? -1, engine_uuid: this.uuid, method: replyType === "execute_reply" ? ("execute" as const) : ("apply" as const) };
    const replyMeta = (): Record<string, unknown> => ({ engine: this.uuid, engineId: this.id, started, completed: new Date().toISOString() });
    if (this.aborted.delete(task.header.msg_id)) {
      return this.send(replyType, { status: "error", ename: "TaskAborted", evalue: `task ${task.header.msg_id} was aborted before it started`, traceback: [], engine_info: engineInfo }, task.header, replyMeta());
    }
    const runOpts = {
      ...(typeof meta.timeLimit === "number" ? { timeLimit: meta.timeLimit } : {}),
      ...(typeof meta.sourceMap === "string" ? { sourceMap: meta.sourceMap } : {}),
      ...(typeof meta.source === "string" ? { source: meta.source } : {}),
    };
    try {
      if (isMsg(task, "execute_request")) {
        const value = await this.capture.run(task.header, () => this.executor.execute(task.content.code, runOpts));
        const count = this.executor.executionCount;
        this.capture.flush();
        if (value !== undefined && !task.content.silent) {
          this.send("execute_result", { execution_count: count, data: mimeBundle(value), metadata: {} }, task.header);
        }
        this.send("execute_reply", { status: "ok", execution_count: count, user_expressions: {} }, task.header, replyMeta());
      } else {
        const apply = task as MessageOf<"apply_request">;
        const value = await this.capture.run(apply.header, () => this.executor.apply(apply.content.call, apply.buffers, runOpts));
        let buffers: Buffer[];
        try {
          buffers = serialize(value, "result");
        } catch (e) {
          if (e instanceof UnserializableError) throw new TaskError("UnserializableError", e.message, [`UnserializableError: ${e.message}`]);
          throw e;
        }
        this.capture.flush();
        this.send("apply_reply", { status: "ok" }, apply.header, replyMeta(), buffers);
      }
    } catch (e) {
      this.capture.flush();
      const err = e instanceof TaskError ? e : new TaskError((e as Error)?.name ?? "Error", (e as Error)?.message ?? String(e), [util.inspect(e)]);
      const content = { status: "error" as const, ename: err.ename, evalue: err.message, traceback: err.traceback, engine_info: engineInfo };
      if (isMsg(task, "execute_request")) {
        this.send("error", { ename: err.ename, evalue: err.message, traceback: err.traceback, engine_info: engineInfo }, task.header);
        this.send("execute_reply", { ...content, execution_count: this.executor.executionCount }, task.header, replyMeta());
      } else {
        this.send("apply_reply", content, task.header, replyMeta());
      }
    }
  }

  private send<T extends MsgType>(type: T, content: ContentOf<T>, parent?: Header, metadata?: Record<string, unknown>, buffers?: Buffer[]): void {
    this.outbox.send(this.session.encode(type, content, { ...(parent ? { parent } : {}), metadata: metadata ?? { engine: this.uuid }, ...(buffers ? { buffers } : {}) }).frames);
  }

  private curveKeys: HeartConfig["curve"];
  private curve(sock: zmq.Dealer): void {
    if (!this.info.curve_serverkey) return;
    const pair = zmq.curveKeyPair();
    this.curveKeys = { serverKey: this.info.curve_serverkey, publicKey: pair.publicKey, secretKey: pair.secretKey };
    sock.curveServerKey = this.info.curve_serverkey;
    sock.curvePublicKey = pair.publicKey;
    sock.curveSecretKey = pair.secretKey;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.capture.flush();
    await delay(50); // let the outbox hand the last replies to ZeroMQ
    await this.heart?.terminate();
    this.outbox.close();
    this.socket.close();
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
