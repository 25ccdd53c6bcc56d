/**
 * The reduction operators of `comm.reduce` / `comm.allreduce`: "sum", "prod", "min", "max" or a
 * function of two values. Numbers and bigints combine as scalars; typed arrays and arrays of
 * numbers element-wise, into the left operand when it is ours to change (a received buffer,
 * or the copy an allreduce works on), so a large reduction allocates nothing per step.
 */
import { TsParallelError } from "../protocol/errors";

export type ReduceOp = "sum" | "prod" | "min" | "max" | ((a: unknown, b: unknown) => unknown);

type Numeric = number | bigint;
type NumericArray =
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

const SCALAR: Record<Exclude<ReduceOp, (a: unknown, b: unknown) => unknown>, (a: Numeric, b: Numeric) => Numeric> = {
  sum: (a, b) => (a as number) + (b as number),
  prod: (a, b) => (a as number) * (b as number),
  min: (a, b) => (a < b ? a : b),
  max: (a, b) => (a > b ? a : b),
};

export function checkOp(op: unknown): ReduceOp {
  if (typeof op === "function") return op as ReduceOp;
  if (typeof op === "string" && Object.hasOwn(SCALAR, op)) return op as ReduceOp;
  throw new TsParallelError(
    `unknown reduction ${JSON.stringify(op)}: use "sum", "prod", "min", "max" or a function (a, b) => value`,
  );
}

function isNumericArray(v: unknown): v is NumericArray {
  return ArrayBuffer.isView(v) && !(v instanceof DataView);
}

/**
 * `op(a, b)`; `a` may be overwritten with the result (`mayReuse`) when it is a typed array or an
 * array. Mismatched shapes fail with a one-line error naming both.
 */
export function combine(op: ReduceOp, a: unknown, b: unknown, mayReuse: boolean): unknown {
  if (typeof op === "function") return op(a, b);
  const f = SCALAR[op];
  if ((typeof a === "number" || typeof a === "bigint") && typeof a === typeof b) return f(a, b as Numeric);
  if (isNumericArray(a) && isNumericArray(b)) {
    if (a.length !== b.length) throw shapeError(a, b);
    const out = mayReuse ? a : a.slice();
    const n = out.length;
    // One loop per operator: the call through `f` would cost more than the arithmetic.
    const x = out as unknown as number[];
    const y = b as unknown as number[];
    if (op === "sum") for (let i = 0; i < n; i++) x[i] = x[i]! + y[i]!;
    else if (op === "prod") for (let i = 0; i < n; i++) x[i] = x[i]! * y[i]!;
    else if (op === "min") for (let i = 0; i < n; i++) x[i] = y[i]! < x[i]! ? y[i]! : x[i]!;
    else for (let i = 0; i < n; i++) x[i] = y[i]! > x[i]! ? y[i]! : x[i]!;
    return out;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) throw shapeError(a, b);
    const out = mayReuse ? a : a.slice();
    for (let i = 0; i < out.length; i++) out[i] = combine(op, out[i], b[i], mayReuse);
    return out;
  }
  throw new TsParallelError(
    `"${op}" combines numbers, bigints, typed arrays or arrays of them; got ${describe(a)} and ${describe(b)}: pass a function (a, b) => value for other values`,
  );
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${(v as NumericArray).length ?? v.byteLength})`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return typeof v;
}

function shapeError(a: unknown, b: unknown): TsParallelError {
  return new TsParallelError(`cannot combine ${describe(a)} with ${describe(b)}: every rank must pass the same length`);
}
