/**
 * `npm start` (`tsparallel start`): the main job in one command. Sets up what is missing (the
 * Jupyter packages, the kernelspec, the JupyterLab build), starts the default cluster (or uses the
 * running one), and serves tsparallel's JupyterLab (lab/) on 127.0.0.1 with D in its file browser,
 * printing one URL with the token. Ctrl-C stops what this command started.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { Cluster } from "./cluster";
import { LAB_REQUIREMENTS, ensure, jupyterPython } from "./setup";
import { CLI_PATH, PACKAGE_ROOT } from "../paths";
import { install, kernelsDir } from "../kernel/install";
import { connectionFile, isAlive, recordedControllerPid } from "../protocol/connection";
import { TsParallelError } from "../protocol/errors";

const LAB_BUILD = path.join(PACKAGE_ROOT, "lab-build");

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: { engines: { type: "string", short: "n" }, port: { type: "string" }, dir: { type: "string" } },
  });
  const n = values.engines === undefined ? Math.max(2, os.availableParallelism()) : Number(values.engines);
  if (!Number.isInteger(n) || n < 1)
    throw new RangeError(`-n must be a whole number of engines ≥ 1; got ${values.engines}`);
  const port = values.port === undefined ? 8888 : Number(values.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new RangeError(`--port must be a TCP port; got ${values.port}`);
  const dir = path.resolve(values.dir ?? path.join(PACKAGE_ROOT, "notebooks"));
  if (!fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory())
    throw new TsParallelError(`--dir ${dir} is not a directory`);

  const python = jupyterPython();
  ensure(LAB_REQUIREMENTS, "tsparallel start", python);
  if (!fs.existsSync(path.join(LAB_BUILD, "static", "bundle.js"))) {
    console.log("Building JupyterLab (lab-build/)...");
    await (await import("../lab/build")).buildLab(LAB_BUILD);
  }
  const spec = path.join(kernelsDir({ user: true }), "tsparallel", "kernel.json");
  if (!fs.existsSync(spec) || !fs.readFileSync(spec, "utf8").includes(path.join(PACKAGE_ROOT, "dist")))
    console.log(`Installed the kernelspec in ${install({ user: true })}`);
  trustTutorials(python);

  const cluster = await startOrReuseCluster(n);
  const token = randomBytes(24).toString("hex");
  const args = [
    "-m",
    "jupyter_server",
    "--ServerApp.jpserver_extensions",
    "tsparallel_lab=True",
    "--no-browser",
    "--ip=127.0.0.1",
    `--port=${port}`,
    "--port-retries=0",
    `--ServerApp.root_dir=${dir}`,
    "--MappingKernelManager.default_kernel_name=tsparallel",
    ...(process.getuid?.() === 0 ? ["--allow-root"] : []),
  ];
  // Its own process group: the terminal's Ctrl-C reaches only us, and we stop Jupyter with SIGTERM
  // (a SIGINT would make it ask "Shutdown this server (y/[n])?").
  const server = spawn(python, args, {
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
    env: {
      ...process.env,
      PYTHONPATH: [path.join(PACKAGE_ROOT, "lab", "server"), process.env.PYTHONPATH]
        .filter(Boolean)
        .join(path.delimiter),
      TSPARALLEL_LAB_BUILD: LAB_BUILD,
      TSPARALLEL_NODE: process.execPath,
      TSPARALLEL_CLI: CLI_PATH,
      PYDEVD_DISABLE_FILE_VALIDATION: "1",
      // Not on the command line: /proc/<pid>/cmdline is readable by every local user, a
      // process's environment only by its owner. Jupyter reads the token from here.
      JUPYTER_TOKEN: token,
    },
  });
  const url = `http://127.0.0.1:${port}/lab?token=${token}`;
  let printed = false;
  let log = "";
  const watch = (chunk: Buffer): void => {
    log = (log + chunk.toString()).slice(-8192);
    if (!printed && /Jupyter Server .* is running at|Use Control-C to stop this server/.test(log)) {
      printed = true;
      console.log(`JupyterLab is at ${url}\nCtrl-C here stops JupyterLab${cluster ? " and the cluster" : ""}.`);
    }
  };
  server.stdout.on("data", watch);
  server.stderr.on("data", watch);

  let stopping = false;
  const stop = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    console.log("Stopping JupyterLab" + (cluster ? " and the cluster" : "") + "...");
    if (server.exitCode === null) server.kill("SIGTERM");
    await exited(server, 10_000);
    await cluster?.stop();
    process.exit(code);
  };
  process.on("SIGINT", () => void stop(0));
  process.on("SIGTERM", () => void stop(0));
  server.on("exit", (code) => {
    if (!printed) {
      const why = log.includes("is already in use")
        ? `port ${port} is taken: try --port ${port + 11}`
        : log.trim().split("\n").pop();
      console.error(`tsparallel: JupyterLab exited (code ${code}) before it started: ${why}`);
    }
    void stop(code ?? 1);
  });
}

/**
 * The tutorials ship with their outputs, charts (SVG) and tables (HTML) included, which Jupyter
 * shows only for notebooks it trusts. Signing them with Jupyter's own notary (nbformat.sign, what
 * `jupyter trust` runs) lets them display as shipped, with no manual "Trust" step; a notebook the
 * user edits is re-signed by Jupyter on save as usual.
 */
function trustTutorials(python: string): void {
  const dir = path.join(PACKAGE_ROOT, "notebooks");
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".ipynb"))
    .map((f) => path.join(dir, f));
  const signed = spawnSync(python, ["-m", "nbformat.sign", ...files], { encoding: "utf8" });
  if (signed.status !== 0) {
    const why = (signed.stderr || signed.error?.message || "").trim().split("\n").pop();
    console.warn(`tsparallel: could not sign the tutorials (${why}); their charts show once you trust them`);
  }
}

/** The default profile's running cluster is used as it is (and left running); otherwise one is started. */
async function startOrReuseCluster(n: number): Promise<Cluster | undefined> {
  const pid = recordedControllerPid(connectionFile("client", "default"));
  if (pid !== undefined && isAlive(pid)) {
    console.log(`Using the running cluster (controller pid ${pid})`);
    return undefined;
  }
  const cluster = await Cluster.start({ n, profile: "default" });
  console.log(`Cluster started: ${cluster.client.ids.length} engines (profile "default")`);
  return cluster;
}

function exited(child: ChildProcess, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => (child.kill("SIGKILL"), resolve()), ms);
    child.once("exit", () => (clearTimeout(timer), resolve()));
  });
}
