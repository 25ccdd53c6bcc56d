import assert from "node:assert/strict";
import { test } from "node:test";
import { type Requirement, ensure } from "../../../cluster/setup";

const fake = (what: string, debian: string, installed: Set<string>, pip?: string): Requirement => ({
  what,
  debian,
  ...(pip ? { pip } : {}),
  present: () => installed.has(debian),
});

test("setup: nothing to do when all is there; apt-get (as root) gets exactly what is missing, and says so", () => {
  const installed = new Set(["jupyter-server"]);
  const reqs = [fake("Jupyter Server", "jupyter-server", installed), fake("chromium", "chromium", installed)];
  const asked: string[][] = [];
  ensure(reqs, "npm test", "/usr/bin/python3", (debs) => {
    asked.push(debs);
    debs.forEach((d) => installed.add(d));
  });
  assert.deepEqual(asked, [["chromium"]]);
  ensure(reqs, "npm test", "/usr/bin/python3", () => assert.fail("nothing is missing"));
});

test("setup: without apt-get rights, one line to run; a pip-installed Jupyter also gets its pip line", () => {
  const none = new Set<string>();
  const reqs = [fake("Jupyter Server", "jupyter-server", none, "jupyter-server"), fake("chromium", "chromium", none)];
  assert.throws(
    () => ensure(reqs, "tsparallel start", "/usr/bin/python3", null),
    /^TsParallelError: tsparallel start needs Jupyter Server, chromium: run `sudo apt-get install jupyter-server chromium`$/,
  );
  assert.throws(
    () =>
      ensure(reqs, "tsparallel start", "/home/me/venv/bin/python", (debs) =>
        assert.fail(`apt-get for a venv: ${debs.join()}`),
      ),
    /run `sudo apt-get install jupyter-server chromium` \(or, for the Jupyter pip installed in \/home\/me\/venv\/bin\/python: `\/home\/me\/venv\/bin\/python -m pip install jupyter-server`\)$/,
  );
  assert.throws(
    () => ensure(reqs, "npm test", "/usr/bin/python3", () => undefined),
    /still|needs Jupyter Server, chromium/,
  );
});
