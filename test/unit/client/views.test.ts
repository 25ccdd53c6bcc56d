import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { QueueStatusReport, TaskRequestType, ViewHost } from "../../../client/host";
import { SubmittedTask } from "../../../client/task";
import { type Targets, resolveTargets } from "../../../client/targets";
import { BroadcastView, DirectView, LoadBalancedView } from "../../../client/views";
import { unpackArgs } from "../../../protocol/apply";
import type { ConnectionInfo } from "../../../protocol/connection";
import type { ContentOf, RequestMetadata } from "../../../protocol/messages";

/** A host with engines 0..n-1 that answers each apply by calling its function locally. */
class FakeHost implements ViewHost {
  readonly info = {} as ConnectionInfo;
  readonly submitted: Array<{ type: TaskRequestType; metadata: RequestMetadata; engineId: number | undefined }> = [];
  constructor(private readonly engines: number[]) {}

  engineLink(id: number): { uuid: string } | undefined {
    return this.engines.includes(id) ? { uuid: `uuid-${id}` } : undefined;
  }

  submit<T extends TaskRequestType>(
    type: T,
    content: ContentOf<T>,
    metadata: RequestMetadata,
    buffers: Buffer[],
    engineId: number | undefined,
  ): SubmittedTask {
    this.submitted.push({ type, metadata, engineId });
    const task = new SubmittedTask(
      `m${this.submitted.length}`,
      engineId,
      type === "apply_request" ? "apply" : "execute",
    );
    const call = (content as ContentOf<"apply_request">).call;
    if (call.kind === "source") {
      const f = (0, eval)(`(${call.source})`) as (...a: unknown[]) => unknown;
      task.resolve(f(...unpackArgs(buffers)));
    } else task.resolve(undefined);
    return task;
  }
  submitBroadcast<T extends TaskRequestType>(
    type: T,
    content: ContentOf<T>,
    metadata: RequestMetadata,
    buffers: Buffer[],
    ids: number[],
  ): SubmittedTask[] {
    return ids.map((id) => this.submit(type, content, metadata, buffers, id));
  }
  targetIds(spec: Targets): { ids: number[]; scalar: boolean } {
    return resolveTargets(spec, this.engines);
  }
  abort(): Promise<string[]> {
    return Promise.resolve([]);
  }
  interrupt(): Promise<void> {
    return Promise.resolve();
  }
  cancel(): Promise<{ aborted: string[]; interrupted: string[] }> {
    return Promise.resolve({ aborted: [], interrupted: [] });
  }
  queueStatus(): Promise<QueueStatusReport> {
    return Promise.resolve(Object.assign({}, { unassigned: 0 }) as QueueStatusReport);
  }
  close(): void {}
}

describe("views against a fake host", () => {
  test("LoadBalancedView has remote and parallel, as ipyparallel's decorators", async () => {
    const host = new FakeHost([0, 1]);
    const lview = new LoadBalancedView(host);
    assert.equal(await lview.remote((x: number) => x * 3)(5), 15);
    assert.deepEqual(await lview.parallel((x: number) => 10 * x * 4).map([0, 1, 2]), [0, 40, 80]);
    assert.ok(host.submitted.every((s) => s.engineId === undefined && s.metadata.route?.kind === "task"));
  });

  test("BroadcastView sends one request for all its targets, routed as a broadcast", async () => {
    const host = new FakeHost([0, 1, 2, 3]);
    const view = new BroadcastView(host, [1, 3]);
    assert.deepEqual(await view.apply((x: number) => x + 1, 41), [42, 42]);
    assert.deepEqual(
      host.submitted.map((s) => s.metadata.route),
      [
        { kind: "broadcast", targets: [1, 3] },
        { kind: "broadcast", targets: [1, 3] },
      ],
    );
    // Per-engine work stays per engine, and derived views stay broadcast views.
    host.submitted.length = 0;
    await view.map((x: number) => x, [1, 2, 3, 4]);
    assert.deepEqual(
      host.submitted.map((s) => s.metadata.route),
      [
        { kind: "direct", engine: 1 },
        { kind: "direct", engine: 3 },
      ],
    );
    assert.ok(view.with({ label: "x" }) instanceof BroadcastView);
    assert.ok(view.withTargets(0) instanceof BroadcastView);
  });

  test("DirectView.map sends one contiguous chunk per engine and joins the results in order", async () => {
    const host = new FakeHost([0, 1, 2]);
    const view = new DirectView(host, "all");
    assert.deepEqual(await view.map((x: number) => x * 10, [1, 2, 3, 4, 5, 6, 7]), [10, 20, 30, 40, 50, 60, 70]);
    assert.deepEqual(
      host.submitted.map((s) => s.engineId),
      [0, 1, 2],
    );
  });

  test("a single integer target gives a scalar; a list gives one value per engine", async () => {
    const host = new FakeHost([0, 1]);
    assert.equal(await new DirectView<true>(host, 1).apply(() => 7), 7);
    assert.deepEqual(await new DirectView(host, [0, 1]).apply(() => 7), [7, 7]);
  });

  test("a load-balanced view routes tasks through the scheduler with its flags", async () => {
    const host = new FakeHost([0, 1]);
    const view = new LoadBalancedView(host, { retries: 2, targets: [1] });
    assert.deepEqual(await view.map((x: number) => x + 1, [1, 2, 3], { chunksize: 2 }), [2, 3, 4]);
    assert.equal(host.submitted.length, 2);
    assert.deepEqual(host.submitted[0]!.metadata.route, { kind: "task", targets: [1], retries: 2 });
    assert.equal(host.submitted[0]!.engineId, undefined);
  });

  test("bad arguments are refused at the call, naming the value", () => {
    const view = new LoadBalancedView(new FakeHost([0]));
    assert.throws(
      () => view.map((x: number) => x, [1], { chunksize: 0 }),
      /chunksize must be a positive integer; got 0/,
    );
    assert.throws(() => new LoadBalancedView(new FakeHost([0]), { retries: -1 }), /retries must be a non-negative/);
  });

  test("a load-balanced view whose targets name no engine is refused, instead of waiting forever", () => {
    const host = new FakeHost([0, 1]);
    assert.throws(() => new LoadBalancedView(host, { targets: [] }), /targets: \[\] names no engine/);
    assert.throws(() => new LoadBalancedView(host, { targets: "5:" }).apply(() => 1), /names no registered engine/);
  });

  test("a negative or NaN timeout is refused at the call", async () => {
    const ar = new DirectView(new FakeHost([0]), 0).apply(() => 1);
    assert.throws(() => ar.get({ timeout: -1 }), /timeout must be a number of ms, 0 or more; got -1/);
    assert.throws(() => ar.get(NaN), /got NaN/);
    await assert.rejects(ar.wait(-5), /got -5/);
    assert.equal(await ar.get({ timeout: 1000 }), 1);
  });
});
