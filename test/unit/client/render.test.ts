import { strict as assert } from "node:assert";
import { test } from "node:test";
import type { ResultMetadata } from "../../../client/task";
import { renderOutputs, renderResult, verboseLine } from "../../../client/render";

function meta(engineId: number, stdout: string, result: string): ResultMetadata {
  return {
    msgId: `m${engineId}`,
    engineId,
    submitted: new Date(),
    started: undefined,
    completed: undefined,
    received: undefined,
    status: "ok",
    stdout,
    stderr: "",
    executeResult: undefined,
    executionCount: 3,
    data: {},
    label: undefined,
    outputs: [{ type: "execute_result", executionCount: 3, data: { "text/plain": result } }],
  };
}

test("outputs render in ipyparallel's formats and groupings", () => {
  const metas = [meta(0, "a\n", "1"), meta(1, "b\n", "2")];
  const text = (g: "type" | "engine" | "order") =>
    renderOutputs(metas, g)
      .map((r) => (r.kind === "stream" ? r.text : `${String(r.data["text/plain"])}\n`))
      .join("");
  assert.equal(text("type"), "[stdout:0] a\n[stdout:1] b\nOut[0:3]: 1\nOut[1:3]: 2\n");
  assert.equal(text("engine"), "[stdout:0] a\nOut[0:3]: 1\n[stdout:1] b\nOut[1:3]: 2\n");
  assert.equal(text("order"), "[stdout:0] a\n[stdout:1] b\nOut[0:3]: 1\nOut[1:3]: 2\n");
  assert.deepEqual(renderResult(2, 7, { "text/plain": "[\n  1\n]" })[0], {
    kind: "display",
    data: { "text/plain": "Out[2:7]:\n[\n  1\n]" },
    metadata: { engine: 2 },
  });
  assert.equal(verboseLine(true, undefined, [0, 1]), "Parallel execution on engine(s): all\n");
  assert.equal(
    verboseLine(
      false,
      "::1",
      Array.from({ length: 16 }, (_, i) => i),
    ),
    "Async parallel execution on engine(s): [0, 1, 2, 3, ..., 12, 13, 14, 15]\n",
  );
});
