/**
 * A private OpenSSH server for the launcher tests: host key, authorized key, sshd_config and a
 * client config (with a host alias) all in a temp dir; it listens on one address of ours (127.0.0.1,
 * or an address inside a network namespace the test made). Stopped by pid, with the sessions it
 * forked, whatever the test did.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { killQuietly } from "./cluster";
import { type Daemon, daemon, freePort, listening, procInfo, stopDaemon } from "./procs";

export interface PrivateSshd {
  /** The client config that names `alias`: pass `ssh -F <config>` to the launcher. */
  config: string;
  alias: string;
  address: string;
  port: number;
  daemon: Daemon;
  /** Appends another alias (e.g. a second "host") to the client config. */
  addAlias(alias: string, address: string, port: number): void;
  stop(): Promise<void>;
}

export const SSHD = "/usr/sbin/sshd";

/** Where the keys live: one user key for every sshd of a test, so one client config reaches all. */
function keys(dir: string): { hostKey: string; userKey: string } {
  const hostKey = path.join(dir, "host_key");
  const userKey = path.join(dir, "user_key");
  for (const k of [hostKey, userKey])
    if (!fs.existsSync(k)) {
      const r = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", k]);
      if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr.toString()}`);
    }
  fs.copyFileSync(`${userKey}.pub`, path.join(dir, "authorized_keys"));
  return { hostKey, userKey };
}

export async function startSshd(
  dir: string,
  opts: { alias?: string; address?: string; netns?: string; port?: number } = {},
): Promise<PrivateSshd> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 }); // sshd's privilege separation dir
  const { hostKey, userKey } = keys(dir);
  const address = opts.address ?? "127.0.0.1";
  const alias = opts.alias ?? "tsp-host";
  const port = opts.port ?? (await freePort());
  const name = `sshd_${alias}_config`;
  const serverConfig = path.join(dir, name);
  fs.writeFileSync(
    serverConfig,
    [
      `Port ${port}`,
      `ListenAddress ${address}`,
      `HostKey ${hostKey}`,
      `PidFile ${path.join(dir, `sshd_${alias}.pid`)}`,
      `AuthorizedKeysFile ${path.join(dir, "authorized_keys")}`,
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "PermitRootLogin prohibit-password",
      "StrictModes no",
      "AllowTcpForwarding yes",
      "LogLevel VERBOSE",
      "",
    ].join("\n"),
  );
  const config = path.join(dir, "ssh_config");
  const addAlias = (a: string, addr: string, p: number): void =>
    fs.appendFileSync(
      config,
      [
        `Host ${a}`,
        `  HostName ${addr}`,
        `  Port ${p}`,
        "  User root",
        `  IdentityFile ${userKey}`,
        "  IdentitiesOnly yes",
        "  StrictHostKeyChecking no",
        "  UserKnownHostsFile /dev/null",
        "  LogLevel ERROR",
        "",
      ].join("\n"),
    );
  addAlias(alias, address, port);
  const args = ["-D", "-e", "-f", serverConfig];
  const log = path.join(dir, `sshd_${alias}.log`);
  const d = opts.netns
    ? daemon("sshd", "ip", ["netns", "exec", opts.netns, SSHD, ...args], log)
    : daemon("sshd", SSHD, args, log);
  try {
    await listening(address, port, 15_000, opts.netns);
  } catch (e) {
    await stopDaemon(d);
    throw new Error(`sshd did not listen on ${address}:${port}: ${fs.readFileSync(log, "utf8").slice(-500)}`, {
      cause: e,
    });
  }
  return {
    config,
    alias,
    address,
    port,
    daemon: d,
    addAlias,
    stop: async () => {
      // Each session is a forked sshd whose parent is the listener: end them with it.
      const sessions = childrenOf(d.pid);
      await stopDaemon(d);
      for (const pid of sessions) killQuietly(pid);
    },
  };
}

/** Direct children of `pid`. */
function childrenOf(pid: number): number[] {
  return fs
    .readdirSync("/proc")
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((p) => procInfo(p)?.ppid === pid);
}
