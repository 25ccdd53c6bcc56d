/**
 * Builds tsparallel's JupyterLab into lab-build/ (run by `npm run build`): what JupyterLab's own
 * builder (webpack + @jupyterlab/builder) produces for an app, done with esbuild.
 *
 * - static/: lab/app/index.ts bundled (ES modules, split so rarely used code loads on demand).
 * - schemas/<package>/: each bundled extension's settings schemas and its package.json.orig,
 *   where jupyterlab_server's settings API looks for them.
 * - themes/<package>/index.css: the light and dark themes, loaded at run time by the theme manager.
 *
 * The packages are written for webpack, so a small plugin fills in what it would: one copy of Yjs,
 * `~pkg/...`
 * imports in CSS resolve as packages, SVG icons imported from JS are text, SVGs in CSS `url()`
 * become data URLs, fonts are files beside the bundle.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { type BuildOptions, type Plugin, build } from "esbuild";
import { PACKAGE_ROOT } from "../paths";

export const LAB_SOURCE = path.join(PACKAGE_ROOT, "lab");
export const LAB_BUILD = path.join(PACKAGE_ROOT, "lab-build");

const webpackIdioms: Plugin = {
  name: "webpack-idioms",
  setup(b) {
    // One Yjs: a package required as CommonJS would bring yjs.cjs beside the ESM yjs.mjs, and
    // shared documents made by one copy are refused by the other ("Not same Y.Doc").
    b.onResolve({ filter: /^yjs$/ }, () => ({ path: path.join(packageDir("yjs"), "dist", "yjs.mjs") }));
    b.onResolve({ filter: /^~/ }, (args) =>
      b.resolve(args.path.slice(1), { kind: args.kind, resolveDir: args.resolveDir }),
    );
    b.onResolve({ filter: /\.svg$/ }, async (args) => {
      if (args.kind !== "url-token") return undefined;
      const r = await b.resolve(args.path, { kind: "import-statement", resolveDir: args.resolveDir });
      return { path: r.path, namespace: "svg-in-css" };
    });
    b.onLoad({ filter: /.*/, namespace: "svg-in-css" }, (args) => ({
      contents: fs.readFileSync(args.path),
      loader: "dataurl",
    }));
  },
};

const common: BuildOptions = {
  bundle: true,
  minify: true,
  logLevel: "error",
  target: "chrome110",
  loader: {
    ".svg": "text",
    ".woff": "file",
    ".woff2": "file",
    ".ttf": "file",
    ".eot": "file",
    ".png": "dataurl",
    ".gif": "dataurl",
  },
  define: { "process.env.NODE_ENV": '"production"', global: "globalThis" },
  plugins: [webpackIdioms],
};

/** The extension packages lab/app/index.ts imports (its `import("@jupyterlab/…")` calls). */
export function bundledExtensions(): string[] {
  const source = fs.readFileSync(path.join(LAB_SOURCE, "app", "index.ts"), "utf8");
  return [...source.matchAll(/import\("(@jupyterlab\/[\w-]+)"\)/g)].map((m) => m[1]!);
}

interface LabPackageJson {
  name: string;
  version: string;
  jupyterlab?: { schemaDir?: string; themePath?: string };
}

function packageDir(name: string): string {
  return path.dirname(require.resolve(`${name}/package.json`, { paths: [PACKAGE_ROOT] }));
}

function readPackage(dir: string): LabPackageJson {
  return JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")) as LabPackageJson;
}

export async function buildLab(out = LAB_BUILD): Promise<void> {
  fs.rmSync(out, { recursive: true, force: true });
  const staticDir = path.join(out, "static");
  await build({
    ...common,
    entryPoints: { bundle: path.join(LAB_SOURCE, "app", "index.ts") },
    outdir: staticDir,
    format: "esm",
    splitting: true,
    chunkNames: "chunks/[name]-[hash]",
    assetNames: "assets/[name]-[hash]",
  });
  for (const name of bundledExtensions()) {
    const dir = packageDir(name);
    const pkg = readPackage(dir);
    const schemaDir = pkg.jupyterlab?.schemaDir;
    if (schemaDir) {
      const to = path.join(out, "schemas", name);
      fs.mkdirSync(to, { recursive: true });
      for (const f of fs.readdirSync(path.join(dir, schemaDir)).filter((f) => f.endsWith(".json")))
        fs.copyFileSync(path.join(dir, schemaDir, f), path.join(to, f));
      fs.copyFileSync(path.join(dir, "package.json"), path.join(to, "package.json.orig"));
    }
    const themePath = pkg.jupyterlab?.themePath;
    if (themePath) {
      await build({
        ...common,
        entryPoints: { index: path.join(dir, themePath) },
        outdir: path.join(out, "themes", name),
        assetNames: "[name]-[hash]",
      });
    }
  }
}

if (require.main === module) {
  const t0 = Date.now();
  buildLab().then(
    () => console.log(`JupyterLab built in ${LAB_BUILD} (${((Date.now() - t0) / 1000).toFixed(1)} s)`),
    (e: unknown) => {
      console.error(`tsparallel: the JupyterLab build failed: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(1);
    },
  );
}
