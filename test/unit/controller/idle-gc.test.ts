import assert from "node:assert/strict";
import { test } from "node:test";
import { shouldCollect } from "../../../controller/idle-gc";

const MB = 1024 * 1024;

test("the idle collector runs only in a quiet tick (a trickle of alive messages allowed), and only when the heap grew enough since the last run", () => {
  const state = { handledAtTick: 100, usedAfterCollect: 20 * MB };
  assert.equal(shouldCollect(state, 100, 90 * MB), true, "quiet and 70 MB more");
  assert.equal(shouldCollect(state, 103, 90 * MB), true, "a few clients saying they are alive is still quiet");
  assert.equal(shouldCollect(state, 5100, 90 * MB), false, "thousands of messages in the tick: busy");
  assert.equal(shouldCollect(state, 100, 30 * MB), false, "quiet, but too little to gain");
});
