/** `tsparallel cluster start|stop|list`. */
import * as os from "node:os";
import { parseArgs } from "node:util";
import * as path from "node:path";
import { connectionFile, isAlive, readConnectionFile } from "../protocol/connection";
import { Cluster } from "./cluster";
import { TsParallelError } from "../protocol/errors";

export async function main(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case "start":
      return start(rest);
    case "stop":
      return stop(rest);
    case "list":
      return list();
    default:
      throw new TsParallelError(
        `unknown cluster command ${JSON.stringify(sub ?? "")}: use \`tsparallel cluster start|stop|list\``,
      );
  }
}

async function start(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      n: { type: "string", short: "n" },
      profile: { type: "string", default: "default" },
      daemon: { type: "boolean", default: false },
      "restart-engines": { type: "boolean", default: false },
      ip: { type: "string" },
      curve: { type: "boolean", default: false },
      heartbeat: { type: "string" },
      engines: { type: "string", default: "local" },
      mpiexec: { type: "string" },
      timeout: { type: "string", default: "120000" },
    },
  });
  const n = values.n === undefined ? undefined : Number(values.n);
  if (n !== undefined && !(Number.isInteger(n) && n >= 0))
    throw new RangeError(`-n must be a whole number of engines; got ${values.n}`);
  const t0 = Date.now();
  const cluster = await Cluster.start({
    ...(n !== undefined ? { n } : {}),
    profile: values.profile,
    detached: values.daemon,
    restartEngines: values["restart-engines"],
    timeout: Number(values.timeout),
    ...(values.heartbeat ? { heartbeatPeriod: Number(values.heartbeat) } : {}),
    engines: engineKind(values.engines),
    ...(values.mpiexec ? { mpiexec: values.mpiexec } : {}),
    controllerArgs: [...(values.ip ? ["--ip", values.ip] : []), ...(values.curve ? ["--curve"] : [])],
  });
  const ids = cluster.client.ids;
  console.log(
    `Cluster "${values.profile}" started: controller pid ${cluster.pid}, ${ids.length} engines registered [${ids.join(", ")}] in ${((Date.now() - t0) / 1000).toFixed(2)} s`,
  );
  console.log(`Connection file: ${connectionFile("client", values.profile)}`);
  if (values.daemon) {
    cluster.client.close();
    console.log(
      `Running in the background; stop it with \`tsparallel cluster stop${values.profile === "default" ? "" : ` --profile ${values.profile}`}\``,
    );
    return;
  }
  console.log("Press Ctrl-C to stop the cluster.");
  // Ends on Ctrl-C or SIGTERM here, or when the controller exits (`tsparallel cluster stop` in
  // another shell, as `ipcluster stop` ends a foreground `ipcluster start`).
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
    cluster.process.once("exit", () => resolve());
  });
  await cluster.stop(); // also closes the client, whose sockets would keep this process alive
  console.log("Cluster stopped.");
}

async function stop(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { profile: { type: "string", default: "default" } } });
  const file = connectionFile("client", values.profile);
  let pid: number;
  try {
    pid = readConnectionFile(file).controller_pid;
  } catch {
    console.log(`No cluster is running for profile "${values.profile}" (no ${file}).`);
    return;
  }
  if (!isAlive(pid)) {
    console.log(`No cluster is running for profile "${values.profile}" (controller pid ${pid} is gone).`);
    return;
  }
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + 15_000;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (isAlive(pid)) process.kill(pid, "SIGKILL");
  console.log(`Cluster "${values.profile}" stopped (controller pid ${pid}).`);
}

async function list(): Promise<void> {
  const clusters = await Cluster.list();
  if (clusters.length === 0) {
    console.log("No clusters found. Start one with `tsparallel cluster start -n 4`.");
    return;
  }
  const home = os.homedir();
  const rows = [
    ["PROFILE", "STATE", "ENGINES", "CONTROLLER PID", "CONNECTION FILE"],
    ...clusters.map((c) => [
      c.profile,
      c.running ? "running" : "stopped",
      c.engines === undefined ? "-" : String(c.engines),
      c.running ? String(c.controllerPid) : "-",
      c.connectionFile.startsWith(home + path.sep) ? "~" + c.connectionFile.slice(home.length) : c.connectionFile,
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows)
    console.log(
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    );
}

/** The launchers this version has; the others of the design (ssh, slurm, batch) are refused in one line. */
function engineKind(kind: string): "local" | "mpi" {
  if (kind === "local" || kind === "mpi") return kind;
  throw new RangeError(`--engines ${kind} is not available: use local or mpi`);
}
