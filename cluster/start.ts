/**
 * `npm start` (`tsparallel start`): the main job in one command. Installs the kernelspec if it is
 * missing, starts a local cluster (or uses the running one), and opens Debian's Jupyter Notebook
 * on notebooks/ at 127.0.0.1, printing its URL. Ctrl-C stops what this command started.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { Cluster } from "./cluster";
import { PACKAGE_ROOT } from "../paths";
import { install, kernelsDir } from "../kernel/install";
import { connectionFile, isAlive, recordedControllerPid } from "../protocol/connection";
import { TsParallelError } from "../protocol/errors";

const JUPYTER_CANDIDATES = ["/usr/bin/jupyter", "jupyter"];

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: { engines: { type: "string", short: "n" }, port: { type: "string" }, dir: { type: "string" } },
  });
  const jupyter = findJupyter();
  const dir = path.resolve(values.dir ?? path.join(PACKAGE_ROOT, "notebooks"));

  const spec = path.join(kernelsDir({ user: true }), "tsparallel", "kernel.json");
  if (!fs.existsSync(spec) || !fs.readFileSync(spec, "utf8").includes(path.join(PACKAGE_ROOT, "dist")))
    console.log(`Installed the kernelspec in ${install({ user: true })}`);

  trustTutorials(jupyter);
  const cluster = await startOrReuseCluster(
    values.engines ? Number(values.engines) : Math.max(2, os.availableParallelism()),
  );
  const args = [
    "notebook",
    "--no-browser",
    "--ip=127.0.0.1",
    `--port=${values.port ?? "8888"}`,
    `--notebook-dir=${dir}`,
    ...(process.getuid?.() === 0 ? ["--allow-root"] : []),
  ];
  // Its own process group: the terminal's Ctrl-C reaches only us, and we stop Jupyter with SIGTERM
  // (a SIGINT would make it ask "Shutdown this notebook server (y/[n])?").
  const server = spawn(jupyter, args, {
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
    env: { ...process.env, PYDEVD_DISABLE_FILE_VALIDATION: "1" },
  });
  let printed = false;
  const watch = (chunk: Buffer): void => {
    const url = /(http:\/\/127\.0\.0\.1:\d+\/\S*token=\w+)/.exec(chunk.toString())?.[1];
    if (url && !printed) {
      printed = true;
      console.log(
        `Jupyter Notebook is at ${url}\nOpen a notebook, pick the kernel "TypeScript (tsparallel)"; Ctrl-C here stops Jupyter${cluster ? " and the cluster" : ""}.`,
      );
    }
  };
  server.stdout.on("data", watch);
  server.stderr.on("data", watch);

  let stopping = false;
  const stop = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    console.log("Stopping Jupyter" + (cluster ? " and the cluster" : "") + "...");
    if (server.exitCode === null) server.kill("SIGTERM");
    await exited(server, 10_000);
    await cluster?.stop();
    process.exit(code);
  };
  process.on("SIGINT", () => void stop(0));
  process.on("SIGTERM", () => void stop(0));
  server.on("exit", (code) => {
    if (!printed)
      console.error(
        `tsparallel: Jupyter Notebook exited (code ${code}) before it started; is port ${values.port ?? "8888"} taken? Try --port 8899`,
      );
    void stop(code ?? 1);
  });
}

/**
 * The tutorials ship with their outputs, charts (SVG) and tables (HTML) included, which Jupyter
 * shows only for notebooks it trusts. Signing them with Jupyter's own notary (nbformat.sign, what
 * `jupyter trust` runs) lets them display as shipped, with no manual "Trust" step; a notebook the
 * user edits is re-signed by Jupyter on save as usual.
 */
function trustTutorials(jupyter: string): void {
  const dir = path.join(PACKAGE_ROOT, "notebooks");
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".ipynb"))
    .map((f) => path.join(dir, f));
  const signed = spawnSync(pythonOf(jupyter), ["-m", "nbformat.sign", ...files], { encoding: "utf8" });
  if (signed.status !== 0) {
    const why = (signed.stderr || signed.error?.message || "").trim().split("\n").pop();
    console.warn(`tsparallel: could not sign the tutorials (${why}); their charts show once you trust them`);
  }
}

/** The Python that runs `jupyter` (its shebang), so nbformat is the one Jupyter uses. */
function pythonOf(jupyter: string): string {
  const file = jupyter.includes("/") ? jupyter : which(jupyter);
  const shebang = file ? /^#!\s*(\S+)/.exec(fs.readFileSync(file, "utf8").split("\n", 1)[0] ?? "")?.[1] : undefined;
  return shebang ?? "python3";
}

function findJupyter(): string {
  for (const candidate of JUPYTER_CANDIDATES) {
    if (candidate.includes("/") ? fs.existsSync(candidate) : which(candidate)) return candidate;
  }
  throw new TsParallelError(
    "Jupyter Notebook is not installed: on Debian run `sudo apt-get install jupyter-notebook`, then `npm start` again",
  );
}

function which(cmd: string): string | undefined {
  return (process.env.PATH ?? "")
    .split(path.delimiter)
    .map((d) => path.join(d, cmd))
    .find((p) => fs.existsSync(p));
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
