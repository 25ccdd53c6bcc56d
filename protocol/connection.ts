/**
 * Connection files and profile directories.
 *
 * `~/.tsparallel/profile_<name>/security/{client,engine}.json`, written 0600 because they hold
 * the HMAC key (`TSPARALLEL_DIR` overrides the root, as IPYTHONDIR does for ipyparallel).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as net from "node:net";
import * as path from "node:path";
import { TsParallelError } from "./errors";

export interface ConnectionInfo {
  transport: "tcp";
  /** Address to connect to. */
  ip: string;
  ports: {
    clients: number;
    notification: number;
    engines: number;
    ping: number;
    heartbeat: number;
    /** The monitor stream (`tsparallel cluster top`, the dashboard); absent in older files. */
    monitor?: number;
  };
  key: string;
  signature_scheme: "hmac-sha256";
  /** Controller's CURVE public key (z85) when encryption is on. */
  curve_serverkey?: string;
  controller_pid: number;
  location: string;
}

export function rootDir(): string {
  return process.env.TSPARALLEL_DIR ?? path.join(os.homedir(), ".tsparallel");
}

export function profileDir(profile = "default"): string {
  if (!/^[\w.-]+$/.test(profile))
    throw new RangeError(`invalid profile name ${JSON.stringify(profile)}: use letters, digits, '.', '_' or '-'`);
  return path.join(rootDir(), `profile_${profile}`);
}

export function securityDir(profile = "default"): string {
  return path.join(profileDir(profile), "security");
}

export function connectionFile(kind: "client" | "engine" | "controller", profile = "default"): string {
  return path.join(securityDir(profile), `${kind}.json`);
}

export function writeSecret(file: string, data: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(data, null, 1) + "\n", { mode: 0o600 });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file); // atomic: a reader never sees half a file
}

export class ConnectionFileError extends TsParallelError {
  override name = "ConnectionFileError";
  override readonly code = "ERR_CONNECTION_FILE";
}

/** Reads and validates a connection file, with an error that says what to do. */
export function readConnectionFile(file: string): ConnectionInfo {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    throw new ConnectionFileError(
      `no connection file at ${file}: start a cluster with \`tsparallel cluster start -n 4\` (or pass the right --profile / file)`,
    );
  }
  return parseConnectionInfo(text, `connection file ${file}`);
}

/**
 * Connection info from its JSON text: a connection file's, or `TSPARALLEL_CONNECTION_INFO`'s on
 * a host that shares no filesystem with the controller (launchers pass it in the environment).
 */
export function parseConnectionInfo(text: string, source: string): ConnectionInfo {
  const file = source.replace(/^connection file /, "");
  let info: unknown;
  try {
    info = JSON.parse(text);
  } catch {
    throw new ConnectionFileError(`${source} is not valid JSON; restart the cluster to rewrite it`);
  }
  const i = info as Partial<ConnectionInfo>;
  if (typeof i.ip !== "string" || typeof i.key !== "string" || typeof i.ports !== "object" || i.ports === null) {
    throw new ConnectionFileError(`connection file ${file} lacks ip/key/ports; restart the cluster to rewrite it`);
  }
  const missing = PORTS.filter((k) => typeof (i.ports as Record<string, unknown>)[k] !== "number");
  if (missing.length > 0) {
    throw new ConnectionFileError(
      `connection file ${file} has no ${missing.join(", ")} port (written by an older tsparallel?); restart the cluster to rewrite it`,
    );
  }
  // ZeroMQ would say only "Invalid argument" of an endpoint built from these.
  if (net.isIP(i.ip) === 0 && !/^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/.test(i.ip))
    throw new ConnectionFileError(
      `connection file ${file}: "ip" is ${JSON.stringify(i.ip.slice(0, 80))}, not an IP address or host name; restart the cluster to rewrite it`,
    );
  const badPort = [...PORTS, ...(i.ports.monitor === undefined ? [] : ["monitor" as const])].find((k) => {
    const port = i.ports![k];
    return !Number.isInteger(port) || port! < 1 || port! > 65535;
  });
  if (badPort)
    throw new ConnectionFileError(
      `connection file ${file}: "ports.${badPort}" is ${String(i.ports[badPort])}, not a port from 1 to 65535; restart the cluster to rewrite it`,
    );
  return info as ConnectionInfo;
}

const PORTS: ReadonlyArray<keyof ConnectionInfo["ports"]> = ["clients", "notification", "engines", "ping", "heartbeat"];

export function endpoint(info: Pick<ConnectionInfo, "ip" | "transport">, port: number): string {
  const host = info.ip.includes(":") ? `[${info.ip}]` : info.ip;
  return `${info.transport}://${host}:${port}`;
}

/** Lists profiles that have a security dir. */
export function listProfiles(): string[] {
  try {
    return fs
      .readdirSync(rootDir())
      .filter((d) => d.startsWith("profile_"))
      .map((d) => d.slice("profile_".length))
      .sort();
  } catch {
    return [];
  }
}

export function isAlive(pid: number): boolean {
  // A zombie has exited: it answers signal 0 until its parent reaps it, which an orphan's init
  // may never do.
  return processExists(pid) && procState(pid) !== "Z";
}

/**
 * Whether a process with this pid exists, zombie or not: signal 0, no file read. Cheap enough for
 * the controller's periodic check of its engines, whose exited children Node reaps at once.
 */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Sends `signal` to `pid`; false when there is no such process. A process can exit and be reaped
 * between any check and the kill, so callers never see that race as an ESRCH error.
 */
export function signalProcess(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw e;
  }
}

/** A process's state letter from /proc (R, S, Z…), or undefined when unknown. */
function procState(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1");
    return stat.charAt(stat.lastIndexOf(")") + 2);
  } catch {
    return undefined;
  }
}

/** The controller pid a connection file records, or undefined when there is no readable file. */
export function recordedControllerPid(file: string): number | undefined {
  try {
    return readConnectionFile(file).controller_pid;
  } catch {
    return undefined;
  }
}
