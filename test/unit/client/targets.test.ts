import { test } from "node:test";
import assert from "node:assert/strict";
import { partition, resolveTargets, slice } from "../../../client/targets";

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
