import { test } from "node:test";
import assert from "node:assert/strict";
import { startCluster } from "../helpers/cluster";

const N = 256;

test(
  `${N} engines on this machine register with ids 0–${N - 1}, none lost while they start`,
  { timeout: 600_000 },
  async () => {
    const t = await startCluster(N, { timeout: 480_000 });
    try {
      const { rc } = t;
      assert.deepEqual(
        rc.ids,
        Array.from({ length: N }, (_, i) => i),
      );
      // The registry counts every change: N of them means no engine was declared lost and
      // registered again under a new id (what heartbeats did to CPU-starved engines before).
      const { seq, engines } = await rc.query("connection_request", {});
      assert.equal(engines.length, N);
      assert.equal(seq, N, "every change of the registry was a first registration");
      const pids = await rc.broadcastView().apply(() => process.pid);
      assert.equal(new Set(pids).size, N);
      assert.deepEqual(
        pids,
        engines.map((e) => e.pid),
      );
    } finally {
      await t.stop();
    }
  },
);
