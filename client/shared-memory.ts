/**
 * When a request's large buffers go through /dev/shm instead of the sockets (protocol/bulk.ts):
 * only when every engine it goes to shares our /dev/shm. The files of requests in flight are
 * removed when their tasks settle, or when the client closes.
 */
import type { RequestMetadata } from "../protocol/messages";
import { removeFiles, stashBulk, sweepStale } from "../protocol/bulk";
import { isAlive } from "../protocol/connection";
import type { SubmittedTask } from "./task";

let swept = false;

/**
 * How long after an engine on this host is lost its leftover shared-memory files are swept: the
 * replies it sent before dying may still be on their way here, and name files of theirs (ms).
 */
const SWEEP_AFTER_LOSS_MS = 2000;

export class SharedMemoryPolicy {
  /** The first client of a process removes shared-memory files that dead processes left behind. */
  static sweepOnce(): void {
    if (swept) return;
    swept = true;
    sweepStale(isAlive);
  }

  /** An engine on this host was lost: the files it may have left (a reply it was writing, its marker) go soon. */
  static sweepLater(): void {
    setTimeout(() => sweepStale(isAlive), SWEEP_AFTER_LOSS_MS).unref();
  }

  /** Shared-memory files of requests in flight. */
  private readonly files = new Set<string>();
  /** Buffers already in a file: a DirectView sends one serialization to each of its engines. */
  private readonly written = new WeakMap<Buffer, string>();

  constructor(private readonly sharesMemory: (engineId: number) => boolean) {}

  /**
   * The metadata and buffers a request to `engineIds` goes out with: when every one of them
   * shares our /dev/shm, its large buffers are handed over there (removed once all `tasks`
   * settle) and large results may come back the same way. Otherwise, or when /dev/shm cannot
   * take them, everything takes the sockets as before.
   */
  prepare(
    engineIds: readonly number[],
    metadata: RequestMetadata,
    buffers: Buffer[],
    tasks: readonly SubmittedTask[],
  ): { metadata: RequestMetadata; buffers: Buffer[] } {
    if (engineIds.length === 0 || !engineIds.every((id) => this.sharesMemory(id))) return { metadata, buffers };
    const out: RequestMetadata = { ...metadata, bulkReply: process.pid };
    let stashed: ReturnType<typeof stashBulk>;
    try {
      stashed = stashBulk(buffers, process.pid, this.written);
    } catch {
      return { metadata, buffers };
    }
    if (stashed.refs.length === 0) return { metadata: out, buffers };
    for (const f of stashed.files) this.files.add(f);
    const release = (): void => {
      removeFiles(stashed.files);
      for (const f of stashed.files) this.files.delete(f);
    };
    void Promise.allSettled(tasks.map((t) => t.done)).then(release);
    return { metadata: { ...out, bulk: stashed.refs }, buffers: stashed.buffers };
  }

  /** Removes every file still in flight. */
  close(): void {
    removeFiles([...this.files]);
    this.files.clear();
  }
}
