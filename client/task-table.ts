/**
 * The client's task table: every task this client awaits, by msg id, and the recently finished
 * ones (output their timers print later still reaches their AsyncResult). Messages about a task
 * are applied to it by one handler per message type (`TASK_MESSAGES`), whichever path they came
 * by: from the controller, or straight from the engine (client/direct.ts).
 */
import { type AnyMessage, type ContentOf, type Handlers, type MessageOf, dispatch } from "../protocol/messages";
import { deserialize } from "../protocol/serialize";
import { isBulkRefs, readBulk } from "../protocol/bulk";
import { RemoteError, TaskAborted, TsParallelError } from "./errors";
import { ExecuteReply } from "./execute-reply";
import { SubmittedTask } from "./task";

/** How many finished tasks keep receiving late output. */
const FINISHED_KEPT = 1000;

type TaskMessage =
  | "apply_reply"
  | "execute_reply"
  | "data_pub"
  | "stream"
  | "display_data"
  | "update_display_data"
  | "execute_result"
  | "error";

export class TaskTable {
  private readonly live = new Map<string, SubmittedTask>();
  private readonly finished = new Map<string, SubmittedTask>();

  constructor(private readonly warn: (e: unknown) => void) {}

  get size(): number {
    return this.live.size;
  }

  /** A task whose reply this client will receive, by msg id. */
  track(msgId: string, engineId: number | undefined, method: "apply" | "execute"): SubmittedTask {
    const task = new SubmittedTask(msgId, engineId, method);
    this.live.set(msgId, task);
    return task;
  }

  /** A live or recently finished task. */
  get(msgId: string): SubmittedTask | undefined {
    return this.live.get(msgId) ?? this.finished.get(msgId);
  }

  ids(): string[] {
    return [...this.live.keys()];
  }

  /** The live tasks sent to engine `id` (its direct and broadcast tasks). */
  onEngine(id: number): SubmittedTask[] {
    return [...this.live.values()].filter((t) => t.metadata.engineId === id);
  }

  /** Fails these live tasks with `error` (those that finished meanwhile are left alone). */
  fail(tasks: Iterable<SubmittedTask>, error: (t: SubmittedTask) => Error): void {
    for (const t of tasks) if (this.live.delete(t.msgId)) t.reject(error(t));
  }

  /** Fails every live task; with `forget`, the finished ones are dropped too (the client closes). */
  failAll(error: (t: SubmittedTask) => Error, forget = false): void {
    this.fail([...this.live.values()], error);
    if (forget) this.finished.clear();
  }

  /**
   * Applies a message to the task it answers (`parent`); false when it is no task of ours. A reply
   * settles the task and moves it to the finished ones.
   */
  apply(msg: AnyMessage, parent: string): boolean {
    const task = this.get(parent);
    if (!task) return false;
    dispatch(this.handlers, msg, task);
    return true;
  }

  /** What the controller's records tell of tasks another client (or kernel) submitted. */
  static adopt(tasks: readonly SubmittedTask[], records: ContentOf<"result_reply">["records"]): void {
    for (const t of tasks) {
      const r = records[t.msgId];
      if (!r) continue;
      t.method = r.msgType === "execute_request" ? "execute" : "apply";
      if (r.engineId !== null) t.metadata.engineId = r.engineId;
      if (!t.metadata.stdout) t.metadata.stdout = r.stdout;
      if (!t.metadata.stderr) t.metadata.stderr = r.stderr;
    }
  }

  private settled(task: SubmittedTask): void {
    if (!this.live.delete(task.msgId)) return;
    this.finished.set(task.msgId, task);
    if (this.finished.size > FINISHED_KEPT) this.finished.delete(this.finished.keys().next().value!);
  }

  /** A reply's timings and engine; true when it succeeded (the caller resolves), else the task is rejected. */
  private settle(task: SubmittedTask, msg: MessageOf<"apply_reply" | "execute_reply">): boolean {
    task.method = msg.header.msg_type === "execute_reply" ? "execute" : "apply";
    this.settled(task);
    const meta = msg.metadata;
    if (typeof meta.engineId === "number") task.metadata.engineId = meta.engineId;
    if (meta.started) task.metadata.started = new Date(meta.started);
    task.metadata.completed = new Date(meta.completed ?? msg.header.date);
    const c = msg.content;
    if (c.status === "ok") return true;
    if (c.status === "error") task.reject(RemoteError.fromContent(c, task.metadata.engineId, task.method));
    else task.reject(new TaskAborted(`task ${task.msgId} was aborted`, task.metadata.engineId));
    return false;
  }

  private result(task: SubmittedTask, msg: MessageOf<"apply_reply">): void {
    try {
      const bulk = msg.metadata.bulk;
      const buffers = isBulkRefs(bulk) ? readBulk(msg.buffers, bulk, true) : msg.buffers;
      task.resolve(buffers.length > 0 ? deserialize(buffers) : undefined);
    } catch (e) {
      task.reject(new TsParallelError(`could not read the result of ${task.msgId}: ${String(e)}`));
    }
  }

  private readonly handlers: Handlers<TaskMessage, [SubmittedTask]> = {
    apply_reply: (msg, task) => {
      if (this.settle(task, msg)) this.result(task, msg);
    },
    execute_reply: (msg, task) => {
      if (!this.settle(task, msg) || msg.content.status !== "ok") return;
      task.metadata.executionCount = msg.content.execution_count;
      task.resolve(new ExecuteReply(task.metadata));
    },
    data_pub: (msg, task) => {
      try {
        const data = deserialize(msg.buffers);
        if (typeof data === "object" && data !== null) task.published(data as Record<string, unknown>);
      } catch (e) {
        this.warn(e);
      }
    },
    stream: (msg, task) => task.output({ type: "stream", name: msg.content.name, text: msg.content.text }),
    display_data: (msg, task) =>
      task.output({
        type: "display_data",
        data: msg.content.data,
        metadata: msg.content.metadata,
        ...(msg.content.transient?.display_id ? { displayId: msg.content.transient.display_id } : {}),
      }),
    update_display_data: (msg, task) =>
      task.output({
        type: "update_display_data",
        data: msg.content.data,
        metadata: msg.content.metadata,
        displayId: msg.content.transient.display_id,
      }),
    execute_result: (msg, task) =>
      task.output({ type: "execute_result", executionCount: msg.content.execution_count, data: msg.content.data }),
    error: (msg, task) =>
      task.output({
        type: "error",
        ename: msg.content.ename,
        evalue: msg.content.evalue,
        traceback: msg.content.traceback,
      }),
  };
}
