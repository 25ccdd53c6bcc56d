/**
 * An engine set's spec (`--engines KIND` and the options of that kind): parsed from flags, checked
 * in one place whoever asks (the CLI, `Cluster`, the controller), and turned into a launcher.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { EngineKind, EngineSetSpec } from "../../protocol/messages";
import { TsParallelError } from "../../protocol/errors";
import type { EngineLauncher, LaunchContext } from "./launcher";
import { LocalLauncher, type LocalOptions } from "./local";
import { MpiLauncher } from "./mpi";
import { SshLauncher, parseHosts } from "./ssh";
import { BatchLauncher, slurmLauncher } from "./batch";
import { requireCommand, splitCommand } from "./launcher";

export const ENGINE_KINDS: readonly EngineKind[] = ["local", "mpi", "ssh", "slurm", "batch"];

/** The launcher options, for `node:util` parseArgs (shared by `cluster start|engines` and `controller`). */
export const LAUNCHER_FLAGS = {
  mpiexec: { type: "string" },
  hosts: { type: "string" },
  ssh: { type: "string" },
  "slurm-args": { type: "string" },
  submit: { type: "string" },
  cancel: { type: "string" },
  template: { type: "string" },
  "engine-cmd": { type: "string" },
} as const;

type FlagValues = Partial<Record<keyof typeof LAUNCHER_FLAGS, string>>;

/** Which kind each option belongs to, for "--hosts is an option of --engines ssh". */
const OWNER: Record<keyof Omit<EngineSetSpec, "engines" | "env">, readonly EngineKind[]> = {
  mpiexec: ["mpi"],
  hosts: ["ssh"],
  ssh: ["ssh"],
  slurmArgs: ["slurm"],
  submit: ["batch"],
  cancel: ["batch"],
  template: ["batch"],
  engineCommand: ["mpi", "ssh", "slurm", "batch"],
};

const FLAG_OF: Record<keyof typeof OWNER, string> = {
  mpiexec: "--mpiexec",
  hosts: "--hosts",
  ssh: "--ssh",
  slurmArgs: "--slurm-args",
  submit: "--submit",
  cancel: "--cancel",
  template: "--template",
  engineCommand: "--engine-cmd",
};

export function engineKind(kind: string): EngineKind {
  if ((ENGINE_KINDS as readonly string[]).includes(kind)) return kind as EngineKind;
  throw new TsParallelError(`unknown --engines ${JSON.stringify(kind)}: use ${ENGINE_KINDS.join(", ")}`);
}

export function specFromFlags(kind: string, values: FlagValues): EngineSetSpec {
  const spec: EngineSetSpec = { engines: engineKind(kind) };
  if (values.mpiexec !== undefined) spec.mpiexec = values.mpiexec;
  if (values.hosts !== undefined) spec.hosts = values.hosts;
  if (values.ssh !== undefined) spec.ssh = values.ssh;
  if (values["slurm-args"] !== undefined) spec.slurmArgs = splitCommand(values["slurm-args"], "--slurm-args");
  if (values.submit !== undefined) spec.submit = values.submit;
  if (values.cancel !== undefined) spec.cancel = values.cancel;
  if (values.template !== undefined) spec.template = path.resolve(values.template);
  if (values["engine-cmd"] !== undefined) spec.engineCommand = values["engine-cmd"];
  return spec;
}

/** The flags that give `spec` back (the controller's command line). */
export function specToFlags(spec: EngineSetSpec): string[] {
  const out: string[] = [];
  for (const key of Object.keys(FLAG_OF) as (keyof typeof FLAG_OF)[]) {
    const v = spec[key];
    if (v === undefined) continue;
    out.push(FLAG_OF[key], Array.isArray(v) ? v.map((a) => (/\s/.test(a) ? `"${a}"` : a)).join(" ") : v);
  }
  return out;
}

/**
 * Throws one line when the spec cannot work here: an option of another kind, a missing one, hosts
 * that disagree with `n`, an unreadable template, or a launcher command not on PATH (the line
 * names the Debian package). Starts nothing.
 */
export function checkSpec(spec: EngineSetSpec, n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > 4096)
    throw new TsParallelError(`the engine count must be a whole number from 1 to 4096; got ${n}`);
  for (const key of Object.keys(OWNER) as (keyof typeof OWNER)[]) {
    if (spec[key] !== undefined && !OWNER[key].includes(spec.engines))
      throw new TsParallelError(
        `${FLAG_OF[key]} is an option of --engines ${OWNER[key].join("|")}, not of --engines ${spec.engines}`,
      );
  }
  if (spec.engines === "ssh") {
    if (!spec.hosts) throw new TsParallelError(`--engines ssh needs --hosts "hostA:2,hostB:4"`);
    parseHosts(spec.hosts, n);
  }
  if (spec.engines === "batch") {
    const missing = (["submit", "cancel", "template"] as const).filter((k) => !spec[k]);
    if (missing.length > 0)
      throw new TsParallelError(
        `--engines batch needs ${missing.map((k) => FLAG_OF[k]).join(", ")} (e.g. --submit qsub --cancel qdel --template job.sh)`,
      );
    try {
      fs.accessSync(spec.template!, fs.constants.R_OK);
    } catch {
      throw new TsParallelError(
        `cannot read the job-script template ${spec.template}: give a readable --template FILE`,
      );
    }
  }
  const env = { ...process.env, ...spec.env };
  switch (spec.engines) {
    case "mpi":
      return void requireCommand(spec.mpiexec ?? "mpiexec", "--mpiexec", env, "openmpi-bin");
    case "ssh":
      return void requireCommand(spec.ssh ?? "ssh", "--ssh", env, "openssh-client");
    case "slurm":
      for (const c of ["sbatch", "srun", "scancel", "squeue"]) requireCommand(c, undefined, env, "slurm-client");
      return;
    case "batch":
      requireCommand(spec.submit!, "--submit", env);
      return void requireCommand(spec.cancel!, "--cancel", env);
    case "local":
      return; // this Node and this CLI: nothing to look for
  }
}

/** The launcher for `spec`; `local` needs the controller's hooks for its child processes. */
export function createLauncher(spec: EngineSetSpec, ctx: LaunchContext, local: LocalOptions): EngineLauncher {
  switch (spec.engines) {
    case "local":
      return new LocalLauncher(ctx, local);
    case "mpi":
      return new MpiLauncher(ctx, spec.mpiexec, spec.engineCommand);
    case "ssh":
      return new SshLauncher(ctx, spec.hosts!, spec.ssh, spec.engineCommand);
    case "slurm":
      return slurmLauncher(ctx, spec.slurmArgs ?? [], spec.engineCommand);
    case "batch":
      return new BatchLauncher(ctx, {
        kind: "batch",
        submit: spec.submit!,
        cancel: spec.cancel!,
        template: fs.readFileSync(spec.template!, "utf8"),
        output: `the output file your template names (${spec.template})`,
        engineCmd: spec.engineCommand,
      });
  }
}
