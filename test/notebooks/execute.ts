/**
 * `npm run notebooks:execute [names…]`: runs the tutorials top to bottom at full scale and saves
 * them executed in notebooks/, so a reader sees every output before running anything. 005 runs
 * against a private Slurm (slurmctld + slurmd + munge) and sshd, as its tests do; its clusters,
 * like every tutorial's, live in a throw-away TSPARALLEL_DIR. The notebooks are signed afterwards
 * (Jupyter's notary), so their charts show as shipped.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { testRoot } from "../helpers/cluster";
import { PYTHON } from "../helpers/jupyter";
import { NOTEBOOKS, executeNotebook, tutorials } from "../helpers/notebooks";
import { slurmAvailable, startSlurm } from "../helpers/slurm";
import { startSshd } from "../helpers/sshd";

async function run(name: string): Promise<void> {
  const out = path.join(testRoot, `${name}.ipynb`);
  const t0 = Date.now();
  const env: NodeJS.ProcessEnv = {};
  const stops: Array<() => Promise<void>> = [];
  try {
    if (name.startsWith("005")) {
      const missing = slurmAvailable();
      if (missing) throw new Error(`005 needs Slurm: ${missing}`);
      const slurm = await startSlurm(path.join(testRoot, "slurm"));
      stops.push(() => slurm.stop());
      const sshd = await startSshd(path.join(testRoot, "sshd"), { alias: "login-node" });
      stops.push(() => sshd.stop());
      Object.assign(env, { SLURM_CONF: slurm.conf, TSP_SSH_HOST: "login-node", TSP_SSH_CONFIG: sshd.config });
    }
    Object.assign(process.env, env); // the private daemons' settings reach the kernel and its clusters
    const cells = await executeNotebook(name, out, { scale: 1, timeoutS: 900 });
    const errors = cells.flatMap((c) => c.outputs ?? []).filter((o) => o.output_type === "error");
    if (errors.length > 0) throw new Error(`${name}: ${errors.length} error outputs; not saved`);
  } finally {
    for (const stop of stops.reverse()) await stop();
  }
  fs.copyFileSync(out, path.join(NOTEBOOKS, `${name}.ipynb`));
  console.log(`${name}: executed and saved in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const names = tutorials().filter((n) => only.length === 0 || only.some((o) => n.startsWith(o)));
  for (const name of names) await run(name);
  const files = names.map((n) => path.join(NOTEBOOKS, `${n}.ipynb`));
  const signed = spawnSync(PYTHON, ["-m", "nbformat.sign", ...files], { encoding: "utf8" });
  if (signed.status !== 0) throw new Error(`signing failed: ${signed.stderr}`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`notebooks:execute: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
