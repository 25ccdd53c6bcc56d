/**
 * Processes for the launcher tests: free ports, a daemon run in the foreground as our child (so
 * teardown kills it by pid), and a process's ancestry from /proc.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import { killQuietly, until } from "./cluster";

export { freePort } from "../../client/tunnel";

/** Resolves once something accepts TCP connections on host:port, or fails at the deadline. */
export async function listening(host: string, port: number, ms = 15_000, netns?: string): Promise<void> {
  const probe = (): Promise<boolean> =>
    netns
      ? Promise.resolve(
          spawnSync("ip", ["netns", "exec", netns, "bash", "-c", `exec 3<>/dev/tcp/${host}/${port}`]).status === 0,
        )
      : new Promise((resolve) => {
          const s = net.connect(port, host);
          s.once("connect", () => (s.destroy(), resolve(true)));
          s.once("error", () => resolve(false));
        });
  await until(probe, ms, `a listener on ${host}:${port}`);
}

export interface Daemon {
  name: string;
  child: ChildProcess;
  pid: number;
  log: string;
}

/** Starts `command` in the foreground as our child, its output in `log`. */
export function daemon(name: string, command: string, args: string[], log: string, env?: NodeJS.ProcessEnv): Daemon {
  const fd = fs.openSync(log, "a");
  const child = spawn(command, args, { stdio: ["ignore", fd, fd], env: env ?? process.env });
  fs.closeSync(fd);
  if (child.pid === undefined) throw new Error(`${name} did not start (see ${log})`);
  child.on("error", () => undefined);
  return { name, child, pid: child.pid, log };
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
export async function stopDaemon(d: Daemon, graceMs = 5000): Promise<void> {
  if (d.child.exitCode !== null || d.child.signalCode !== null) return;
  const exited = new Promise<void>((r) => d.child.once("exit", () => r()));
  killQuietly(d.pid, "SIGTERM");
  const timer = setTimeout(() => killQuietly(d.pid, "SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

/** A process's command name and parent, from /proc. */
export function procInfo(pid: number): { comm: string; ppid: number } | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const comm = /\((.*)\)/.exec(stat)![1]!;
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    return { comm, ppid };
  } catch {
    return undefined;
  }
}

/** The command names from `pid` up to init. */
export function ancestry(pid: number): string[] {
  const names: string[] = [];
  for (let p = pid, i = 0; p > 1 && i < 12; i++) {
    const info = procInfo(p);
    if (!info) break;
    names.push(info.comm);
    p = info.ppid;
  }
  return names;
}

/** Every pid whose command line contains `needle` (our own tree's processes excluded by the caller). */
export function pidsWithArg(needle: string): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (cmd.includes(needle)) out.push(Number(entry));
    } catch {
      // gone
    }
  }
  return out;
}

/** Every pid holding an open file under `dir` (Slurm's step daemons hold their spool sockets). */
export function pidsUsing(dir: string): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      for (const fd of fs.readdirSync(`/proc/${entry}/fd`))
        if (fs.readlinkSync(`/proc/${entry}/fd/${fd}`).startsWith(dir)) {
          out.push(Number(entry));
          break;
        }
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}
