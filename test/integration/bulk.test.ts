import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { type TestCluster, startCluster, until } from "../helpers/cluster";
import { Client } from "../../index";
import { BULK_MIN_BYTES, bulkDir } from "../../protocol/bulk";

declare const big: Float64Array, part: Float64Array;

/** Our own shared-memory files (named by this process's pid), not other runs'. */
const ours = (): string[] => {
  try {
    return fs.readdirSync(bulkDir()).filter((n) => n.startsWith(`${process.pid}-`));
  } catch {
    return [];
  }
};

describe("large buffers between a client and engines on one host go through /dev/shm", () => {
  let t: TestCluster;
  before(async () => (t = await startCluster(3)));
  after(async () => t.stop());

  test("push, pull, scatter, gather and a broadcast push arrive intact, and leave no file behind", async () => {
    const { rc } = t;
    const dv = rc.view([0, 1]);
    const data = Float64Array.from({ length: BULK_MIN_BYTES / 8 + 3 }, (_, i) => i * 0.5);
    await dv.push({ big: data });
    const back = await rc.view(0).pull<Float64Array>("big");
    assert.ok(back instanceof Float64Array && back.length === data.length && back[data.length - 1] === data.at(-1));
    const million = Float64Array.from({ length: 1_000_000 }, (_, i) => i);
    await dv.scatter("part", million);
    assert.deepEqual(await dv.apply(() => [part.length, part[0]]), [
      [500_000, 0],
      [500_000, 500_000],
    ]);
    const gathered = await dv.gather<Float64Array>("part");
    assert.equal(gathered.length, 1_000_000);
    assert.equal(gathered[999_999], 999_999);
    await rc.broadcastView([0, 1]).push({ big: million });
    assert.deepEqual(await dv.apply(() => big.length), [1_000_000, 1_000_000]);
    await until(() => ours().length === 0, 10_000, "the shared-memory files to be removed");
  });

  test("the controller records such tasks without their data: no resubmit, no result for another client", async () => {
    const { rc } = t;
    const pull = rc.view(0).pull("big");
    await pull;
    const [record] = await rc.dbQuery({ msgId: pull.msgIds[0] }, ["hasResult"]);
    assert.equal(record?.hasResult, false);
    const other = await Client.connect({ profile: t.profile, activate: false });
    try {
      await assert.rejects(other.getResult(pull.msgIds[0]!).get(), /purged|no result|not kept/i);
    } finally {
      other.close();
    }
    // Small values keep the controller path, and their records keep their results.
    const small = rc.view(0).apply(() => 42);
    await small;
    const [kept] = await rc.dbQuery({ msgId: small.msgIds[0] }, ["hasResult"]);
    assert.equal(kept?.hasResult, true);
  });

  test("an engine whose /dev/shm the client does not see gets the same data through the controller", async () => {
    const { rc } = t;
    // Engine 2 has not been used yet: without its marker the client judges it to be elsewhere.
    const uuid = (await rc.engines()).find((e) => e.id === 2)!.uuid;
    fs.rmSync(path.join(bulkDir(), `engine-${uuid}`));
    const data = Float64Array.from({ length: BULK_MIN_BYTES / 8 }, (_, i) => -i);
    const push = rc.view(2).push({ big: data });
    await push;
    const pull = rc.view(2).pull("big");
    const back = (await pull) as Float64Array;
    assert.equal(back[data.length - 1], -(data.length - 1));
    const [record] = await rc.dbQuery({ msgId: pull.msgIds[0] }, ["hasResult"]);
    assert.equal(record?.hasResult, true, "the result went through the controller, which kept it");
  });
});
