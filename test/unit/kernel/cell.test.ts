import { strict as assert } from "node:assert";
import { test } from "node:test";
import { splitCell } from "../../../kernel/cell";

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
