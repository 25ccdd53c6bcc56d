/**
 * Engines as one batch job: Slurm (`--engines slurm`, sbatch + srun, scancel), or any batch system
 * from a job-script template (`--engines batch --submit qsub --cancel qdel --template FILE`, as
 * ipyparallel's BatchSystemLauncher does).
 *
 * The template's `{n}`, `{engine_cmd}`, `{profile}`, `{profile_dir}` and `{set}` are filled in,
 * and the connection info is exported in the script itself, after its header of directives: batch
 * systems carry the script to the compute node, so no shared filesystem is needed, and the key
 * never appears on a command line. The script file is readable by its owner only.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { ConnectionInfo } from "../../protocol/connection";
import type { EngineKind } from "../../protocol/messages";
import { TsParallelError } from "../../protocol/errors";
import {
  controlCharacter,
  type EngineLauncher,
  type LaunchContext,
  engineCommand,
  engineEnv,
  lastLine,
  requireCommand,
  shellQuote,
} from "./launcher";

export interface TemplateValues {
  n: number;
  engine_cmd: string;
  profile: string;
  profile_dir: string;
  set: string;
}

/**
 * Fills `{name}` placeholders; `${VAR}` and braces that name nothing are the shell's and stay.
 * Each value is one shell word (a profile folder with a space or a `$` in it stays one path);
 * `{engine_cmd}` is already a command line, quoted word by word.
 */
export function renderTemplate(template: string, values: TemplateValues): string {
  return template.replace(/(^|[^$])\{(n|engine_cmd|profile|profile_dir|set)\}/g, (_, before: string, key: string) => {
    const value = String(values[key as keyof TemplateValues]);
    return before + (key === "engine_cmd" ? value : shellQuote(value));
  });
}

/** `export NAME='value'` lines, put after the script's shebang and directive comments. */
export function withExports(script: string, vars: Record<string, string>): string {
  const lines = script.split("\n");
  let at = 0;
  while (at < lines.length && (lines[at]!.startsWith("#") || lines[at]!.trim() === "")) at++;
  const exports = Object.entries(vars).map(([k, v]) => `export ${k}=${shellQuote(v)}`);
  return [...lines.slice(0, at), ...exports, ...lines.slice(at)].join("\n");
}

/** The job script of `--engines slurm`: n tasks, one engine each, started by srun. */
export function slurmTemplate(slurmArgs: string[], output: string): string {
  const bad = slurmArgs.find((a) => controlCharacter(a) !== undefined);
  if (bad !== undefined)
    throw new TsParallelError(`--slurm-args ${JSON.stringify(bad)} holds a control character: give each on one line`);
  return [
    "#!/bin/sh",
    "#SBATCH --job-name=tsparallel-engines",
    "#SBATCH --ntasks={n}",
    `#SBATCH --output=${output}`,
    ...slurmArgs.map((a) => `#SBATCH ${shellQuote(a)}`), // sbatch reads a quoted word as one
    "srun {engine_cmd}",
    "",
  ].join("\n");
}

export interface BatchOptions {
  kind: Extract<EngineKind, "slurm" | "batch">;
  submit: string;
  cancel: string;
  /** The job-script template's text. */
  template: string;
  /** Where the job's output goes, as the user is told (the template decides for `batch`). */
  output: string;
  engineCmd?: string | undefined;
}

/** Runs a command; resolves with its output, or rejects with its last line of stderr. */
function run(
  words: string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
  timeoutMs = 30_000,
): Promise<{ stdout: string; stderr: string }> {
  const [command, ...args] = words as [string, ...string[]];
  return new Promise((resolve, reject) => {
    execFile(command, args, { env, cwd, timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error) {
        const why = lastLine(stderr) || lastLine(stdout) || error.message;
        reject(new TsParallelError(`${path.basename(command)} failed: ${why}`));
      } else resolve({ stdout, stderr });
    });
  });
}

export class BatchLauncher implements EngineLauncher {
  readonly kind: Extract<EngineKind, "slurm" | "batch">;
  readonly output: string;
  jobId: string | undefined;
  private poll: NodeJS.Timeout | undefined;
  private ended = false;
  private stopping = false;

  constructor(
    private readonly ctx: LaunchContext,
    private readonly opts: BatchOptions,
  ) {
    this.kind = opts.kind;
    this.output = opts.output;
  }

  private get env(): NodeJS.ProcessEnv {
    return { ...process.env, ...this.ctx.env };
  }

  private flag(which: "submit" | "cancel"): string | undefined {
    return this.kind === "batch" ? `--${which}` : undefined;
  }

  async start(n: number, info: ConnectionInfo): Promise<void> {
    const submit = requireCommand(this.opts.submit, this.flag("submit"));
    const rendered = renderTemplate(this.opts.template, {
      n,
      engine_cmd: engineCommand(this.opts.engineCmd).map(shellQuote).join(" "),
      profile: this.ctx.profile,
      profile_dir: this.ctx.profileDir,
      set: this.ctx.setId,
    });
    const script = withExports(rendered, { TSPARALLEL_CONNECTION_INFO: JSON.stringify(info), ...engineEnv(this.ctx) });
    const file = path.join(this.ctx.profileDir, `engines-${this.ctx.setId}.sh`);
    fs.mkdirSync(path.join(this.ctx.profileDir, "log"), { recursive: true, mode: 0o700 });
    fs.writeFileSync(file, script, { mode: 0o600 });
    const { stdout } = await run([...submit, file], this.env, this.ctx.cwd);
    // "Submitted batch job 12" (Slurm), "1234.server" (PBS): the first number is the job id.
    const id = /\d+/.exec(stdout)?.[0];
    if (!id)
      throw new TsParallelError(
        `${submit[0]} printed no job id (${JSON.stringify(lastLine(stdout))}); the job may be running: check your queue`,
      );
    this.jobId = id;
    this.ctx.log(`submitted ${n} engines as ${this.kind} job ${id} (script ${file})`);
    if (this.kind === "slurm") this.watch();
  }

  /** Slurm: notice the job's end (time limit, scancel by hand, node failure) within seconds. */
  private watch(): void {
    this.poll = setInterval(() => {
      if (this.ended || !this.jobId) return;
      run(["squeue", "-h", "-j", this.jobId, "-o", "%T"], this.env, this.ctx.cwd).then(
        ({ stdout }) => {
          if (stdout.trim() === "") this.jobEnded("the Slurm job ended");
        },
        (e: unknown) => {
          if (/Invalid job id/i.test(String(e))) this.jobEnded("the Slurm job ended");
        },
      );
    }, 2000);
  }

  private jobEnded(how: string): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.poll);
    this.ctx.onExit(this.stopping ? "stopped" : how);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.poll);
    if (!this.jobId || this.ended) return;
    await run([...requireCommand(this.opts.cancel, this.flag("cancel")), this.jobId], this.env, this.ctx.cwd).catch(
      (e: unknown) => this.ctx.log(`cancelling job ${this.jobId}: ${String(e)}`),
    );
    if (this.kind === "slurm") {
      // scancel returns at once: wait (a while) until Slurm says the job is gone.
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline) {
        const { stdout } = await run(["squeue", "-h", "-j", this.jobId, "-o", "%T"], this.env, this.ctx.cwd).catch(
          () => ({ stdout: "" }),
        );
        if (stdout.trim() === "") break;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    this.jobEnded("stopped");
  }

  async signal(signal: NodeJS.Signals): Promise<void> {
    if (!this.jobId) return;
    if (this.kind !== "slurm")
      throw new TsParallelError(
        "the batch launcher cannot signal its job's engines; use rc.sendSignal for engines on this host",
      );
    await run(["scancel", `--signal=${signal.replace(/^SIG/, "")}`, this.jobId], this.env, this.ctx.cwd);
  }
}

/** `--engines slurm`: sbatch, scancel, and the built-in template with the user's `--slurm-args`. */
export function slurmLauncher(ctx: LaunchContext, slurmArgs: string[], engineCmd?: string): BatchLauncher {
  const output = path.join(ctx.profileDir, "log", `engines-${ctx.setId}.out`);
  return new BatchLauncher(ctx, {
    kind: "slurm",
    submit: "sbatch",
    cancel: "scancel",
    template: slurmTemplate(slurmArgs, output),
    output,
    engineCmd,
  });
}
