/**
 * A second Unix user on the host, for tests of what one local user can do to another. Each
 * scenario runs in its own process inside a private mount namespace whose /dev/shm is a fresh
 * tmpfs (so no real user's files are touched, and its size can be chosen), as root (the victim),
 * with `nobody` (the other user) reached through setpriv. The scenario prints one JSON line.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { killQuietly } from "./cluster";

export const NOBODY = 65534;

/** Why these tests cannot run here, or undefined. */
export function sharedHostUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root (unshare, mount, setpriv)";
  for (const tool of ["unshare", "setpriv", "mount"])
    if (spawnSync("which", [tool]).status !== 0) return `needs ${tool} (util-linux)`;
  return undefined;
}

/** Runs `argv` as `nobody` (no groups); its exit status, stdout and stderr. */
export function asNobody(argv: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(
    "setpriv",
    [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", "--inh-caps=-all", "--", ...argv],
    { encoding: "utf8", timeout: 15_000 },
  );
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

let runs = 0;

export interface ScenarioRun {
  status: number | null;
  report: Record<string, unknown>;
  stderr: string;
}

/**
 * Runs `script` (a compiled scenario) in a private mount namespace with a `shmSize` tmpfs on
 * /dev/shm. Every process it leaves (found by a mark in their environment)
 * is killed when it ends, or after `ms`.
 */
export async function runScenario(script: string, args: string[], shmSize: string, ms = 120_000): Promise<ScenarioRun> {
  const mark = `${process.pid}-${++runs}`;
  const child: ChildProcess = spawn(
    "unshare",
    [
      "--mount",
      "--propagation",
      "private",
      "--",
      "/bin/sh",
      "-c",
      `mount -t tmpfs -o size=${shmSize},mode=1777 tsparallel-test-shm /dev/shm && exec "$0" "$@"`,
      process.execPath,
      script,
      ...args,
    ],
    { env: { ...process.env, TSPARALLEL_TEST_SCENARIO: mark }, stdio: ["ignore", "pipe", "pipe"], detached: true },
  );
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => killQuietly(-child.pid!), ms);
  const status = await new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  clearTimeout(timer);
  for (const pid of pidsWithEnv(`TSPARALLEL_TEST_SCENARIO=${mark}`)) killQuietly(pid);
  const line = stdout.trim().split("\n").at(-1) ?? "";
  let report: Record<string, unknown> = {};
  try {
    report = JSON.parse(line) as Record<string, unknown>;
  } catch {
    report = { unparsed: stdout };
  }
  return { status, report, stderr };
}

/** Every pid whose environment holds `entry` (NAME=value). */
export function pidsWithEnv(entry: string): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (fs.readFileSync(`/proc/${name}/environ`, "utf8").split("\0").includes(entry)) out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out;
}
