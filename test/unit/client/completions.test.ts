import assert from "node:assert/strict";
import { test } from "node:test";
import { Completions } from "../../../client/completions";

function deferred(): { done: Promise<unknown>; resolve(): void; reject(): void } {
  let resolve!: () => void;
  let reject!: () => void;
  const done = new Promise<void>((res, rej) => ((resolve = res), (reject = () => rej(new Error("x")))));
  done.catch(() => undefined);
  return { done, resolve, reject };
}

test("tasks come out in the order they settle, failed ones too, then undefined", async () => {
  const [a, b, c] = [deferred(), deferred(), deferred()];
  const finished = new Completions([a, b, c]);
  assert.equal(finished.size, 3);
  c.resolve();
  b.reject();
  assert.equal(await finished.next(), c);
  assert.equal(await finished.next(), b);
  const waiting = finished.next();
  a.resolve();
  assert.equal(await waiting, a);
  assert.equal(await finished.next(), undefined);
  assert.equal(finished.size, 0);
});

test("tasks added later are followed; all 100,000 are taken once", async () => {
  const finished = new Completions<{ done: Promise<unknown> }>();
  const n = 100_000;
  for (let i = 0; i < n; i++) finished.add({ done: Promise.resolve(i) });
  let taken = 0;
  while (await finished.next()) taken++;
  assert.equal(taken, n);
  assert.equal(finished.size, 0);
});
