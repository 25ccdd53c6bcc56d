/**
 * Start and stop a cluster from code: one controller process on this host, and engine sets
 * started through a launcher (local processes, MPI, ssh, Slurm, a batch system). `start()` and
 * `addEngines()` return only when every engine is registered (ipyparallel users are bitten when
 * it returns early).
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import type { Socket } from "node:net";
import * as path from "node:path";
import {
  connectionFile,
  isAlive,
  listProfiles,
  profileDir,
  recordedControllerPid,
  signalProcess,
} from "../protocol/connection";
import { Client } from "../client/client";
import { TimeoutError, TsParallelError } from "../client/errors";
import type { EngineKind, EngineSetInfo, EngineSetSpec } from "../protocol/messages";
import { nodeFlags } from "./node-flags";
import { checkSpec } from "./launchers/spec";
import { CLI_PATH } from "../paths";

/** How an engine set starts: `engines` picks the launcher, the other fields are its options. */
export type EngineSetOptions = Partial<EngineSetSpec> & {
  /** How engines start (default "local"): "mpi", "ssh", "slurm" or "batch" for other hosts. */
  engines?: EngineKind;
};

export interface ClusterOptions extends EngineSetOptions {
  /** Engines to start (default: the number of CPUs). */
  n?: number;
  profile?: string;
  /** ms to wait for the controller and all engines (default 60000). */
  timeout?: number;
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
  /** Its engine sets (launcher, state, counts, job id); empty when it is stopped or did not answer. */
  sets: EngineSetInfo[];
  /** The pid recorded in the connection file (a stopped cluster's is stale). */
  controllerPid: number;
  connectionFile: string;
}

/** The spec of `opts`' engine set, with the caller's SLURM_CONF for the Slurm commands. */
function specOf(opts: EngineSetOptions): EngineSetSpec {
  const spec: EngineSetSpec = { engines: opts.engines ?? "local" };
  for (const key of ["mpiexec", "hosts", "ssh", "slurmArgs", "submit", "cancel", "template", "engineCommand"] as const)
    if (opts[key] !== undefined) (spec as unknown as Record<string, unknown>)[key] = opts[key];
  if (spec.template) spec.template = path.resolve(spec.template);
  const env = { ...opts.env };
  if ((spec.engines === "slurm" || spec.engines === "batch") && process.env.SLURM_CONF && !env.SLURM_CONF)
    env.SLURM_CONF = process.env.SLURM_CONF;
  if (Object.keys(env).length > 0) spec.env = env;
  return spec;
}

export class Cluster {
  private constructor(
    readonly profile: string,
    readonly client: Client,
    private readonly controllerPid: number,
    /** The controller's process, when this process started it. */
    readonly process: ChildProcess | undefined,
    private readonly onExit: (() => void) | undefined,
    private readonly logFile: string | undefined,
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
    const spec = specOf(opts);
    if (n > 0) checkSpec(spec, n); // a bad option or a missing launcher: one line, nothing started
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
      ...(opts.restartEngines ? ["--restart-engines"] : []),
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
    let client: Client | undefined;
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
      client = await Client.connect({ profile, timeout: Math.max(1000, deadline - Date.now()) });
      const cluster = new Cluster(profile, client, child.pid!, child, kill, logFile);
      if (n > 0) {
        await Promise.race([
          cluster.addSet(n, spec, deadline),
          exited(child).then(() =>
            Promise.reject(new TsParallelError(`the controller exited during start-up: ${whyExited(logFile)}`)),
          ),
        ]);
      }
      return cluster;
    } catch (e) {
      // Nothing of a failed start is left: the controller stops whatever engines it started.
      client?.close();
      process.off("exit", kill);
      await terminate(child);
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
      let sets: EngineSetInfo[] = [];
      if (running) {
        try {
          const rc = await Client.connect({ profile, timeout: 2000, activate: false });
          engines = rc.ids.length;
          sets = (await rc.engineSets({ action: "list" }, 2000).catch(() => ({ sets: [] }))).sets;
          rc.close();
        } catch {
          engines = undefined;
        }
      }
      out.push({ profile, running, engines, sets, controllerPid: pid, connectionFile: file });
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

  /**
   * The running cluster of a profile, started by another process (`tsparallel cluster start
   * --daemon`, another notebook): to add engine sets to it, or stop it.
   *
   * ```ts
   * const cluster = await Cluster.attach("default");
   * await cluster.addEngines(4, { engines: "slurm", slurmArgs: ["--partition=debug"] });
   * ```
   */
  static async attach(profile = "default", opts: { timeout?: number } = {}): Promise<Cluster> {
    const found = await Cluster.fromProfile(profile);
    if (!found.running)
      throw new TsParallelError(
        `the cluster of profile "${profile}" is stopped (controller pid ${found.controllerPid} is gone); start it with \`tsparallel cluster start --profile ${profile}\``,
      );
    const client = await Client.connect({ profile, timeout: opts.timeout ?? 10_000, activate: false });
    return new Cluster(profile, client, found.controllerPid, undefined, undefined, undefined);
  }

  get pid(): number {
    return this.controllerPid;
  }

  /**
   * Adds `n` engines through a launcher; resolves with the new set's id once all of them are
   * registered. The controller owns the set: `stop()` (or `tsparallel cluster stop`) ends it.
   *
   * ```ts
   * const set = await cluster.addEngines(2, { engines: "ssh", hosts: "node1,node2" });
   * await cluster.stopEngines(set);
   * ```
   */
  async addEngines(n: number, opts: EngineSetOptions & { timeout?: number } = {}): Promise<string> {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`n must be a whole number of engines ≥ 1; got ${n}`);
    return this.addSet(n, specOf(opts), Date.now() + (opts.timeout ?? 60_000));
  }

  private async addSet(n: number, spec: EngineSetSpec, deadline: number): Promise<string> {
    const timeout = Math.max(1000, deadline - Date.now());
    const { set } = await this.client.engineSets({ action: "add", n, spec }, timeout);
    if (set === undefined) throw new TsParallelError("the controller did not say which engine set it started");
    for (;;) {
      const { sets } = await this.client.engineSets({ action: "list" }, Math.max(1000, deadline - Date.now()));
      const info = sets.find((s) => s.id === set);
      if (!info) throw new TsParallelError(`the controller forgot engine set ${set}`);
      if (info.registered >= n) {
        // The client's own engine list follows on notifications: wait for it too.
        const total = sets.reduce((sum, s) => sum + s.registered, 0);
        await this.client.waitForEngines(Math.min(total, this.client.ids.length + n), {
          timeout: Math.max(1000, deadline - Date.now()),
        });
        return set;
      }
      if (info.state === "failed" || info.state === "stopped")
        throw new TsParallelError(
          `engine set ${set} ${info.state} with ${info.registered} of ${n} engines registered${info.detail ? `: ${info.detail}` : ""}; their output: ${this.outputOf(info)}`,
        );
      if (Date.now() > deadline) {
        await this.stopEngines(set).catch(() => undefined);
        throw new TimeoutError(
          `only ${info.registered} of ${n} engines of set ${set} registered in time; it was stopped. Their output: ${this.outputOf(info)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private outputOf(info: EngineSetInfo): string {
    return info.output === "the controller's log" && this.logFile ? this.logFile : info.output;
  }

  /** The cluster's engine sets: launcher, state, engines asked for and registered, job id. */
  async engineSets(): Promise<EngineSetInfo[]> {
    return (await this.client.engineSets({ action: "list" })).sets;
  }

  /** Stops one engine set (its job cancelled, its processes ended); the others keep running. */
  async stopEngines(setId: string): Promise<void> {
    await this.client.engineSets({ action: "stop", set: setId });
  }

  /** Sends `signal` to every engine (of one set, if given): directly on this host, else through its launcher. */
  async signalEngines(signal: NodeJS.Signals, setId?: string): Promise<void> {
    await this.client.engineSets({ action: "signal", signal, ...(setId !== undefined ? { set: setId } : {}) });
  }

  /** Stops every engine set and the controller; resolves when the controller has exited. Idempotent. */
  async stop(): Promise<void> {
    this.client.close();
    const child = this.process;
    if (child) {
      await terminate(child);
      if (this.onExit) process.off("exit", this.onExit);
      return;
    }
    await stopController(this.controllerPid);
  }
}

/**
 * SIGTERM to a controller this process did not start, then waits for it to exit (it stops its
 * engine sets first: jobs cancelled, ssh engines killed); SIGKILL after `graceMs`.
 */
export async function stopController(pid: number, graceMs = 30_000): Promise<void> {
  if (!isAlive(pid) || !signalProcess(pid, "SIGTERM")) return;
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (isAlive(pid)) signalProcess(pid, "SIGKILL");
}

/** SIGTERM (the controller then stops its engine sets), SIGKILL after `graceMs`; resolves on exit. */
async function terminate(child: ChildProcess, graceMs = 30_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = exited(child);
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await done;
  clearTimeout(timer);
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
  // The lock appears with its pid already in it: written to a file of our own, then linked to the
  // lock's name (which fails if it exists). Created empty and written after, another start could
  // read it in between, find no pid, take it for stale and start a second controller.
  const mine = `${file}.${process.pid}`;
  fs.writeFileSync(mine, String(process.pid), { mode: 0o600 });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      fs.linkSync(mine, file);
      fs.rmSync(mine, { force: true });
      return () => fs.rmSync(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") {
        fs.rmSync(mine, { force: true });
        throw e;
      }
    }
    const holder = Number(fs.readFileSync(file, "utf8").trim() || NaN);
    if (Number.isInteger(holder) && holder > 0 && isAlive(holder)) {
      fs.rmSync(mine, { force: true });
      throw new TsParallelError(
        `another process (pid ${holder}) is starting a cluster for profile "${profile}"; wait for it, or use another profile`,
      );
    }
    fs.rmSync(file, { force: true }); // stale: its process is gone
  }
  fs.rmSync(mine, { force: true });
  throw new TsParallelError(`could not take the start lock of profile "${profile}" (${file})`);
}
