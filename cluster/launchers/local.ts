/**
 * Local engine processes started with the controller (`--engines N`).
 *
 * Being their parent, the controller hears of an engine's death at once (the child's `exit`
 * event), can signal it for interrupts, and can restart it (`--restart-engines`, or a client's
 * `restartEngine(id)`). Engines started elsewhere are watched by heartbeat instead.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { nodeFlags } from "../node-flags";
import { CLI_PATH } from "../../paths";

export interface SupervisorOptions {
  engineFile: string;
  cwd: string;
  restart: boolean;
  /** Called with the pid of an engine process that exited. */
  onExit(pid: number, how: string): void;
  log(line: string): void;
}

export class Supervisor {
  private readonly children = new Map<number, ChildProcess>();
  private stopping = false;

  constructor(private readonly opts: SupervisorOptions) {}

  start(n: number): void {
    for (let i = 0; i < n; i++) this.spawnOne();
  }

  private spawnOne(): void {
    const child = spawn(process.execPath, [...nodeFlags(), CLI_PATH, "engine", "--file", this.opts.engineFile], {
      cwd: this.opts.cwd,
      stdio: ["ignore", "inherit", "pipe"],
      env: { ...process.env, TSPARALLEL_SUPERVISED: "1" },
    });
    const pid = child.pid;
    if (pid === undefined) {
      this.opts.log("could not spawn an engine process");
      return;
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
      this.opts.onExit(pid, exitReason(code, signal, tail));
      if (this.opts.restart && !this.stopping) {
        this.opts.log(`restarting engine process (pid ${pid} ${signal ?? code})`);
        this.spawnOne();
      }
    });
  }

  /** Replace the engine process `pid` with a new one. */
  restart(pid: number): boolean {
    const child = this.children.get(pid);
    if (!child) return false;
    child.removeAllListeners("exit");
    child.on("exit", (code, signal) => {
      this.children.delete(pid);
      this.opts.onExit(pid, `restarted (${signal ?? code})`);
    });
    child.kill("SIGKILL");
    this.spawnOne();
    return true;
  }

  /** SIGTERM every engine, SIGKILL what is left after `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    this.stopping = true;
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
}

/**
 * Why an engine process ended, in words: a V8 heap exhaustion kills with SIGABRT, which says
 * nothing to a user, so it is named with the last line V8 printed.
 */
export function exitReason(code: number | null, signal: NodeJS.Signals | null, stderrTail: string): string {
  const lastLine =
    stderrTail
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l.length > 0)
      .pop() ?? "";
  if (/heap out of memory|Allocation failed|Reached heap limit/i.test(stderrTail)) {
    const fatal = /FATAL ERROR:.*$/m.exec(stderrTail)?.[0] ?? lastLine;
    return `it ran out of memory (${fatal})`;
  }
  if (signal === "SIGABRT" && lastLine) return `killed by SIGABRT (${lastLine})`;
  if (signal) return `killed by ${signal}`;
  return `exited with code ${code}`;
}
