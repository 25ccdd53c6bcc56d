/**
 * `comm`: a communicator over the engines of one view, so `%px` code can do what mpi4py code
 * does (ipyparallel engines cannot talk to each other; there is no MPI binding for Node).
 *
 * Messages go engine to engine (peers.ts: each engine's DEALER to the others' direct sockets,
 * signed, CURVE when the cluster uses it); values travel as the wire's structured clone, large
 * typed arrays as frames of their own, without a copy. Collectives use MPI's algorithms:
 * binomial trees for bcast and reduce, recursive doubling for allreduce of small values; for
 * allreduce of large typed arrays a reduce-scatter then an allgather (by pairwise exchange
 * among a few ranks, round a ring among more), which moves 2·(n−1)/n of the array per rank
 * instead of log n copies of it.
 *
 * When every member is on one host (they share the private /dev/shm folder), large typed arrays
 * take shared memory instead (protocol/bulk.ts windows): allreduce becomes a reduce-scatter and
 * an allgather in which each rank writes once and every other reads straight from its window into
 * place, in two message rounds; bcast writes once and every rank reads.
 *
 * As in MPI, every member calls the same collectives in the same order: each collective takes
 * the communicator's next sequence number, and its messages carry it as their tag, so two
 * collectives never mix. A member lost (the controller says so) breaks the communicator: every
 * call pending or to come fails on every other member, naming the rank and engine. An interrupt
 * fails the pending calls too, and the communicator with them (its members may be at different
 * steps): form a new one.
 */
import { type WindowWriter, framesFromWindow, framesToWindow } from "../protocol/bulk";
import { TsParallelError } from "../protocol/errors";
import { deserialize, serialize } from "../protocol/serialize";
import { type ReduceOp, checkOp, combine, describe } from "./reduce";

/** One member: its engine, and how the others reach it. */
export interface CommMember {
  engineId: number;
  uuid: string;
  endpoint: string;
  curveKey?: string;
}

/** How a communicator's messages leave: to a member's engine, with the comm id, sender and tag. */
export interface CommTransport {
  send(to: CommMember, header: { comm: string; from: number; tag: string }, frames: Buffer[]): void;
}

export class CommError extends TsParallelError {
  override name = "CommError";
}

/** Where the engine keeps its newest communicator: the global `comm`, and `tsparallel/engine`'s. */
export const CURRENT_COMM = Symbol.for("tsparallel.comm");

/**
 * Typed arrays at least this large take the large-array paths (shared memory on one host, else
 * pairwise or the ring for allreduce); smaller ones take the trees or recursive doubling, whose
 * fewer steps matter more then.
 */
export const LARGE_BYTES = 64 * 1024;

/**
 * A communicator's shared memory, when all its members are on one host: a window of this rank's
 * per use (each use has its own rules for when it may be written again), and the others' to read.
 */
export interface CommMemory {
  window(use: "scatter" | "gather" | "bcast0" | "bcast1"): WindowWriter;
  read(window: string, offset: number, into: ArrayBufferView): void;
  close(): void;
}

type NamedOp = Exclude<ReduceOp, (a: unknown, b: unknown) => unknown>;
type NumericArray = NodeJS.TypedArray;

interface Waiter {
  from: number | undefined;
  tag: string;
  resolve(m: { from: number; frames: Buffer[] }): void;
  reject(e: Error): void;
}

export interface InPlaceOptions {
  /** Write the result into the typed array passed in, and return it (MPI_IN_PLACE). */
  inPlace?: boolean;
}

export interface SendOptions {
  /** Matches a `recv` with the same tag (default 0). */
  tag?: number | string;
}

export class Communicator {
  readonly size: number;
  /** Why it can no longer be used, once broken. */
  private broken: Error | undefined;
  private collectives = 0;
  private splits = 0;
  /** Arrived and not yet received, by `${from}|${tag}`, in arrival order. */
  private readonly mailbox = new Map<string, Buffer[][]>();
  private readonly waiters: Waiter[] = [];
  /** Set when every member is on one host; how each communicator split from this one gets its own. */
  private memoryOf: (() => CommMemory) | undefined;
  private memory: CommMemory | undefined;
  /** Collectives through shared memory run one after the other on a rank, even if not awaited. */
  private memoryTurn: Promise<unknown> = Promise.resolve();
  /** Ranks still to say they read this rank's last bcast from each of its two bcast windows. */
  private readonly bcastReaders = [0, 0];
  /** The bcast window this rank writes next: they alternate, so one can be read as the other is written. */
  private bcastSlot = 0;
  /** Collectives through shared memory begun and not ended on this rank, and when the last ended. */
  private turnsOpen = 0;
  private lastTurnEnded = 0;
  private scratch = new ArrayBuffer(0);

  constructor(
    readonly id: string,
    readonly rank: number,
    readonly members: readonly CommMember[],
    private readonly transport: CommTransport,
    /** Called with each sub-communicator `split` makes, so messages for it find it. */
    private readonly adopt: (c: Communicator) => void = () => undefined,
  ) {
    this.size = members.length;
  }

  /** `[rank/size engine N]`, as the engines' own view of it. */
  toString(): string {
    return `<Communicator ${this.id} rank ${this.rank} of ${this.size}>`;
  }

  /** Every member agreed they share memory: large arrays go through `memory()`'s windows. */
  shareMemory(memory: () => CommMemory): void {
    this.memoryOf = memory;
    this.memory = memory();
  }

  /** Whether large arrays go through shared memory. */
  get sharesMemory(): boolean {
    return this.memory !== undefined;
  }

  // ---------------------------------------------------------------- point to point

  async send(to: number, value: unknown, opts: SendOptions = {}): Promise<void> {
    this.check();
    this.rankCheck(to, "send to");
    this.sendFrames(to, `u${String(opts.tag ?? 0)}`, detached(value));
    return Promise.resolve();
  }

  /** The next value from `from` (any rank when left out) with the tag. */
  async recv<T = unknown>(from?: number, opts: SendOptions = {}): Promise<T> {
    if (from !== undefined) this.rankCheck(from, "receive from");
    const m = await this.take(from, `u${String(opts.tag ?? 0)}`);
    return deserialize(m.frames) as T;
  }

  // ---------------------------------------------------------------- collectives

  /**
   * `value` of `root` on every rank: a binomial tree (each rank forwards what it got, as it got
   * it), or through shared memory from the root to all at once. `{ inPlace: true }` (MPI's
   * buffer broadcast): every rank passes a typed array of the root's type and length, which the
   * root's contents are written into and which is returned, no new array.
   */
  async bcast<T>(value: T, root = 0, opts: InPlaceOptions = {}): Promise<T> {
    return this.guarded(async () => {
      const tag = this.collective(root);
      const inPlace = opts.inPlace === true;
      if (inPlace && !(ArrayBuffer.isView(value) && !(value instanceof DataView)))
        throw new CommError(`bcast: { inPlace: true } needs a typed array on every rank, not ${typeof value}`);
      const into = inPlace ? (value as unknown as NumericArray) : undefined;
      let got: unknown;
      if (this.memory) got = await this.inTurn(() => this.sharedBcast(tag, root, value, into));
      else {
        const frames = await this.treeBcast(tag, root, this.rank === root ? detached(value) : undefined);
        got = this.rank === root ? value : deserialize(frames);
      }
      return (into && got !== value ? landIn(into, got, root) : got) as T;
    });
  }

  /** `values[i]` of `root` to rank i (root passes one value per rank). */
  async scatter<T>(values: readonly T[] | undefined, root = 0): Promise<T> {
    return this.guarded(async () => {
      const tag = this.collective(root);
      if (this.rank !== root) return deserialize((await this.take(root, tag)).frames) as T;
      const all: readonly T[] | undefined = values;
      if (all?.length !== this.size || !Array.isArray(values))
        throw new CommError(`scatter: rank ${root} must pass an array of ${this.size} values, one per rank`);
      for (let r = 0; r < this.size; r++) if (r !== root) this.sendFrames(r, tag, detached(all[r]));
      return all[root]!;
    });
  }

  /** Every rank's value, in rank order, on `root`; undefined elsewhere. */
  async gather<T>(value: T, root = 0): Promise<T[] | undefined> {
    return this.guarded(async () => {
      const tag = this.collective(root);
      if (this.rank !== root) {
        this.sendFrames(root, tag, detached(value));
        return undefined;
      }
      const out = new Array<T>(this.size);
      out[root] = value;
      for (let r = 0; r < this.size; r++) if (r !== root) out[r] = deserialize((await this.take(r, tag)).frames) as T;
      return out;
    });
  }

  /** Every rank's value, in rank order, on every rank. */
  async allgather<T>(value: T): Promise<T[]> {
    const all = await this.gather(value, 0);
    return this.bcast(all as T[], 0);
  }

  /** `op` over every rank's value, on `root` (a binomial tree); undefined elsewhere. */
  async reduce<T>(value: T, op: ReduceOp, root = 0): Promise<T | undefined> {
    return this.guarded(async () => {
      const f = checkOp(op);
      const tag = this.collective(root);
      return (await this.treeReduce(tag, root, value, f)) as T | undefined;
    });
  }

  /**
   * `op` over every rank's value, on every rank. Large typed arrays go through shared memory
   * when every member is on one host, else a pairwise exchange (a ring among more than 8);
   * other values take recursive doubling.
   * `{ inPlace: true }` (MPI_IN_PLACE) writes the result into `value`, a typed array, and
   * returns it: no new array per call, as a loop of steps over one buffer wants.
   */
  async allreduce<T>(value: T, op: ReduceOp, opts: InPlaceOptions = {}): Promise<T> {
    return this.guarded(async () => {
      const f = checkOp(op);
      const typed = ArrayBuffer.isView(value) && !(value instanceof DataView);
      const inPlace = opts.inPlace === true;
      if (inPlace && !typed)
        throw new CommError(`allreduce: { inPlace: true } needs a typed array to write into, not ${typeof value}`);
      if (typed && typeof f === "string") {
        const array = value as unknown as NumericArray;
        if (array.byteLength >= LARGE_BYTES && array.length >= this.size && this.size > 1) {
          const tag = this.collective(0);
          if (this.memory) return this.inTurn(() => this.sharedAllreduce(tag, array, f, inPlace)) as Promise<T>;
          if (this.size <= PAIRWISE_MAX) return this.pairwiseAllreduce(tag, array, f, inPlace) as Promise<T>;
          return this.ringAllreduce(tag, array as Float64Array, f, inPlace) as unknown as T;
        }
      }
      const tag = this.collective(0);
      const result = (await this.doublingAllreduce(tag, value, f)) as T;
      if (!inPlace || result === value) return result;
      copyInto(value as unknown as NumericArray, result);
      return value;
    });
  }

  /** Returns once every rank has called it. */
  async barrier(): Promise<void> {
    await this.allreduce(0, "sum");
  }

  /**
   * A communicator of the ranks that passed the same `color`, ranked by `key` (then by rank);
   * `undefined` for a rank that passed `null` (MPI_UNDEFINED). No new connection: the engines'
   * links are shared by every communicator.
   */
  async split(color: number | string | null, key = this.rank): Promise<Communicator | undefined> {
    return this.guarded(async () => {
      const n = ++this.splits;
      const all = await this.allgather([color, key] as const);
      if (color === null) return undefined;
      const ranks = all
        .map(([c, k], rank) => ({ c, k, rank }))
        .filter((m) => m.c === color)
        .sort((a, b) => a.k - b.k || a.rank - b.rank)
        .map((m) => m.rank);
      const sub = new Communicator(
        `${this.id}/${n}:${String(color)}`,
        ranks.indexOf(this.rank),
        ranks.map((r) => this.members[r]!),
        this.transport,
        this.adopt,
      );
      if (this.memoryOf) sub.shareMemory(this.memoryOf);
      this.adopt(sub);
      return sub;
    });
  }

  // ---------------------------------------------------------------- delivery and faults

  /** A message for this communicator arrived. */
  deliver(from: number, tag: string, frames: Buffer[]): void {
    if (tag === FAILED) return this.break(new CommError(`${this.whoIs(from)} failed: ${String(deserialize(frames))}`));
    const i = this.waiters.findIndex((w) => w.tag === tag && (w.from === undefined || w.from === from));
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1);
      w!.resolve({ from, frames });
      return;
    }
    const key = `${from}|${tag}`;
    const queue = this.mailbox.get(key);
    if (queue) queue.push(frames);
    else this.mailbox.set(key, [frames]);
  }

  /** Every pending and later call fails with `error` (a member was lost, or the cell interrupted). */
  break(error: Error): void {
    this.broken ??= error;
    for (const w of this.waiters.splice(0)) w.reject(this.broken);
    this.mailbox.clear();
    this.memory?.close();
  }

  /** A call of this member waits for a message. */
  get waiting(): boolean {
    return this.waiters.length > 0;
  }

  /** The rank of a member engine (by uuid), if it is one. */
  rankOf(uuid: string): number | undefined {
    const r = this.members.findIndex((m) => m.uuid === uuid);
    return r >= 0 ? r : undefined;
  }

  // ---------------------------------------------------------------- algorithms

  private async treeBcast(tag: string, root: number, frames: Buffer[] | undefined): Promise<Buffer[]> {
    const size = this.size;
    const rel = (this.rank - root + size) % size;
    let mask = 1;
    let got = frames;
    while (mask < size) {
      if (rel & mask) {
        got = (await this.take((rel - mask + root) % size, tag)).frames;
        break;
      }
      mask <<= 1;
    }
    const children: number[] = [];
    for (mask >>= 1; mask > 0; mask >>= 1) if (rel + mask < size) children.push((rel + mask + root) % size);
    // The root's frames are a copy already; a forwarder sends on a copy of what came, since the
    // caller gets that memory as its value.
    const onward = rel === 0 || children.length === 0 ? got! : detachFrames(got!);
    for (const c of children) this.sendFrames(c, tag, onward);
    return got!;
  }

  private async treeReduce(tag: string, root: number, value: unknown, op: ReduceOp): Promise<unknown> {
    const size = this.size;
    const rel = (this.rank - root + size) % size;
    let acc = value;
    let ours = false; // acc is our own copy (a received value), free to overwrite
    for (let mask = 1; mask < size; mask <<= 1) {
      if (rel & mask) {
        // Our own (received) memory goes as it is; the caller's own value as a copy.
        this.sendFrames(
          (rel - mask + root) % size,
          tag,
          ours && typeof op === "string" ? serialize(acc) : detached(acc),
        );
        return undefined;
      }
      if (rel + mask < size) {
        const v = deserialize((await this.take((rel + mask + root) % size, tag)).frames);
        // A received value is ours to overwrite: the named operators (commutative) fold into it
        // rather than into a copy of the caller's input, which is never written.
        acc = ours || typeof op === "function" ? combine(op, acc, v, ours) : combine(op, v, acc, true);
        ours = true;
      }
    }
    return acc;
  }

  /**
   * Allreduce by recursive doubling (MPICH's for short values): in round k each rank swaps its
   * partial result with the rank 2^k away and combines the two, the lower ranks' on the left,
   * so after log2 n rounds every rank holds the whole result, combined in the same order on
   * every rank (equal bit for bit): half the steps of a reduce and then a bcast. When the size is
   * not a power of two, the first 2·extra ranks pair up before: the even one hands its value to
   * the odd one, sits the rounds out, and gets the result from it after.
   */
  private async doublingAllreduce(tag: string, value: unknown, op: ReduceOp): Promise<unknown> {
    const { size, rank } = this;
    let p = 1;
    while (p * 2 <= size) p *= 2;
    const extra = size - p;
    // `ours`: acc is memory of our own (received, or made by combine), free to overwrite.
    let acc = value;
    let ours = false;
    const swap = async (partner: number): Promise<void> => {
      this.sendFrames(partner, tag, ours ? serialize(acc) : detached(acc));
      const theirs = deserialize((await this.take(partner, tag)).frames);
      // The lower rank's partial on the left; the received one is ours to fold into. Our own
      // acc just went out without a copy, so it is not written while ZeroMQ may still send it.
      acc = partner < rank ? combine(op, theirs, acc, true) : combine(op, acc, theirs, false);
      ours = true;
    };
    if (rank < 2 * extra && rank % 2 === 0) {
      // As it is: the result it waits for comes only once its partner has this.
      this.sendFrames(rank + 1, tag, serialize(acc));
      return deserialize((await this.take(rank + 1, tag)).frames);
    }
    if (rank < 2 * extra) {
      acc = combine(op, deserialize((await this.take(rank - 1, tag)).frames), acc, true);
      ours = true;
    }
    const virtual = rank < 2 * extra ? rank >> 1 : rank - extra;
    const real = (v: number): number => (v < extra ? v * 2 + 1 : v + extra);
    for (let mask = 1; mask < p; mask <<= 1) await swap(real(virtual ^ mask));
    if (rank < 2 * extra) this.sendFrames(rank - 1, tag, detached(acc));
    return acc;
  }

  /**
   * Ring allreduce over a typed array: n−1 steps of reduce-scatter (each rank ends owning one
   * reduced chunk), then n−1 of allgather; each step sends one chunk right and receives one from
   * the left. Works on a copy unless in place.
   */
  private async ringAllreduce(tag: string, value: Float64Array, op: NamedOp, inPlace: boolean) {
    const size = this.size;
    const out = inPlace ? value : value.slice();
    const bounds = chunkBounds(out.length, size);
    const chunk = (c: number): Float64Array => out.subarray(bounds[c], bounds[c + 1]);
    const right = (this.rank + 1) % size;
    const left = (this.rank - 1 + size) % size;
    const mod = (i: number): number => ((i % size) + size) % size;
    for (let step = 0; step < size - 1; step++) {
      // A copy goes out: the chunk is written again while ZeroMQ may still hold the sent bytes.
      this.sendFrames(right, tag, serialize(chunk(mod(this.rank - step)).slice()));
      const got = deserialize((await this.take(left, tag)).frames) as Float64Array;
      combine(op, chunk(mod(this.rank - step - 1)), got, true);
    }
    for (let step = 0; step < size - 1; step++) {
      this.sendFrames(right, tag, serialize(chunk(mod(this.rank + 1 - step)).slice()));
      const got = deserialize((await this.take(left, tag)).frames) as Float64Array;
      chunk(mod(this.rank - step)).set(got);
    }
    return out;
  }

  /**
   * Allreduce over the sockets among a few ranks: each rank sends chunk q of its array to rank q
   * and folds the chunks it gets into its own (reduce-scatter by pairwise exchange), then sends
   * its reduced chunk to every other rank (allgather). The ring's bytes per rank in two message
   * rounds instead of its 2·(n−1) steps, and one copy (the reduced chunk, which the caller may
   * change while ZeroMQ still sends it) instead of one per step. The chunks of the input go out
   * as they are: no rank can finish before every other has received them.
   */
  private async pairwiseAllreduce(
    tag: string,
    value: NumericArray,
    op: NamedOp,
    inPlace: boolean,
  ): Promise<NumericArray> {
    const { size, rank } = this;
    const bounds = chunkBounds(value.length, size);
    const chunk = (a: NumericArray, r: number): NumericArray => a.subarray(bounds[r], bounds[r + 1]);
    const out = inPlace ? value : blankLike(value);
    const mine = chunk(out, rank);
    if (!inPlace) copyInto(mine, chunk(value, rank));
    for (let r = 0; r < size; r++) if (r !== rank) this.sendFrames(r, tag, serialize(chunk(value, r)));
    for (let r = 0; r < size; r++)
      if (r !== rank) combine(op, mine, deserialize((await this.take(r, tag)).frames), true);
    const reduced = serialize(mine.slice());
    for (let r = 0; r < size; r++) if (r !== rank) this.sendFrames(r, tag, reduced);
    for (let r = 0; r < size; r++)
      if (r !== rank) copyInto(chunk(out, r), deserialize((await this.take(r, tag)).frames));
    return out;
  }

  /**
   * Allreduce through shared memory. Reduce-scatter: each rank writes its array (less its own
   * chunk) to its scatter window and tells the others; rank q reads chunk q of every other
   * window and folds it into its copy, in rank order. Allgather: rank q writes its reduced chunk
   * to its gather window and tells the others, who read it straight into place.
   *
   * No acknowledgements are needed, as the messages already order the reads before any rewrite:
   * a rank rewrites its scatter window only after every other's gather message of the last call,
   * sent once that rank had read it; and its gather window only after every other's scatter
   * message of this call, sent once that rank had finished the last one.
   */
  private async sharedAllreduce(
    tag: string,
    value: NumericArray,
    op: NamedOp,
    inPlace: boolean,
  ): Promise<NumericArray> {
    const memory = this.memory!;
    const { size, rank } = this;
    const bytes = value.BYTES_PER_ELEMENT;
    const bounds = chunkBounds(value.length, size);
    const chunk = (a: NumericArray, r: number): NumericArray => a.subarray(bounds[r], bounds[r + 1]);
    // Only this rank's own chunk is needed from `value` in place: the others are read into `out`.
    const out = inPlace ? value : blankLike(value);
    const mine = chunk(out, rank);
    if (!inPlace) copyInto(mine, chunk(value, rank));
    // Each rank writes the others' chunks one by one, the next rank's first, and tells each its
    // chunk is there as soon as it is; rank q folds in what ranks q−1, q−2, … wrote, in that
    // order, so it starts as soon as its left neighbour's first write is done (the order is
    // fixed: the same sum every run).
    const scatter = memory.window("scatter");
    for (let k = 1; k < size; k++) {
      const q = (rank + k) % size;
      scatter.write(bounds[q]! * bytes, chunk(value, q));
      this.sendFrames(q, tag, serialize(scatter.name));
    }
    // Read and fold in pieces that stay in the core's cache between the copy and the fold.
    const piece = Math.max(1, Math.floor(FOLD_BYTES / bytes));
    const theirs = this.scratchLike(mine.subarray(0, piece));
    for (let k = 1; k < size; k++) {
      const window = deserialize((await this.take((rank - k + size) % size, tag)).frames) as string;
      for (let at = 0; at < mine.length; at += piece) {
        const part = mine.subarray(at, at + piece);
        const got = part.length === theirs.length ? theirs : theirs.subarray(0, part.length);
        memory.read(window, (bounds[rank]! + at) * bytes, got);
        combine(op, part, got, true);
      }
    }
    const gather = memory.window("gather");
    gather.write(bounds[rank]! * bytes, mine);
    for (let k = 1; k < size; k++) this.sendFrames((rank + k) % size, tag, serialize(gather.name));
    for (let k = 1; k < size; k++) {
      const r = (rank - k + size) % size;
      memory.read(deserialize((await this.take(r, tag)).frames) as string, bounds[r]! * bytes, chunk(out, r));
    }
    return out;
  }

  /**
   * Bcast when every member shares memory: the root sends to each rank directly, its large
   * buffers written once to a bcast window for all of them to read. Each reader says when it is
   * done, and the root waits for that before writing that window again; it has two, used in
   * turn, so in a loop of bcasts it writes one while the ranks still read the other.
   */
  private async sharedBcast(tag: string, root: number, value: unknown, into?: NumericArray): Promise<unknown> {
    const memory = this.memory!;
    if (this.rank !== root) {
      const { frames } = await this.take(root, tag);
      // The first frame: empty when nothing large came; else the tag to say "read" with.
      const readTag = frames[0]!.toString("latin1");
      if (readTag === "") return deserialize(frames.slice(1));
      // In place, the one large buffer of a typed array lands straight in the caller's array.
      const target = (index: number, bytes: number): Buffer | undefined =>
        into && index === 1 && bytes === into.byteLength
          ? Buffer.from(into.buffer, into.byteOffset, into.byteLength)
          : undefined;
      let read: Buffer[];
      try {
        read = framesFromWindow(frames.slice(1), (w, offset, to) => memory.read(w, offset, to), target);
      } finally {
        this.sendFrames(root, readTag, []); // done with the window, read or not
      }
      const got = deserialize(read);
      return into && sameMemory(got, into) ? into : got;
    }
    const frames = serialize(value);
    let message = [Buffer.alloc(0), ...frames];
    if (frames.some((f, i) => i > 0 && f.length >= LARGE_BYTES)) {
      const slot = this.bcastSlot;
      this.bcastSlot = 1 - slot;
      for (; this.bcastReaders[slot]! > 0; this.bcastReaders[slot]!--) await this.take(undefined, BCAST_READ[slot]!);
      const windowed = framesToWindow(frames, memory.window(slot === 0 ? "bcast0" : "bcast1"), LARGE_BYTES)!;
      message = [Buffer.from(BCAST_READ[slot]!, "latin1"), ...windowed];
      this.bcastReaders[slot] = this.size - 1;
    }
    for (let r = 0; r < this.size; r++) if (r !== root) this.sendFrames(r, tag, message);
    return value;
  }

  // ---------------------------------------------------------------- plumbing

  /**
   * Runs a collective; if it fails on this member for a reason of its own (a wrong shape, a full
   * /dev/shm), the communicator breaks and every other member is told, so their calls fail
   * naming this rank instead of waiting for messages that will never come.
   */
  private async guarded<R>(run: () => Promise<R>): Promise<R> {
    try {
      return await run();
    } catch (e) {
      throw this.fail(e);
    }
  }

  private fail(e: unknown): Error {
    if (this.broken) return this.broken; // lost, interrupted, or told already: the others know
    const code = (e as NodeJS.ErrnoException | undefined)?.code;
    const why =
      (e instanceof Error ? e.message : String(e)) +
      (code === "ENOSPC" ? "; /dev/shm is full: form the communicator with view.comm({ sharedMemory: false })" : "");
    for (let r = 0; r < this.size; r++)
      if (r !== this.rank)
        this.transport.send(this.members[r]!, { comm: this.id, from: this.rank, tag: FAILED }, serialize(why));
    const error = new CommError(`${this.whoIs(this.rank)} failed: ${why}`);
    this.break(error);
    return error;
  }

  /** `rank R (engine E) of communicator ID`, as errors name a member. */
  whoIs(rank: number): string {
    return `rank ${rank} (engine ${this.members[rank]!.engineId}) of communicator ${this.id}`;
  }

  /** Runs `step` after this rank's earlier collectives through shared memory have ended. */
  private inTurn<R>(step: () => Promise<R>): Promise<R> {
    this.turnsOpen++;
    const run = this.memoryTurn.then(step).finally(() => {
      this.turnsOpen--;
      this.lastTurnEnded = Date.now();
    });
    this.memoryTurn = run.catch(() => undefined);
    return run;
  }

  /**
   * Gives this rank's windows back (they are made again if the communicator is used again),
   * when nothing of this rank's may still be read from them: no collective under way here, every
   * reader of its last bcast done, and the last one ended `idleMs` ago, long after the others'
   * reads of it (theirs end within their own call). Returns whether it did.
   */
  releaseMemory(idleMs: number, now = Date.now()): boolean {
    // A collective under way may be waiting for the notes below: leave them to it.
    if (!this.memory || this.turnsOpen > 0) return false;
    // The readers' notes of the last bcast wait in the mailbox until the next bcast: count them.
    for (const [key, queue] of this.mailbox) {
      const slot = BCAST_READ.findIndex((t) => key.endsWith(`|${t}`));
      if (slot < 0) continue;
      const taken = Math.min(queue.length, this.bcastReaders[slot]!);
      queue.splice(0, taken);
      this.bcastReaders[slot]! -= taken;
      if (queue.length === 0) this.mailbox.delete(key);
    }
    const reading = this.bcastReaders.some((n) => n > 0);
    if (reading || now - this.lastTurnEnded < idleMs) return false;
    this.memory.close();
    return true;
  }

  /** A view of this communicator's scratch memory, as long as and of the type of `like`. */
  private scratchLike(like: NumericArray): NumericArray {
    if (this.scratch.byteLength < like.byteLength) this.scratch = new ArrayBuffer(like.byteLength);
    const Ctor = like.constructor as new (b: ArrayBuffer, offset: number, length: number) => NumericArray;
    return new Ctor(this.scratch, 0, like.length);
  }

  /** The next collective's tag; checks the communicator and the root. */
  private collective(root: number): string {
    this.check();
    this.rankCheck(root, "use as root");
    return `c${++this.collectives}`;
  }

  private sendFrames(to: number, tag: string, frames: Buffer[]): void {
    this.check();
    if (to === this.rank) return this.deliver(this.rank, tag, frames);
    this.transport.send(this.members[to]!, { comm: this.id, from: this.rank, tag }, frames);
  }

  private take(from: number | undefined, tag: string): Promise<{ from: number; frames: Buffer[] }> {
    this.check();
    const direct = from === undefined ? undefined : this.mailbox.get(`${from}|${tag}`);
    if (direct) {
      const frames = direct.shift()!;
      if (direct.length === 0) this.mailbox.delete(`${from}|${tag}`);
      return Promise.resolve({ from: from!, frames });
    }
    if (from !== undefined) return new Promise((resolve, reject) => this.waiters.push({ from, tag, resolve, reject }));
    for (const [key, queue] of this.mailbox) {
      const bar = key.indexOf("|");
      const sender = Number(key.slice(0, bar));
      if (key.slice(bar + 1) !== tag) continue;
      const frames = queue.shift()!;
      if (queue.length === 0) this.mailbox.delete(key);
      return Promise.resolve({ from: sender, frames });
    }
    return new Promise((resolve, reject) => this.waiters.push({ from, tag, resolve, reject }));
  }

  private check(): void {
    if (this.broken) throw this.broken;
  }

  private rankCheck(r: number, what: string): void {
    if (!Number.isInteger(r) || r < 0 || r >= this.size)
      throw new CommError(`cannot ${what} rank ${String(r)}: this communicator has ranks 0 to ${this.size - 1}`);
  }
}

/**
 * Up to this many ranks, allreduce over the sockets exchanges chunks pairwise, all at once;
 * beyond, so many messages at once would crowd the links, and the ring's steps take over.
 */
export const PAIRWISE_MAX = 8;

/** How much of another rank's chunk an allreduce through shared memory reads at a time. */
const FOLD_BYTES = 256 * 1024;

/** The tag of a member's word that a collective failed on it (guarded). */
const FAILED = "!";

/** The tags of a reader's note to a bcast's root that it is done with the root's window 0 or 1. */
const BCAST_READ = ["w0", "w1"] as const;

/** What a bcast in place received, in the caller's array (a one-line error if it does not fit). */
function landIn(into: NumericArray, got: unknown, root: number): NumericArray {
  if (got?.constructor !== into.constructor || (got as NumericArray).length !== into.length)
    throw new CommError(
      `bcast in place: rank ${root} sent ${describe(got)}, which does not fit the ${describe(into)} this rank passed`,
    );
  copyInto(into, got);
  return into;
}

function sameMemory(got: unknown, into: NumericArray): boolean {
  return (
    ArrayBuffer.isView(got) &&
    got.constructor === into.constructor &&
    got.buffer === into.buffer &&
    got.byteOffset === into.byteOffset &&
    got.byteLength === into.byteLength
  );
}

/**
 * A new array of `value`'s type and length, its memory not zeroed: for results whose every
 * element is written before they are returned (zeroing 8 MB, then faulting its pages in, cost
 * more than the copies into it).
 */
function blankLike(value: NumericArray): NumericArray {
  const memory = Buffer.allocUnsafeSlow(value.byteLength);
  const Ctor = value.constructor as new (b: ArrayBufferLike, offset: number, length: number) => NumericArray;
  return new Ctor(memory.buffer, memory.byteOffset, value.length);
}

/** `from`'s elements into `to` (typed arrays of one type: Float64Array stands for any). */
function copyInto(to: NumericArray, from: unknown): void {
  (to as Float64Array).set(from as Float64Array);
}

/**
 * `value`'s frames sharing no memory with it. ZeroMQ sends a large frame from the memory it was
 * given, later, on its own thread; a caller that changes its array once the call has returned
 * (as MPI lets it) must not change what is still to leave. The first frame is the serializer's
 * own; only the typed arrays moved out of band are copied.
 */
function detached(value: unknown): Buffer[] {
  return detachFrames(serialize(value));
}

function detachFrames(frames: readonly Buffer[]): Buffer[] {
  return frames.map((f, i) => (i === 0 ? f : Buffer.from(f)));
}

/** Where each of `size` near-equal chunks of `length` elements starts (and the last ends). */
function chunkBounds(length: number, size: number): number[] {
  return Array.from({ length: size + 1 }, (_, i) => Math.floor((i * length) / size));
}
