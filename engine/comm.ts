/**
 * `comm`: a communicator over the engines of one view, so `%px` code can do what mpi4py code
 * does (ipyparallel engines cannot talk to each other; there is no MPI binding for Node).
 *
 * Messages go engine to engine (peers.ts: each engine's DEALER to the others' direct sockets,
 * signed, CURVE when the cluster uses it); values travel as the wire's structured clone, large
 * typed arrays as frames of their own, without a copy. Collectives use MPI's algorithms:
 * binomial trees for bcast and reduce, a ring (reduce-scatter then allgather) for allreduce of
 * large typed arrays, which moves 2·(n−1)/n of the array per rank instead of log n copies of it.
 *
 * As in MPI, every member calls the same collectives in the same order: each collective takes
 * the communicator's next sequence number, and its messages carry it as their tag, so two
 * collectives never mix. A member lost (the controller says so) breaks the communicator: every
 * call pending or to come fails on every other member, naming the rank and engine. An interrupt
 * fails the pending calls too, and the communicator with them (its members may be at different
 * steps): form a new one.
 */
import { TsParallelError } from "../protocol/errors";
import { deserialize, serialize } from "../protocol/serialize";
import { type ReduceOp, checkOp, combine } from "./reduce";

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

/** Typed arrays at least this large go round the ring in allreduce; smaller ones take the trees. */
export const RING_BYTES = 64 * 1024;

interface Waiter {
  from: number | undefined;
  tag: string;
  resolve(m: { from: number; frames: Buffer[] }): void;
  reject(e: Error): void;
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

  // ---------------------------------------------------------------- point to point

  async send(to: number, value: unknown, opts: SendOptions = {}): Promise<void> {
    this.check();
    this.rankCheck(to, "send to");
    this.sendFrames(to, `u${String(opts.tag ?? 0)}`, serialize(value));
    return Promise.resolve();
  }

  /** The next value from `from` (any rank when left out) with the tag. */
  async recv<T = unknown>(from?: number, opts: SendOptions = {}): Promise<T> {
    if (from !== undefined) this.rankCheck(from, "receive from");
    const m = await this.take(from, `u${String(opts.tag ?? 0)}`);
    return deserialize(m.frames) as T;
  }

  // ---------------------------------------------------------------- collectives

  /** `value` of `root` on every rank (a binomial tree: each rank forwards what it got, as it got it). */
  async bcast<T>(value: T, root = 0): Promise<T> {
    const tag = this.collective(root);
    const frames = await this.treeBcast(tag, root, this.rank === root ? serialize(value) : undefined);
    return (this.rank === root ? value : deserialize(frames)) as T;
  }

  /** `values[i]` of `root` to rank i (root passes one value per rank). */
  async scatter<T>(values: readonly T[] | undefined, root = 0): Promise<T> {
    const tag = this.collective(root);
    if (this.rank !== root) return deserialize((await this.take(root, tag)).frames) as T;
    const all: readonly T[] | undefined = values;
    if (all?.length !== this.size || !Array.isArray(values))
      throw new CommError(`scatter: rank ${root} must pass an array of ${this.size} values, one per rank`);
    for (let r = 0; r < this.size; r++) if (r !== root) this.sendFrames(r, tag, serialize(all[r]));
    return all[root]!;
  }

  /** Every rank's value, in rank order, on `root`; undefined elsewhere. */
  async gather<T>(value: T, root = 0): Promise<T[] | undefined> {
    const tag = this.collective(root);
    if (this.rank !== root) {
      this.sendFrames(root, tag, serialize(value));
      return undefined;
    }
    const out = new Array<T>(this.size);
    out[root] = value;
    for (let r = 0; r < this.size; r++) if (r !== root) out[r] = deserialize((await this.take(r, tag)).frames) as T;
    return out;
  }

  /** Every rank's value, in rank order, on every rank. */
  async allgather<T>(value: T): Promise<T[]> {
    const all = await this.gather(value, 0);
    return this.bcast(all as T[], 0);
  }

  /** `op` over every rank's value, on `root` (a binomial tree); undefined elsewhere. */
  async reduce<T>(value: T, op: ReduceOp, root = 0): Promise<T | undefined> {
    const f = checkOp(op);
    const tag = this.collective(root);
    return (await this.treeReduce(tag, root, value, f)) as T | undefined;
  }

  /** `op` over every rank's value, on every rank: a ring for large typed arrays, else reduce + bcast. */
  async allreduce<T>(value: T, op: ReduceOp): Promise<T> {
    const f = checkOp(op);
    if (ArrayBuffer.isView(value) && !(value instanceof DataView) && typeof f === "string") {
      const n = (value as unknown as { length: number }).length;
      if (value.byteLength >= RING_BYTES && n >= this.size && this.size > 1)
        return this.ringAllreduce(value as unknown as Float64Array, f) as unknown as T;
    }
    const tag = this.collective(0);
    const reduced = await this.treeReduce(tag, 0, value, f);
    const frames = await this.treeBcast(tag, 0, this.rank === 0 ? serialize(reduced) : undefined);
    return (this.rank === 0 ? reduced : deserialize(frames)) as T;
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
    this.adopt(sub);
    return sub;
  }

  // ---------------------------------------------------------------- delivery and faults

  /** A message for this communicator arrived. */
  deliver(from: number, tag: string, frames: Buffer[]): void {
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
    for (mask >>= 1; mask > 0; mask >>= 1)
      if (rel + mask < size) this.sendFrames((rel + mask + root) % size, tag, got!);
    return got!;
  }

  private async treeReduce(tag: string, root: number, value: unknown, op: ReduceOp): Promise<unknown> {
    const size = this.size;
    const rel = (this.rank - root + size) % size;
    let acc = value;
    let ours = false; // acc is our own copy (a received value), free to overwrite
    for (let mask = 1; mask < size; mask <<= 1) {
      if (rel & mask) {
        this.sendFrames((rel - mask + root) % size, tag, serialize(acc));
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
   * Ring allreduce over a typed array: n−1 steps of reduce-scatter (each rank ends owning one
   * reduced chunk), then n−1 of allgather; each step sends one chunk right and receives one from
   * the left. Works on a copy: the caller's array is not changed.
   */
  private async ringAllreduce(value: Float64Array, op: Exclude<ReduceOp, (a: unknown, b: unknown) => unknown>) {
    const tag = this.collective(0);
    const size = this.size;
    const out = value.slice();
    const bounds = Array.from({ length: size + 1 }, (_, i) => Math.floor((i * out.length) / size));
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

  // ---------------------------------------------------------------- plumbing

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
