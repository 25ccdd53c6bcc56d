/**
 * Local engine processes, children of the controller (`--engines local`, the default).
 *
 * Being their parent, the controller hears of an engine's death at once (the child's `exit`
 * event), can signal it for interrupts, and can restart it (`--restart-engines`, or a client's
 * `restartEngine(id)`). Engines started elsewhere are watched by heartbeat instead.
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as os from "node:os";
import type { ConnectionInfo } from "../../protocol/connection";
import { type EngineLauncher, type LaunchContext, engineCommand, engineEnv, lastLine } from "./launcher";

export interface LocalOptions {
  /** The engines' connection file (local engines read it: no secret in the environment). */
  engineFile: string;
  restart: boolean;
  /** Called with the pid of an engine process that exited. */
  onEngineExit(pid: number, how: string): void;
}

/**
 * How many engines may be starting (spawned, not yet registered) at once: eight per core keeps
 * every core loading engines (a start also waits on I/O) while the controller still gets the CPU
 * to register them. Started all at once, 256 engines on 2 cores starved the controller for over
 * 30 s: engines gave up on registering, heartbeats were missed, ids were lost and handed out again.
 * (Measured at 256 on 2 cores: 16 and 32 at a time registered in the same time.)
 */
export const START_WINDOW = Math.max(8, 8 * os.availableParallelism());
/** An engine that has not registered after this long no longer holds a place in the window. */
const START_PLACE_MS = 10_000;

export class LocalLauncher implements EngineLauncher {
  readonly kind = "local";
  readonly output = "the controller's log";
  private readonly children = new Map<number, ChildProcess>();
  private stopping = false;
  /** Engines waiting for a place in the start window. */
  private waiting = 0;
  /** Spawned engines that have not registered yet, with the timer that frees their place. */
  private readonly starting = new Map<number, NodeJS.Timeout>();
  /** A spawn is scheduled for the next turn of the event loop. */
  private filling = false;

  constructor(
    private readonly ctx: LaunchContext,
    private readonly opts: LocalOptions,
  ) {}

  start(n: number, _info?: ConnectionInfo): Promise<void> {
    this.enqueue(n);
    return Promise.resolve();
  }

  private enqueue(n: number): void {
    this.waiting += n;
    this.fillWindow();
  }

  /** The engine process `pid` registered: its place in the start window goes to the next one. */
  engineRegistered(pid: number): void {
    this.leaveWindow(pid);
  }

  /**
   * One spawn per turn of the event loop: a spawn blocks until the child has exec'd, which on a
   * loaded machine takes long enough that a burst of them kept the controller from its sockets.
   */
  private fillWindow(): void {
    if (this.waiting === 0 || this.starting.size >= START_WINDOW || this.stopping || this.filling) return;
    this.waiting--;
    const pid = this.spawnOne();
    if (pid !== undefined) {
      const timer = setTimeout(() => this.leaveWindow(pid), START_PLACE_MS);
      timer.unref();
      this.starting.set(pid, timer);
    }
    this.filling = true;
    setImmediate(() => {
      this.filling = false;
      this.fillWindow();
    });
  }

  private leaveWindow(pid: number): void {
    const timer = this.starting.get(pid);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.starting.delete(pid);
    this.fillWindow();
  }

  /** Whether `pid` is one of this set's engine processes. */
  owns(pid: number): boolean {
    return this.children.has(pid);
  }

  private spawnOne(): number | undefined {
    const [command, ...args] = engineCommand(undefined) as [string, ...string[]];
    const child = spawn(command, [...args, "--file", this.opts.engineFile], {
      cwd: this.ctx.cwd,
      stdio: ["ignore", "inherit", "pipe"],
      env: { ...process.env, ...engineEnv(this.ctx), TSPARALLEL_SUPERVISED: "1" },
    });
    const pid = child.pid;
    if (pid === undefined) {
      this.ctx.log("could not spawn an engine process");
      return undefined;
    }
    this.children.set(pid, child);
    // stderr still reaches the log; its tail says why an engine died (V8 prints its OOM there).
    let tail = "";
    child.stderr.on("data", (chunk: Buffer) => {
      process.stderr.write(chunk);
      tail = (tail + chunk.toString("utf8")).slice(-4096);
    });
    child.on("exit", (code, signal) => {
      this.children.delete(pid);
      this.leaveWindow(pid);
      this.opts.onEngineExit(pid, exitReason(code, signal, tail));
      if (this.opts.restart && !this.stopping) {
        this.ctx.log(`restarting engine process (pid ${pid} ${signal ?? code})`);
        this.enqueue(1);
      } else if (this.children.size === 0 && this.waiting === 0) {
        this.ctx.onExit(this.stopping ? "stopped" : "every engine process exited");
      }
    });
    return pid;
  }

  /** Replace the engine process `pid` with a new one. */
  restart(pid: number): boolean {
    const child = this.children.get(pid);
    if (!child) return false;
    child.removeAllListeners("exit");
    child.on("exit", (code, signal) => {
      this.children.delete(pid);
      this.opts.onEngineExit(pid, `restarted (${signal ?? code})`);
    });
    child.kill("SIGKILL");
    this.enqueue(1);
    return true;
  }

  /** SIGTERM every engine, SIGKILL what is left after `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    this.stopping = true;
    this.waiting = 0;
    for (const timer of this.starting.values()) clearTimeout(timer);
    this.starting.clear();
    const all = [...this.children.values()];
    const exited = all.map(
      (c) =>
        new Promise<void>((resolve) =>
          c.exitCode !== null || c.signalCode !== null ? resolve() : c.once("exit", () => resolve()),
        ),
    );
    for (const c of all) c.kill("SIGTERM");
    const timer = setTimeout(() => all.forEach((c) => c.kill("SIGKILL")), graceMs);
    await Promise.all(exited);
    clearTimeout(timer);
  }

  signal(signal: NodeJS.Signals): Promise<void> {
    for (const c of this.children.values()) c.kill(signal);
    return Promise.resolve();
  }
}

/**
 * Why an engine process ended, in words: a V8 heap exhaustion kills with SIGABRT, which says
 * nothing to a user, so it is named with the last line V8 printed.
 */
export function exitReason(code: number | null, signal: NodeJS.Signals | null, stderrTail: string): string {
  const last = lastLine(stderrTail);
  if (/heap out of memory|Allocation failed|Reached heap limit/i.test(stderrTail)) {
    const fatal = /FATAL ERROR:.*$/m.exec(stderrTail)?.[0] ?? last;
    return `it ran out of memory (${fatal})`;
  }
  if (signal === "SIGABRT" && last) return `killed by SIGABRT (${last})`;
  if (signal) return `killed by ${signal}`;
  return `exited with code ${code}`;
}
