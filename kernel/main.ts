/** `tsparallel kernel --config-path FILE`: what Jupyter runs (the kernelspec's argv). */
import { parseArgs } from "node:util";
import { KernelChannels, readKernelConnection } from "./channels";
import { Kernel } from "./kernel";
import { Shell } from "./shell";
import { TsParallelError } from "../protocol/errors";

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { "config-path": { type: "string", short: "f" } },
    strict: true,
  });
  const file = values["config-path"];
  if (!file)
    throw new TsParallelError(
      "usage: tsparallel kernel --config-path FILE (Jupyter starts the kernel and passes its connection file; register it with `tsparallel install`)",
    );
  const conn = readKernelConnection(file);
  // The kernel's own log goes to the real stderr (Jupyter's console); cell output goes to iopub.
  const stderr = process.stderr.write.bind(process.stderr);
  const log = (line: string): void => void stderr(`[tsparallel kernel] ${line}\n`);
  const channels = await KernelChannels.bind(conn, log);
  const shell = new Shell(process.cwd());
  new Kernel(channels, shell, log).start();
  exitWithParent();
}

/** A kernel whose Jupyter died without a shutdown_request must not linger (ipykernel's ParentPoller). */
function exitWithParent(): void {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(0);
  }, 1000).unref();
}
