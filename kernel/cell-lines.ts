/**
 * Where a line of a cell's emitted JavaScript came from in the cell's TypeScript. tslab's
 * converter gives no source map (its compiler options are fixed, and its TypeScript's exports
 * cannot be wrapped), so the two are aligned statement by statement: the emitted module holds
 * the cell's top-level statements in order, with the compiler's own additions between them
 * (helpers, `exports.x = x` after a declaration, the `void 0` prologue), which are skipped. A line
 * inside a statement keeps its offset from the statement's first line, as TypeScript prints
 * statements with their line breaks. When the two do not align, there is no answer, and a
 * traceback shows the cell without a line rather than a wrong one.
 */
import type * as TS from "typescript";

export type CellPosition = { line: number; column: number };
/** 1-based line and column in the emitted code → 1-based line and column in the cell. */
export type LineMap = (line: number, column: number) => CellPosition | undefined;

export function cellLineMap(ts: typeof TS, source: string, emitted: string): LineMap {
  const src = ts.createSourceFile("cell.ts", source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out = ts.createSourceFile("cell.js", emitted, ts.ScriptTarget.Latest, true, ts.ScriptKind.JS);
  const mine = src.statements.filter((s) => !typeOnly(ts, s));
  const theirs = userStatements(ts, out);
  if (mine.length !== theirs.length) return () => undefined;
  const spans = theirs.map((s, k) => ({
    out: [out.getLineAndCharacterOfPosition(s.getStart(out)), out.getLineAndCharacterOfPosition(s.getEnd())] as const,
    src: [
      src.getLineAndCharacterOfPosition(mine[k]!.getStart(src)),
      src.getLineAndCharacterOfPosition(mine[k]!.getEnd()),
    ] as const,
  }));
  return (line, column) => {
    const l = line - 1;
    const span = spans.find((s) => s.out[0].line <= l && l <= s.out[1].line);
    if (!span) return undefined;
    const [outStart] = span.out;
    const [srcStart, srcEnd] = span.src;
    const at = Math.min(srcStart.line + (l - outStart.line), srcEnd.line);
    // On a later line of the statement, the printer's indentation replaces the cell's.
    const indent = (text: string, n: number): number => /^\s*/.exec(text.split("\n")[n] ?? "")![0].length;
    const col =
      l === outStart.line
        ? srcStart.character + (column - 1 - outStart.character)
        : column - 1 - indent(emitted, l) + indent(source, at);
    return { line: at + 1, column: Math.max(col, 0) + 1 };
  };
}

/** A statement that emits no JavaScript (types, `declare`, type-only imports). */
function typeOnly(ts: typeof TS, s: TS.Statement): boolean {
  if (ts.isInterfaceDeclaration(s) || ts.isTypeAliasDeclaration(s)) return true;
  if (ts.isImportDeclaration(s) && s.importClause?.isTypeOnly) return true;
  if (ts.isExportDeclaration(s) && s.isTypeOnly) return true;
  const modifiers = ts.canHaveModifiers(s) ? ts.getModifiers(s) : undefined;
  return modifiers?.some((m) => m.kind === ts.SyntaxKind.DeclareKeyword) ?? false;
}

/** The emitted statements that stand for the cell's own, in order. */
function userStatements(ts: typeof TS, out: TS.SourceFile): TS.Node[] {
  const all = [...out.statements];
  const kept: TS.Node[] = [];
  all.forEach((s, i) => {
    if (compilerAdded(ts, s, all[i + 1])) return;
    // Our own rewrite wraps a statement in try/finally (cell-executor.ts): the statement is inside.
    const inner =
      ts.isTryStatement(s) && s.finallyBlock && s.tryBlock.statements.length === 1 ? s.tryBlock.statements[0]! : s;
    // The cell's last expression comes back as `exports.tsLastExpr = <expression>`.
    const e = ts.isExpressionStatement(inner) ? inner.expression : undefined;
    const last = e && ts.isBinaryExpression(e) && exportName(ts, e.left) === "tsLastExpr" ? e.right : undefined;
    kept.push(last ?? inner);
  });
  return kept;
}

function compilerAdded(ts: typeof TS, s: TS.Statement, next: TS.Statement | undefined): boolean {
  if (ts.isVariableStatement(s)) {
    const decls = s.declarationList.declarations;
    const names = decls.map((d) => (ts.isIdentifier(d.name) ? d.name.text : ""));
    if (names.every((n) => n.startsWith("__"))) return true; // helpers: __importStar, __createBinding…
    if (decls.every((d) => !d.initializer) && names.every((n) => /^_[a-z]\d*$/.test(n))) return true; // temporaries
    // An enum is `var E;` and then `(function (E) {…})(E || …)`: the second stands for it.
    if (decls.length === 1 && !decls[0]!.initializer && next && ts.isExpressionStatement(next)) {
      const call = next.expression;
      const fn =
        ts.isCallExpression(call) && ts.isParenthesizedExpression(call.expression)
          ? call.expression.expression
          : undefined;
      const param = fn && ts.isFunctionExpression(fn) ? fn.parameters[0]?.name : undefined;
      if (param && ts.isIdentifier(param) && param.text === names[0]) return true;
    }
    return false;
  }
  if (!ts.isExpressionStatement(s)) return false;
  const e = s.expression;
  if (ts.isCallExpression(e)) {
    const callee = e.expression.getText();
    return callee === "Object.defineProperty" || callee.endsWith(".define");
  }
  if (!ts.isBinaryExpression(e) || e.operatorToken.kind !== ts.SyntaxKind.EqualsToken) return false;
  const target = exportName(ts, e.left);
  if (target === undefined) return false;
  // The prologue `exports.a = exports.b = void 0;`, and `exports.x = x;` after x's declaration.
  let right: TS.Expression = e.right;
  while (ts.isBinaryExpression(right) && exportName(ts, right.left) !== undefined) right = right.right;
  if (ts.isVoidExpression(right)) return true;
  return target !== "tsLastExpr" && ts.isIdentifier(e.right) && e.right.text === target;
}

function exportName(ts: typeof TS, node: TS.Node): string | undefined {
  return ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === "exports"
    ? node.name.text
    : undefined;
}
