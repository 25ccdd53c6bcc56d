/** `tsparallel engine [--profile P | --file engine.json]`: one engine, on this or another host. */
import { parseArgs } from "node:util";
import { connectionFile, parseConnectionInfo, readConnectionFile } from "../protocol/connection";
import { Engine } from "./engine";

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      profile: { type: "string", default: "default" },
      file: { type: "string" },
      timeout: { type: "string", default: "30000" },
      cwd: { type: "string" },
      // Set by the ssh launcher: stdin is the ssh session, whose end (the launcher stopped, or
      // the connection died) must end the engine on the remote host too.
      "exit-with-stdin": { type: "boolean", default: false },
    },
  });
  // The heart's proxy holds one libuv pool thread for good: give the pool one more, so user code
  // keeps as many for fs, zlib and crypto as plain Node has (read when the pool first starts).
  process.env.UV_THREADPOOL_SIZE = String((Number(process.env.UV_THREADPOOL_SIZE) || 4) + 1);
  // A launcher on another host passes the connection info in the environment (no shared files).
  const fromEnv = process.env.TSPARALLEL_CONNECTION_INFO;
  const info = fromEnv
    ? parseConnectionInfo(fromEnv, "TSPARALLEL_CONNECTION_INFO")
    : readConnectionFile(values.file ?? connectionFile("engine", values.profile));
  const rank = mpiRank();
  const engine = new Engine(info, {
    controllerTimeout: Number(values.timeout),
    ...(values.cwd ? { cwd: values.cwd } : {}),
    ...(rank !== undefined ? { requestedId: rank } : {}),
    ...(process.env.TSPARALLEL_ENGINE_SET ? { engineSet: process.env.TSPARALLEL_ENGINE_SET } : {}),
  });
  const stop = (): void => void engine.close().then(() => process.exit(0));
  process.on("SIGTERM", stop);
  if (values["exit-with-stdin"]) {
    process.stdin.on("end", stop);
    process.stdin.on("error", stop);
    process.stdin.resume();
  }
  try {
    await engine.start();
  } catch (e) {
    // An engine that cannot register has nothing to do: say why and exit, never linger.
    await engine.close();
    process.stderr.write(`tsparallel: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
}

/**
 * The rank this engine runs as in an MPI job (OpenMPI, MPICH/PMI, PMIx) or a Slurm step: its id,
 * as ipengine --mpi does. The controller gives another id when the rank's is taken.
 */
function mpiRank(): number | undefined {
  for (const name of ["OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"]) {
    const v = Number(process.env[name]);
    if (process.env[name] !== undefined && Number.isInteger(v) && v >= 0) return v;
  }
  return undefined;
}
