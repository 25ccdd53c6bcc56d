/**
 * Where this package lives, computed once. Compiled, this file is `dist/paths.js`, so the
 * package root is one level up, and the CLI sits beside it at `dist/cli.js`.
 */
import * as path from "node:path";

/** The package root: the folder with package.json, notebooks/ and lab/. */
export const PACKAGE_ROOT = path.resolve(__dirname, "..");

/** The compiled `tsparallel` command, to spawn controllers and engines with the running Node. */
export const CLI_PATH = path.join(PACKAGE_ROOT, "dist", "cli.js");
