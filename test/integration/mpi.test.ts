/** Engines as one job of Debian's OpenMPI `mpiexec`: ids are ranks, and stopping the cluster ends the job. */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { test } from "node:test";
import { Cluster } from "../../index";
import { connectionFile } from "../../protocol/connection";
import { isGone, killQuietly, testRoot, until } from "../helpers/cluster";
import { ancestry } from "../helpers/procs";

test("--engines mpi: mpiexec starts 3 engines whose ids are their ranks; stop ends the job", async (t) => {
  if (!fs.existsSync("/usr/bin/mpiexec")) return t.skip("openmpi-bin is not installed (apt-get install openmpi-bin)");
  const cluster = await Cluster.start({ n: 3, profile: `mpi${process.pid}`, engines: "mpi", timeout: 90_000 });
  const engines = await cluster.client.engines();
  const pids = engines.map((e) => e.pid);
  try {
    assert.deepEqual(
      engines.map((e) => e.id),
      [0, 1, 2],
    );
    const ranks: number[] = await cluster.client.view().apply(() => Number(process.env.OMPI_COMM_WORLD_RANK));
    assert.deepEqual(ranks, [0, 1, 2], "engine id = MPI rank");
    // A communicator over all of them ranks each engine by its MPI rank.
    await cluster.client.view().comm();
    const commRanks: Array<[number, number]> = await cluster.client
      .view()
      .apply(() => [
        (globalThis as unknown as { comm: { rank: number } }).comm.rank,
        Number(process.env.OMPI_COMM_WORLD_RANK),
      ]);
    for (const [rank, mpiRank] of commRanks) assert.equal(rank, mpiRank, "comm.rank = MPI rank");
    for (const pid of pids) {
      const chain = ancestry(pid);
      assert.ok(
        chain.some((c) => c === "mpiexec" || c === "orted" || c === "prterun"),
        `engine ${pid} runs under mpiexec: ${chain.join(" < ")}`,
      );
    }
    assert.equal(
      process.env.TSPARALLEL_DIR,
      testRoot,
      "no connection file is read by the engines, but the test stays in its dir",
    );
  } finally {
    await cluster.stop();
    await until(() => pids.every(isGone), 15_000, "every MPI engine to end").catch((e: unknown) => {
      pids.forEach((p) => killQuietly(p));
      throw e;
    });
  }
});

test("--engines mpi with a missing mpiexec names the package to install", async () => {
  await assert.rejects(
    Cluster.start({
      n: 1,
      profile: `nompi${process.pid}`,
      engines: "mpi",
      mpiexec: "no-such-mpiexec",
      timeout: 20_000,
    }),
    /: no-such-mpiexec not found: install it \(on Debian: sudo apt-get install openmpi-bin\) or pass --mpiexec CMD$/,
  );
  assert.ok(!fs.existsSync(connectionFile("client", `nompi${process.pid}`)), "no controller was started");
});
