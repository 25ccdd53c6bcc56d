/**
 * Where this package lives, computed once. Compiled code runs from `dist/<folder>/`, so the
 * package root is two levels up from here, and the CLI sits at `dist/cli.js`.
 */
import * as path from "node:path";

/** The package root: the folder with package.json, notebooks/ and lab/. */
export const PACKAGE_ROOT = path.resolve(__dirname, "..", "..");

/** The compiled `tsparallel` command, to spawn controllers and engines with the running Node. */
export const CLI_PATH = path.join(PACKAGE_ROOT, "dist", "cli.js");
