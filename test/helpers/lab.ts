/**
 * Bundles lab/index.ts (a JupyterLab 4 notebook page from npm's @jupyterlab/* packages) with
 * esbuild into `<outDir>/lab/`, ready for Jupyter Server's `extra_static_paths`.
 *
 * The packages are written for webpack, so a small plugin fills in what it would: `~pkg/...`
 * imports in CSS resolve as packages, SVG icons imported from JS are text, SVGs in CSS `url()`
 * become data URLs, fonts are files beside the bundle.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { type Plugin, build } from "esbuild";
import { PACKAGE_ROOT } from "../../paths";

const LAB = path.join(PACKAGE_ROOT, "lab");

const webpackIdioms: Plugin = {
  name: "webpack-idioms",
  setup(b) {
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

export async function buildLabPage(outDir: string): Promise<string> {
  const dir = path.join(outDir, "lab");
  fs.mkdirSync(dir, { recursive: true });
  await build({
    entryPoints: [path.join(LAB, "index.ts")],
    bundle: true,
    outdir: dir,
    format: "iife",
    target: "chrome110",
    minify: true,
    logLevel: "error",
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
  });
  fs.copyFileSync(path.join(LAB, "index.html"), path.join(dir, "index.html"));
  return dir;
}
