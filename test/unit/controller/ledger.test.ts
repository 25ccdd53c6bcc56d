/** The task ledger on plain records: order, early stops, a lost engine mid-batch, parked queries. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { TaskLedger } from "../../../controller/ledger";
import type { TaskRecord } from "../../../controller/records";
import type { EngineEntry } from "../../../controller/registry";
import type { Route } from "../../../protocol/messages";
import type { Envelope } from "../../../protocol/wire";
import { engineEntry, taskRecord } from "../../helpers/records";

const engine = (id: number): EngineEntry => engineEntry(id);

function setup(): {
  ledger: TaskLedger<string>;
  task: (id: string, route?: Route) => TaskRecord;
  end: (id: string) => void;
} {
  const live = new Map<string, TaskRecord>();
  const ledger = new TaskLedger<string>((id) => live.get(id));
  const task = (msgId: string, route: Route = { kind: "task" }): TaskRecord => {
    const r = taskRecord(msgId, { route });
    live.set(msgId, r);
    return r;
  };
  return { ledger, task, end: (id) => void live.delete(id) };
}

describe("TaskLedger", () => {
  test("an engine's queue is in the engine's order: direct tasks take the place the engine ran them at", () => {
    const { ledger, task } = setup();
    const e = engine(0);
    ledger.assign(task("a"), e);
    ledger.assign(task("b", { kind: "direct", engine: 0 }), e);
    assert.equal(e.lbLoad, 1, "only load-balanced tasks count as its load");
    // The engine ran "x" after the first task the controller sent it, before the second.
    ledger.placeDirect(task("x", { kind: "direct", engine: 0 }), e, 1);
    // And "y" before anything the controller sent.
    ledger.placeDirect(task("y", { kind: "direct", engine: 0 }), e, 0);
    // And "z" after everything (an engine that does not say: Infinity).
    ledger.placeDirect(task("z", { kind: "direct", engine: 0 }), e, Infinity);
    assert.deepEqual(ledger.queue(0), ["y", "a", "x", "b", "z"]);
    assert.equal(ledger.running(0), "y");
    assert.equal(ledger.replied(e, "y", 2)?.msgId, "y");
    assert.equal(ledger.replied(e, "a", 4)?.msgId, "a");
    assert.equal(e.lbLoad, 0);
    assert.equal(e.completed, 2);
    assert.equal(e.avgTaskMs, 2 * 0.8 + 4 * 0.2);
    assert.deepEqual(ledger.queue(0), ["x", "b", "z"]);
  });

  test("a reply for a task that already ended leaves the queue and returns nothing", () => {
    const { ledger, task, end } = setup();
    const e = engine(0);
    ledger.assign(task("a"), e);
    end("a"); // aborted meanwhile, say
    assert.equal(ledger.replied(e, "a", 1), undefined);
    assert.deepEqual(ledger.queue(0), []);
    assert.equal(e.completed, 0);
  });

  test("a stop that came before its task is kept once, and old ones give way", () => {
    const { ledger } = setup();
    ledger.stopLater("early", { running: true, signal: "SIGINT" }, 1000);
    assert.deepEqual(ledger.takeEarlyStop("early"), { running: true, signal: "SIGINT" });
    assert.equal(ledger.takeEarlyStop("early"), undefined, "taken once");
    ledger.stopLater("old", { running: false }, 0);
    ledger.stopLater("new", { running: false }, 61_000);
    assert.equal(ledger.takeEarlyStop("old"), undefined, "older than a minute: dropped");
    assert.ok(ledger.takeEarlyStop("new"));
  });

  test("a lost engine mid-batch: its live tasks come back in order, the head marked running", () => {
    const { ledger, task } = setup();
    const e = engine(3);
    for (const id of ["a", "b", "c", "d"]) ledger.assign(task(id), e);
    ledger.replied(e, "a", 1);
    const { tasks } = ledger.engineLost(e);
    assert.deepEqual(
      tasks.map((t) => [t.record.msgId, t.running]),
      [
        ["b", true],
        ["c", false],
        ["d", false],
      ],
    );
    assert.deepEqual(ledger.queue(3), [], "its queue is gone");
  });

  test("a broadcast's replies leave together once the last part is in; a replayed id is refused", () => {
    const { ledger } = setup();
    const e = Buffer.alloc(0);
    const env = (n: number): Envelope => ({
      identities: [],
      signature: Buffer.from(String(n)),
      parts: [e, e, e, e],
      buffers: [],
    });
    assert.ok(ledger.openBroadcast("g", Buffer.from("client"), 3));
    assert.ok(!ledger.openBroadcast("g", Buffer.from("client"), 3), "the same id again");
    assert.equal(ledger.broadcastReply("g", env(1)), undefined);
    assert.equal(ledger.broadcastReply("g", env(2)), undefined);
    const done = ledger.broadcastReply("g", env(3));
    assert.deepEqual(
      done?.replies.map((r) => r.signature.toString()),
      ["1", "2", "3"],
    );
    assert.ok(!ledger.isBroadcast("g"), "closed");
  });

  test("a query is parked until every engine it names has been recorded that far, or is lost", () => {
    const { ledger } = setup();
    const known = (uuid: string): boolean => uuid !== "uuid-unknown";
    ledger.recorded("uuid-0", 4);
    assert.ok(!ledger.park("nothing missing", { "uuid-0": 4 }, known), "recorded already: answered at once");
    assert.ok(!ledger.park("unknown engine", { "uuid-unknown": 9 }, known), "an unknown engine has nothing on the way");
    assert.ok(ledger.park("q1", { "uuid-0": 6, "uuid-1": 1 }, known));
    assert.ok(ledger.park("q2", { "uuid-0": 5 }, known));
    assert.deepEqual(ledger.recorded("uuid-0", 5), ["q2"], "q2 needed 5 of engine 0; q1 needs 6");
    assert.deepEqual(ledger.recorded("uuid-0", 5), [], "the same number again changes nothing");
    assert.deepEqual(ledger.recorded("uuid-0", 7), [], "q1 still waits for engine 1");
    assert.equal(ledger.parkedCount, 1);
    const { ready } = ledger.engineLost(engine(1));
    assert.deepEqual(ready, ["q1"], "engine 1 lost: nothing more will come from it");
    assert.equal(ledger.parkedCount, 0);
  });
});
