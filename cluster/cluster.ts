/**
 * Start and stop a local cluster from code: one controller process that starts and supervises
 * `n` engines. `start()` returns only when every engine is registered (ipyparallel users are
 * bitten when it returns early).
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import type { Socket } from "node:net";
import * as path from "node:path";
import { connectionFile, isAlive, listProfiles, profileDir, recordedControllerPid } from "../protocol/connection";
import { Client } from "../client/client";
import { TimeoutError, TsParallelError } from "../client/errors";
import { nodeFlags } from "./node-flags";
import { CLI_PATH } from "../paths";

export interface ClusterOptions {
  /** Engines to start (default: the number of CPUs). */
  n?: number;
  profile?: string;
  /** ms to wait for the controller and all engines (default 60000). */
  timeout?: number;
  /** How engines start: "local" child processes (default) or "mpi", one `mpiexec -n N` job. */
  engines?: "local" | "mpi";
  /** The mpiexec command line for `engines: "mpi"` (default "mpiexec"). */
  mpiexec?: string;
  /** Restart engines that die. */
  restartEngines?: boolean;
  /** Heartbeat period in ms (default 1000). */
  heartbeatPeriod?: number;
  /** Extra `tsparallel controller` flags, e.g. ["--scheme", "lru"]. */
  controllerArgs?: string[];
  /** Engines' working directory (default: this process's). */
  cwd?: string;
  /** Leave the controller running when this process exits. */
  detached?: boolean;
  signal?: AbortSignal;
  /** Where the controller's log goes (default: profile dir/log/controller.log). */
  logFile?: string;
}

/** What `tsparallel cluster list` shows of one profile. */
export interface ClusterInfo {
  profile: string;
  running: boolean;
  /** Registered engines; undefined when the cluster is stopped or did not answer. */
  engines: number | undefined;
  /** The pid recorded in the connection file (a stopped cluster's is stale). */
  controllerPid: number;
  connectionFile: string;
}

export class Cluster {
  private constructor(
    readonly profile: string,
    readonly process: ChildProcess,
    readonly client: Client,
    private readonly onExit: () => void,
  ) {}

  /**
   * ```ts
   * const cluster = await Cluster.start({ n: 4 });
   * const rc = cluster.client;          // connected; rc.ids is [0, 1, 2, 3]
   * await cluster.stop();
   * ```
   */
  static async start(opts: ClusterOptions = {}): Promise<Cluster> {
    const n = opts.n ?? (await import("node:os")).availableParallelism();
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`n must be a whole number of engines; got ${n}`);
    const profile = opts.profile ?? "default";
    const clientFile = connectionFile("client", profile);
    // One start per profile at a time: two racing starts would both write the connection files.
    const unlock = lockProfile(profile);
    try {
      return await Cluster.startLocked(opts, n, profile, clientFile);
    } finally {
      unlock();
    }
  }

  private static async startLocked(
    opts: ClusterOptions,
    n: number,
    profile: string,
    clientFile: string,
  ): Promise<Cluster> {
    const timeout = opts.timeout ?? 60_000;
    const existing = recordedControllerPid(clientFile);
    if (existing !== undefined && existing !== process.pid && isAlive(existing)) {
      throw new TsParallelError(
        `a cluster is already running for profile "${profile}" (controller pid ${existing}); stop it with \`tsparallel cluster stop --profile ${profile}\` or use another profile`,
      );
    }
    // The log holds users' crash output: readable by its owner only.
    const logFile = opts.logFile ?? path.join(profileDir(profile), "log", "controller.log");
    fs.mkdirSync(path.dirname(logFile), { recursive: true, mode: 0o700 });
    fs.chmodSync(path.dirname(logFile), 0o700);
    const log = fs.openSync(logFile, "a", 0o600);
    fs.fchmodSync(log, 0o600);
    const args = [
      ...nodeFlags(),
      CLI_PATH,
      "controller",
      "--profile",
      profile,
      "--engines",
      String(n),
      ...(opts.restartEngines ? ["--restart-engines"] : []),
      ...(opts.engines && opts.engines !== "local" ? ["--launcher", opts.engines] : []),
      ...(opts.mpiexec ? ["--mpiexec", opts.mpiexec] : []),
      ...(opts.heartbeatPeriod ? ["--heartbeat", String(opts.heartbeatPeriod)] : []),
      ...(opts.controllerArgs ?? []),
      ...(opts.detached ? [] : ["--exit-with-stdin"]),
    ];
    // A cluster this process owns ends with it however it ends (Ctrl-C, SIGTERM, SIGKILL): the
    // controller reads a pipe from us, and the kernel closes our end when we are gone.
    const child = spawn(process.execPath, args, {
      cwd: opts.cwd ?? process.cwd(),
      stdio: [opts.detached ? "ignore" : "pipe", log, log],
      detached: true,
    });
    fs.closeSync(log);
    (child.stdin as Socket | null)?.unref();
    const kill = (): void => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    };
    if (!opts.detached) process.once("exit", kill);
    else child.unref();
    try {
      const deadline = Date.now() + timeout;
      await waitFor(
        () => recordedControllerPid(clientFile) === child.pid,
        child,
        deadline,
        opts.signal,
        logFile,
        () => `the controller did not write ${clientFile} within ${timeout} ms; see ${logFile}`,
      );
      const client = await Client.connect({ profile, timeout: Math.max(1000, deadline - Date.now()) });
      await Promise.race([
        client.waitForEngines(n, { timeout: Math.max(1, deadline - Date.now()) }),
        exited(child).then(() =>
          Promise.reject(new TsParallelError(`the controller exited during start-up: ${whyExited(logFile)}`)),
        ),
      ]);
      return new Cluster(profile, child, client, kill);
    } catch (e) {
      kill();
      process.off("exit", kill);
      throw e;
    }
  }

  /**
   * Every profile with a connection file, running or not, as `tsparallel cluster list` shows them.
   *
   * ```ts
   * for (const c of await Cluster.list()) console.log(c.profile, c.running, c.engines);
   * ```
   */
  static async list(): Promise<ClusterInfo[]> {
    const out: ClusterInfo[] = [];
    for (const profile of listProfiles()) {
      const file = connectionFile("client", profile);
      const pid = recordedControllerPid(file);
      if (pid === undefined) continue;
      const running = isAlive(pid);
      let engines: number | undefined;
      if (running) {
        try {
          const rc = await Client.connect({ profile, timeout: 2000, activate: false });
          engines = rc.ids.length;
          rc.close();
        } catch {
          engines = undefined;
        }
      }
      out.push({ profile, running, engines, controllerPid: pid, connectionFile: file });
    }
    return out;
  }

  /**
   * The cluster of one profile as `tsparallel cluster list` shows it; throws when the profile
   * has no connection file (no cluster was ever started there).
   */
  static async fromProfile(profile = "default"): Promise<ClusterInfo> {
    const found = (await Cluster.list()).find((c) => c.profile === profile);
    if (!found)
      throw new TsParallelError(
        `no cluster for profile "${profile}" (no ${connectionFile("client", profile)}); start one with \`tsparallel cluster start -n 4 --profile ${profile}\``,
      );
    return found;
  }

  get pid(): number {
    return this.process.pid!;
  }

  /** Stops engines and controller; resolves when the controller has exited. Idempotent. */
  async stop(): Promise<void> {
    this.client.close();
    if (this.process.exitCode === null && this.process.signalCode === null) {
      const done = exited(this.process);
      this.process.kill("SIGTERM");
      const timer = setTimeout(() => this.process.kill("SIGKILL"), 10_000);
      await done;
      clearTimeout(timer);
    }
    process.off("exit", this.onExit);
  }
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => child.once("exit", () => r()));
}

/** Polls `ready` until the deadline, failing early if `child` exits or `signal` aborts. */
/** The controller's own last words in its log (its one-line error), or where to look. */
function whyExited(logFile: string): string {
  try {
    const text = fs.readFileSync(logFile, "utf8").slice(-8192);
    const line = text
      .split("\n")
      .reverse()
      .find((l) => l.startsWith("tsparallel: "));
    if (line) return `${line.slice("tsparallel: ".length)} (log: ${logFile})`;
  } catch {
    // no log: say where it would be
  }
  return `see ${logFile}`;
}

async function waitFor(
  ready: () => boolean,
  child: ChildProcess,
  deadline: number,
  signal: AbortSignal | undefined,
  logFile: string,
  message: () => string,
): Promise<void> {
  while (!ready()) {
    if (signal?.aborted) throw new TsParallelError("cluster start aborted", { cause: signal.reason });
    if (child.exitCode !== null || child.signalCode !== null)
      throw new TsParallelError(
        `the controller exited (${child.exitCode ?? child.signalCode}) before it was ready: ${whyExited(logFile)}`,
      );
    if (Date.now() > deadline) throw new TimeoutError(message());
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Takes the profile's start lock: a file created exclusively that holds this process's pid.
 * A lock whose process is gone is stale and taken over. Returns the release function.
 */
function lockProfile(profile: string): () => void {
  const file = path.join(profileDir(profile), "start.lock");
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: "wx", mode: 0o600 });
      return () => fs.rmSync(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const holder = Number(fs.readFileSync(file, "utf8").trim() || NaN);
    if (Number.isInteger(holder) && holder > 0 && isAlive(holder)) {
      throw new TsParallelError(
        `another process (pid ${holder}) is starting a cluster for profile "${profile}"; wait for it, or use another profile`,
      );
    }
    fs.rmSync(file, { force: true }); // stale: its process is gone
  }
  throw new TsParallelError(`could not take the start lock of profile "${profile}" (${file})`);
}
