import { test } from "node:test";
import assert from "node:assert/strict";
import ts from "typescript";
import { fixForTslab } from "../../../kernel/tslab-fixes";

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
