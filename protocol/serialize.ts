/**
 * Values on the wire: V8's structured clone (`v8.serialize`), with large typed arrays and
 * Buffers moved out of band as frames of their own, without a copy.
 *
 * Node's DefaultSerializer writes every ArrayBufferView through `_writeHostObject`, copying its
 * bytes into the one output buffer. We override that hook: a view of at least
 * `OUT_OF_BAND_BYTES` becomes a reference to an extra frame that is a zero-copy Buffer over the
 * same memory (byteOffset/byteLength respected: the jupyterlab `b.buffer` slab bug). The
 * receiver rebuilds the typed array over the received frame, copying only when the frame is
 * misaligned for the element size.
 */
import * as util from "node:util";
import * as v8 from "node:v8";
import { TsParallelError } from "./errors";

/** Views at least this large travel as separate frames (ipyparallel's buffer_threshold is 1 KiB). */
export const OUT_OF_BAND_BYTES = 64 * 1024;

const VIEW_TYPES = [
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  DataView,
  Buffer,
  BigInt64Array,
  BigUint64Array,
] as const;
type ViewCtor = (typeof VIEW_TYPES)[number];
/** Tag distinguishing an out-of-band reference from Node's in-band type index (0..12). */
const OOB_TAG = 0x7ff00000;

export class UnserializableError extends TsParallelError {
  override name = "UnserializableError";
  override readonly code = "ERR_UNSERIALIZABLE";
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`cannot send ${path}: ${reason}`);
  }
}

/** Node implements these hooks but @types/node does not declare them. */
interface HostObjectHooks {
  _writeHostObject(this: v8.Serializer, view: NodeJS.TypedArray | DataView): void;
}
// eslint-disable-next-line @typescript-eslint/unbound-method -- called below with .call(this)
const nodeWriteHostObject = (v8.DefaultSerializer.prototype as unknown as HostObjectHooks)._writeHostObject;

class FrameSerializer extends v8.DefaultSerializer {
  readonly frames: Buffer[] = [];
  _writeHostObject(view: NodeJS.TypedArray | DataView): void {
    if (view.byteLength >= OUT_OF_BAND_BYTES) {
      const index = VIEW_TYPES.findIndex((c) => view.constructor === c);
      if (index >= 0) {
        this.writeUint32(OOB_TAG | index);
        this.writeUint32(this.frames.length);
        this.frames.push(Buffer.from(view.buffer, view.byteOffset, view.byteLength));
        return;
      }
    }
    nodeWriteHostObject.call(this, view);
  }
}

class FrameDeserializer extends v8.DefaultDeserializer {
  constructor(
    data: Buffer,
    private readonly frames: readonly Buffer[],
  ) {
    super(data);
  }
  _readHostObject(): unknown {
    // Peek: Node's own layout starts with the type index too; we only intercept our tag.
    const tag = this.readUint32();
    if ((tag & 0xfff00000) !== OOB_TAG) {
      // Not ours: hand back to Node's reader, which expects to read the index itself.
      return readInBand(this, tag);
    }
    const ctor = VIEW_TYPES[tag & 0xfffff];
    const frame = this.frames[this.readUint32()];
    if (!ctor || !frame) throw new TsParallelError("out-of-band frame reference out of range");
    return viewOver(ctor, frame);
  }
}

/** Node's in-band layout after the type index: byteLength, then raw bytes. */
function readInBand(d: FrameDeserializer, typeIndex: number): unknown {
  const ctor = VIEW_TYPES[typeIndex];
  if (!ctor) throw new TsParallelError(`unknown typed array index ${typeIndex}`);
  const byteLength = d.readUint32();
  const bytes = Buffer.from(d.readRawBytes(byteLength)); // copy: the slab is the whole message
  return viewOver(ctor, bytes);
}

function viewOver(ctor: ViewCtor, frame: Buffer): unknown {
  if (ctor === Buffer) return frame;
  const size = "BYTES_PER_ELEMENT" in ctor ? ctor.BYTES_PER_ELEMENT : 1;
  let src = frame;
  if (src.byteOffset % size !== 0) src = Buffer.from(src); // misaligned: one copy to an aligned slab
  if (ctor === DataView) return new DataView(src.buffer, src.byteOffset, src.byteLength);
  const C = ctor as unknown as new (b: ArrayBufferLike, o: number, l: number) => unknown;
  return new C(src.buffer, src.byteOffset, src.byteLength / size);
}

/** Serialize one value to `[main, ...outOfBand]` frames. Throws UnserializableError naming the path. */
export function serialize(value: unknown, path = "value"): Buffer[] {
  assertSerializable(value, path);
  const s = new FrameSerializer();
  s.writeHeader();
  s.writeValue(value);
  return [s.releaseBuffer(), ...s.frames];
}

export function deserialize(frames: readonly Buffer[]): unknown {
  const [main, ...rest] = frames;
  if (!main) throw new TsParallelError("no value frame");
  const d = new FrameDeserializer(main, rest);
  d.readHeader();
  return d.readValue();
}

const PLAIN_PROTOS = new Set<unknown>([Object.prototype, null]);
const CLONEABLE = [Array, Map, Set, Date, RegExp, Error, ArrayBuffer, Boolean, Number, String, BigInt] as const;

/**
 * V8 would silently turn a class instance into a plain object (losing its prototype and
 * #private fields) and throws an unhelpful DataCloneError on functions without saying where.
 * This walk finds the first such value and names its path, e.g. `args[1].cb`.
 */
export function assertSerializable(value: unknown, path: string, seen = new Set<object>()): void {
  switch (typeof value) {
    case "function":
      throw new UnserializableError(
        path,
        `${describeFunction(value)} cannot be sent as data; pass it as the function of apply/map, or define it on the engines with execute`,
      );
    case "symbol":
      throw new UnserializableError(path, `${String(value)} is a Symbol, which has no structured clone`);
    case "object":
      break;
    default:
      return;
  }
  if (value === null || seen.has(value)) return;
  seen.add(value);
  if (util.types.isProxy(value))
    throw new UnserializableError(path, "a Proxy has no structured clone; send the plain object it wraps");
  if (ArrayBuffer.isView(value)) return;
  const proto: unknown = Object.getPrototypeOf(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (typeof item === "object" || typeof item === "function" || typeof item === "symbol")
        assertSerializable(item, `${path}[${i}]`, seen);
    }
    return;
  }
  if (value instanceof Map) {
    for (const [k, v] of value) {
      assertSerializable(k, `${path}.<key>`, seen);
      assertSerializable(v, `${path}.get(${JSON.stringify(String(k))})`, seen);
    }
    return;
  }
  if (value instanceof Set) {
    for (const v of value) assertSerializable(v, `${path}.<item>`, seen);
    return;
  }
  if (!PLAIN_PROTOS.has(proto)) {
    if (CLONEABLE.some((c) => value instanceof c)) return;
    const name = (value as { constructor?: { name?: string } }).constructor?.name ?? "object";
    throw new UnserializableError(
      path,
      `an instance of class ${name} would lose its prototype and private fields; send a plain object (e.g. { ...value }) or rebuild it on the engine`,
    );
  }
  for (const key of Object.keys(value)) {
    const item: unknown = (value as Record<string, unknown>)[key];
    if (typeof item === "object" || typeof item === "function" || typeof item === "symbol") {
      assertSerializable(
        item,
        /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`,
        seen,
      );
    }
  }
}

function describeFunction(f: { name: string }): string {
  return f.name ? `function ${f.name}` : "a function";
}
