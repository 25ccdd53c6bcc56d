import { test } from "node:test";
import assert from "node:assert/strict";
import * as vm from "node:vm";
import { transpile } from "../../../transpile/transpile";
import { traceback } from "../../../engine/executor";

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
