/** `tsparallel engine [--profile P | --file engine.json]`: one engine, on this or another host. */
import { parseArgs } from "node:util";
import { connectionFile, readConnectionFile } from "../protocol/connection";
import { Engine } from "./engine";

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      profile: { type: "string", default: "default" },
      file: { type: "string" },
      timeout: { type: "string", default: "30000" },
      cwd: { type: "string" },
    },
  });
  // The heart's proxy holds one libuv pool thread for good: give the pool one more, so user code
  // keeps as many for fs, zlib and crypto as plain Node has (read when the pool first starts).
  process.env.UV_THREADPOOL_SIZE = String((Number(process.env.UV_THREADPOOL_SIZE) || 4) + 1);
  const info = readConnectionFile(values.file ?? connectionFile("engine", values.profile));
  const engine = new Engine(info, {
    controllerTimeout: Number(values.timeout),
    ...(values.cwd ? { cwd: values.cwd } : {}),
  });
  process.on("SIGTERM", () => void engine.close().then(() => process.exit(0)));
  await engine.start();
}
