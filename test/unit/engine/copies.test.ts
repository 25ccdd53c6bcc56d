/** The controller's copies of direct tasks: in order, off the reply's path, never held past their bound. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { COPY_FLUSH_MS, ControllerCopies } from "../../../engine/copies";

const frames = (n: number): Buffer[] => [Buffer.from(String(n))];
const names = (sent: Buffer[][][]): string[][] => sent.map((batch) => batch.map((m) => m[0]!.toString()));

test("copies wait for company and leave together, in order, when flushed", () => {
  const sent: Buffer[][][] = [];
  const copies = new ControllerCopies((m) => sent.push([...m]));
  copies.add(frames(1));
  copies.add(frames(2));
  assert.deepEqual(sent, [], "nothing left yet");
  copies.flush();
  copies.flush();
  assert.deepEqual(names(sent), [["1", "2"]], "one send, once");
});

test("a copy older than the bound leaves with the next one, even while the thread is held", () => {
  const sent: Buffer[][][] = [];
  const copies = new ControllerCopies((m) => sent.push([...m]));
  copies.add(frames(1));
  const until = performance.now() + COPY_FLUSH_MS + 1;
  while (performance.now() < until); // a task holding the thread: no timer can fire
  copies.add(frames(2));
  assert.deepEqual(names(sent), [["1", "2"]]);
});

test("a lone copy leaves on its own within the bound", async () => {
  const sent: Buffer[][][] = [];
  const copies = new ControllerCopies((m) => sent.push([...m]));
  copies.add(frames(1));
  const deadline = Date.now() + 5000;
  while (sent.length === 0 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
  assert.deepEqual(names(sent), [["1"]]);
});
