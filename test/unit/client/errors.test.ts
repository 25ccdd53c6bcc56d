import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  CompositeError,
  DependencyError,
  EngineError,
  RemoteError,
  TaskAborted,
  TimeoutError,
  TsParallelError,
} from "../../../client/errors";
import { libraryErrorContent } from "../../../protocol/errors";
import { UnserializableError } from "../../../protocol/serialize";
import { TranspileError } from "../../../transpile/transpile";

describe("errors", () => {
  test("library errors from the wire become the library's own classes", () => {
    const cases = [
      ["EngineError", EngineError],
      ["TimeoutError", TimeoutError],
      ["TaskAborted", TaskAborted],
      ["ImpossibleDependency", DependencyError],
    ] as const;
    for (const [name, Class] of cases) {
      const e = RemoteError.fromContent(libraryErrorContent(name, "why"), 2, "apply");
      assert.ok(e instanceof Class, name);
      assert.equal(e.message, "why");
    }
  });

  test("a user's own error named TimeoutError stays a RemoteError with its name and trace", () => {
    const e = RemoteError.fromContent(
      {
        ename: "TimeoutError",
        evalue: "signal timed out",
        traceback: ["TimeoutError: signal timed out", "  at <cell>:1:7"],
      },
      1,
      "execute",
    );
    assert.ok(e instanceof RemoteError);
    assert.ok(!(e instanceof TimeoutError));
    assert.equal(e.ename, "TimeoutError");
    assert.deepEqual(e.traceback, ["TimeoutError: signal timed out", "  at <cell>:1:7"]);
  });

  test("every error the library raises has one root", () => {
    const errors = [
      new RemoteError("TypeError", "x", [], 0),
      new CompositeError([]),
      new EngineError("x"),
      new UnserializableError("a.b", "functions cannot be sent"),
      new TranspileError("x", 1, 1, ""),
    ];
    for (const e of errors) assert.ok(e instanceof TsParallelError, e.name);
  });

  test("a CompositeError shows the first errors and counts the rest", () => {
    const errors = Array.from({ length: 6 }, (_, i) => new RemoteError("ValueError", `bad ${i}`, [], i));
    const text = new CompositeError(errors).message;
    assert.match(text, /\[0:apply\]: ValueError: bad 0/);
    assert.match(text, /… 2 more exceptions …/);
  });
});
