import { test } from "node:test";
import assert from "node:assert/strict";
import * as util from "node:util";
import * as vm from "node:vm";
import { transpile } from "../../../transpile/transpile";
import { traceback } from "../../../engine/executor";

/** Runs a cell as the engine does and returns the error it throws. */
async function failingCell(source: string): Promise<{ err: Error; map: string }> {
  const t = transpile(source);
  const err = await (vm.runInThisContext(t.code, { filename: "<cell>" }) as Promise<unknown>).then(
    () => undefined,
    (e: Error) => e,
  );
  assert.ok(err instanceof Error);
  return { err, map: t.map };
}

test("tracebacks map transpiled positions back to the TypeScript line, quoting it", async () => {
  const source =
    "const a = 1;\n\ninterface T { x: number }\nconst b: number = a + 1;\nthrow new RangeError('at line 5: ' + b)";
  const { err, map } = await failingCell(source);
  const tb = traceback(err, { sourceMap: map, source }).map((l) => util.stripVTControlCharacters(l));
  assert.equal(tb[0], "RangeError: at line 5: 2");
  assert.equal(tb[1], "----> 5 throw new RangeError('at line 5: ' + b)");
  assert.match(tb[2]!, /<cell>:5:\d+/);
});

test("tracebacks are coloured as IPython's: the error name in red, the pointer line in green", async () => {
  const source = "throw new TypeError('no')";
  const { err, map } = await failingCell(source);
  const [head, pointer] = traceback(err, { sourceMap: map, source });
  assert.equal(head, "\x1b[0;31mTypeError\x1b[0m: no");
  assert.equal(pointer, "\x1b[0;32m----> 1\x1b[0m throw new TypeError('no')");
});

test("a frame is not repeated when the cell's wrapper maps to the same place", async () => {
  const source = "function f(v: number) { return v + missing; }\nf(1)";
  const { err, map } = await failingCell(source);
  const frames = traceback(err, { sourceMap: map, source }).filter((l) => l.includes("at "));
  assert.equal(new Set(frames).size, frames.length, frames.join("\n"));
});

test("a missing free name says so, and hints at push", async () => {
  const source = "missingThing + 1";
  const { err, map } = await failingCell(source);
  const head = util.stripVTControlCharacters(traceback(err, { sourceMap: map, source })[0]!);
  assert.equal(
    head,
    "ReferenceError: missingThing is not defined on this engine; push it first (view.push({ missingThing })) or define it with execute / %px",
  );
});
