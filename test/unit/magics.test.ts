/** Pure parts of the kernel and magics: splitting cells, parsing flags, rendering outputs. */
import { strict as assert } from "node:assert";
import { test } from "node:test";
import type { ResultMetadata } from "../../client/task";
import { splitCell } from "../../kernel/cell";
import {
  DEFAULT_PX,
  UsageError,
  parseCellFlags,
  parseConfigFlags,
  parseResultFlags,
  splitWords,
} from "../../magics/args";
import { renderOutputs, renderResult, verboseLine } from "../../magics/render";

test("splitCell: cell magics, line magics between local lines, plain cells", () => {
  assert.deepEqual(splitCell("%%px -t 1\nconst a = 1;\na"), [
    { kind: "cell-magic", name: "px", args: "-t 1", body: "const a = 1;\na", bodyLine: 2 },
  ]);
  assert.deepEqual(splitCell("const x = 1\n%px y = 2\nx + 1"), [
    { kind: "local", code: "const x = 1", line: 1 },
    { kind: "line-magic", name: "px", args: "y = 2", line: 2 },
    { kind: "local", code: "x + 1", line: 3 },
  ]);
  assert.deepEqual(splitCell("  %pxresult_even"), [{ kind: "line-magic", name: "pxresult_even", args: "", line: 1 }]);
  assert.deepEqual(splitCell("const pct = 5 % 2;"), [{ kind: "local", code: "const pct = 5 % 2;", line: 1 }]);
});

test("%%px flags override the defaults for one cell; %pxconfig makes new defaults", () => {
  const f = parseCellFlags("-t ::2 --noblock --no-stream -e -o ar --progress-after 0.5 --local", DEFAULT_PX);
  assert.deepEqual(f, {
    options: { ...DEFAULT_PX, targets: "::2", block: false, stream: false, groupBy: "engine", progressAfter: 0.5 },
    local: true,
    out: "ar",
  });
  assert.equal(DEFAULT_PX.block, true, "defaults untouched");
  assert.deepEqual(parseConfigFlags("--verbose --signal-on-interrupt 9", DEFAULT_PX), {
    ...DEFAULT_PX,
    verbose: true,
    signal: "SIGKILL",
  });
  assert.deepEqual(parseResultFlags("-r", DEFAULT_PX), { groupBy: "order", out: undefined });
  assert.deepEqual(splitWords(`-t "1,3" --out x`), ["-t", "1,3", "--out", "x"]);
});

test("bad flags are one-line usage errors that name the problem", () => {
  assert.throws(
    () => parseCellFlags("--nope", DEFAULT_PX),
    (e: Error) => e instanceof UsageError && /^%%px: unknown option --nope \(options: /.test(e.message),
  );
  assert.throws(
    () => parseCellFlags("--targets", DEFAULT_PX),
    /option -t(\/--targets)? needs a value|option (-t, )?--targets needs a value/,
  );
  assert.throws(() => parseCellFlags("-b -a", DEFAULT_PX), /contradict/);
  assert.throws(() => parseCellFlags("--group-outputs size", DEFAULT_PX), /engine, order or type/);
  assert.throws(() => parseCellFlags("--progress-after soon", DEFAULT_PX), /takes seconds/);
  assert.throws(() => parseCellFlags("-o 1x", DEFAULT_PX), /variable name/);
  assert.throws(() => parseConfigFlags("--local", DEFAULT_PX), /%pxconfig: unknown option --local/);
});

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
