/** `tsparallel controller [--profile P] [--ip A] [--engines N] …`: the controller alone. */
import { parseArgs } from "node:util";
import { Controller } from "./controller";
import { isSchemeName } from "./schemes";
import { DEFAULT_POLICY } from "./database";
import { LAUNCHER_FLAGS, specFromFlags } from "../cluster/launchers/spec";

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      profile: { type: "string", default: "default" },
      ip: { type: "string", default: "127.0.0.1" },
      engines: { type: "string", default: "0" },
      "restart-engines": { type: "boolean", default: false },
      heartbeat: { type: "string", default: "1000" },
      scheme: { type: "string", default: "leastload" },
      hwm: { type: "string", default: "32" },
      curve: { type: "boolean", default: false },
      reuse: { type: "boolean", default: false },
      "drop-orphans": { type: "boolean", default: false },
      db: { type: "string" },
      "db-max-mb": { type: "string", default: String(DEFAULT_POLICY.maxBytes / 2 ** 20) },
      "db-max-days": { type: "string", default: String(DEFAULT_POLICY.maxAgeMs / 86_400_000) },
      launcher: { type: "string", default: "local" },
      ...LAUNCHER_FLAGS,
      // Set by Cluster.start for a cluster that belongs to the process that started it: stdin is
      // a pipe from that process, and its end (the owner exited, however it exited) stops us.
      "exit-with-stdin": { type: "boolean", default: false },
    },
  });
  if (!isSchemeName(values.scheme))
    throw new RangeError(`unknown --scheme ${values.scheme}: use leastload, lru, twobin, plainrandom or weighted`);
  const num = (name: string, v: string, min: number): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new RangeError(`--${name} must be a number ≥ ${min}; got ${v}`);
    return n;
  };
  const controller = new Controller({
    profile: values.profile,
    ip: values.ip,
    engines: num("engines", values.engines, 0),
    restartEngines: values["restart-engines"],
    heartbeatPeriod: num("heartbeat", values.heartbeat, 10),
    scheme: values.scheme,
    hwm: num("hwm", values.hwm, 1),
    curve: values.curve,
    reuse: values.reuse,
    dropOrphans: values["drop-orphans"],
    ...(values.db !== undefined ? { db: values.db } : {}),
    dbPolicy: {
      maxBytes: num("db-max-mb", values["db-max-mb"], 1) * 2 ** 20,
      maxAgeMs: num("db-max-days", values["db-max-days"], 0) * 86_400_000,
    },
    engineSpec: specFromFlags(values.launcher, values),
  });
  const stop = (): void => void controller.close();
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  if (values["exit-with-stdin"]) {
    process.stdin.on("end", stop);
    process.stdin.on("error", stop);
    process.stdin.resume();
  }
  try {
    await controller.start();
  } catch (e) {
    // Its sockets, and the owner's pipe, would keep a controller that cannot start alive.
    await controller.close();
    process.stdin.destroy();
    throw e;
  }
  await controller.done;
  process.stdin.destroy(); // the owner's pipe, if any, must not keep the process alive
}
