/**
 * The tsparallel kernel through a real Jupyter client (jupyter_client from Debian), against real
 * clusters: the iopub messages of every magic and option, errors, "run all" stopping at a
 * failed cell, interrupts and a cluster that is missing or stopped.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { execFile } from "node:child_process";
import { promisify, stripVTControlCharacters } from "node:util";
import { transformSync } from "esbuild";
import { Cluster } from "../../cluster/cluster";
import { PACKAGE_ROOT } from "../../paths";
import { clusterPerTest, testRoot } from "../helpers/cluster";
import { type CellResult, messages, runCells, textOf } from "../helpers/jupyter";

const clusters = clusterPerTest();

/** A folder with no node_modules anywhere above it: cells must still type-check and import tsparallel. */
function bareFolder(): string {
  const dir = fs.mkdtempSync(path.join("/tmp", "tsp-nb-"));
  assert.ok(!fs.existsSync(path.join(path.dirname(dir), "node_modules")));
  return dir;
}

/** Streamed outputs arrive in engine-finishing order: compare them as sorted lines. */
function sortedLines(text: string): string {
  return text.split("\n").filter(Boolean).sort().join("\n");
}

function ok(r: CellResult | undefined, what: string): CellResult {
  assert.ok(r, `${what}: no result`);
  assert.equal(r.reply.status, "ok", `${what}: ${r.reply.ename}: ${r.reply.evalue}\n${textOf(r)}`);
  return r;
}
function failed(r: CellResult | undefined, what: string): CellResult {
  assert.ok(r, `${what}: no result`);
  assert.equal(r.reply.status, "error", `${what} should fail:\n${textOf(r)}`);
  return r;
}

/** A cell line that waits (at most 60 s) until `file` exists. */
function waitForFile(file: string): string {
  return `for (const end = Date.now() + 60_000; !require("fs").existsSync(${JSON.stringify(file)}) && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10))`;
}

test("ordinary cells behave as tslab, with execute_input, execute_result and error messages", async () => {
  const cwd = bareFolder();
  const batchSent = path.join(cwd, "batch-sent");
  const { results: r, alive } = await runCells(
    [
      { code: "const x: number = 1 + 1;\nx * 21" },
      { code: 'console.log("hi"); import * as os from "os"; os.platform()' },
      { code: 'let bad: number = "str"' },
      { code: "const v = await Promise.resolve(7); v * 6" },
      { code: 'import { Client } from "tsparallel"; typeof Client.connect' },
      { code: 'throw new RangeError("boom")' },
      { code: "%nosuch 1" },
      { code: "%px 1 + 1" },
      // The first cell fails only once the client has sent the other two: on a loaded machine they
      // could otherwise arrive after the failure, when nothing is queued to abort.
      { batch: [`${waitForFile(batchSent)}; throw new Error("stop here")`, "1", "2"], sent_file: batchSent },
      { code: '"runs at once after an error"' },
      // Two tslab bugs the kernel mends: an earlier cell's name in a shorthand property, a top-level for await.
      { code: "const o = { x, v: 1 };\nlet y = 0; ({ y } = { y: 5 });\n[o, y]" },
      { code: "let n = 0;\nfor await (const k of [Promise.resolve(3), 4]) n += k;\nn" },
    ],
    cwd,
  );
  const first = ok(r[0], "x * 21");
  assert.deepEqual(messages(first, "execute_input")[0]?.content, {
    code: "const x: number = 1 + 1;\nx * 21",
    execution_count: 1,
  });
  assert.equal(messages(first, "execute_result")[0]?.content.data?.["text/plain"], "42");
  assert.equal(first.reply.execution_count, 1);
  const second = ok(r[1], "console.log + import");
  assert.equal(textOf(second), "hi\n'linux'\n");
  const typeError = failed(r[2], "type error");
  assert.equal(typeError.reply.ename, "TSError");
  assert.match(String(typeError.reply.evalue), /^1:5 - Type 'string' is not assignable to type 'number'/);
  assert.equal(messages(typeError, "error").length, 1);
  assert.equal(messages(ok(r[3], "top-level await"), "execute_result")[0]?.content.data?.["text/plain"], "42");
  assert.equal(textOf(ok(r[4], "import tsparallel from a bare folder")), "'function'\n");
  const thrown = failed(r[5], "throw");
  assert.deepEqual([thrown.reply.ename, thrown.reply.evalue], ["RangeError", "boom"]);
  assert.match(String(failed(r[6], "unknown magic").reply.evalue), /unknown magic %nosuch/);
  const noCluster = failed(r[7], "%px with no cluster");
  assert.match(
    String(noCluster.reply.evalue),
    /no cluster is running for profile "default".*tsparallel cluster start -n 4/,
  );
  assert.equal(noCluster.reply.evalue?.includes("\n"), false, "one line");
  assert.deepEqual(
    r[8]?.batch?.map((b) => b.status),
    ["error", "aborted", "aborted"],
  );
  assert.equal(textOf(ok(r[9], "cell right after an error")), "'runs at once after an error'\n");
  assert.equal(textOf(ok(r[10], "shorthand of an earlier cell's name")), "[ { x: 2, v: 1 }, 5 ]\n");
  assert.equal(textOf(ok(r[11], "top-level for await")), "7\n");
  assert.equal(alive, true);
});

test("local cells keep what a failed cell bound, run top-level loops on plain bindings, and show vegaLite unawaited", async () => {
  const { results: r, alive } = await runCells(
    [
      { code: 'const x1 = 5; import * as os from "node:os"; throw new Error("x")' },
      { code: "[x1, typeof os.platform]" },
      {
        code: 'import { Client } from "tsparallel"; const rc = await Client.connect({ profile: "nope", timeout: 500 })',
      },
      { code: "typeof Client.connect" },
      { code: 'let a1 = 1; throw new Error("y"); let a2 = 2;' },
      { code: "a1" },
      { code: "a2" },
      { code: "let s = 0; for (let i = 0; i < 1e6; i++) s += i;\ns" },
      { code: "s += 1; s" },
      {
        code: 'import { vegaLite } from "tsparallel";\nvegaLite({ data: { values: [{ a: 1 }] }, mark: "bar", encoding: { x: { field: "a" } } })',
      },
    ],
    bareFolder(),
  );
  failed(r[0], "a throw after two bindings");
  assert.equal(textOf(ok(r[1], "names bound before the throw")), "[ 5, 'function' ]\n");
  failed(r[2], "a failed connect");
  assert.equal(textOf(ok(r[3], "the import of the failed cell")), "'function'\n");
  failed(r[4], "a throw between two lets");
  assert.equal(textOf(ok(r[5], "bound before the throw")), "1\n");
  assert.match(String(failed(r[6], "never bound").reply.evalue), /Cannot find name 'a2'/);
  assert.equal(textOf(ok(r[7], "a top-level loop")), "499999500000\n");
  assert.equal(textOf(ok(r[8], "a later cell rebinding it")), "499999500001\n");
  const chart = messages(ok(r[9], "vegaLite without await"), "execute_result")[0]?.content.data ?? {};
  assert.match(String(chart["image/svg+xml"]), /^<svg/);
  assert.equal(alive, true);
});

test("%pxreport saves the cluster's performance report; without a file it says what to give", async () => {
  await clusters.start(2, { profile: "default" });
  const file = path.join(testRoot, `pxreport-${process.pid}.html`);
  const { results: r } = await runCells(
    [{ code: '%%px\nconsole.log("work"); 6 * 7' }, { code: `%pxreport ${file}` }, { code: "%pxreport" }],
    testRoot,
  );
  ok(r[0], "%%px");
  assert.match(
    textOf(ok(r[1], "%pxreport FILE")),
    /^Performance report of \d+ tasks written to .*pxreport-\d+\.html\n$/,
  );
  const json = /id="tsparallel-tasks">([^<]*)</.exec(fs.readFileSync(file, "utf8"))?.[1];
  const tasks = JSON.parse(json!) as Array<{ engineId: number; status: string }>;
  assert.deepEqual(
    tasks
      .filter((t) => t.status === "done")
      .map((t) => t.engineId)
      .sort(),
    [0, 1],
    "the %%px on both engines",
  );
  assert.match(String(failed(r[2], "%pxreport alone").reply.evalue), /give the report's file first/);
});

test("%px, %%px flags, %pxresult, %pxconfig, %autopx and activated views, streamed from 2 engines", async () => {
  await clusters.start(2, { profile: "default" });
  const { results: r, alive } = await runCells(
    [
      /* 0 */ { code: '%px const who: string = "engine" + (1 as number); console.log(who)' },
      /* 1 */ { code: "const here = 5\n%px const r = 2 * 3;\nhere + 1" },
      /* 2 */ { code: "%%px --targets 1\nr * 7" },
      /* 3 */ { code: '%%px -t ::2 --noblock\nawait new Promise((res) => setTimeout(res, 200)); "late"' },
      /* 4 */ { code: "%pxresult" },
      /* 5 */ { code: '%%px --no-stream --group-outputs engine\nconsole.log("e" + 1); 9' },
      /* 6 */ { code: "%pxconfig --targets 0 --verbose" },
      /* 7 */ { code: "%px 100 + 1" },
      /* 8 */ { code: "%pxconfig --targets all --no-verbose" },
      /* 9 */ { code: "%%px -o saved\n3 + 4" },
      /* 10 */ { code: "(await saved).map(String).join(' ')" },
      /* 11 */ { code: "%%px --local\nconst both: number = 11; both" },
      /* 12 */ { code: '%%px\nconst n: number = 1;\nthrow new TypeError("bad " + n)' },
      /* 13 */ { code: "%%px\nconst a: number = ;" },
      /* 14 */ { code: "%%px --bogus\n1" },
      /* 15 */ { code: "%%px -t 7\n1" },
      /* 16 */ { code: "%autopx" },
      /* 17 */ { code: "process.pid > 0" },
      /* 18 */ { code: "%autopx" },
      /* 19 */ { code: "%%px --progress-after 0\nawait new Promise((res) => setTimeout(res, 300)); 1" },
      /* 20 */ { code: '%px display.html("<b>bold</b>")' },
      /* 21 */ {
        code: 'import { Client } from "tsparallel";\nconst rc = await Client.connect();\nrc.view(1).activate("_one");',
      },
      /* 22 */ { code: '%px_one "one"' },
      /* 23 */ { code: "%px_two 1" },
      /* 24 */ {
        // The text to wait for is built at run time: the cell's own source (in execute_input)
        // must not contain it, or the interrupt could land before the engines start the loop.
        code: '%%px\ndisplay("spin" + "ning"); // a display is sent at once, before the loop blocks the engine\nwhile (true) {}',
        interrupt_on: "spinning",
      },
      /* 25 */ { code: '%px "still alive"' },
      /* 26 */ { code: '%%px -t 0\nprocess.kill(process.pid, "SIGKILL")' },
      /* 27 */ { code: '%px "after a death"' },
    ],
    testRoot,
  );
  assert.equal(sortedLines(textOf(ok(r[0], "%px line"))), "[stdout:0] engine1\n[stdout:1] engine1");
  assert.equal(textOf(ok(r[1], "local lines around %px")), "6\n");
  const t1 = textOf(ok(r[2], "--targets 1"));
  assert.match(t1, /^Out\[1:\d+\]: 42\n$/);
  assert.match(
    String(messages(ok(r[3], "--noblock"), "execute_result")[0]?.content.data?.["text/plain"]),
    /<AsyncResult\(execute\)/,
  );
  assert.match(textOf(ok(r[4], "%pxresult")), /^Out\[0:\d+\]: 'late'\n$/);
  assert.match(
    textOf(ok(r[5], "--no-stream -e")),
    /^\[stdout:0\] e1\nOut\[0:\d+\]: 9\n\[stdout:1\] e1\nOut\[1:\d+\]: 9\n$/,
  );
  assert.match(
    textOf(ok(r[7], "%pxconfig targets + verbose")),
    /^Parallel execution on engine\(s\): \[0\]\nOut\[0:\d+\]: 101\n$/,
  );
  assert.match(textOf(ok(r[10], "-o NAME")), /<ExecuteReply\[\d+\]: 7> <ExecuteReply\[\d+\]: 7>/);
  const local = ok(r[11], "--local");
  assert.match(sortedLines(textOf(local)), /^11\nOut\[0:\d+\]: 11\nOut\[1:\d+\]: 11$/);
  assert.match(textOf(local), /\n11\n$/, "the local result comes last");
  const remoteError = failed(r[12], "remote TypeError");
  assert.equal(messages(remoteError, "error").length, 2, "one error per engine, streamed");
  assert.match(textOf(remoteError), /\[0:execute\]: TypeError: bad 1\n[^]*----> 2 throw new TypeError\("bad " \+ n\)/);
  const syntax = failed(r[13], "syntax error");
  assert.equal(syntax.reply.ename, "SyntaxError");
  assert.match(textOf(syntax), /cell line 2[^]*nothing was sent to the engines/);
  assert.match(String(failed(r[14], "bad flag").reply.evalue), /^%%px: unknown option --bogus \(options: /);
  assert.match(
    String(failed(r[15], "bad target").reply.evalue),
    /no engine with id 7; registered engines are \[0, 1\]/,
  );
  assert.equal(textOf(ok(r[16], "%autopx on")), "%autopx enabled\n");
  assert.match(sortedLines(textOf(ok(r[17], "autopx cell"))), /^Out\[0:\d+\]: true\nOut\[1:\d+\]: true$/);
  assert.equal(textOf(ok(r[18], "%autopx off")), "%autopx disabled\n");
  const progress = ok(r[19], "--progress-after 0");
  assert.ok(messages(progress, "update_display_data").length > 0);
  assert.match(textOf(progress), /%px: .* 2\/2 tasks finished after/);
  const rich = ok(r[20], "display");
  assert.match(textOf(rich), /\[output:0\]\n/);
  assert.equal(messages(rich, "display_data").filter((m) => m.content.data?.["text/html"] === "<b>bold</b>").length, 2);
  assert.match(textOf(ok(r[22], "%px_one")), /^Out\[1:\d+\]: 'one'\n$/);
  assert.match(
    String(failed(r[23], "%px_two").reply.evalue),
    /%px_two has no view: activate one with view.activate\("_two"\)/,
  );
  const interrupted = failed(r[24], "interrupt");
  assert.match(textOf(interrupted), /Received Keyboard Interrupt. Sending signal SIGINT to engines...\n/);
  assert.match(textOf(interrupted), /\[\d:execute\]: KeyboardInterrupt/);
  assert.match(
    sortedLines(textOf(ok(r[25], "after the interrupt"))),
    /^Out\[0:\d+\]: 'still alive'\nOut\[1:\d+\]: 'still alive'$/,
    JSON.stringify(r.slice(24, 26)),
  );
  assert.match(textOf(failed(r[26], "engine dies")), /\[0:execute\]: EngineError/);
  assert.match(textOf(ok(r[27], "after the death")), /^Out\[1:\d+\]: 'after a death'\n$/);
  assert.equal(alive, true);
});

test("%px against a cluster that stopped says how to start one, and the kernel lives on", async () => {
  await clusters.start(2, { profile: "default" });
  const { results: r, alive } = await runCells([
    { code: "%px 1" },
    {
      code: 'import { Client } from "tsparallel";\nconst rc = await Client.connect({ activate: false });\nconst pid = rc.info.controller_pid;\nawait rc.shutdown({ hub: true });\nconst gone = () => { try { process.kill(pid, 0); return false; } catch { return true; } };\nwhile (!gone()) await new Promise((res) => setTimeout(res, 20));',
    },
    { code: "%px 2" },
    { code: '"kernel alive"' },
  ]);
  ok(r[0], "%px before the stop");
  ok(r[1], "stopping the cluster");
  const stopped = failed(r[2], "%px after the stop");
  assert.match(String(stopped.reply.evalue), /stopped .*tsparallel cluster start -n 4/);
  assert.equal(String(stopped.reply.evalue).includes("\n"), false);
  assert.equal(textOf(ok(r[3], "next cell")), "'kernel alive'\n");
  assert.equal(alive, true);
});

test("errors in local cells: engines' errors as %px shows them, and no frames or paths of ours", async () => {
  const t = await clusters.start(2);
  const { results: r } = await runCells(
    [
      {
        code: `import { Client } from "tsparallel";\nconst rc = await Client.connect({ profile: ${JSON.stringify(t.profile)} });\nawait rc.view().apply(() => { throw new RangeError("on every engine"); })`,
      },
      { code: 'function inner() { throw new TypeError("local"); }\ninner()' },
      { code: 'const first = 1;\nthrow new Error("on line 2");\nconst third = 3;' },
      { code: 'function deep(x: number) {\n  if (x > 1)\n    throw new RangeError("deep");\n  return x;\n}' },
      { code: "interface T { a: number }\nconst v: T = { a: 2 };\ndeep(v.a)" },
    ],
    bareFolder(),
  );
  const composite = failed(r[0], "a CompositeError from dview.apply");
  assert.equal(composite.reply.ename, "CompositeError");
  const tb = (composite.reply.traceback ?? []).join("\n");
  assert.match(stripVTControlCharacters(tb), /\[0:apply\]: RangeError: on every engine[\s\S]*\[1:apply\]/);
  assert.notEqual(stripVTControlCharacters(tb), tb, "coloured, as %px renders it");
  assert.doesNotMatch(tb, /dist[\\/](client|kernel)|async-result|Kernel\.drain/, "no client or kernel frames");
  const local = (failed(r[1], "a local throw").reply.traceback ?? []).join("\n");
  assert.match(local, /TypeError: local/);
  assert.match(local, /at inner/);
  assert.doesNotMatch(local, /dist[\\/]kernel|Kernel\.drain|Shell\.runLocal/, "no kernel frames");
  // The cell's own TypeScript lines, not the emitted JavaScript's.
  const line2 = (failed(r[2], "a throw on line 2").reply.traceback ?? []).join("\n");
  assert.match(line2, /^Error: on line 2\n {4}at <cell>:2:7$/);
  ok(r[3], "a function declared");
  const nested = (failed(r[4], "a throw in an earlier cell's function").reply.traceback ?? []).join("\n");
  assert.match(nested, /RangeError: deep\n {4}at (Object\.)?deep \(<cell -1>:3:11\)\n {4}at <cell>:3:\d+$/);
  assert.doesNotMatch(nested, /evalmachine|tsparallel-cell/);
});

test("the README's first example runs as it stands in a notebook cell and as a script", async () => {
  const readme = fs.readFileSync(path.join(PACKAGE_ROOT, "README.md"), "utf8");
  const block = /Start a cluster of 4 engines and use it:[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(block, "the example is in the README");
  const cluster = await Cluster.start({ n: 2, profile: "default" });
  const dir = path.join(PACKAGE_ROOT, "test-output", `readme-${process.pid}`);
  try {
    const expected = ["[ 40, 40 ]", "[ 1, 4, 9, 16, 25 ]"];
    const { results } = await runCells([{ code: block }], bareFolder());
    const cell = textOf(ok(results[0], "the README example in a cell"));
    for (const line of expected) assert.ok(cell.includes(line), `${line} in:\n${cell}`);
    fs.mkdirSync(dir, { recursive: true });
    const script = path.join(dir, "readme.mjs");
    fs.writeFileSync(script, transformSync(block, { loader: "ts", format: "esm" }).code);
    const { stdout } = await promisify(execFile)(process.execPath, [script], { timeout: 60_000 });
    for (const line of expected) assert.ok(stdout.includes(line), `${line} in:\n${stdout}`);
    const unordered = stdout.trim().split("\n").slice(-3).sort();
    assert.deepEqual(unordered, ["2", "4", "6"], "the unordered map's results, in any order");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await cluster.stop();
  }
});
