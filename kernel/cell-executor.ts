/**
 * Runs the kernel's own cells: tslab's converter (which type-checks a cell against the
 * declarations of earlier ones and emits CommonJS that assigns every top-level name to
 * `exports`) with an executor of ours in place of tslab's, for two reasons:
 *
 * - Speed. tslab keeps the cells' names on a Proxy (to turn `Object.defineProperty` of named
 *   imports into plain values), and every `exports.s = s += i` of a top-level loop went through
 *   it: 3.5 s for a loop a function runs in 0.06 s. Here `exports` is a plain object, which V8
 *   optimises, and the few defineProperty calls of the emitted code are rewritten (found in its
 *   syntax tree) to a function that stores the value.
 * - A cell that throws keeps what it bound, as IPython does: the names that reached `exports`
 *   before the throw stay declared for later cells (tslab forgot all of them).
 */
/* eslint-disable @typescript-eslint/no-require-imports -- tslab's modules load on first use, as in local.ts */
import * as path from "node:path";
import * as vm from "node:vm";
import Module from "node:module";
import MagicString from "magic-string";
import type { Converter } from "tslab/dist/converter";
import type * as TS from "typescript";
import { DISPLAYS_WHEN_SETTLED } from "../client/charts";
import { type LineMap, cellLineMap } from "./cell-lines";

export interface CellConsole {
  /** The value of the cell's last expression. */
  log(value: unknown): void;
  /** An exception (one argument), or a diagnostic ("%s%d:%d - %s", file, line, column, text). */
  error(...args: unknown[]): void;
}

type Exports = Record<string, unknown>;

/** Where the emitted code finds `exports`, `require` and `define` (set once per executor). */
const GLOBAL = "__tsparallel_cells__";
/** Line maps kept for tracebacks through functions of earlier cells. */
const LINE_MAPS_KEPT = 200;

export class CellExecutor {
  private readonly exports: Exports = {};
  private prevDecl = "";
  private readonly sideOutputs = new Map<string, string>();
  private readonly sideModules = new Map<string, Module>();
  private rejectInterrupt: ((e: Error) => void) | undefined;
  private runs = 0;
  private readonly lineMaps = new Map<string, LineMap>();

  constructor(
    private readonly ts: typeof TS,
    private readonly converter: Converter,
    rootDir: string,
    private readonly console: CellConsole,
  ) {
    const exports = this.exports;
    const define = (target: Exports, name: string, attrs: PropertyDescriptor): void => {
      if (name === "__esModule") return;
      // A named import is re-exported as a getter: keep its value, so a later cell may rebind it.
      target[name] = attrs.get ? (attrs.get.call(target) as unknown) : attrs.value;
    };
    const require = this.wrapRequire(Module.createRequire(path.join(rootDir, "src.js")), rootDir);
    (globalThis as Record<string, unknown>)[GLOBAL] = { exports, require, define };
  }

  /** Runs a cell; false when it failed (the reason went to `console.error`). */
  async execute(src: string): Promise<boolean> {
    const meta = (require("tslab/dist/metadata") as typeof import("tslab/dist/metadata")).getCodeMetadata(src);
    if (meta.mode === "browser") {
      this.console.error(new Error("/** @browser */ cells are not supported by the tsparallel kernel"));
      return false;
    }
    if (meta.module) {
      // A `/** @module name */` cell: a module later cells import; registered even with errors.
      this.printDiagnostics(this.converter.addModule(meta.module, src, meta));
      return true;
    }
    const converted = this.converter.convert(this.prevDecl, src);
    for (const out of converted.sideOutputs ?? []) {
      this.sideModules.delete(out.path);
      this.sideOutputs.set(out.path, out.data);
    }
    if (converted.diagnostics.length > 0) {
      this.printDiagnostics(converted.diagnostics);
      return false;
    }
    const declOutput = converted.declOutput ?? "";
    if (!converted.output) {
      this.prevDecl = declOutput;
      return true;
    }
    const prefix = converted.hasToplevelAwait
      ? "(async function (exports, require) { "
      : "(function (exports, require) { ";
    const body = this.rewrite(converted.output);
    const code = `${prefix}${body}\n})(${GLOBAL}.exports, ${GLOBAL}.require)`;
    // Each run its own file name, so a traceback's frames say which cell and line they are.
    const filename = `tsparallel-cell-${++this.runs}`;
    this.lineMaps.set(filename, cellLineMap(this.ts, src, body));
    if (this.lineMaps.size > LINE_MAPS_KEPT) this.lineMaps.delete(this.lineMaps.keys().next().value!);
    try {
      // displayErrors: false, or V8 prepends the emitted line and a caret to the error's stack.
      const ret: unknown = vm.runInThisContext(code, { filename, breakOnSigint: true, displayErrors: false });
      if (converted.hasToplevelAwait) await this.orInterrupt(ret as Promise<unknown>);
    } catch (e) {
      this.keepBound(declOutput);
      this.console.error(e);
      return false;
    }
    this.prevDecl = declOutput;
    const last = converted.lastExpressionVar;
    if (last && this.exports[last] != null) {
      let value = this.exports[last];
      // Not `delete`: it would turn the object into a dictionary, and every access slow again.
      this.exports[last] = undefined;
      // A display helper's promise (vegaLite) shows its result: it is what the cell asked to see.
      if (value instanceof Promise && DISPLAYS_WHEN_SETTLED in value) {
        try {
          value = await this.orInterrupt(value as Promise<unknown>);
        } catch (e) {
          this.console.error(e);
          return false;
        }
      }
      this.console.log(value);
    }
    return true;
  }

  private printDiagnostics(diagnostics: ReturnType<Converter["addModule"]>): void {
    for (const d of diagnostics)
      this.console.error(
        "%s%d:%d - %s",
        d.fileName ? `${d.fileName} ` : "",
        d.start.line + 1,
        d.start.character + 1,
        d.messageText,
      );
  }

  /**
   * A stack trace with each frame of a cell's code at that cell's own line and column: `<cell>`
   * for the cell that ran last, `<cell -k>` for the one k runs before it.
   */
  cellFrames(stack: string, lineShift = 0): string {
    const frame = /tsparallel-cell-(\d+):(\d+):(\d+)/;
    return stack
      .split("\n")
      .flatMap((l) => {
        const m = frame.exec(l);
        if (!m) return [l];
        const at = this.lineMaps.get(`tsparallel-cell-${m[1]}`)?.(Number(m[2]), Number(m[3]));
        if (!at) return []; // the wrapper that runs the cell, not a line of it
        const back = this.runs - Number(m[1]);
        const where =
          back === 0 ? `<cell>:${at.line + lineShift}:${at.column}` : `<cell -${back}>:${at.line}:${at.column}`;
        return [l.replace(frame, where)];
      })
      .join("\n");
  }

  interrupt(): void {
    this.rejectInterrupt?.(new Error("Interrupted asynchronously"));
  }

  complete(src: string, position: number): ReturnType<Converter["complete"]> {
    return this.converter.complete(this.prevDecl, src, position);
  }

  inspect(src: string, position: number): ReturnType<Converter["inspect"]> {
    return this.converter.inspect(this.prevDecl, src, position);
  }

  close(): void {
    this.converter.close();
  }

  /** Awaits `p` unless the cell is interrupted first. */
  private orInterrupt<T>(p: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.rejectInterrupt = reject;
      p.then(resolve, reject);
    }).finally(() => (this.rejectInterrupt = undefined));
  }

  /**
   * After a throw: later cells see the declarations of every name that has a value (the emitted
   * code sets a cell's names to undefined first, then binds each as its statement runs); the
   * others are dropped, as their values never came. `declOutput` declares all names in scope.
   */
  private keepBound(declOutput: string): void {
    const ts = this.ts;
    const file = ts.createSourceFile("decl.d.ts", declOutput, ts.ScriptTarget.Latest, true);
    const bound = (name: string): boolean => this.exports[name] !== undefined;
    this.prevDecl = file.statements
      .filter((s) => declaredNames(ts, s).every(bound))
      .map((s) => s.getText(file))
      .join("\n");
  }

  /**
   * Two rewrites of the emitted module, found in its syntax tree:
   * - `Object.defineProperty(exports, …)` statements call `define`, which stores a value.
   * - In a top-level statement that is not a declaration (a loop, say), `exports.s = s += i`
   *   becomes `s += i`, and the statement is wrapped in `try { … } finally { exports.s = s; }`:
   *   the cell's own names are stored once per statement, not once per iteration (a store per
   *   iteration of a number that outgrew a small integer allocated a box each time, 6× slower
   *   than the same loop in a function). Inside functions every store stays, so a callback that
   *   runs after the cell still updates what later cells see.
   */
  private rewrite(js: string): string {
    const ts = this.ts;
    const file = ts.createSourceFile("cell.js", js, ts.ScriptTarget.Latest, true, ts.ScriptKind.JS);
    const out = new MagicString(js);
    const own = new Set(file.statements.flatMap((st) => topLevelNames(ts, st)));
    const exportOf = (node: TS.Node): string | undefined =>
      ts.isPropertyAccessExpression(node) &&
      ts.isIdentifier(node.expression) &&
      node.expression.text === "exports" &&
      own.has(node.name.text)
        ? node.name.text
        : undefined;
    for (const st of file.statements) {
      if (ts.isExpressionStatement(st) && ts.isCallExpression(st.expression)) {
        const { expression: callee, arguments: args } = st.expression;
        if (
          callee.getText(file) === "Object.defineProperty" &&
          args[0] !== undefined &&
          ts.isIdentifier(args[0]) &&
          args[0].text === "exports"
        ) {
          out.overwrite(callee.getStart(file), callee.getEnd(), `${GLOBAL}.define`);
          continue;
        }
      }
      if (ts.isVariableStatement(st) || ts.isFunctionDeclaration(st) || ts.isClassDeclaration(st)) continue;
      const written = new Set<string>();
      const visit = (node: TS.Node): void => {
        if (ts.isFunctionLike(node) || ts.isClassLike(node)) return;
        if (ts.isBinaryExpression(node) && node.operatorToken.kind === ts.SyntaxKind.EqualsToken) {
          const name = exportOf(node.left);
          // Only within the statement's inner statements (a loop's body, say): a store in the
          // top-level statement itself (`exports.s = s;`, the first `exports.a = exports.b = void 0`)
          // runs once and stays as it is.
          if (name !== undefined && innermostStatement(ts, node) !== st) {
            out.remove(node.left.getStart(file), node.right.getStart(file));
            written.add(name);
          }
        }
        node.forEachChild(visit);
      };
      visit(st);
      if (written.size === 0) continue;
      const sync = [...written].map((n) => `exports.${n} = ${n};`).join(" ");
      out.appendLeft(st.getStart(file), "try { ");
      out.appendRight(st.getEnd(), ` } finally { ${sync} }`);
    }
    return out.toString();
  }

  /** `require` that also finds `tslab` and the project's own .ts modules the converter emitted. */
  private wrapRequire(req: NodeJS.Require, dirname: string): NodeJS.Require {
    const fromSideOutputs = (id: string): unknown => {
      let filename = path.join(dirname, id);
      if (path.extname(filename) === "") filename += ".js";
      const cached = this.sideModules.get(filename);
      if (cached) return cached.exports;
      const source = this.sideOutputs.get(filename);
      if (source === undefined) return undefined;
      const mod = new Module(filename, module);
      mod.filename = filename;
      mod.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(
        path.dirname(filename),
      );
      mod.require = this.wrapRequire(Module.createRequire(filename), path.dirname(filename)) as typeof mod.require;
      (mod as unknown as { _compile(code: string, file: string): void })._compile(source, filename);
      this.sideModules.set(filename, mod);
      return mod.exports;
    };
    return new Proxy(req, {
      apply: (_target, thisArg, args: unknown[]) => {
        if (args.length === 1 && typeof args[0] === "string") {
          if (args[0] === "tslab") return require("tslab") as unknown;
          const side = fromSideOutputs(args[0]);
          if (side !== undefined) return side;
        }
        return Reflect.apply(req, thisArg, args) as unknown;
      },
    });
  }
}

function innermostStatement(ts: typeof TS, node: TS.Node): TS.Node {
  let at = node.parent;
  while (!ts.isSourceFile(at.parent) && !isStatement(ts, at)) at = at.parent;
  return at;
}

function isStatement(ts: typeof TS, node: TS.Node): boolean {
  return (
    ts.isExpressionStatement(node) ||
    ts.isIterationStatement(node, false) ||
    ts.isIfStatement(node) ||
    ts.isBlock(node) ||
    ts.isSwitchStatement(node) ||
    ts.isTryStatement(node) ||
    ts.isLabeledStatement(node) ||
    ts.isVariableStatement(node) ||
    ts.isReturnStatement(node) ||
    ts.isThrowStatement(node)
  );
}

/** The names a top-level statement of the emitted module declares (`var E` of an enum too). */
function topLevelNames(ts: typeof TS, s: TS.Statement): string[] {
  if (ts.isVariableStatement(s)) {
    const names: string[] = [];
    const bind = (n: TS.BindingName): void => {
      if (ts.isIdentifier(n)) names.push(n.text);
      else for (const e of n.elements) if (!ts.isOmittedExpression(e)) bind(e.name);
    };
    for (const d of s.declarationList.declarations) bind(d.name);
    return names;
  }
  return (ts.isFunctionDeclaration(s) || ts.isClassDeclaration(s)) && s.name ? [s.name.text] : [];
}

/** The names a top-level declaration (of a .d.ts) binds; none for anything else. */
function declaredNames(ts: typeof TS, s: TS.Statement): string[] {
  if (ts.isVariableStatement(s))
    return s.declarationList.declarations.flatMap((d) => (ts.isIdentifier(d.name) ? [d.name.text] : []));
  if (ts.isImportDeclaration(s)) {
    const clause = s.importClause;
    if (!clause) return [];
    const names = clause.name ? [clause.name.text] : [];
    const bindings = clause.namedBindings;
    if (bindings && ts.isNamespaceImport(bindings)) names.push(bindings.name.text);
    if (bindings && ts.isNamedImports(bindings)) names.push(...bindings.elements.map((e) => e.name.text));
    return names;
  }
  if ((ts.isFunctionDeclaration(s) || ts.isClassDeclaration(s) || ts.isEnumDeclaration(s)) && s.name !== undefined)
    return [s.name.text];
  return [];
}
