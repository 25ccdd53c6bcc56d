/**
 * Large buffers between a client and an engine that share a host go through shared memory: the
 * sender writes each one to a file in /dev/shm and the message carries its name, so the bytes
 * are copied once each way instead of through the controller over TCP twice (loopback ZeroMQ
 * moves about 110 MB/s on the benchmark machine; tmpfs moves GB/s). The controller forwards and
 * records only the small message.
 *
 * Whether an engine shares the client's /dev/shm (same host, same container, same user) is not
 * judged by its hostname: each engine leaves a marker file named by its uuid there while it runs,
 * and a client uses shared memory for an engine only when it sees that marker. Every other pair
 * (an engine on another host, in another container, under another user) keeps the controller
 * path, unchanged.
 *
 * Files are named `<pid of the client>-<pid of the writer>.<random>`: the client removes those of
 * a request when the request settles, and those of a reply once it has read them. Files a dead
 * process left behind are removed by whoever notices first (see sweepStale).
 *
 * Another user on the host must neither read these buffers nor make us write through a link of
 * theirs: the folder is ours and 0700 or it is not used, files are created exclusively and opened
 * without following links, and names cannot be guessed.
 *
 * The file calls are synchronous on purpose: /dev/shm is memory (tmpfs), so a write or a read is
 * a copy that never waits on a device, the same copy the socket path makes, and staying
 * synchronous keeps `submit` returning its task with the message already queued in order.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { TsParallelError } from "./errors";
import type { BulkRef } from "./messages";

/** Buffers this large or larger travel through shared memory (a 1 MiB array is the first size). */
export const BULK_MIN_BYTES = 1024 * 1024;

const uid = process.getuid?.() ?? os.userInfo().uid;

/** Where the files live: private to this user. */
export function bulkDir(): string {
  return path.join("/dev/shm", `tsparallel-${uid}`);
}

const NAME = /^[0-9]+-[A-Za-z0-9_.-]+$/;

export function isBulkRefs(v: unknown): v is BulkRef[] {
  return (
    Array.isArray(v) &&
    v.every((r: unknown) => {
      const x = r as Partial<BulkRef> | null;
      return (
        typeof x === "object" &&
        x !== null &&
        Number.isInteger(x.index) &&
        x.index! >= 0 &&
        Number.isInteger(x.bytes) &&
        x.bytes! >= 0 &&
        typeof x.name === "string" &&
        NAME.test(x.name)
      );
    })
  );
}

/**
 * Why the folder cannot be trusted, or undefined when it can: it must be a real directory (not a
 * symlink), owned by us, that nobody else may enter. /dev/shm is sticky, so once such a folder is
 * ours no other user can rename or replace it; checking it with lstat before each use is enough.
 */
export function untrustedBecause(dir: string, st: fs.Stats): string | undefined {
  if (st.isSymbolicLink()) return `${dir} is a symbolic link`;
  if (!st.isDirectory()) return `${dir} is not a directory`;
  if (st.uid !== uid) return `${dir} belongs to uid ${st.uid}, not to this user (uid ${uid})`;
  if ((st.mode & 0o077) !== 0) return `${dir} has mode ${(st.mode & 0o777).toString(8)}, open to other users`;
  return undefined;
}

let warned = false;

/**
 * The private folder, created 0700 if missing and verified before every use; undefined (after
 * one warning per process) when another user could reach into it. Callers then keep the
 * controller path, which is always correct.
 */
function privateDir(): string | undefined {
  const dir = bulkDir();
  let why: string | undefined;
  try {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      fs.mkdirSync(dir, { mode: 0o700 });
      st = fs.lstatSync(dir);
    }
    why = untrustedBecause(dir, st);
  } catch {
    return undefined; // no /dev/shm here, or it is full: nothing to warn about
  }
  if (why === undefined) return dir;
  if (!warned) {
    warned = true;
    process.stderr.write(
      `tsparallel: not using shared memory for large buffers: ${why}; remove it to get the fast path back\n`,
    );
  }
  return undefined;
}

const { O_WRONLY, O_RDONLY, O_RDWR, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;

/** Creates `file` (never an existing one, never through a link) with `data`; removes it if the write fails. */
function writeExclusive(file: string, data: Uint8Array | string): void {
  const fd = fs.openSync(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  try {
    fs.writeFileSync(fd, data);
  } catch (e) {
    fs.rmSync(file, { force: true }); // ENOSPC mid-write: no partial file stays behind
    throw e;
  } finally {
    fs.closeSync(fd);
  }
}

/** The whole of a regular file, opened without following a link. */
function readPlain(file: string): Buffer {
  const fd = fs.openSync(file, O_RDONLY | O_NOFOLLOW);
  try {
    if (!fs.fstatSync(fd).isFile()) throw new Error(`${file} is not a regular file`);
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Writes the buffers of at least BULK_MIN_BYTES to files named for `owner` (the pid whose exit
 * makes them stale) and this process (the writer); returns the message's buffers with those
 * emptied, their refs, and the files (no refs, and the buffers as they were, when none is that
 * large). Throws when the folder is untrusted or a write fails, with none of its files left.
 * Names end in 96 random bits, so nobody can plant a file under a name we will use.
 * With `written`, a buffer already written to a file that still exists (the same request to
 * another engine) gets a hard link to it instead: one copy for any number of engines, and each
 * engine's name can still be removed on its own.
 */
export function stashBulk(
  buffers: readonly Buffer[],
  owner = process.pid,
  written?: WeakMap<Buffer, string>,
): { buffers: Buffer[]; refs: BulkRef[]; files: string[] } {
  const refs: BulkRef[] = [];
  const files: string[] = [];
  try {
    const out = buffers.map((b, index) => {
      if (b.length < BULK_MIN_BYTES) return b;
      const dir = privateDir();
      if (dir === undefined) throw new TsParallelError("shared memory is not private to this user");
      const name = `${owner}-${process.pid}.${randomBytes(12).toString("base64url")}`;
      const file = path.join(dir, name);
      const earlier = written?.get(b);
      if (earlier === undefined || !linked(earlier, file)) {
        writeExclusive(file, b);
        written?.set(b, file);
      }
      files.push(file);
      refs.push({ index, name, bytes: b.length });
      return Buffer.alloc(0);
    });
    return { buffers: out, refs, files };
  } catch (e) {
    removeFiles(files);
    throw e;
  }
}

function linked(existing: string, file: string): boolean {
  try {
    fs.linkSync(existing, file);
    return true;
  } catch {
    return false; // removed since (its request settled): write the buffer again
  }
}

/**
 * The message's buffers with each ref's file read back in. Throws a one-line TsParallelError when
 * a file is missing or of the wrong size (its sender removed it, or it was never on this host),
 * or when the folder is not private to this user.
 */
export function readBulk(buffers: readonly Buffer[], refs: readonly BulkRef[], remove = false): Buffer[] {
  const out = [...buffers];
  for (const r of refs) {
    if (r.index >= out.length) throw new TsParallelError(`shared-memory buffer ${r.index} is beyond the message`);
    const dir = privateDir();
    if (dir === undefined) throw new TsParallelError(`${bulkDir()} is not private to this user; send the data again`);
    const file = path.join(dir, r.name);
    let data: Buffer;
    try {
      data = readPlain(file);
    } catch {
      throw new TsParallelError(
        `the ${r.bytes}-byte buffer handed over through shared memory (${file}) is gone; send the data again`,
      );
    }
    if (data.length !== r.bytes)
      throw new TsParallelError(`shared-memory buffer ${file} has ${data.length} bytes, not ${r.bytes}`);
    out[r.index] = data;
    if (remove) removeFiles([file]);
  }
  return out;
}

export function removeFiles(files: readonly string[]): void {
  for (const f of files) fs.rmSync(f, { force: true });
}

/** An engine's marker: a client that sees it shares this engine's /dev/shm. Returns its remover. */
export function markEngine(uuid: string): () => void {
  const dir = privateDir();
  if (dir === undefined) return () => undefined; // clients keep the controller path
  const file = path.join(dir, `engine-${uuid}`);
  try {
    writeExclusive(file, String(process.pid));
  } catch {
    return () => undefined;
  }
  return () => removeFiles([file]);
}

/** Whether the engine with this uuid shares this process's /dev/shm (and that folder is private). */
export function sharesMemoryWith(uuid: string): boolean {
  const dir = privateDir();
  if (dir === undefined) return false;
  try {
    return fs.lstatSync(path.join(dir, `engine-${uuid}`)).isFile();
  } catch {
    return false;
  }
}

/**
 * Removes the files of processes that are gone: those whose owner (the client a request or reply
 * belongs to) or writer died before removing them, partly written ones among them, and the marker
 * of an engine that was killed. Called by a client as it starts and when it hears an engine is
 * lost, and by the controller when it loses an engine on this host.
 */
export function sweepStale(isAlive: (pid: number) => boolean): void {
  const dir = privateDir();
  if (dir === undefined) return;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const file = path.join(dir, name);
    let pids = (/^(\d+)-(\d+)\./.exec(name) ?? []).slice(1).map(Number);
    if (name.startsWith("engine-")) {
      try {
        pids = [Number(readPlain(file).toString("utf8"))];
      } catch {
        continue;
      }
    }
    if (pids.some((pid) => Number.isInteger(pid) && pid > 0 && !isAlive(pid))) removeFiles([file]);
  }
}

/**
 * A file in the private folder that one process writes at offsets, again and again, and the
 * processes it names it to read at offsets: shared memory without mmap, which Node lacks. Its
 * pages stay allocated between uses, so a rewrite costs one copy (a new file per message would
 * also pay for fresh pages, which costs more than the copy). Whoever writes it decides when a
 * region may be written again (after its readers said they are done). Named like the other
 * files (owner and writer are this process), so sweepStale removes it if the process dies.
 */
export class SharedWindow {
  readonly name: string;
  private fd: number | undefined;

  /** Throws when the folder is not private to this user (callers then keep the socket path). */
  constructor() {
    const dir = privateDir();
    if (dir === undefined) throw new TsParallelError("shared memory is not private to this user");
    this.name = `${process.pid}-${process.pid}.w${randomBytes(12).toString("base64url")}`;
    this.fd = fs.openSync(path.join(dir, this.name), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  }

  /** Writes `data` at byte `offset` (the file grows as needed). */
  write(offset: number, data: ArrayBufferView): void {
    if (this.fd === undefined) throw new TsParallelError(`shared-memory window ${this.name} is closed`);
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    for (let done = 0; done < bytes.length;)
      done += fs.writeSync(this.fd, bytes, done, bytes.length - done, offset + done);
  }

  close(): void {
    if (this.fd === undefined) return;
    fs.closeSync(this.fd);
    this.fd = undefined;
    const dir = privateDir();
    if (dir !== undefined) removeFiles([path.join(dir, this.name)]);
  }
}

/**
 * Reads other processes' windows, keeping the most recently read open: an open descriptor keeps
 * a window's memory alive after its writer removed it, so only so many stay open.
 */
export class WindowReader {
  /** Open windows, least recently read first. */
  private readonly open = new Map<string, number>();

  constructor(private readonly keepOpen = 64) {}

  /** Fills `into` from byte `offset` of window `name`; a one-line error when it cannot. */
  read(name: string, offset: number, into: ArrayBufferView): void {
    const bytes = new Uint8Array(into.buffer, into.byteOffset, into.byteLength);
    const fd = this.fd(name);
    for (let done = 0; done < bytes.length;) {
      const n = fs.readSync(fd, bytes, done, bytes.length - done, offset + done);
      if (n === 0)
        throw new TsParallelError(
          `shared-memory window ${name} ends before byte ${offset + bytes.length}: its writer changed it or went away`,
        );
      done += n;
    }
  }

  private forget(name: string): void {
    const fd = this.open.get(name);
    if (fd !== undefined) fs.closeSync(fd);
    this.open.delete(name);
  }

  close(): void {
    for (const name of [...this.open.keys()]) this.forget(name);
  }

  private fd(name: string): number {
    let fd = this.open.get(name);
    if (fd !== undefined) {
      this.open.delete(name);
      this.open.set(name, fd);
      return fd;
    }
    if (this.open.size >= this.keepOpen) this.forget(this.open.keys().next().value!);
    const dir = privateDir();
    if (!NAME.test(name) || dir === undefined)
      throw new TsParallelError(`cannot read shared-memory window ${JSON.stringify(name)}: not a window of this user`);
    try {
      fd = fs.openSync(path.join(dir, name), O_RDONLY | O_NOFOLLOW);
      if (!fs.fstatSync(fd).isFile()) throw new Error("not a regular file");
    } catch (e) {
      if (fd !== undefined) fs.closeSync(fd);
      throw new TsParallelError(`cannot open shared-memory window ${name}: ${(e as Error).message}`);
    }
    this.open.set(name, fd);
    return fd;
  }
}

/** What a window is to the code that sends through one: its name, and writing at offsets. */
export interface WindowWriter {
  readonly name: string;
  write(offset: number, data: ArrayBufferView): void;
}

/**
 * The message's frames with those of at least `minBytes` after the first written one after the
 * other into `window` and emptied; a frame in front says where they are. Returns undefined (and
 * writes nothing) when no frame is that large.
 */
export function framesToWindow(
  frames: readonly Buffer[],
  window: WindowWriter,
  minBytes: number,
): Buffer[] | undefined {
  const at: Array<[index: number, offset: number, bytes: number]> = [];
  let offset = 0;
  const out = frames.map((f, index) => {
    if (index === 0 || f.length < minBytes) return f;
    window.write(offset, f);
    at.push([index, offset, f.length]);
    offset += f.length;
    return Buffer.alloc(0);
  });
  if (at.length === 0) return undefined;
  return [Buffer.from(JSON.stringify({ window: window.name, at })), ...out];
}

/** The frames `framesToWindow` sent, each large one read back (into memory of its own) from the window. */
export function framesFromWindow(
  frames: readonly Buffer[],
  read: (window: string, offset: number, into: Buffer) => void,
  /** Memory the caller wants a frame read into (of exactly its size), instead of new memory. */
  target: (index: number, bytes: number) => Buffer | undefined = () => undefined,
): Buffer[] {
  let where: { window: string; at: Array<[number, number, number]> };
  try {
    where = JSON.parse(frames[0]?.toString("utf8") ?? "") as typeof where;
    if (typeof where.window !== "string" || !Array.isArray(where.at)) throw new Error("no window");
  } catch {
    throw new TsParallelError("a message through shared memory does not say where its buffers are");
  }
  const out = frames.slice(1);
  for (const [index, offset, bytes] of where.at) {
    if (
      !Number.isInteger(index) ||
      index < 1 ||
      index >= out.length ||
      !Number.isInteger(offset) ||
      offset < 0 ||
      !Number.isInteger(bytes) ||
      bytes < 0
    )
      throw new TsParallelError(`a message through shared memory names buffer ${String(index)} wrongly`);
    // Memory of its own (offset 0): aligned for any typed array the value rebuilds over it.
    const into = target(index, bytes) ?? Buffer.allocUnsafeSlow(bytes);
    read(where.window, offset, into);
    out[index] = into;
  }
  return out;
}
