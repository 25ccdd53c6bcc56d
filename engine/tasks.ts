/**
 * The engine's task queue: runs execute and apply requests one after another, in arrival order,
 * and sends each reply (output first, then the reply).
 *
 * Consecutive apply requests start inside one vm call (`Executor.startAll`): vm's breakOnSigint
 * starts and joins a watchdog thread per call, which on a busy 2-core machine cost ~0.5 ms, more
 * than a tiny task itself. Order is unchanged: a task whose function returns a promise ends the
 * batch, and the next task starts only after that promise settles.
 */
import * as util from "node:util";
import type { AnyMessage, ContentOf, Header, MessageOf, MsgType, ReplyMetadata } from "../protocol/messages";
import { isMsg } from "../protocol/messages";
import { UnserializableError, serialize } from "../protocol/serialize";
import { mimeBundle } from "../protocol/mime";
import { readBulk, stashBulk } from "../protocol/bulk";
import { oversizedFrame } from "../protocol/wire";
import { type Executor, type RunOptions, type Start, TaskError } from "./executor";
import type { OutputCapture } from "./output";

export type EngineTask = MessageOf<"execute_request"> | MessageOf<"apply_request">;

export interface TaskReplies {
  send<T extends MsgType>(
    type: T,
    content: ContentOf<T>,
    parent: Header,
    metadata?: Record<string, unknown>,
    buffers?: Buffer[],
  ): void;
  identity(): { engineId: number; uuid: string };
  /** The next reply's sequence number (1, 2, 3…): see ReplyMetadata.seq. */
  nextReplySeq(): number;
  /** Resumes sending after a vm call was terminated (a send it started may have been cut off). */
  resume?(): void;
  /** The queue started (true) or finished (false) draining: interrupts matter only meanwhile. */
  busy?(on: boolean): void;
}

interface StartedApply {
  task: MessageOf<"apply_request">;
  start: Start;
  filename: string;
  started: string;
  replied: boolean;
}

/** At most this many applies start in one vm call; a batch also ends after `BATCH_MS`. */
const BATCH_SIZE = 64;
const BATCH_MS = 1;

export class TaskQueue {
  private readonly queue: EngineTask[] = [];
  private readonly aborted = new Set<string>();
  private running = false;
  /**
   * A task held the thread and the event loop has not polled the socket since: control messages
   * that arrived meanwhile (an abort sent during a busy loop) must be read before the next task
   * starts. After sub-millisecond tasks that poll would cost more than the tasks, so it is skipped.
   */
  private unpolled = false;

  constructor(
    private readonly executor: Executor,
    private readonly capture: OutputCapture,
    private readonly replies: TaskReplies,
  ) {}

  push(task: EngineTask): void {
    this.queue.push(task);
    if (!this.running) void this.drain();
  }

  /**
   * Stops these tasks: one that is running is interrupted (a busy loop needs the SIGINT the
   * controller sends as well), one still queued fails with TaskAborted when its turn comes, so an
   * interrupt that reaches the engine before its task does is not lost.
   */
  abort(msgIds: readonly string[]): void {
    for (const id of msgIds) {
      if (id === this.runningId) this.executor.interrupt();
      else this.aborted.add(id);
    }
  }

  /** The msg id of the task on the engine's thread (or awaited) right now. */
  private runningId: string | undefined;

  /** Forget queued tasks (their controller is gone) and interrupt the running one. */
  clear(): void {
    this.queue.length = 0;
    this.executor.interrupt();
  }

  private markUnpolled(): void {
    if (this.unpolled) return;
    this.unpolled = true;
    setImmediate(() => (this.unpolled = false));
  }

  private async drain(): Promise<void> {
    this.running = true;
    this.replies.busy?.(true);
    try {
      let polled = performance.now(); // a drain starts from a receive: the socket was just read
      while (this.queue.length > 0) {
        // Every BATCH_MS the sockets' receive loops get their turn, so what is waiting is read.
        // (Never by asking a socket whether it holds messages: ZMQ_EVENTS takes the wake-up
        // its receive loop waits for, which then sleeps on with messages unread.)
        if (this.unpolled) {
          await new Promise<void>((r) => setImmediate(r));
          polled = performance.now();
        }
        const first = this.queue[0]!;
        if (isMsg(first, "execute_request")) await this.execute(this.queue.shift() as MessageOf<"execute_request">);
        else await this.applies(this.takeApplies());
        if (performance.now() - polled > BATCH_MS) this.markUnpolled();
      }
    } finally {
      this.running = false;
      this.replies.busy?.(false);
    }
  }

  /** Consecutive apply requests from the front; one alone when it has a time limit (vm's timeout is per call). */
  private takeApplies(): Array<MessageOf<"apply_request">> {
    const batch: Array<MessageOf<"apply_request">> = [];
    while (batch.length < BATCH_SIZE) {
      const next = this.queue[0];
      if (!next || !isMsg(next, "apply_request")) break;
      const limited = next.metadata.timeLimit !== undefined;
      if (limited && batch.length > 0) break;
      batch.push(this.queue.shift() as MessageOf<"apply_request">);
      if (limited) break;
    }
    return batch;
  }

  private async applies(tasks: Array<MessageOf<"apply_request">>): Promise<void> {
    const runnable: StartedApply[] = [];
    for (const task of tasks) {
      if (this.wasAborted(task)) continue;
      const call = task.content.call;
      const entry: StartedApply = {
        task,
        start: () => undefined,
        filename: `<apply:${call.name || "anonymous"}>`,
        started: "",
        replied: false,
      };
      try {
        const { bulk } = task.metadata;
        entry.start = this.executor.prepareApply(call, bulk ? readBulk(task.buffers, bulk) : task.buffers);
        runnable.push(entry);
      } catch (e) {
        this.fail(task, e, new Date().toISOString());
      }
    }
    if (runnable.length === 0) return;
    const opts = runOptions(runnable.length === 1 ? runnable[0]!.task : undefined);
    const { reached, unfinished } = this.executor.startAll(
      runnable.map((r) => () => {
        r.started = new Date().toISOString();
        this.runningId = r.task.header.msg_id;
        return this.capture.run(r.task.header, r.start);
      }),
      opts,
      BATCH_MS,
      (i, outcome) => {
        const r = runnable[i]!;
        if (outcome.ok) this.replyApply(r, outcome.value);
        else this.fail(r.task, this.executor.taskError(outcome.error, opts), r.started);
        r.replied = true;
      },
    );
    if (unfinished && !unfinished.ok) this.replies.resume?.();
    // Tasks the batch did not reach go back to the front, in order.
    this.queue.unshift(...runnable.slice(reached).map((r) => r.task));
    const last = runnable[reached - 1];
    if (!unfinished || !last || last.replied) return void (this.runningId = undefined);
    try {
      this.replyApply(last, await this.executor.settle(unfinished, opts));
    } catch (e) {
      this.fail(last.task, e, last.started);
    } finally {
      this.runningId = undefined;
    }
  }

  private replyApply(r: StartedApply, value: unknown): void {
    let buffers: Buffer[];
    try {
      buffers = serialize(value, "result");
    } catch (e) {
      if (!(e instanceof UnserializableError)) throw e;
      return this.fail(
        r.task,
        new TaskError("UnserializableError", e.message, [`UnserializableError: ${e.message}`]),
        r.started,
      );
    }
    this.capture.flush();
    const meta = this.replyMeta(r.started);
    const { bulkReply } = r.task.metadata;
    if (bulkReply !== undefined) {
      try {
        const stashed = stashBulk(buffers, bulkReply);
        buffers = stashed.buffers;
        if (stashed.refs.length > 0) meta.bulk = stashed.refs;
      } catch {
        // /dev/shm full or gone: the result takes the controller path
      }
    }
    const oversized = oversizedFrame(buffers);
    if (oversized)
      return this.fail(
        r.task,
        new TaskError("UnserializableError", `the result: ${oversized}`, [`UnserializableError: ${oversized}`]),
        r.started,
      );
    this.replies.send("apply_reply", { status: "ok" }, r.task.header, meta, buffers);
  }

  private async execute(task: MessageOf<"execute_request">): Promise<void> {
    const started = new Date().toISOString();
    if (this.wasAborted(task)) return;
    this.runningId = task.header.msg_id;
    try {
      const value = await this.capture.run(task.header, () =>
        this.executor.execute(task.content.code, runOptions(task)),
      );
      const count = this.executor.executionCount;
      this.capture.flush();
      if (value !== undefined && !task.content.silent) {
        this.replies.send(
          "execute_result",
          { execution_count: count, data: mimeBundle(value), metadata: {} },
          task.header,
        );
      }
      this.replies.send(
        "execute_reply",
        { status: "ok", execution_count: count, user_expressions: {} },
        task.header,
        this.replyMeta(started),
      );
    } catch (e) {
      this.fail(task, e, started);
    } finally {
      this.runningId = undefined;
    }
  }

  private wasAborted(task: EngineTask): boolean {
    if (!this.aborted.delete(task.header.msg_id)) return false;
    this.fail(
      task,
      TaskError.library("TaskAborted", `task ${task.header.msg_id} was aborted before it started`),
      new Date().toISOString(),
    );
    return true;
  }

  private fail(task: EngineTask, e: unknown, started: string): void {
    this.capture.flush();
    const err =
      e instanceof TaskError
        ? e
        : new TaskError((e as Error)?.name ?? "Error", (e as Error)?.message ?? String(e), [util.inspect(e)]);
    const { engineId, uuid } = this.replies.identity();
    const execute = isMsg(task as AnyMessage, "execute_request");
    const engineInfo = {
      engine_id: engineId,
      engine_uuid: uuid,
      method: execute ? ("execute" as const) : ("apply" as const),
    };
    const content = {
      status: "error" as const,
      ename: err.ename,
      evalue: err.message,
      traceback: err.traceback,
      engine_info: engineInfo,
      ...(err.origin ? { origin: err.origin } : {}),
    };
    if (execute) {
      this.replies.send(
        "error",
        { ename: err.ename, evalue: err.message, traceback: err.traceback, engine_info: engineInfo },
        task.header,
      );
      this.replies.send(
        "execute_reply",
        { ...content, execution_count: this.executor.executionCount },
        task.header,
        this.replyMeta(started),
      );
    } else {
      this.replies.send("apply_reply", content, task.header, this.replyMeta(started));
    }
  }

  /** Taken just before the reply is sent: the sequence numbers follow the order replies leave in. */
  private replyMeta(started: string): ReplyMetadata {
    const { engineId, uuid } = this.replies.identity();
    return { engine: uuid, engineId, started, completed: new Date().toISOString(), seq: this.replies.nextReplySeq() };
  }
}

function runOptions(task: EngineTask | undefined): RunOptions {
  const meta = task?.metadata ?? {};
  return {
    ...(typeof meta.timeLimit === "number" ? { timeLimit: meta.timeLimit } : {}),
    ...(typeof meta.sourceMap === "string" ? { sourceMap: meta.sourceMap } : {}),
    ...(typeof meta.source === "string" ? { source: meta.source } : {}),
  };
}
