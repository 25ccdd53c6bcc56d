/** Task metadata is checked on arrival: a bad progress tag is named, a good one passes. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { malformation } from "../../../protocol/validate";

const run = (metadata: Record<string, unknown>): string | undefined =>
  malformation("execute_request", { code: "1 + 1" }, metadata);

test("a task's progress tag must be whole numbers, its size at least 1", () => {
  assert.equal(run({ progress: { id: 3, size: 500 } }), undefined);
  assert.equal(run({}), undefined, "untagged tasks are fine");
  for (const progress of [{ id: 3 }, { id: "3", size: 5 }, { id: 3, size: 0 }, { id: 1.5, size: 2 }, null, 7])
    assert.match(run({ progress }) ?? "", /^metadata\.progress must be \{id, size\}/, JSON.stringify(progress));
});
