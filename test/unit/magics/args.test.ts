import { strict as assert } from "node:assert";
import { test } from "node:test";
import {
  DEFAULT_PX,
  UsageError,
  parseCellFlags,
  parseConfigFlags,
  parseReportArgs,
  parseResultFlags,
} from "../../../magics/args";

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
  assert.deepEqual(parseCellFlags(`-t "1,3" --out x`, DEFAULT_PX).options.targets, "1,3", "quoted words stay one");
  assert.throws(
    () => parseCellFlags("-t 0 | rm", DEFAULT_PX),
    /^UsageError: %%px: the line holds the shell syntax "\|"/,
  );
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

test("%pxreport takes a file first and an optional --since date, or says what is wrong", () => {
  assert.deepEqual(parseReportArgs("out/report.html"), { file: "out/report.html", since: undefined });
  assert.deepEqual(parseReportArgs(`"my report.html" --since 2026-12-03T10:00`), {
    file: "my report.html",
    since: "2026-12-03T10:00",
  });
  assert.throws(() => parseReportArgs(""), /^UsageError: %pxreport: give the report's file first/);
  assert.throws(() => parseReportArgs("r.html --since yesterday"), /--since "yesterday" is not a date/);
  assert.throws(() => parseReportArgs("r.html --until x"), /^UsageError: %pxreport: unknown option --until/);
});
