/**
 * The direct path (engine/direct.ts, client/direct.ts): DirectView tasks go from the client to
 * the engine and back without the controller, which still keeps their records, answers for
 * them when their engine dies, and stops them when asked. An engine the client cannot reach is
 * used through the controller.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as net from "node:net";
import { after, before, describe, test } from "node:test";
import { randomBytes } from "node:crypto";
import * as zmq from "zeromq";
import { Client, EngineError, RemoteError, TaskAborted } from "../../index";
import { type TestCluster, killQuietly, startCluster, until } from "../helpers/cluster";
import { Session } from "../../protocol/session";
import { connectionFile, readConnectionFile } from "../../protocol/connection";
import { CLI_PATH } from "../../paths";

/** Runs no-op tasks on engine `id` until one has gone direct (the link's handshake is done). */
async function linkUp(rc: Client, id: number): Promise<void> {
  const before = rc.directTasks;
  await until(
    async () => {
      await rc.view(id).apply(() => null);
      return rc.directTasks > before;
    },
    15_000,
    `a direct link to engine ${id}`,
  );
}

describe("direct path", () => {
  let t: TestCluster;
  before(async () => (t = await startCluster(2)));
  after(async () => t.stop());

  test("tasks go straight to the engine: output before result, and the controller keeps the records", async () => {
    await linkUp(t.rc, 0);
    const sent = t.rc.directTasks;
    const ar = t.rc.view(0).apply((x: number) => {
      console.log(`squaring ${x}`);
      return x * x;
    }, 7);
    assert.equal(await ar.get({ timeout: 15_000 }), 49);
    assert.equal(t.rc.directTasks, sent + 1, "the task went direct");
    assert.deepEqual(ar.stdout, ["squaring 7\n"]);
    const ex = t.rc.view(0).execute("const answer = 6 * 7; answer");
    await ex.get({ timeout: 15_000 });
    assert.equal(t.rc.directTasks, sent + 2);
    assert.equal(await t.rc.view(0).pull("answer"), 42);
    // Another client reads the result and output from the controller's records.
    const other = await Client.connect({ profile: t.profile, activate: false });
    try {
      const again = other.getResult(ar.msgIds[0]!);
      assert.equal(await again.get({ timeout: 15_000 }), 49);
      assert.deepEqual(again.stdout, ["squaring 7\n"]);
      assert.ok((await other.history()).includes(ar.msgIds[0]!));
    } finally {
      other.close();
    }
    // An error comes back as the DirectView's always did.
    await assert.rejects(
      t.rc.view(0).apply(() => {
        throw new TypeError("nope");
      }),
      (e: unknown) => e instanceof RemoteError && e.ename === "TypeError",
    );
  });

  test("many direct tasks keep their order per engine, on both engines", async () => {
    await linkUp(t.rc, 1);
    const results = await t.rc
      .view()
      .map(
        (x: number) => x + 1,
        Array.from({ length: 400 }, (_, i) => i),
      )
      .get({ timeout: 30_000 });
    assert.deepEqual(
      results,
      Array.from({ length: 400 }, (_, i) => i + 1),
    );
    await t.rc.view(0).execute("globalThis.seen = []");
    const pushes = Array.from({ length: 50 }, (_, i) =>
      t.rc.view(0).apply((n: number) => (globalThis as unknown as { seen: number[] }).seen.push(n), i),
    );
    await Promise.all(pushes.map((p) => p.get({ timeout: 15_000 })));
    assert.deepEqual(
      await t.rc.view(0).pull("seen"),
      Array.from({ length: 50 }, (_, i) => i),
    );
  });

  test("cancel stops a direct busy loop sent just before (the controller may not have heard of it yet)", async () => {
    await linkUp(t.rc, 0);
    const sent = t.rc.directTasks;
    const busy = t.rc.view(0).apply(() => {
      for (;;);
    });
    assert.equal(t.rc.directTasks, sent + 1);
    await busy.cancel();
    await assert.rejects(
      busy.get({ timeout: 15_000 }),
      (e: unknown) => e instanceof TaskAborted || (e instanceof RemoteError && e.ename === "KeyboardInterrupt"),
    );
    assert.equal(await t.rc.view(0).apply(() => "next"), "next");
  });

  test("an engine killed while running a direct task fails it with EngineError", async () => {
    await linkUp(t.rc, 1);
    const pid = (await t.rc.engines()).find((e) => e.id === 1)!.pid;
    const sent = t.rc.directTasks;
    const sleeper = t.rc.view(1).apply(async () => new Promise((r) => setTimeout(r, 60_000)));
    assert.equal(t.rc.directTasks, sent + 1);
    await until(async () => (await t.rc.queueStatus())["1"]?.running === sleeper.msgIds[0], 10_000, "the task to run");
    killQuietly(pid);
    await assert.rejects(sleeper.get({ timeout: 30_000 }), (e: unknown) => e instanceof EngineError);
  });
});

describe("direct path: unreachable engines and hostile traffic", () => {
  let t: TestCluster;
  let blackhole: net.Server;
  before(async () => (t = await startCluster(1)));
  after(async () => {
    blackhole?.close();
    await t.stop();
  });

  test("an engine whose direct endpoint cannot be reached works through the controller", async () => {
    // A TCP port that accepts and hangs up: no ZeroMQ handshake ever succeeds there.
    blackhole = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => blackhole.listen(0, "127.0.0.1", r));
    const port = (blackhole.address() as net.AddressInfo).port;
    const engine = spawn(process.execPath, [CLI_PATH, "engine", "--profile", t.profile], {
      env: { ...process.env, TSPARALLEL_ENGINE_DIRECT: `tcp://127.0.0.1:${port}` },
      stdio: "ignore",
    });
    try {
      await until(() => t.rc.ids.length === 2, 30_000, "the second engine");
      const id = t.rc.ids.find((i) => i !== 0)!;
      const sent = t.rc.directTasks;
      for (let i = 0; i < 20; i++) assert.equal(await t.rc.view(id).apply((x: number) => x * 2, i), i * 2);
      assert.equal(t.rc.directTasks, sent, "nothing went direct");
    } finally {
      killQuietly(engine.pid!);
    }
  });

  test("bad messages at an engine's direct socket are dropped and counted; the engine still computes", async () => {
    const info = readConnectionFile(connectionFile("client", t.profile));
    const target = (await t.rc.engines()).find((e) => e.id === 0)!;
    assert.ok(target.direct, "engine 0 has a direct socket");
    const sock = new zmq.Dealer({ linger: 0, sendHighWaterMark: 0 });
    sock.connect(target.direct.endpoint);
    const forger = new Session("not-the-key");
    const honest = new Session(info.key);
    const valid = honest.encode("stats_request", {}).frames; // well signed, but not a task
    let sent = 0;
    try {
      await sock.send(valid);
      sent++;
      for (let i = 0; i < 500; i++) {
        await sock.send(
          forger.encode("execute_request", {
            code: "1",
            silent: false,
            store_history: false,
            user_expressions: {},
            allow_stdin: false,
            stop_on_error: false,
          }).frames,
        );
        await sock.send(valid); // replayed
        await sock.send(honest.encode("queue_request", {}).frames.slice(0, 2 + (i % 3))); // truncated
        await sock.send(Array.from({ length: 1 + (i % 5) }, () => randomBytes(1 + (i % 50)))); // random
        sent += 4;
      }
      const total = async (): Promise<number> =>
        Object.values((await t.rc.stats()).engines_dropped ?? {}).reduce((a, b) => a + b, 0);
      // The socket stays open until then: closing it would discard what ZeroMQ has not sent yet.
      await until(async () => (await total()) === sent, 20_000, `${sent} drops reported`);
    } finally {
      sock.close();
    }
    assert.equal(await t.rc.view(0).apply((x: number) => x + 1, 1), 2);
  });
});

describe("direct path: an engine that dies before the controller heard of its task", () => {
  let t: TestCluster;
  let pid = 0;
  before(async () => (t = await startCluster(1, { heartbeatPeriod: 200 })));
  after(async () => {
    if (pid) killQuietly(pid);
    await t.stop();
  });

  test("the client fails it with EngineError once the engine is declared lost", async () => {
    await linkUp(t.rc, 0);
    pid = (await t.rc.engines())[0]!.pid;
    // A stopped engine forwards nothing: only the client knows of the task sent to it now.
    process.kill(pid, "SIGSTOP");
    const sent = t.rc.directTasks;
    const orphan = t.rc.view(0).apply(() => 1);
    assert.equal(t.rc.directTasks, sent + 1);
    await assert.rejects(
      orphan.get({ timeout: 30_000 }),
      (e: unknown) => e instanceof EngineError && /Engine 0 died before task/.test(e.message),
    );
  });
});
