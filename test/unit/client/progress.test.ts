import assert from "node:assert/strict";
import { test } from "node:test";
import { RemoteError } from "../../../client/errors";
import { progressBundle, progressText } from "../../../client/progress";

const interrupted = new RemoteError("KeyboardInterrupt", "interrupted by SIGINT", [], 0, "execute");

test("progress counts finished tasks", () => {
  const ar = { progress: 3, length: 4, elapsed: 2, tasks: [{ error: undefined }] };
  assert.match(progressText(ar, "%px"), /3\/4 tasks finished after 2\.0 s$/);
});

test("interrupted and failed tasks are named, so an interrupted run does not read as finished", () => {
  const ar = {
    progress: 3,
    length: 3,
    elapsed: 1.5,
    tasks: [{ error: interrupted }, { error: interrupted }, { error: new RemoteError("TypeError", "x", [], 1) }],
  };
  assert.match(progressText(ar, "%px"), /3\/3 tasks finished \(2 interrupted, 1 failed with TypeError\) after 1\.5 s$/);
  assert.match(String(progressBundle(ar, "%px")["text/html"]), /2 interrupted, 1 failed with TypeError/);
});
