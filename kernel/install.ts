/**
 * `tsparallel install [--user | --prefix P | --sys-prefix]`: writes the kernelspec `tsparallel`
 * ("TypeScript (tsparallel)") where Jupyter looks for kernels. It writes the folder itself, so
 * it needs no Python and cannot pick the wrong one.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { CLI_PATH } from "../paths";
import { TsParallelError } from "../protocol/errors";

export const KERNEL_NAME = "tsparallel";

export function kernelSpec(): Record<string, unknown> {
  return {
    argv: [process.execPath, CLI_PATH, "kernel", "--config-path", "{connection_file}"],
    display_name: "TypeScript (tsparallel)",
    language: "typescript",
    interrupt_mode: "signal",
    metadata: { debugger: false },
  };
}

/** Jupyter's data dir for kernels: `--prefix P` → P/share/jupyter, `--user` → the user's data dir. */
export function kernelsDir(opts: { user?: boolean; prefix?: string; sysPrefix?: boolean }): string {
  if (opts.prefix) return path.join(path.resolve(opts.prefix), "share", "jupyter", "kernels");
  if (opts.sysPrefix) return path.join("/usr", "local", "share", "jupyter", "kernels");
  const data =
    process.env.JUPYTER_DATA_DIR ??
    path.join(process.env.XDG_DATA_HOME ?? path.join(os.homedir(), ".local", "share"), "jupyter");
  return path.join(data, "kernels");
}

export function install(opts: { user?: boolean; prefix?: string; sysPrefix?: boolean } = {}): string {
  const dir = path.join(kernelsDir(opts), KERNEL_NAME);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "kernel.json"), JSON.stringify(kernelSpec(), null, 2) + "\n");
  return dir;
}

export function main(argv: string[]): void {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: { user: { type: "boolean" }, prefix: { type: "string" }, "sys-prefix": { type: "boolean" } },
  });
  if ([values.user, values.prefix, values["sys-prefix"]].filter(Boolean).length > 1)
    throw new TsParallelError("give one of --user, --prefix P or --sys-prefix");
  const dir = install({ user: values.user, prefix: values.prefix, sysPrefix: values["sys-prefix"] });
  console.log(`Installed kernelspec ${KERNEL_NAME} ("TypeScript (tsparallel)") in ${dir}`);
  if (values.prefix)
    console.log(`Jupyter finds it with JUPYTER_PATH=${path.join(path.resolve(values.prefix), "share", "jupyter")}`);
}
