import assert from "node:assert/strict";
import { test } from "node:test";
import { ListeningClock } from "../../../client/listening-clock";

test("silence on time adds up to the limit and is then reported", () => {
  const clock = new ListeningClock(1000, 10_000, 0);
  let now = 0;
  for (let i = 0; i < 10; i++) assert.equal(clock.tick((now += 1000)), false);
  assert.equal(clock.tick((now += 1000)), true);
  assert.equal(clock.silent, 11_000);
});

test("a loop held for a minute counts one period, and the late tick judges nothing", () => {
  const clock = new ListeningClock(1000, 10_000, 0);
  let now = 0;
  for (let i = 0; i < 9; i++) clock.tick((now += 1000));
  assert.equal(clock.tick((now += 60_000)), false, "late: the queued heartbeats are not read yet");
  assert.equal(clock.silent, 10_000);
  clock.heard(); // the poll after the block read them
  assert.equal(clock.tick((now += 1000)), false);
  assert.equal(clock.silent, 1000);
});

test("a controller that stays silent after a block is reported one period later", () => {
  const clock = new ListeningClock(1000, 10_000, 0);
  let now = 0;
  for (let i = 0; i < 9; i++) clock.tick((now += 1000));
  clock.tick((now += 60_000));
  assert.equal(clock.tick((now += 1000)), true);
});

test("a heartbeat resets the count; a clock that went backwards adds nothing", () => {
  const clock = new ListeningClock(1000, 3000, 5000);
  clock.tick(4000);
  assert.equal(clock.silent, 0);
  clock.tick(5000);
  clock.heard();
  assert.equal(clock.silent, 0);
});
