/**
 * SSH tunnels for a client outside the cluster's network (`Client.connect({ sshServer })`): one
 * `ssh -N -L` process forwards a local port to each controller port the client uses, through the
 * login node. The client then connects to 127.0.0.1; closing it ends ssh.
 *
 * ssh itself (not a library) so the user's ssh config, agent and keys apply, as with ipyparallel.
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as net from "node:net";
import type { ConnectionInfo } from "../protocol/connection";
import { TsParallelError } from "../protocol/errors";
import { splitCommand } from "../protocol/command-line";

export interface Tunnel {
  /** The connection info to use through the tunnel: 127.0.0.1 and the forwarded ports. */
  info: ConnectionInfo;
  close(): void;
}

/** A TCP port on 127.0.0.1 that nobody listens on now (the kernel's pick, released at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => (s.destroy(), resolve(true)));
    s.once("error", () => resolve(false));
  });
}

/**
 * Forwards the client and notification ports of `info` through `server` ("user@login-node").
 * Resolves once the forwards accept connections; rejects with ssh's own message if it fails.
 */
export async function openTunnel(
  info: ConnectionInfo,
  server: string,
  sshCommand = "ssh",
  timeoutMs = 15_000,
): Promise<Tunnel> {
  const remote = [info.ports.clients, info.ports.notification];
  const local = [await freePort(), await freePort()];
  const host = info.ip.includes(":") ? `[${info.ip}]` : info.ip;
  const [command, ...args] = splitCommand(sshCommand) as [string, ...string[]];
  const forwards = remote.flatMap((port, i) => ["-L", `127.0.0.1:${local[i]}:${host}:${port}`]);
  const ssh: ChildProcess = spawn(
    command,
    [...args, "-N", "-o", "ExitOnForwardFailure=yes", "-o", "BatchMode=yes", ...forwards, server],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  ssh.stderr?.on("data", (c: Buffer) => (stderr = (stderr + c.toString("utf8")).slice(-2000)));
  const exited = new Promise<string>((resolve) => {
    ssh.once("error", (e) => resolve(e.message));
    ssh.once("exit", (code, signal) => resolve(stderr.trim().split("\n").pop() || `ssh ended (${signal ?? code})`));
  });
  const close = (): void => {
    process.off("exit", close);
    if (ssh.exitCode === null && ssh.signalCode === null) ssh.kill("SIGTERM");
  };
  const deadline = Date.now() + timeoutMs;
  let failed: string | undefined;
  void exited.then((why) => (failed = why));
  for (;;) {
    if (failed !== undefined) throw new TsParallelError(`the ssh tunnel to ${server} failed: ${failed}`);
    if ((await accepts(local[0]!)) && (await accepts(local[1]!))) break;
    if (Date.now() > deadline) {
      close();
      throw new TsParallelError(`the ssh tunnel to ${server} was not up within ${timeoutMs} ms: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  // The client's sockets keep the process alive, not the tunnel; and the tunnel ends with it.
  ssh.unref();
  (ssh.stderr as net.Socket | null)?.unref();
  process.once("exit", close);
  return {
    info: { ...info, ip: "127.0.0.1", ports: { ...info.ports, clients: local[0]!, notification: local[1]! } },
    close,
  };
}
