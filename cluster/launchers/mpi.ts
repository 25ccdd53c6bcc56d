/**
 * Engines as one MPI job: `mpiexec -n N node tsparallel engine`, started and ended by the
 * controller. Each engine asks for its MPI rank as its id (as `ipengine --mpi` does) and reads
 * the connection info from `TSPARALLEL_CONNECTION_INFO`, so the hosts mpiexec picks need no
 * shared filesystem.
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { TsParallelError } from "../../protocol/errors";
import type { ConnectionInfo } from "../../protocol/connection";
import { CLI_PATH } from "../../paths";
import { nodeFlags } from "../node-flags";

export interface MpiOptions {
  /** The mpiexec command line, split on spaces (default "mpiexec"), e.g. "mpiexec --hostfile hosts". */
  mpiexec?: string;
  cwd: string;
  log(line: string): void;
  /** The job ended (all its engines are gone). */
  onExit(how: string): void;
}

export class MpiLauncher {
  private job: ChildProcess | undefined;
  private stopping = false;

  constructor(private readonly opts: MpiOptions) {}

  get pid(): number | undefined {
    return this.job?.pid;
  }

  /** Fails, in one line, when the mpiexec command cannot be found: before anything starts. */
  check(): void {
    const [command] = splitCommand(this.opts.mpiexec ?? "mpiexec");
    if (!command || !onPath(command))
      throw new TsParallelError(
        `${command ?? "mpiexec"} not found: install an MPI (on Debian: sudo apt-get install openmpi-bin) or pass --mpiexec CMD`,
      );
  }

  start(n: number, info: ConnectionInfo): void {
    this.check();
    const [command, ...args] = splitCommand(this.opts.mpiexec ?? "mpiexec") as [string, ...string[]];
    const job = spawn(command, [...args, "-n", String(n), process.execPath, ...nodeFlags(), CLI_PATH, "engine"], {
      cwd: this.opts.cwd,
      stdio: ["ignore", "inherit", "inherit"],
      env: {
        ...process.env,
        TSPARALLEL_CONNECTION_INFO: JSON.stringify(info),
        // OpenMPI refuses root and more ranks than cores unless told; other MPIs ignore these.
        OMPI_ALLOW_RUN_AS_ROOT: "1",
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: "1",
        OMPI_MCA_rmaps_base_oversubscribe: "1",
      },
    });
    this.job = job;
    job.on("error", (e) => this.opts.log(`mpiexec failed to start: ${e.message}`));
    job.on("exit", (code, signal) => {
      const how = signal ? `mpiexec killed by ${signal}` : `mpiexec exited with code ${code}`;
      if (!this.stopping) this.opts.log(`MPI engines ended: ${how}`);
      this.opts.onExit(how);
    });
    this.opts.log(`started ${n} engines with ${command} (pid ${job.pid})`);
  }

  /** Ends the job: SIGTERM to mpiexec (it forwards to every rank), SIGKILL after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    this.stopping = true;
    const job = this.job;
    if (!job || job.exitCode !== null || job.signalCode !== null) return;
    const exited = new Promise<void>((r) => job.once("exit", () => r()));
    job.kill("SIGTERM");
    const timer = setTimeout(() => job.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  }

  signal(signal: NodeJS.Signals): boolean {
    return this.job?.kill(signal) ?? false;
  }
}

/** "mpiexec --hostfile 'my hosts'" → ["mpiexec", "--hostfile", "my hosts"]. */
export function splitCommand(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}

function onPath(command: string): boolean {
  if (command.includes("/")) return fs.existsSync(command);
  return (process.env.PATH ?? "").split(path.delimiter).some((d) => fs.existsSync(path.join(d, command)));
}
