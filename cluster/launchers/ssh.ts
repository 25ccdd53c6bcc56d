/**
 * Engines on other hosts over SSH (`--engines ssh --hosts "a:2,b:4" [--ssh "ssh -F cfg"]`).
 *
 * One ssh session per host runs a small POSIX script there that starts that host's engines in
 * the background, prints their pids, and waits for them. The connection info (it holds the key)
 * is the first line the script reads on stdin, so it never shows in a remote `ps`. The engines
 * keep the session's stdin and end when it closes (`--exit-with-stdin`): stopping the launcher,
 * or losing the connection, ends them, and `stop` also kills them by pid over ssh first.
 */
import { type ChildProcessByStdio, spawn } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import * as fs from "node:fs";
import * as path from "node:path";
import type { ConnectionInfo } from "../../protocol/connection";
import { TsParallelError } from "../../protocol/errors";
import {
  type EngineLauncher,
  type LaunchContext,
  engineCommand,
  engineEnv,
  lastLine,
  requireCommand,
  shellQuote,
} from "./launcher";

export interface HostCount {
  host: string;
  count: number;
}

/**
 * "a:2,b:4" → a 2, b 4. Hosts without a count share what `n` leaves, round robin; with `n`
 * undefined each such host gets one engine. A count that disagrees with `n` is an error.
 */
export function parseHosts(spec: string, n: number | undefined): HostCount[] {
  const entries = spec
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (entries.length === 0) throw new TsParallelError(`--hosts is empty: give "hostA:2,hostB:4"`);
  const hosts: HostCount[] = [];
  const open: HostCount[] = [];
  for (const entry of entries) {
    const m = /^([^\s:,]+)(?::(\d+))?$/.exec(entry);
    if (!m || (m[2] !== undefined && Number(m[2]) < 1))
      throw new TsParallelError(`bad host ${JSON.stringify(entry)} in --hosts: use HOST or HOST:COUNT (COUNT ≥ 1)`);
    // ssh would read it as an option (-oProxyCommand=… runs a command here).
    if (m[1]!.startsWith("-"))
      throw new TsParallelError(`bad host ${JSON.stringify(m[1])} in --hosts: a host name cannot begin with "-"`);
    const h = { host: m[1]!, count: m[2] === undefined ? 0 : Number(m[2]) };
    hosts.push(h);
    if (m[2] === undefined) open.push(h);
  }
  const fixed = hosts.reduce((s, h) => s + h.count, 0);
  if (n === undefined) {
    for (const h of open) h.count = 1;
  } else if (open.length === 0) {
    if (n !== fixed)
      throw new TsParallelError(
        `-n ${n} disagrees with --hosts ${JSON.stringify(spec)}, which starts ${fixed} engines`,
      );
  } else {
    if (n < fixed + open.length)
      throw new TsParallelError(
        `-n ${n} is too few for --hosts ${JSON.stringify(spec)}: it needs at least ${fixed + open.length}`,
      );
    for (let i = 0; i < n - fixed; i++) open[i % open.length]!.count++;
  }
  return hosts;
}

interface Session {
  host: string;
  count: number;
  child: ChildProcessByStdio<Writable, Readable, null>;
  pids: number[];
  ended: boolean;
}

export class SshLauncher implements EngineLauncher {
  readonly kind = "ssh";
  readonly output: string;
  private readonly sessions: Session[] = [];
  private stopping = false;

  constructor(
    private readonly ctx: LaunchContext,
    private readonly hosts: string,
    private readonly ssh = "ssh",
    private readonly engineCmd?: string,
  ) {
    this.output = path.join(ctx.profileDir, "log", `engines-${ctx.setId}.log`);
  }

  async start(n: number, info: ConnectionInfo): Promise<void> {
    const [command, ...sshArgs] = requireCommand(this.ssh, "--ssh") as [string, ...string[]];
    const plan = parseHosts(this.hosts, n);
    fs.mkdirSync(path.dirname(this.output), { recursive: true, mode: 0o700 });
    const log = fs.openSync(this.output, "a", 0o600);
    const started = plan.map(({ host, count }) => this.startHost(command, sshArgs, host, count, info, log));
    fs.closeSync(log);
    // A host that refuses us fails the start with ssh's own words, and the others are ended.
    const problems = (await Promise.all(started)).filter((p): p is string => p !== undefined);
    if (problems.length > 0) {
      await this.stop();
      throw new TsParallelError(problems.join("; "));
    }
  }

  /** Resolves once the host's engines are started (undefined) or ssh failed (ssh's message). */
  private startHost(
    command: string,
    sshArgs: string[],
    host: string,
    count: number,
    info: ConnectionInfo,
    log: number,
  ): Promise<string | undefined> {
    const env = Object.entries(engineEnv(this.ctx))
      .map(([k, v]) => `${k}=${shellQuote(v)}`)
      .join(" ");
    const engine = [...engineCommand(this.engineCmd).map(shellQuote), "--exit-with-stdin"].join(" ");
    const script = [
      `read -r TSPARALLEL_CONNECTION_INFO || exit 3`,
      `export TSPARALLEL_CONNECTION_INFO ${env}`,
      `exec 3<&0`,
      `i=0`,
      `while [ $i -lt ${count} ]; do ${engine} 0<&3 & echo "tsparallel-engine-pid $!"; i=$((i+1)); done`,
      `echo tsparallel-engines-started`,
      `wait`,
    ].join("\n");
    // BatchMode: a host that wants a password fails at once with ssh's message instead of waiting.
    const child = spawn(command, [...sshArgs, "-o", "BatchMode=yes", "--", host, `sh -c ${shellQuote(script)}`], {
      cwd: this.ctx.cwd,
      stdio: ["pipe", "pipe", log],
      env: { ...process.env, ...this.ctx.env },
    }) as ChildProcessByStdio<Writable, Readable, null>; // stdin and stdout are pipes, stderr the log
    const session: Session = { host, count, child, pids: [], ended: false };
    this.sessions.push(session);
    child.stdin.on("error", () => undefined); // a session that died: its exit says why
    child.stdin.write(JSON.stringify(info) + "\n");
    return new Promise((resolve) => {
      let out = "";
      let started = false;
      child.stdout.on("data", (chunk: Buffer) => {
        if (started) return; // engines' own stdout: drained, not kept
        out += chunk.toString("utf8");
        for (const m of out.matchAll(/tsparallel-engine-pid (\d+)/g)) {
          const pid = Number(m[1]);
          if (!session.pids.includes(pid)) session.pids.push(pid);
        }
        if (out.includes("tsparallel-engines-started")) {
          started = true;
          resolve(undefined);
        }
      });
      child.on("error", (e) => resolve(`ssh to ${host} failed: ${e.message}`));
      child.on("exit", (code, signal) => {
        session.ended = true;
        const why = this.lastError(host) ?? (signal ? `killed by ${signal}` : `exit code ${code}`);
        resolve(`ssh to ${host} failed: ${why}`);
        if (!this.stopping) this.ctx.log(`ssh session to ${host} ended (${why})`);
        if (this.sessions.every((s) => s.ended)) this.ctx.onExit(this.stopping ? "stopped" : "every ssh session ended");
      });
    });
  }

  /** ssh's own last line about `host` in the set's log (its stderr goes there). */
  private lastError(host: string): string | undefined {
    try {
      const text = fs.readFileSync(this.output, "utf8").slice(-4096);
      const line = lastLine(
        text
          .split("\n")
          .filter((l) => !l.startsWith("[engine"))
          .join("\n"),
      );
      return line ? `${line} (host ${host})` : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * SIGTERM to the engines by pid over ssh; after `graceMs`, SIGKILL the same way (an engine busy
   * in a loop never runs its SIGTERM handler, and would outlive its session); then end the sessions.
   */
  async stop(graceMs = 4000): Promise<void> {
    this.stopping = true;
    const live = this.sessions.filter((s) => !s.ended);
    const ended = Promise.all(
      live.map((s) => new Promise<void>((r) => (s.ended ? r() : s.child.once("exit", () => r())))),
    );
    const within = (ms: number): Promise<boolean> =>
      Promise.race([ended.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())]);
    await this.signal("SIGTERM").catch(() => undefined);
    if (!(await within(graceMs))) {
      await this.signal("SIGKILL").catch(() => undefined);
      if (!(await within(graceMs))) {
        for (const s of live) {
          s.child.stdin.end();
          s.child.kill("SIGKILL");
        }
        await ended;
      }
    }
  }

  /** `kill -SIG pids` on each host, over a new ssh connection. */
  async signal(signal: NodeJS.Signals): Promise<void> {
    const [command, ...sshArgs] = requireCommand(this.ssh, "--ssh") as [string, ...string[]];
    const name = signal.replace(/^SIG/, "");
    await Promise.all(
      this.sessions
        .filter((s) => !s.ended && s.pids.length > 0)
        .map(
          (s) =>
            new Promise<void>((resolve) => {
              const kill = spawn(
                command,
                [...sshArgs, "-o", "BatchMode=yes", "--", s.host, `kill -${name} ${s.pids.join(" ")}`],
                {
                  stdio: "ignore",
                  env: { ...process.env, ...this.ctx.env },
                },
              );
              const timer = setTimeout(() => kill.kill("SIGKILL"), 10_000);
              kill.on("error", () => resolve());
              kill.on("exit", () => {
                clearTimeout(timer);
                resolve();
              });
            }),
        ),
    );
  }
}
