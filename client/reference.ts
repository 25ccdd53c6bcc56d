import { REFERENCE_KEY, type ReferenceMarker } from "../protocol/apply";

/**
 * An argument resolved on the engine at call time: a name in its namespace or an expression
 * (`Reference("g[1]")`), as ipyparallel's `Reference`.
 *
 * ```ts
 * await dview.push({ id: 3 });
 * await dview.apply((n: number) => n * 2, Reference("id")); // [6, 6, …]
 * ```
 */
export function Reference(expr: string): ReferenceMarker {
  if (typeof expr !== "string" || expr.trim() === "")
    throw new TypeError('Reference needs a name or expression string, e.g. Reference("a")');
  return Object.freeze({ [REFERENCE_KEY]: expr });
}
export type { ReferenceMarker };
