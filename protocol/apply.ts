/**
 * The apply payload: what to call (in content) and its arguments (in buffers).
 *
 * Arguments are serialized once per call, not once per engine, so a DirectView sends the same
 * frames to every target. A `Reference` is a plain marker object resolved on the engine.
 */
import type { ApplyContent } from "./messages";
import { deserialize, serialize } from "./serialize";

export const REFERENCE_KEY = "$tsparallel.ref";
export interface ReferenceMarker {
  readonly [REFERENCE_KEY]: string;
}

export function isReference(v: unknown): v is ReferenceMarker {
  return typeof v === "object" && v !== null && typeof (v as Record<string, unknown>)[REFERENCE_KEY] === "string";
}

export interface PackedApply {
  content: ApplyContent;
  buffers: Buffer[];
}

export function packApply(call: ApplyContent["call"], args: readonly unknown[]): PackedApply {
  return { content: { call }, buffers: serialize(args, "args") };
}

export function unpackArgs(buffers: readonly Buffer[]): unknown[] {
  const args = deserialize(buffers);
  if (!Array.isArray(args)) throw new TypeError("apply arguments must be an array");
  return args;
}

/**
 * A function's source as an expression the engine can evaluate. Handles arrows, function
 * expressions and object-method shorthand (`f(x) { … }`, whose toString is not an expression).
 */
/** Any function: the views check parameters per call through `Parameters<F>`. */
export type AnyFunction = (...args: never[]) => unknown;

export function functionSource(f: AnyFunction): { source: string; name: string } {
  let known = sourceOf.get(f);
  if (!known) sourceOf.set(f, (known = sourceOfUncached(f)));
  return known;
}

/** Per function object: a hot loop of `apply(f)` reads and checks f's source once. */
const sourceOf = new WeakMap<AnyFunction, { source: string; name: string }>();

function sourceOfUncached(f: AnyFunction): { source: string; name: string } {
  const src = Function.prototype.toString.call(f);
  if (/\{\s*\[native code\]\s*\}\s*$/.test(src)) {
    throw new TypeError(
      `cannot send the native function ${f.name || "(anonymous)"}; wrap it: (...a) => ${f.name || "f"}(...a)`,
    );
  }
  if (/^class[\s{]/.test(src)) throw new TypeError(`cannot apply class ${f.name}; apply a function that constructs it`);
  const isExpression = /^(async\s+)?(function\b|\(|[A-Za-z_$][\w$]*\s*=>|async\s*\()/.test(src);
  if (isExpression) return { source: src, name: f.name };
  // method shorthand: `async *name(…) {…}` → a function expression with the same body
  const m = /^(async\s+)?(\*?)\s*([^(]*)\(/.exec(src);
  const rest = m ? src.slice(m[0].length - 1) : src;
  return { source: `${m?.[1] ?? ""}function${m?.[2] ?? ""} ${safeName(m?.[3] ?? f.name)}${rest}`, name: f.name };
}

function safeName(n: string): string {
  const t = n.trim();
  return /^[A-Za-z_$][\w$]*$/.test(t) ? t : "";
}
