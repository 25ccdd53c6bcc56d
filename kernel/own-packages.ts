/**
 * Cells must work in any folder, not only inside an npm project that has `@types/node` and
 * `tsparallel` installed (tslab alone fails there with "Cannot find name 'console'"). When the
 * notebook's folder cannot resolve them, the kernel lends its own copies:
 *   - to tslab's type checker, by mounting them under `<cwd>/node_modules/` in the `ts.sys`
 *     that tslab's compiler host reads through (nothing is written to disk);
 *   - to `require`, by resolving `tsparallel` to this package when Node's lookup fails.
 * A project's own installation always wins: the mounts exist only where nothing real is.
 */
import * as fs from "node:fs";
import Module from "node:module";
import * as path from "node:path";
import { PACKAGE_ROOT } from "../paths";

interface TsSys {
  fileExists(p: string): boolean;
  readFile(p: string, encoding?: string): string | undefined;
  directoryExists(p: string): boolean;
  getDirectories(p: string): string[];
  readDirectory(p: string, ...rest: unknown[]): string[];
  realpath?(p: string): string;
  watchFile?(p: string, ...rest: unknown[]): unknown;
}

/** Mounts real folders at virtual paths inside `ts.sys`. */
export function mountInTypeScript(sys: TsSys, mounts: ReadonlyMap<string, string>): void {
  if (mounts.size === 0) return;
  const toReal = (p: string): string => {
    for (const [virtual, real] of mounts) {
      if (p === virtual || p.startsWith(virtual + "/")) return real + p.slice(virtual.length);
    }
    return p;
  };
  // Parents of a mount (`<cwd>/node_modules`, `<cwd>/node_modules/@types`) must look like folders holding it.
  const children = new Map<string, Set<string>>();
  for (const virtual of mounts.keys()) {
    for (let child = virtual, dir = path.dirname(virtual); dir !== child; child = dir, dir = path.dirname(dir)) {
      if (!children.has(dir)) children.set(dir, new Set());
      children.get(dir)!.add(path.basename(child));
    }
  }
  const orig = {
    fileExists: sys.fileExists.bind(sys),
    readFile: sys.readFile.bind(sys),
    directoryExists: sys.directoryExists.bind(sys),
    getDirectories: sys.getDirectories.bind(sys),
    readDirectory: sys.readDirectory.bind(sys),
    realpath: sys.realpath?.bind(sys),
    watchFile: sys.watchFile?.bind(sys),
  };
  sys.fileExists = (p) => orig.fileExists(toReal(p));
  sys.readFile = (p, enc) => orig.readFile(toReal(p), enc);
  sys.directoryExists = (p) => children.has(p) || orig.directoryExists(toReal(p));
  sys.getDirectories = (p) => {
    const real = orig.directoryExists(toReal(p)) ? orig.getDirectories(toReal(p)) : [];
    return [...new Set([...real, ...(children.get(p) ?? [])])];
  };
  sys.readDirectory = (p, ...rest) =>
    orig.readDirectory(toReal(p), ...rest).map((f) => {
      const real = toReal(p);
      return f.startsWith(real) ? p + f.slice(real.length) : f;
    });
  if (orig.realpath) sys.realpath = (p) => orig.realpath!(toReal(p));
  if (orig.watchFile) sys.watchFile = (p, ...rest) => orig.watchFile!(toReal(p), ...rest);
}

/** Which of our packages `cwd` cannot see, as virtual path → real folder. */
export function missingPackages(cwd: string): Map<string, string> {
  const mounts = new Map<string, string>();
  const lend = (name: string, real: string): void => {
    if (!findUp(cwd, path.join("node_modules", name, "package.json")))
      mounts.set(path.join(cwd, "node_modules", name), real);
  };
  lend("@types/node", path.dirname(require.resolve("@types/node/package.json")));
  // Also inside this package (its notebooks/): TypeScript's node10 lookup has no self-reference.
  lend("tsparallel", PACKAGE_ROOT);
  return mounts;
}

/** Makes `require("tsparallel")` find this package when the cell's folder has none. */
export function lendToRequire(): void {
  const mod = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
  const resolve = mod._resolveFilename;
  mod._resolveFilename = function (request: string, ...rest: unknown[]): string {
    try {
      return resolve.call(this, request, ...rest);
    } catch (e) {
      if (request === "tsparallel" || request.startsWith("tsparallel/")) {
        const sub = request.slice("tsparallel".length);
        return resolve.call(this, sub ? path.join(PACKAGE_ROOT, sub) : PACKAGE_ROOT, ...rest);
      }
      throw e;
    }
  };
}

function findUp(from: string, rel: string): boolean {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, rel))) return true;
    if (path.dirname(dir) === dir) return false;
  }
}
