/** The heart monitor on plain engine entries: silence counted in answered pings, not time. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { HeartMonitor } from "../../../controller/heart-monitor";
import type { EngineEntry } from "../../../controller/registry";
import { engineEntry } from "../../helpers/records";

const entry = (id: number, beating = true): EngineEntry => engineEntry(id, { beating });

test("an engine is lost after `misses` pings the canary answered and it did not; an exited one at once", () => {
  const heart = new HeartMonitor(3, 1000);
  const [a, b, c] = [entry(0), entry(1), entry(2)];
  const none = (): boolean => false;
  for (let seq = 1; seq <= 10; seq++) {
    heart.pinged(seq);
    heart.beat(a, seq, seq);
    if (seq <= 6) heart.beat(b, seq, seq);
    heart.canaryBeat(seq);
  }
  const lost = heart.lost([a, b, c], (e) => e === c, 10);
  assert.deepEqual(
    lost.map((l) => [l.engine.id, l.reason.split(":")[0]]),
    [
      [1, "it missed heartbeats"],
      [2, "its process 102 exited"],
    ],
  );
  // A stalled controller (no pings sent, no answers read) declares nobody lost, however long.
  heart.beat(b, 10, 10);
  assert.deepEqual(heart.lost([a, b], none, 1e9), []);
});

test("a canary that never answers does not switch the heartbeat off", () => {
  const heart = new HeartMonitor(2, 1000);
  const a = entry(0);
  for (let seq = 1; seq <= 13; seq++) heart.pinged(seq);
  assert.deepEqual(
    heart.lost([a], () => false).map((l) => l.engine.id),
    [0],
  );
});

test("an unknown live heart is asked to register again at most once a period", () => {
  const heart = new HeartMonitor(3, 1000);
  assert.ok(heart.askToRegister("x", 5000));
  assert.ok(!heart.askToRegister("x", 5500));
  assert.ok(heart.askToRegister("x", 6000));
});
