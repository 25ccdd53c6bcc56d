/** Interrupts are per task: `ar.cancel()` stops that task wherever it is, and no other. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { CompositeError, RemoteError, TaskAborted } from "../../index";
import { clusterPerTest, until } from "../helpers/cluster";

const stopped = (e: unknown): boolean =>
  e instanceof TaskAborted || (e instanceof RemoteError && e.ename === "KeyboardInterrupt");

describe("per-task interrupts", () => {
  const clusters = clusterPerTest();

  test("cancel stops a running load-balanced busy loop, and the engine goes on", async () => {
    const t = await clusters.start(1);
    const lv = t.rc.loadBalancedView();
    const busy = lv.apply(() => {
      for (;;);
    });
    await until(async () => (await t.rc.queueStatus())["0"]?.running === busy.msgIds[0], 10_000, "the loop to run");
    await busy.cancel();
    // Interrupted while it runs, or dropped if the engine read the cancel just before starting it.
    await assert.rejects(busy.get({ timeout: 15_000 }), stopped);
    assert.equal(await lv.apply(() => "next"), "next");
  });

  test("cancel of a task queued behind another's stops it when its turn comes, and spares the other", async () => {
    const t = await clusters.start(1);
    const other = t.rc.view(0).apply(async () => {
      await new Promise((r) => setTimeout(r, 300));
      return "other finished";
    });
    const mine = t.rc.view(0).apply(() => {
      for (;;);
    });
    await mine.cancel();
    await assert.rejects(mine.get({ timeout: 15_000 }), stopped);
    assert.equal(await other, "other finished");
    assert.equal(await t.rc.view(0).apply(() => 1), 1);
  });

  test("cancel of load-balanced tasks not yet assigned aborts them", async () => {
    const t = await clusters.start(1);
    const lv = t.rc.loadBalancedView();
    const blocker = lv.apply(async () => new Promise((r) => setTimeout(r, 500)));
    const queued = lv.map(
      (x: number) => x,
      Array.from({ length: 50 }, (_, i) => i),
    );
    await queued.cancel();
    await assert.rejects(
      queued.get({ timeout: 15_000 }),
      (e: unknown) => e instanceof CompositeError && e.errors.length === 50 && e.errors.every(stopped),
    );
    await blocker;
  });

  test("imap stopped early 15 times: the tasks after it are all answered, none hit by a stray interrupt", async () => {
    // Each early stop cancels the tasks in flight; a signal meant for one of them used to land on
    // the engine's next task or cut its send queue off half-way, silencing that engine.
    const t = await clusters.start(4);
    const lv = t.rc.loadBalancedView();
    for (let round = 0; round < 15; round++) {
      const numbers = function* (): Generator<number> {
        for (let i = 0; i < 1_000_000; i++) yield i;
      };
      let seen = 0;
      for await (const _ of lv.imap((x: number) => x * x, numbers(), { maxOutstanding: 16, ordered: false }))
        if (++seen === 200) break;
      const after = lv.map(
        async (n: number) => {
          await new Promise((r) => setTimeout(r, 20));
          return n;
        },
        [3, 6],
      );
      assert.equal(await after.wait({ timeout: 20_000 }), true, `round ${round}: a task was never answered`);
      assert.deepEqual(await after, [3, 6]);
    }
  });
});
