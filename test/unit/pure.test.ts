import { test } from "node:test";
import assert from "node:assert/strict";
import * as vm from "node:vm";
import { partition, resolveTargets, slice } from "../../client/targets";
import { leastload, lru, pipelineDepth, plainrandom, twobin, weighted } from "../../controller/schemes";
import { TranspileError, transpile } from "../../transpile/transpile";
import { traceback } from "../../engine/executor";
import ts from "typescript";
import { fixForTslab } from "../../kernel/tslab-fixes";

test("targets: all, ids, lists, slices and negative ids", () => {
  const ids = [0, 1, 2, 3, 4];
  assert.deepEqual(resolveTargets("all", ids), { ids, scalar: false });
  assert.deepEqual(resolveTargets(2, ids), { ids: [2], scalar: true });
  assert.deepEqual(resolveTargets(-1, ids), { ids: [4], scalar: true });
  assert.deepEqual(resolveTargets([1, 3], ids).ids, [1, 3]);
  assert.deepEqual(resolveTargets("1,3", ids).ids, [1, 3]);
  assert.deepEqual(resolveTargets("::2", ids).ids, [0, 2, 4]);
  assert.deepEqual(resolveTargets("1:3", ids).ids, [1, 2]);
  assert.deepEqual(resolveTargets(":-3", ids).ids, [0, 1]);
  assert.deepEqual(resolveTargets("1::3", ids).ids, [1, 4]);
  assert.deepEqual(slice(ids, "", "", "-1"), [4, 3, 2, 1, 0]);
  assert.throws(() => resolveTargets(7, ids), /no engine with id 7; registered engines are \[0, 1, 2, 3, 4\]/);
  assert.throws(() => resolveTargets("1;2", ids), /bad target string "1;2"/);
  assert.throws(() => resolveTargets([1.5], ids), /integers/);
});

test("partition splits evenly, uneven sizes first", () => {
  assert.deepEqual(partition(10, 3), [
    [0, 4],
    [4, 7],
    [7, 10],
  ]);
  assert.deepEqual(partition(2, 4), [
    [0, 1],
    [1, 2],
    [2, 2],
    [2, 2],
  ]);
});

test("schemes pick as documented", () => {
  const loads = [3, 1, 1, 5];
  assert.equal(leastload(loads, Math.random), 1);
  assert.equal(lru(loads, Math.random), 0);
  assert.equal(
    plainrandom(loads, () => 0.99),
    3,
  );
  const seq = [0.9, 0.3];
  assert.equal(
    twobin(loads, () => seq.shift()!),
    1,
  );
  assert.equal(
    weighted([0, 100], () => 0.01),
    0,
  );
});

test("pipeline depth adapts to task length", () => {
  assert.equal(pipelineDepth(undefined, 32), 1);
  assert.equal(pipelineDepth(1000, 32), 1);
  assert.equal(pipelineDepth(0.01, 32), 32);
  assert.equal(pipelineDepth(0.5, 32), 5);
  assert.equal(pipelineDepth(0.01, 1), 1);
});

/** Runs transpiled cells in one fresh context, as an engine does. */
function runner(): (code: string) => Promise<unknown> {
  const ctx = vm.createContext({ require, setTimeout, globalThis: undefined });
  vm.runInContext("globalThis = this", ctx);
  return async (code) => ((await vm.runInContext(transpile(code).code, ctx)) as { value?: unknown } | undefined)?.value;
}

test("transpiled cells keep declarations across runs, allow top-level await, and return the last expression", async () => {
  const run = runner();
  await run("const x: number = 1");
  assert.equal(await run("x + 1"), 2);
  await run("function f(a: number): number { return a * 3 }");
  assert.equal(await run("f(2)"), 6);
  assert.equal(await run("await new Promise<number>((r) => setTimeout(() => r(5), 1))"), 5);
  await run("class P { constructor(public px: number) {} norm() { return this.px } }");
  assert.equal(await run("new P(4).norm()"), 4);
  await run('import os from "os"');
  assert.equal(await run("typeof os.cpus"), "function");
  await run("let { a, b: [c] } = { a: 1, b: [10] }");
  assert.equal(await run("a + c"), 11);
  assert.equal(await run("const r = g(); function g() { return 'hoisted' }\nr"), "hoisted");
  assert.equal(await run("enum Color { Red, Green }\nColor.Green"), 1);
  assert.equal(await run("const x: string = 're'; x"), "re");
  assert.equal(await run("let q;\nq"), undefined);
});

test("a syntax error is one line with its position; export is refused", () => {
  assert.throws(
    () => transpile("const x: number = ;"),
    (e: unknown) => e instanceof TranspileError && /line 1, column 19/.test(e.message),
  );
  assert.throws(() => transpile("export const y = 1"), /export is not supported/);
});

test("tracebacks map transpiled positions back to the TypeScript line, quoting it", async () => {
  const source =
    "const a = 1;\n\ninterface T { x: number }\nconst b: number = a + 1;\nthrow new RangeError('at line 5: ' + b)";
  const t = transpile(source);
  const err = await (vm.runInThisContext(t.code, { filename: "<cell-1>" }) as Promise<unknown>).then(
    () => undefined,
    (e: Error) => e,
  );
  assert.ok(err instanceof Error);
  const tb = traceback(err, { sourceMap: t.map, source });
  assert.equal(tb[0], "RangeError: at line 5: 2");
  assert.equal(tb[1], "  5 | throw new RangeError('at line 5: ' + b)");
  assert.match(tb[2]!, /<cell-1>:5:\d+/);
});

test("fixForTslab spells out shorthand properties and makes a cell with a top-level for await async", () => {
  const fix = (code: string): string => fixForTslab(ts, code);
  assert.equal(fix("const o = { SCALE, n: 1 };"), "const o = { SCALE: SCALE, n: 1 };");
  assert.equal(fix("({ a = 1, b } = obj);"), "({ a: a = 1, b: b } = obj);");
  assert.equal(fix("const { a, b } = obj;"), "const { a, b } = obj;", "binding patterns are left alone");
  assert.equal(
    fix("let n = 0;\nfor await (const x of xs) n += x;\nn"),
    "let n = 0;\nawait null; for await (const x of xs) n += x;\nn",
  );
  assert.equal(
    fix("outer: for await (const x of xs) continue outer;"),
    "await null; outer: for await (const x of xs) continue outer;",
  );
  assert.equal(
    fix("await f();\nfor await (const x of xs) g(x);"),
    "await f();\nfor await (const x of xs) g(x);",
    "already async",
  );
  assert.equal(
    fix("async function f() { for await (const x of xs) g(x); }"),
    "async function f() { for await (const x of xs) g(x); }",
  );
});
