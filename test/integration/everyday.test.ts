/** The rest of ipyparallel's everyday surface: imap, AsyncResult helpers, published data, namespace control. */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import * as v8 from "node:v8";
import * as vm from "node:vm";
import { Cluster, RemoteError } from "../../index";
import { PACKAGE_ROOT } from "../../paths";
import { clusterPerTest, until } from "../helpers/cluster";

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

/** Engine globals these tests define. */
declare function publishData(data: Record<string, unknown>): void;

describe("everyday API", () => {
  const clusters = clusterPerTest();

  test("imap reads a 1,000,000-item generator lazily, keeps at most maxOutstanding in flight, and memory stays flat", async () => {
    const t = await clusters.start(2);
    let pulled = 0;
    let received = 0;
    let mostInFlight = 0;
    function* items(): Generator<number> {
      for (let i = 0; i < 1_000_000; i++) {
        pulled++;
        mostInFlight = Math.max(mostInFlight, pulled - received);
        yield i;
      }
    }
    const results = t.rc.loadBalancedView().imap((x: number) => x * 2, items(), { maxOutstanding: 64 });
    const heap: number[] = [];
    for await (const r of results) {
      assert.equal(r, received * 2, "in input order");
      received++;
      if (received % 5000 === 0) {
        gc();
        heap.push(process.memoryUsage().heapUsed);
      }
      if (received === 30_000) break;
    }
    assert.ok(mostInFlight <= 64 + 1, `at most 64 in flight, saw ${mostInFlight}`);
    assert.ok(pulled < 30_000 + 100, `the input was read lazily (pulled ${pulled})`);
    const growth = (Math.max(...heap.slice(1)) - heap[1]!) / 1024 / 1024;
    assert.ok(growth < 20, `client heap grew ${growth.toFixed(1)} MB over 25,000 results`);
    assert.throws(
      () => t.rc.loadBalancedView().imap((x: number) => x, [1], { maxOutstanding: 0 }),
      /maxOutstanding must be a whole number of tasks, 1 or more; got 0/,
    );
  });

  test("imap over an async iterable, unordered, and cancel", async () => {
    const t = await clusters.start(2);
    async function* slowly(): AsyncGenerator<number> {
      for (let i = 0; i < 20; i++) {
        await new Promise((r) => setTimeout(r, 1));
        yield i;
      }
    }
    const got = [];
    for await (const r of t.rc.loadBalancedView().imap((x: number) => x + 1, slowly(), { ordered: false })) got.push(r);
    assert.deepEqual(
      got.sort((a, b) => a - b),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    const endless = t.rc.loadBalancedView().imap(
      async (x: number) => new Promise((r) => setTimeout(() => r(x), 50)),
      (function* () {
        for (let i = 0; ; i++) yield i;
      })(),
      { maxOutstanding: 4 },
    );
    let n = 0;
    for await (const _ of endless) if (++n === 3) await endless.cancel();
    assert.equal(n, 3);
    assert.equal(await t.rc.loadBalancedView().apply(() => "free"), "free");
  });

  test("AsyncResult: wait with returnWhen, successful, getDict, displayOutputs", async () => {
    const t = await clusters.start(2);
    const mixed = t.rc.loadBalancedView().map(
      async (ms: number) => {
        await new Promise((r) => setTimeout(r, ms));
        if (ms === 50) throw new TypeError("fifty");
        return ms;
      },
      [1500, 50],
    );
    assert.equal(await mixed.wait({ returnWhen: "FIRST_EXCEPTION", timeout: 10_000 }), true);
    assert.equal(mixed.ready(), false, "the slow task is still running");
    assert.throws(() => mixed.successful(), /not ready/);
    await mixed.wait();
    assert.equal(mixed.successful(), false);
    await assert.rejects(mixed.wait({ returnWhen: "SOMETIMES" as never }), /returnWhen must be/);

    const each = t.rc.view().apply(() => {
      console.log(`pid ${process.pid}`);
      return process.pid;
    });
    assert.equal(await each.wait({ returnWhen: "FIRST_COMPLETED" }), true);
    const dict = await each.getDict();
    const engines = await t.rc.engines();
    assert.deepEqual(dict, Object.fromEntries(engines.map((e) => [e.id, e.pid])));
    assert.equal(each.successful(), true);
    const written: string[] = [];
    const real = process.stdout.write.bind(process.stdout);
    process.stdout.write = (chunk: string) => (written.push(String(chunk)), true);
    try {
      each.displayOutputs({ groupBy: "engine" });
    } finally {
      process.stdout.write = real;
    }
    assert.match(written.join(""), /\[stdout:0\] pid \d+\n[^]*\[stdout:1\] pid \d+/);
  });

  test("publishData reaches ar.data and onData while the task runs", async () => {
    const t = await clusters.start(1);
    const seen: unknown[] = [];
    const ar = t.rc.view(0).apply(async () => {
      for (let step = 1; step <= 3; step++) {
        publishData({ step, loss: 1 / step });
        await new Promise((r) => setTimeout(r, 20));
      }
      return "trained";
    });
    ar.onData((d) => seen.push(d.step));
    assert.equal(await ar, "trained");
    await until(() => seen.length === 3, 5000, "three published dicts");
    assert.deepEqual(seen, [1, 2, 3]);
    assert.deepEqual(ar.data, { step: 3, loss: 1 / 3 });
    await assert.rejects(
      t.rc.view(0).apply(() => publishData({ f: () => 1 })),
      (e: unknown) => e instanceof RemoteError && e.ename === "UnserializableError" && /publishData\.f/.test(e.evalue),
    );
  });

  test("rc.clear, view.require and rc.sendSignal", async () => {
    const t = await clusters.start(2);
    const dv = t.rc.view();
    await dv.execute("var leftover = 1; const alsoLeft: number = 2");
    await t.rc.clear();
    await assert.rejects(dv.pull("leftover"), /leftover is not defined/);
    await assert.rejects(dv.pull("alsoLeft"), /alsoLeft is not defined/);

    const dir = path.join(PACKAGE_ROOT, "test-output");
    fs.mkdirSync(dir, { recursive: true });
    const local = path.join(dir, `path_helper-${process.pid}.js`);
    fs.writeFileSync(local, "exports.twice = (x) => 2 * x;\n");
    try {
      const relative = `./${path.relative(process.cwd(), local)}`;
      const names = await dv.require("node:path", relative);
      assert.deepEqual(names[0], ["path", `path_helper_${process.pid}`]);
      assert.deepEqual(await t.rc.view(0).apply(() => path.basename("/a/b.txt")), "b.txt");
      await assert.rejects(
        dv.require("no-such-module-anywhere"),
        (e: unknown) => /ModuleNotFoundError/.test(String(e)) && /no-such-module-anywhere/.test(String(e)),
      );
    } finally {
      fs.rmSync(local, { force: true });
    }

    await t.rc.view(0).execute(`var usr2 = 0; process.on("SIGUSR2", () => { usr2++; });`);
    await t.rc.sendSignal("SIGUSR2", 0);
    await until(async () => (await t.rc.view(0).pull("usr2")) === 1, 5000, "the engine to get SIGUSR2");
  });

  test("Cluster.list and Cluster.fromProfile give what cluster list shows", async () => {
    const t = await clusters.start(1);
    const info = await Cluster.fromProfile(t.profile);
    assert.equal(info.running, true);
    assert.equal(info.engines, 1);
    assert.equal(info.controllerPid, t.cluster.pid);
    assert.ok((await Cluster.list()).some((c) => c.profile === t.profile));
    await assert.rejects(Cluster.fromProfile("never-started"), /no cluster for profile "never-started"/);
  });

  test("TSPARALLEL_NONINTERACTIVE=1: waitInteractive prints one final line, no live bar", async () => {
    const t = await clusters.start(1);
    const lines: string[] = [];
    const real = process.stderr.write.bind(process.stderr);
    process.env.TSPARALLEL_NONINTERACTIVE = "1";
    process.stderr.write = (chunk: string) => (lines.push(String(chunk)), true);
    try {
      await t.rc
        .view(0)
        .apply(async () => new Promise((r) => setTimeout(r, 400)))
        .waitInteractive({ interval: 20 });
    } finally {
      process.stderr.write = real;
      delete process.env.TSPARALLEL_NONINTERACTIVE;
    }
    assert.equal(lines.length, 1, lines.join("|"));
    assert.match(lines[0]!, /1\/1 tasks finished after/);
  });
});
