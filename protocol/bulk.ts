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
 * Files are named `<pid of the client>-<n>`: the client removes those of a request when the
 * request settles, and those of a reply once it has read them. A client that died leaves files
 * behind; the next client on the host removes every file whose pid is gone.
 *
 * The file calls are synchronous on purpose: /dev/shm is memory (tmpfs), so a write or a read is
 * a copy that never waits on a device, the same copy the socket path makes, and staying
 * synchronous keeps `submit` returning its task with the message already queued in order.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { TsParallelError } from "./errors";
import type { BulkRef } from "./messages";

/** Buffers this large or larger travel through shared memory (a 1 MiB array is the first size). */
export const BULK_MIN_BYTES = 1024 * 1024;

let dir: string | undefined;

/** Where the files live: private to this user (looked up once: it is on every large message's path). */
export function bulkDir(): string {
  return (dir ??= path.join("/dev/shm", `tsparallel-${os.userInfo().uid}`));
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

function ensureDir(): string {
  const dir = bulkDir();
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

let counter = 0;

/**
 * Writes the buffers of at least BULK_MIN_BYTES to files named for `owner` (the pid whose exit
 * makes them stale); returns the message's buffers with those emptied, their refs, and the files
 * (no refs, and the buffers as they were, when none is that large).
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
  const out = buffers.map((b, index) => {
    if (b.length < BULK_MIN_BYTES) return b;
    const dir = ensureDir();
    const name = `${owner}-${process.pid}.${++counter}`;
    const file = path.join(dir, name);
    const earlier = written?.get(b);
    if (earlier === undefined || !linked(earlier, file)) {
      fs.writeFileSync(file, b, { mode: 0o600 });
      written?.set(b, file);
    }
    refs.push({ index, name, bytes: b.length });
    files.push(file);
    return Buffer.alloc(0);
  });
  return { buffers: out, refs, files };
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
 * a file is missing or of the wrong size (its sender removed it, or it was never on this host).
 */
export function readBulk(buffers: readonly Buffer[], refs: readonly BulkRef[], remove = false): Buffer[] {
  const out = [...buffers];
  for (const r of refs) {
    if (r.index >= out.length) throw new TsParallelError(`shared-memory buffer ${r.index} is beyond the message`);
    const file = path.join(bulkDir(), r.name);
    let data: Buffer;
    try {
      data = fs.readFileSync(file);
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
  let file: string;
  try {
    file = path.join(ensureDir(), `engine-${uuid}`);
    fs.writeFileSync(file, String(process.pid), { mode: 0o600 });
  } catch {
    return () => undefined; // no /dev/shm here: clients keep the controller path
  }
  return () => removeFiles([file]);
}

/** Whether the engine with this uuid shares this process's /dev/shm. */
export function sharesMemoryWith(uuid: string): boolean {
  return fs.existsSync(path.join(bulkDir(), `engine-${uuid}`));
}

/**
 * Removes the files of processes that are gone: a client's that died before removing its own,
 * and the marker of an engine that was killed.
 */
export function sweepStale(isAlive: (pid: number) => boolean): void {
  const dir = bulkDir();
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const file = path.join(dir, name);
    let owner = Number(/^(\d+)-/.exec(name)?.[1]);
    if (name.startsWith("engine-")) {
      try {
        owner = Number(fs.readFileSync(file, "utf8"));
      } catch {
        continue;
      }
    }
    if (Number.isInteger(owner) && owner > 0 && !isAlive(owner)) removeFiles([file]);
  }
}
