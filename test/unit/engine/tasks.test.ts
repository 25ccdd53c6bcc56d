import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Executor } from "../../../engine/executor";
import { OutputCapture } from "../../../engine/output";
import { type EngineTask, TaskQueue, type TaskReplies } from "../../../engine/tasks";
import { packApply } from "../../../protocol/apply";
import type { ContentOf, Header, MsgType } from "../../../protocol/messages";
import { deserialize } from "../../../protocol/serialize";

interface Sent {
  type: MsgType;
  metadata?: Record<string, unknown>;
  content: Record<string, unknown>;
  parent: string;
  buffers: Buffer[];
}

/** Replies kept in order; `settled` resolves once `n` task replies have been sent. */
class FakeReplies implements TaskReplies {
  readonly sent: Sent[] = [];
  private waiter: { n: number; resolve: () => void } | undefined;

  send<T extends MsgType>(
    type: T,
    content: ContentOf<T>,
    parent: Header,
    metadata?: Record<string, unknown>,
    buffers: Buffer[] = [],
  ): void {
    const sent: Sent = { type, content: content as Record<string, unknown>, parent: parent.msg_id, buffers };
    if (metadata) sent.metadata = metadata;
    this.sent.push(sent);
    if (this.waiter && this.replies().length >= this.waiter.n) this.waiter.resolve();
  }
  identity(): { engineId: number; uuid: string } {
    return { engineId: 3, uuid: "engine-uuid" };
  }
  private seq = 0;
  nextReplySeq(): number {
    return ++this.seq;
  }
  replies(): Sent[] {
    return this.sent.filter((s) => s.type === "apply_reply" || s.type === "execute_reply");
  }
  settled(n: number): Promise<void> {
    if (this.replies().length >= n) return Promise.resolve();
    return new Promise((resolve) => (this.waiter = { n, resolve }));
  }
}

let counter = 0;
function apply(source: string, args: unknown[] = []): EngineTask {
  const packed = packApply({ kind: "source", source, name: "f" }, args);
  const msgId = `task-${++counter}`;
  return {
    identities: [],
    header: { msg_id: msgId, msg_type: "apply_request", session: "s", username: "u", date: "", version: "5.3" },
    parent_header: {},
    metadata: {},
    content: packed.content,
    buffers: packed.buffers,
  };
}

/** The capture patches this process's stdout once, as an engine's does; each test reads its own replies. */
let current = new FakeReplies();
const capture = new OutputCapture({
  stream: (parent, name, text) => current.send("stream", { name, text }, parent),
  display: () => undefined,
});
capture.install();

function setup(): { queue: TaskQueue; replies: FakeReplies } {
  current = new FakeReplies();
  return { queue: new TaskQueue(new Executor(process.cwd(), {}), capture, current), replies: current };
}

describe("engine TaskQueue", () => {
  test("tasks run one at a time in arrival order, async ones included", async () => {
    const { queue, replies } = setup();
    const tasks = [
      apply("async () => { await new Promise((r) => setTimeout(r, 20)); return 'slow'; }"),
      apply("() => 'fast'"),
      apply("(x) => x * 2", [21]),
    ];
    for (const t of tasks) queue.push(t);
    await replies.settled(3);
    assert.deepEqual(
      replies.replies().map((r) => r.parent),
      tasks.map((t) => t.header.msg_id),
    );
    assert.deepEqual(
      replies.replies().map((r) => deserialize(r.buffers)),
      ["slow", "fast", 42],
    );
  });

  test("a task's output is sent before its reply", async () => {
    const { queue, replies } = setup();
    const t = apply("() => { console.log('hello'); return 1; }");
    queue.push(t);
    await replies.settled(1);
    assert.deepEqual(
      replies.sent.filter((s) => s.parent === t.header.msg_id).map((s) => s.type),
      ["stream", "apply_reply"],
    );
  });

  test("a user error is the task's error, with the user's own name and no library origin", async () => {
    const { queue, replies } = setup();
    queue.push(apply("() => { throw new DOMException('too slow', 'TimeoutError'); }"));
    await replies.settled(1);
    const content = replies.replies()[0]!.content;
    assert.equal(content.status, "error");
    assert.equal(content.ename, "TimeoutError");
    assert.equal(content.origin, undefined);
  });

  test("an aborted task is answered with TaskAborted from the library, and the next one runs", async () => {
    const { queue, replies } = setup();
    const blocker = apply("async () => { await new Promise((r) => setTimeout(r, 30)); return 0; }");
    const doomed = apply("() => 1");
    const after = apply("() => 2");
    queue.push(blocker);
    queue.push(doomed);
    queue.push(after);
    queue.abort([doomed.header.msg_id]);
    await replies.settled(3);
    const [, aborted, ran] = replies.replies();
    assert.deepEqual([aborted!.content.ename, aborted!.content.origin], ["TaskAborted", "tsparallel"]);
    assert.equal(deserialize(ran!.buffers), 2);
  });

  test("a result that cannot be sent fails the task and names the value", async () => {
    const { queue, replies } = setup();
    queue.push(apply("() => ({ f: () => 1 })"));
    await replies.settled(1);
    const content = replies.replies()[0]!.content;
    assert.equal(content.ename, "UnserializableError");
    assert.match(String(content.evalue), /result\.f/);
  });

  test("replies are numbered in the order they leave, in a burst too", async () => {
    const { queue, replies } = setup();
    const tasks = [apply("() => 1"), apply("() => 2"), apply("async () => 3"), apply("() => 4")];
    for (const t of tasks) queue.push(t);
    await replies.settled(4);
    assert.deepEqual(
      replies.replies().map((r) => [r.parent, r.metadata?.seq]),
      tasks.map((t, i) => [t.header.msg_id, i + 1]),
    );
  });
});
