import assert from "node:assert/strict";
import { test } from "node:test";
import { exitReason } from "../../../cluster/launchers/local";

test("an engine's end is told in words: exit code, signal, or out of memory", () => {
  assert.equal(exitReason(3, null, ""), "exited with code 3");
  assert.equal(exitReason(null, "SIGKILL", "[engine 0] something\n"), "killed by SIGKILL");
  const oom =
    "\n<--- Last few GCs --->\n\nFATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\n 1: 0xb8 node::Abort()\n";
  assert.equal(
    exitReason(null, "SIGABRT", oom),
    "it ran out of memory (FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory)",
  );
  assert.equal(exitReason(null, "SIGABRT", "Assertion failed: x\n"), "killed by SIGABRT (Assertion failed: x)");
});
