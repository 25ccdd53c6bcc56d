import { test } from "node:test";
import * as vm from "node:vm";
import assert from "node:assert/strict";
import { TranspileError, transpile } from "../../../transpile/transpile";

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
