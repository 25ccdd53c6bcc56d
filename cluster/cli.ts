/** `tsparallel cluster start|engines|stop|list|remove|top`. */
import * as os from "node:os";
import { parseArgs } from "node:util";
import * as path from "node:path";
import * as fs from "node:fs";
import { connectionFile, isAlive, profileDir, readConnectionFile, recordedControllerPid } from "../protocol/connection";
import { Cluster, stopController } from "./cluster";
import { TsParallelError } from "../protocol/errors";
import { LAUNCHER_FLAGS, specFromFlags } from "./launchers/spec";

export async function main(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case "start":
      return start(rest);
    case "engines":
      return engines(rest);
    case "stop":
      return stop(rest);
    case "list":
      return list(rest);
    case "remove":
      return remove(rest);
    case "top":
      return (await import("./top")).main(rest);
    default:
      throw new TsParallelError(
        `unknown cluster command ${JSON.stringify(sub ?? "")}: use \`tsparallel cluster start|engines|stop|list|remove|top\``,
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
      ...LAUNCHER_FLAGS,
      timeout: { type: "string", default: "120000" },
    },
  });
  const n = values.n === undefined ? undefined : Number(values.n);
  if (n !== undefined && !(Number.isInteger(n) && n >= 0))
    throw new RangeError(`-n must be a whole number of engines; got ${values.n}`);
  const spec = specFromFlags(values.engines, values);
  const t0 = Date.now();
  const cluster = await Cluster.start({
    ...(n !== undefined ? { n } : {}),
    profile: values.profile,
    detached: values.daemon,
    restartEngines: values["restart-engines"],
    timeout: Number(values.timeout),
    ...(values.heartbeat ? { heartbeatPeriod: Number(values.heartbeat) } : {}),
    ...spec,
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
    cluster.process?.once("exit", () => resolve());
  });
  await cluster.stop(); // also closes the client, whose sockets would keep this process alive
  console.log("Cluster stopped.");
}

/** `cluster engines -n N --engines KIND …`: one more engine set for a running cluster. */
async function engines(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      n: { type: "string", short: "n" },
      profile: { type: "string", default: "default" },
      engines: { type: "string", default: "local" },
      ...LAUNCHER_FLAGS,
      timeout: { type: "string", default: "120000" },
    },
  });
  const n = Number(values.n);
  if (values.n === undefined || !(Number.isInteger(n) && n >= 1))
    throw new RangeError(`-n must be a whole number of engines ≥ 1; got ${values.n ?? "nothing"}`);
  const spec = specFromFlags(values.engines, values);
  const cluster = await Cluster.attach(values.profile);
  try {
    const t0 = Date.now();
    const set = await cluster.addEngines(n, { ...spec, timeout: Number(values.timeout) });
    const info = (await cluster.engineSets()).find((s) => s.id === set);
    console.log(
      `Engine set ${set} added to cluster "${values.profile}": ${n} ${spec.engines} engines registered in ${((Date.now() - t0) / 1000).toFixed(2)} s${info?.jobId ? ` (job ${info.jobId})` : ""}; the cluster has ${cluster.client.ids.length} engines.`,
    );
  } finally {
    cluster.client.close();
  }
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
  await stopController(pid);
  console.log(`Cluster "${values.profile}" stopped (controller pid ${pid}).`);
}

/** Forgets a stopped profile: its folder (connection files, logs, task database) goes. */
function remove(argv: string[]): void {
  const { values } = parseArgs({ args: argv, options: { profile: { type: "string" } } });
  const profile = values.profile;
  if (!profile) throw new TsParallelError("cluster remove needs --profile P (the profile to forget)");
  const pid = recordedControllerPid(connectionFile("client", profile));
  if (pid !== undefined && isAlive(pid))
    throw new TsParallelError(`cluster ${profile} is running (controller pid ${pid}): stop it first`);
  const dir = profileDir(profile);
  if (!fs.existsSync(dir)) throw new TsParallelError(`no profile ${JSON.stringify(profile)} (no ${dir})`);
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(`Profile "${profile}" removed (${dir}, with its logs and task database).`);
}

async function list(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { json: { type: "boolean", default: false } } });
  const clusters = await Cluster.list();
  if (values.json) {
    console.log(JSON.stringify(clusters));
    return;
  }
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
  const line = (r: string[]): string =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  console.log(line(rows[0]!));
  clusters.forEach((c, i) => {
    console.log(line(rows[i + 1]!));
    for (const s of c.sets)
      console.log(
        `  engine set ${s.id}: ${s.kind}, ${s.state}, ${s.registered} of ${s.n} engines registered${s.jobId ? `, job ${s.jobId}` : ""}${s.detail ? ` (${s.detail})` : ""}`,
      );
  });
}
