import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Records, type TaskRecord } from "../../../controller/records";
import { taskRecord } from "../../helpers/records";

const record = (msgId: string): TaskRecord => taskRecord(msgId, { submitted: Date.now() });

describe("Records", () => {
  test("a finished record stays findable, but no longer live", () => {
    const records = new Records();
    const r = record("a");
    records.add(r);
    records.finish(r, "done");
    assert.equal(records.get("a")?.state, "done");
    assert.equal(records.getLive("a"), undefined);
  });

  test("only the newest finished records are kept", () => {
    const records = new Records(3);
    for (const id of ["a", "b", "c", "d", "e"]) {
      const r = record(id);
      records.add(r);
      records.finish(r, "done");
    }
    assert.deepEqual(
      ["a", "b", "c", "d", "e"].map((id) => records.get(id) !== undefined),
      [false, false, true, true, true],
    );
    assert.equal(records.size, 3);
  });

  test("output is kept up to the limit", () => {
    const records = new Records(10, 8);
    const r = record("a");
    records.add(r);
    records.appendOutput(r, "stdout", "12345");
    records.appendOutput(r, "stdout", "67890");
    records.appendOutput(r, "stderr", "x");
    assert.equal(r.stdout, "12345678");
    assert.equal(r.stderr, "x");
  });

  test("finishing a record drops its request and its timer", () => {
    const records = new Records();
    const r = record("a");
    r.envelope = {
      identities: [],
      signature: Buffer.alloc(0),
      parts: [Buffer.alloc(0)],
    } as unknown as TaskRecord["envelope"];
    r.timer = setTimeout(() => assert.fail("the timer of a finished task fired"), 10);
    records.add(r);
    records.finish(r, "failed");
    assert.equal(r.envelope, undefined);
    assert.equal(r.timer, undefined);
  });
});
