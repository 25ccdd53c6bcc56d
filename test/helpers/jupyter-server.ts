/**
 * Debian's Jupyter Server (1.23, /usr/bin/jupyter server) on a private port and token, and the
 * @jupyterlab/services kernel and kernelspec managers talking to it from Node (Node 20 has fetch
 * but no WebSocket: the `ws` package stands in). Not the whole ServiceManager: its event and user
 * services need Jupyter Server 2 endpoints, and a failed event websocket is an uncaught error in
 * Node (a browser only logs it). The process is killed by pid in `stop`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { KernelManager, KernelSpecAPI, ServerConnection } from "@jupyterlab/services";
import WebSocket from "ws";
import { killQuietly, testRoot, until } from "./cluster";
import { installKernel } from "./jupyter";

export interface JupyterServer {
  url: string;
  token: string;
  port: number;
  root: string;
  kernels: KernelManager;
  kernelspecs(): ReturnType<typeof KernelSpecAPI.getSpecs>;
  startKernel(name: string): ReturnType<KernelManager["startNew"]>;
  stop(): Promise<void>;
}

let portCounter = 0;

export async function startJupyterServer(opts: { staticDir?: string } = {}): Promise<JupyterServer> {
  installKernel();
  const root = path.join(testRoot, `server-root-${++portCounter}`);
  fs.mkdirSync(root, { recursive: true });
  const port = 21000 + ((process.pid * 7 + portCounter * 131) % 20000);
  const token = randomBytes(16).toString("hex");
  const args = [
    "server",
    "--no-browser",
    "--ip=127.0.0.1",
    `--port=${port}`,
    "--port-retries=0",
    `--ServerApp.token=${token}`,
    `--ServerApp.root_dir=${root}`,
    ...(opts.staticDir ? [`--ServerApp.extra_static_paths=${JSON.stringify([opts.staticDir])}`] : []),
    ...(process.getuid?.() === 0 ? ["--allow-root"] : []),
  ];
  const child: ChildProcess = spawn("/usr/bin/jupyter", args, {
    env: { ...process.env, PYDEVD_DISABLE_FILE_VALIDATION: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  child.stdout!.on("data", (c: Buffer) => (log += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (log += c.toString()));
  const url = `http://127.0.0.1:${port}`;
  await until(
    async () => {
      if (child.exitCode !== null) throw new Error(`jupyter server exited (${child.exitCode}):\n${log}`);
      return fetch(`${url}/api/status?token=${token}`).then(
        (r) => r.ok,
        () => false,
      );
    },
    60_000,
    `jupyter server on ${url}`,
  );
  const serverSettings = ServerConnection.makeSettings({
    baseUrl: `${url}/`,
    wsUrl: `ws://127.0.0.1:${port}/`,
    token,
    appendToken: true,
    WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
  });
  const kernels = new KernelManager({ serverSettings });
  await kernels.ready;
  return {
    url,
    token,
    port,
    root,
    kernels,
    // The REST call, not a KernelSpecManager: a disposed lumino Poll leaves its 61 s timer armed,
    // which keeps Node alive for a minute after the test.
    kernelspecs: () => KernelSpecAPI.getSpecs(serverSettings),
    // A new connection may only send kernel_info once its websocket is up: wait for that, and
    // for the kernel's first kernel_info reply, as JupyterLab's session context does.
    startKernel: async (name) => {
      const kernel = await kernels.startNew({ name });
      await until(() => kernel.connectionStatus === "connected", 30_000, `a websocket to kernel ${name}`);
      await kernel.info;
      return kernel;
    },
    stop: async () => {
      kernels.dispose();
      child.kill("SIGTERM");
      await until(() => child.exitCode !== null || child.signalCode !== null, 10_000, "jupyter server to exit").catch(
        () => killQuietly(child.pid!),
      );
    },
  };
}
