import { test } from "node:test";
import assert from "node:assert/strict";
import { leastload, lru, pipelineDepth, plainrandom, twobin, weighted } from "../../../controller/schemes";

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
