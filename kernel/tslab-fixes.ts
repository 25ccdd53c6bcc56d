/**
 * Two rewrites of an ordinary cell before tslab sees it, each for a tslab bug, each meaning-
 * preserving (line numbers are kept; only columns after an insertion move):
 *
 * - A shorthand property `{ SCALE }` naming an earlier cell's variable fails with "SCALE is not
 *   defined": tslab rewrites such names to `exports.SCALE` but cannot inside a shorthand. Every
 *   shorthand becomes `{ SCALE: SCALE }` (also as an assignment target, `{ a = 1 }` → `{ a: a = 1 }`).
 * - A top-level `for await` is a SyntaxError: tslab makes a cell async only when it sees an
 *   `await` expression. A cell whose only top-level await is a `for await` gets `await null; `
 *   before the top-level statement that holds it.
 */
import MagicString from "magic-string";
import type * as TS from "typescript";

/** `ts`: tslab's own TypeScript, already loaded for its converter (the types are the same API). */
export function fixForTslab(ts: typeof TS, code: string): string {
  const file = ts.createSourceFile("cell.ts", code, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out = new MagicString(code);
  let forAwaitStatement: TS.Statement | undefined;
  let topLevelAwait = false;
  const visit = (node: TS.Node, topStatement: TS.Statement | undefined, inFunction: boolean): void => {
    if (ts.isShorthandPropertyAssignment(node)) out.appendLeft(node.name.end, `: ${node.name.text}`);
    if (!inFunction && ts.isAwaitExpression(node)) topLevelAwait = true;
    if (!inFunction && ts.isForOfStatement(node) && node.awaitModifier) forAwaitStatement ??= topStatement;
    const nested = inFunction || ts.isFunctionLike(node) || ts.isClassLike(node) || ts.isModuleDeclaration(node);
    node.forEachChild((child) => visit(child, topStatement, nested));
  };
  for (const statement of file.statements) visit(statement, statement, false);
  if (forAwaitStatement && !topLevelAwait) out.appendLeft(forAwaitStatement.getStart(file), "await null; ");
  return out.toString();
}
