/**
 * TypeScript cell → JavaScript an engine runs in its persistent namespace. Done once per cell
 * on the sending side, never once per engine.
 *
 * 1. esbuild strips types. ESM is kept (its cjs format rejects top-level await and renames
 *    imports) and `verbatimModuleSyntax` stops it dropping imports the cell does not use.
 * 2. acorn + magic-string rewrite the top level, as Node's REPL does (lib/internal/repl/await.js):
 *    declarations become assignments to `var`s hoisted outside an async IIFE (so they outlive
 *    the cell and `await` works at top level); imports become `require`; the last expression
 *    becomes the result.
 * Every edit stays on its line and the prefix sits on line 1, so esbuild's source map still maps
 * lines of the output back to the TypeScript (column 1 of line 1 shifts by `prefixLength`).
 */
import { stop, transformSync, type TransformFailure } from "esbuild";
import * as acorn from "acorn";
import MagicString from "magic-string";
import { TsParallelError } from "../protocol/errors";

export interface Transpiled {
  code: string;
  /** esbuild's source map (JSON), from the output to the TypeScript. */
  map: string;
  source: string;
}

/** The TypeScript could not be compiled; raised before anything is sent. Named SyntaxError, as a notebook shows it. */
export class TranspileError extends TsParallelError {
  override name = "SyntaxError";
  override readonly code = "ERR_TRANSPILE";
  constructor(
    message: string,
    readonly line: number,
    readonly column: number,
    readonly lineText: string,
  ) {
    super(message);
  }
}

type Node = acorn.Node & Record<string, unknown>;

/**
 * Recent results by source: a cell or `execute` string run again (a loop of `dview.execute`,
 * re-running a `%px` cell) costs a Map lookup instead of a synchronous esbuild call (~1-3 ms).
 */
const cache = new Map<string, Transpiled>();
const CACHE_SIZE = 256;

export function transpile(source: string, filename = "cell.ts"): Transpiled {
  const key = `${filename}\0${source}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const out = transpileUncached(source, filename);
  if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value as string);
  cache.set(key, out);
  return out;
}

function transpileUncached(source: string, filename: string): Transpiled {
  let js: string, map: string;
  try {
    const out = transformWithLiveService(source, filename);
    js = out.code;
    map = out.map;
  } catch (e) {
    const first = (e as TransformFailure).errors?.[0];
    if (!first) throw e;
    const loc = first.location;
    throw new TranspileError(
      `${first.text} (line ${loc?.line ?? "?"}${loc ? `, column ${loc.column + 1}` : ""}${loc?.lineText ? `: ${loc.lineText.trim()}` : ""})`,
      loc?.line ?? 0,
      loc?.column ?? 0,
      loc?.lineText ?? "",
    );
  }
  return { code: rewrite(js), map, source };
}

/**
 * esbuild runs a helper process in our process group, so a Ctrl-C sent to a notebook kernel's
 * group (jupyter_client interrupts with killpg) kills it, and every later call would fail with
 * "The service is no longer running". esbuild.stop() drops the dead service; the retry starts anew.
 */
function transformWithLiveService(source: string, filename: string): ReturnType<typeof transformSync> {
  const run = (): ReturnType<typeof transformSync> =>
    transformSync(source, {
      loader: "ts",
      format: "esm",
      target: "node20",
      sourcemap: "external",
      sourcefile: filename,
      tsconfigRaw: { compilerOptions: { verbatimModuleSyntax: true, experimentalDecorators: true } },
    });
  try {
    return run();
  } catch (e) {
    if (!/service (is no longer running|was stopped)/.test(String((e as Error).message))) throw e;
    void stop();
    return run();
  }
}

/** The top-level rewrite (exported for unit tests). */
export function rewrite(js: string): string {
  const ast = acorn.parse(js, {
    ecmaVersion: "latest",
    sourceType: "module",
    allowAwaitOutsideFunction: true,
    allowReturnOutsideFunction: false,
  });
  const s = new MagicString(js);
  const names = new Set<string>();
  const functions: string[] = [];
  const body = (ast.body as unknown as Node[]).filter((n) => n.type !== "EmptyStatement");
  for (const node of body) {
    switch (node.type) {
      case "VariableDeclaration":
        rewriteDeclaration(s, node, names);
        break;
      case "FunctionDeclaration": {
        const name = (node.id as Node | null)?.name as string | undefined;
        if (name) {
          names.add(name);
          functions.push(name);
        }
        break;
      }
      case "ClassDeclaration": {
        const name = (node.id as Node).name as string;
        names.add(name);
        s.appendLeft(node.start, `${name} = `);
        s.appendLeft(node.end, ";");
        break;
      }
      case "ImportDeclaration":
        rewriteImport(s, node, names);
        break;
      case "ExportNamedDeclaration":
      case "ExportDefaultDeclaration":
      case "ExportAllDeclaration":
        throw new TranspileError(
          "export is not supported in a cell: declare the name instead (it stays defined on the engines)",
          lineOf(js, node.start),
          0,
          "",
        );
      default:
        break;
    }
  }
  const last = body[body.length - 1];
  if (last?.type === "ExpressionStatement") {
    const expr = last.expression as Node;
    s.appendLeft(expr.start, "return { value: (");
    s.appendRight(expr.end, ") }");
  }
  // Top-level names become properties of the engine's global object. Not with `var`: a var-declared
  // global cannot be deleted, and `rc.clear()` must be able to remove every name a cell defined.
  const hoisted =
    names.size > 0
      ? `for (const n of ${JSON.stringify([...names])}) if (!(n in globalThis)) globalThis[n] = undefined; `
      : "";
  const exportsFns = functions.map((f) => `globalThis.${f} = ${f}; `).join("");
  s.prepend(`${hoisted}(async () => { ${exportsFns}`);
  s.append("\n})()");
  return s.toString();
}

function rewriteDeclaration(s: MagicString, node: Node, names: Set<string>): void {
  const decls = node.declarations as Node[];
  // `const a = 1, { b } = o;` → `(a = 1, { b } = o);`
  s.overwrite(node.start, decls[0]!.start, "(");
  for (const d of decls) {
    collectNames(d.id as Node, names);
    if (!d.init) s.appendLeft((d.id as Node).end, " = void 0");
  }
  const lastDecl = decls[decls.length - 1]!;
  s.appendLeft(lastDecl.end, ")");
  if (node.end > lastDecl.end) {
    const tail = s.original.slice(lastDecl.end, node.end);
    if (!tail.includes(";")) s.appendLeft(node.end, ";");
  } else {
    s.appendLeft(node.end, ";");
  }
}

function rewriteImport(s: MagicString, node: Node, names: Set<string>): void {
  if ((node as { importKind?: string }).importKind === "type") {
    s.overwrite(node.start, node.end, "");
    return;
  }
  const src = JSON.stringify((node.source as Node).value);
  const parts: string[] = [];
  const mod = `require(${src})`;
  for (const spec of node.specifiers as Node[]) {
    const local = (spec.local as Node).name as string;
    names.add(local);
    if (spec.type === "ImportDefaultSpecifier")
      parts.push(`${local} = ((m) => m && m.__esModule ? m.default : m)(${mod})`);
    else if (spec.type === "ImportNamespaceSpecifier") parts.push(`${local} = ${mod}`);
    else {
      const imported = spec.imported as Node;
      const key = imported.type === "Identifier" ? (imported.name as string) : String(imported.value);
      parts.push(`${local} = ${mod}[${JSON.stringify(key)}]`);
    }
  }
  s.overwrite(node.start, node.end, parts.length > 0 ? `${parts.join("; ")};` : `${mod};`);
}

function collectNames(pattern: Node, names: Set<string>): void {
  switch (pattern.type) {
    case "Identifier":
      names.add(pattern.name as string);
      return;
    case "ObjectPattern":
      for (const p of pattern.properties as Node[])
        collectNames((p.type === "RestElement" ? p.argument : p.value) as Node, names);
      return;
    case "ArrayPattern":
      for (const e of pattern.elements as (Node | null)[]) if (e) collectNames(e, names);
      return;
    case "RestElement":
      collectNames(pattern.argument as Node, names);
      return;
    case "AssignmentPattern":
      collectNames(pattern.left as Node, names);
      return;
    default:
      return;
  }
}

function lineOf(text: string, offset: number): number {
  return text.slice(0, offset).split("\n").length;
}
