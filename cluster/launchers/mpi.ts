/**
 * Engines as one MPI job: `mpiexec -n N node tsparallel engine`. Each engine asks for its MPI
 * rank as its id (as `ipengine --mpi` does) and reads the connection info from
 * `TSPARALLEL_CONNECTION_INFO`, so the hosts mpiexec picks need no shared filesystem.
 */
import { type ChildProcess, spawn } from "node:child_process";
import type { ConnectionInfo } from "../../protocol/connection";
import { type EngineLauncher, type LaunchContext, engineCommand, engineEnv, requireCommand } from "./launcher";

export class MpiLauncher implements EngineLauncher {
  readonly kind = "mpi";
  readonly output = "the controller's log";
  private job: ChildProcess | undefined;
  private stopping = false;

  /** `mpiexec`: the mpiexec command line (default "mpiexec"), e.g. "mpiexec --hostfile hosts". */
  constructor(
    private readonly ctx: LaunchContext,
    private readonly mpiexec = "mpiexec",
    private readonly engineCmd?: string,
  ) {}

  get pid(): number | undefined {
    return this.job?.pid;
  }

  start(n: number, info: ConnectionInfo): Promise<void> {
    const [command, ...args] = requireCommand(this.mpiexec, "--mpiexec") as [string, ...string[]];
    const job = spawn(command, [...args, "-n", String(n), ...engineCommand(this.engineCmd)], {
      cwd: this.ctx.cwd,
      stdio: ["ignore", "inherit", "inherit"],
      env: {
        ...process.env,
        ...this.ctx.env,
        ...engineEnv(this.ctx),
        TSPARALLEL_CONNECTION_INFO: JSON.stringify(info),
        // OpenMPI refuses root and more ranks than cores unless told; other MPIs ignore these.
        OMPI_ALLOW_RUN_AS_ROOT: "1",
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: "1",
        OMPI_MCA_rmaps_base_oversubscribe: "1",
      },
    });
    this.job = job;
    job.on("error", (e) => this.ctx.log(`mpiexec failed to start: ${e.message}`));
    job.on("exit", (code, signal) => {
      const how = signal ? `mpiexec killed by ${signal}` : `mpiexec exited with code ${code}`;
      if (!this.stopping) this.ctx.log(`MPI engines ended: ${how}`);
      this.ctx.onExit(this.stopping ? "stopped" : how);
    });
    this.ctx.log(`started ${n} engines with ${command} (pid ${job.pid})`);
    return Promise.resolve();
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

  /** mpiexec forwards signals to every rank. */
  signal(signal: NodeJS.Signals): Promise<void> {
    this.job?.kill(signal);
    return Promise.resolve();
  }
}
