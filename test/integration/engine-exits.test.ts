/**
 * Every way user code can end or upset its engine: process.exit, a throwing timer, a rejected
 * promise nobody awaits, output printed after a task returned, and an engine that cannot register.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { EngineError, RemoteError } from "../../index";
import { connectionFile } from "../../protocol/connection";
import { CLI_PATH } from "../../paths";
import { clusterPerTest, isGone, testRoot, until } from "../helpers/cluster";

describe("engines that end themselves or throw from timers", () => {
  const clusters = clusterPerTest();

  test("process.exit in a task ends the engine at once and fails the task with EngineError", async () => {
    const t = await clusters.start(2);
    const [pid0] = await t.pids();
    await assert.rejects(
      t.rc.view(0).apply(() => process.exit(3)),
      (e: unknown) =>
        e instanceof EngineError &&
        e.engineId === 0 &&
        /Engine 0 died while running task .* \(.*exited with code 3\)/.test(e.message),
    );
    await until(() => isGone(pid0!), 1000, "the engine process to end within 1 s");
    await until(() => !t.rc.ids.includes(0), 5000, "engine 0 to leave rc.ids");
    assert.equal(await t.rc.view(1).apply(() => 1), 1, "the other engine still works");
  });

  test("a load-balanced task with retries whose engine exits is resubmitted; --restart-engines replaces the engine", async () => {
    const t = await clusters.start(2, { restartEngines: true });
    const lv = t.rc.loadBalancedView({ retries: 1 });
    // The task ends the first engine it runs on, and succeeds on the next one.
    await t.rc.view().execute("var firstRun = true");
    const flag = path.join(testRoot, `exit-once-${process.pid}`);
    const result = await lv.apply((file: string) => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- runs on the engine, as source
      const fsm = require("node:fs") as typeof fs;
      if (!fsm.existsSync(file)) {
        fsm.writeFileSync(file, "");
        process.exit(5);
      }
      return "second try";
    }, flag);
    assert.equal(result, "second try");
    await until(() => t.rc.ids.length === 2, 20_000, "a replacement engine to register");
  });

  test("a timer that throws while its task awaits fails that task; the namespace survives", async () => {
    const t = await clusters.start(1);
    const e0 = t.rc.view(0);
    await e0.execute("var kept = 42");
    await assert.rejects(
      e0.apply(async () => {
        setTimeout(() => {
          throw new TypeError("stray timer");
        }, 10);
        await new Promise((r) => setTimeout(r, 5000));
      }),
      (e: unknown) => e instanceof RemoteError && e.ename === "TypeError" && e.evalue === "stray timer",
    );
    assert.equal(await e0.pull("kept"), 42);
  });

  test("a timer that throws after its task returned reports on that task's stderr; the engine lives", async () => {
    const t = await clusters.start(1);
    const e0 = t.rc.view(0);
    const ar = e0.apply(() => {
      setTimeout(() => {
        throw new RangeError("late throw");
      }, 20);
      return "done";
    });
    assert.equal(await ar, "done");
    await until(() => /uncaught exception after the task returned: RangeError: late throw/.test(ar.stderr[0] ?? ""));
    const rejected = e0.apply(() => {
      void Promise.reject(new Error("nobody awaits me"));
      return 1;
    });
    assert.equal(await rejected, 1);
    await until(() => /unhandled promise rejection .*nobody awaits me/.test(rejected.stderr[0] ?? ""));
    assert.equal(await e0.apply(() => 2), 2);
  });

  test("output printed after a task returned reaches that task's AsyncResult", async () => {
    const t = await clusters.start(1);
    const ar = t.rc.view(0).apply(() => {
      let n = 0;
      const timer = setInterval(() => {
        console.log(`tick ${++n}`);
        if (n === 3) clearInterval(timer);
      }, 10);
      return "started";
    });
    assert.equal(await ar, "started");
    await until(() => (ar.stdout[0] ?? "").includes("tick 3"), 5000, "the ticks after the task returned");
    assert.equal(ar.stdout[0], "tick 1\ntick 2\ntick 3\n");
  });

  test("a standalone engine that cannot register exits with status 1", async () => {
    const t = await clusters.start(0);
    const file = path.join(testRoot, `wrong-key-${process.pid}.json`);
    const info = JSON.parse(fs.readFileSync(connectionFile("engine", t.profile), "utf8")) as { key: string };
    fs.writeFileSync(file, JSON.stringify({ ...info, key: "not-the-key" }), { mode: 0o600 });
    const engine = spawn(process.execPath, [CLI_PATH, "engine", "--file", file, "--timeout", "1500"], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    engine.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => engine.once("exit", resolve));
    assert.equal(code, 1, stderr);
    assert.match(stderr, /no controller answered/);
  });

  test("an engine that runs out of memory is reported as out of memory, not as SIGABRT", async () => {
    const before = process.env.TSPARALLEL_NODE_FLAGS;
    process.env.TSPARALLEL_NODE_FLAGS = "--max-old-space-size=48";
    const t = await clusters.start(1).finally(() => {
      if (before === undefined) delete process.env.TSPARALLEL_NODE_FLAGS;
      else process.env.TSPARALLEL_NODE_FLAGS = before;
    });
    await assert.rejects(
      t.rc.view(0).apply(() => {
        const hoard: number[][] = [];
        for (;;) hoard.push(new Array<number>(100_000).fill(1));
      }),
      (e: unknown) => e instanceof EngineError && /it ran out of memory \(FATAL ERROR: .*heap/i.test(e.message),
    );
  });
});
