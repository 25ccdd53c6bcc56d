/**
 * A private single-node Slurm for the launcher tests: munged, slurmctld and slurmd in the
 * foreground as our children, with their own key, slurm.conf, ports, state and spool in a temp
 * dir. `SLURM_CONF` points the Slurm commands at it. Teardown cancels every job, waits for Slurm
 * to end them, kills the step daemons that still hold our spool, then the daemons, by pid.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { killQuietly, until } from "./cluster";
import { type Daemon, daemon, freePort, pidsUsing, stopDaemon } from "./procs";

export interface PrivateSlurm {
  conf: string;
  env: NodeJS.ProcessEnv;
  /** squeue's job ids. */
  jobs(): string[];
  stop(): Promise<void>;
}

export function slurmAvailable(): string | undefined {
  for (const c of ["/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/sbin/munged", "/usr/bin/sbatch"])
    if (!fs.existsSync(c)) return `${c} is missing (apt-get install slurm-wlm munge)`;
  if (process.getuid?.() !== 0) return "a private slurmd must run as root";
  return undefined;
}

export async function startSlurm(dir: string): Promise<PrivateSlurm> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const d of ["munge", "state", "spool", "log"]) fs.mkdirSync(path.join(dir, d), { recursive: true, mode: 0o700 });
  const key = path.join(dir, "munge", "munge.key");
  fs.writeFileSync(key, randomBytes(1024), { mode: 0o600 });
  const socket = path.join(dir, "munge", "socket");
  const host = os.hostname();
  const [ctldPort, slurmdPort] = [await freePort(), await freePort()];
  const conf = path.join(dir, "slurm.conf");
  fs.writeFileSync(
    conf,
    [
      `ClusterName=tsp${process.pid}`,
      `SlurmctldHost=${host}(127.0.0.1)`,
      `SlurmctldPort=${ctldPort}`,
      `SlurmdPort=${slurmdPort}`,
      "SlurmUser=root",
      "SlurmdUser=root",
      "AuthType=auth/munge",
      `AuthInfo=socket=${socket}`,
      "CredType=cred/munge",
      `StateSaveLocation=${dir}/state`,
      `SlurmdSpoolDir=${dir}/spool`,
      `SlurmctldPidFile=${dir}/slurmctld.pid`,
      `SlurmdPidFile=${dir}/slurmd.pid`,
      `SlurmctldLogFile=${dir}/log/slurmctld.log`,
      `SlurmdLogFile=${dir}/log/slurmd.log`,
      "ProctrackType=proctrack/linuxproc",
      "TaskPlugin=task/none",
      "JobAcctGatherType=jobacct_gather/none",
      "AccountingStorageType=accounting_storage/none",
      "MpiDefault=none",
      "SchedulerType=sched/builtin",
      "SelectType=select/cons_tres",
      "SelectTypeParameters=CR_Core",
      "ReturnToService=2",
      // The node claims more CPUs than the machine has, so a test job of a few engines fits.
      "SlurmdParameters=config_overrides",
      `PlugStackConfig=${dir}/plugstack.conf`,
      `NodeName=${host} NodeAddr=127.0.0.1 CPUs=64 RealMemory=2000 State=UNKNOWN`,
      `PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP`,
      "",
    ].join("\n"),
  );
  fs.writeFileSync(path.join(dir, "plugstack.conf"), "");
  const env = { ...process.env, SLURM_CONF: conf };
  const daemons: Daemon[] = [];
  const stop = async (): Promise<void> => {
    const jobs = listJobs(env);
    if (jobs.length > 0) spawnSync("scancel", jobs, { env });
    await until(() => listJobs(env).length === 0, 20_000, "Slurm to end every job").catch(() => undefined);
    for (const pid of pidsUsing(path.join(dir, "spool"))) killQuietly(pid); // step daemons left over
    for (const d of daemons.reverse()) await stopDaemon(d);
  };
  try {
    daemons.push(
      daemon(
        "munged",
        "/usr/sbin/munged",
        [
          "-F",
          "-f",
          `--key-file=${key}`,
          `--socket=${socket}`,
          `--pid-file=${dir}/munge/pid`,
          `--log-file=${dir}/munge/log`,
          `--seed-file=${dir}/munge/seed`,
        ],
        path.join(dir, "log", "munged.out"),
        env,
      ),
    );
    await until(() => fs.existsSync(socket), 10_000, "munged's socket");
    daemons.push(
      daemon("slurmctld", "/usr/sbin/slurmctld", ["-D", "-c", "-f", conf], path.join(dir, "log", "slurmctld.out"), env),
    );
    daemons.push(daemon("slurmd", "/usr/sbin/slurmd", ["-D", "-f", conf], path.join(dir, "log", "slurmd.out"), env));
    await until(
      () => spawnSync("sinfo", ["-h", "-o", "%T"], { env }).stdout?.toString().trim() === "idle",
      30_000,
      "the private Slurm node to be idle",
    );
  } catch (e) {
    await stop();
    throw e;
  }
  return { conf, env, jobs: () => listJobs(env), stop };
}

function listJobs(env: NodeJS.ProcessEnv): string[] {
  const r = spawnSync("squeue", ["-h", "-o", "%i"], { env });
  return (r.stdout?.toString() ?? "").split(/\s+/).filter((s) => s.length > 0);
}
