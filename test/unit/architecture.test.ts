/**
 * The import graph the design asks for, checked on the sources: only protocol/ touches bytes and
 * imports nothing of ours, the engine never imports the client, and no module imports itself
 * through a cycle.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import ts from "typescript";
import { PACKAGE_ROOT } from "../../paths";

const FOLDERS = ["protocol", "transpile", "engine", "controller", "client", "cluster", "magics", "kernel"];

/** The .ts files under `dir`, subfolders included (cluster/launchers/ among them). */
function sources(dir: string): string[] {
  return fs
    .readdirSync(path.join(PACKAGE_ROOT, dir), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts"))
    .map((f) => path.posix.join(dir, f.split(path.sep).join("/")));
}

/** Every source module (path relative to the root, no extension) and the modules it imports. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const files = ["index.ts", "cli.ts", "paths.ts", ...FOLDERS.flatMap(sources)];
  for (const file of files) {
    const text = fs.readFileSync(path.join(PACKAGE_ROOT, file), "utf8");
    const imports = ts
      .preProcessFile(text, true, true)
      .importedFiles.map((i) => i.fileName)
      .filter((name) => name.startsWith("."))
      .map((name) => path.posix.normalize(path.posix.join(path.posix.dirname(file), name)));
    graph.set(file.replace(/\.ts$/, ""), imports);
  }
  return graph;
}

/** A module's layer: its folder; at the root, paths.ts is a layer of its own below everything. */
const folderOf = (module: string): string =>
  module.includes("/") ? module.split("/")[0]! : module === "paths" ? "paths" : "(entry)";

test("protocol imports nothing of ours but itself", () => {
  for (const [module, imports] of importGraph()) {
    if (folderOf(module) !== "protocol") continue;
    for (const i of imports) assert.equal(folderOf(i), "protocol", `${module} imports ${i}`);
  }
});

test("the engine never imports the client library, nor the kernel or magics", () => {
  for (const [module, imports] of importGraph()) {
    if (folderOf(module) !== "engine") continue;
    for (const i of imports) assert.ok(["engine", "protocol"].includes(folderOf(i)), `${module} imports ${i}`);
  }
});

test("every module is in the graph, those in subfolders too", () => {
  const graph = importGraph();
  assert.ok(graph.has("cluster/launchers/launcher"), "cluster/launchers/ is read");
  for (const imports of graph.values())
    for (const i of imports) assert.ok(graph.has(i) || !FOLDERS.includes(folderOf(i)), `${i} is not in the graph`);
});

test("the controller and engine processes never load the client library, the kernel or the magics", () => {
  const graph = importGraph();
  for (const entry of ["controller/main", "engine/main"]) {
    assert.ok(graph.has(entry), `${entry} exists`);
    const seen = new Set<string>();
    const visit = (m: string, trail: string[]): void => {
      if (seen.has(m)) return;
      seen.add(m);
      const layer = folderOf(m);
      assert.ok(!["client", "kernel", "magics"].includes(layer), `${entry} loads ${[...trail, m].join(" → ")}`);
      for (const next of graph.get(m) ?? []) visit(next, [...trail, m]);
    };
    visit(entry, []);
  }
});

test("the folders form layers: no folder imports one that imports it back", () => {
  const edges = new Map<string, Set<string>>();
  for (const [module, imports] of importGraph())
    for (const i of imports) {
      const [from, to] = [folderOf(module), folderOf(i)];
      if (from !== to) edges.set(from, (edges.get(from) ?? new Set()).add(to));
    }
  for (const [from, tos] of edges)
    for (const to of tos) assert.ok(!edges.get(to)?.has(from), `${from} and ${to} import each other`);
});

test("no import cycles between modules", () => {
  const graph = importGraph();
  const state = new Map<string, "visiting" | "done">();
  const visit = (module: string, trail: string[]): void => {
    if (state.get(module) === "done") return;
    assert.notEqual(state.get(module), "visiting", `import cycle: ${[...trail, module].join(" → ")}`);
    state.set(module, "visiting");
    for (const next of graph.get(module) ?? []) visit(next, [...trail, module]);
    state.set(module, "done");
  };
  for (const module of graph.keys()) visit(module, []);
});
