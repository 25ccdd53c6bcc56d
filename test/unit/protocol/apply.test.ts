import { test } from "node:test";
import assert from "node:assert/strict";
import { functionSource } from "../../../protocol/apply";

test("function sources become expressions, including method shorthand", () => {
  const obj = {
    double(x: number) {
      return x * 2;
    },
    async later() {
      return await Promise.resolve(1);
    },
  };
  // eslint-disable-next-line @typescript-eslint/unbound-method -- the method's source is the point
  assert.match(functionSource(obj.double).source, /^function double\(x\)/);
  // eslint-disable-next-line @typescript-eslint/unbound-method -- the method's source is the point
  assert.match(functionSource(obj.later).source, /^async function later\(\)/);
  assert.match(functionSource((a: number) => a).source, /^\(a\) => a/);
  assert.throws(() => functionSource(Math.max), /native function max/);
});
