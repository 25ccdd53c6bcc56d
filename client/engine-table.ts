/**
 * The client's engine table: the registered engine ids, each engine's uuid and direct socket,
 * whether it shares our /dev/shm, and the newest reply each engine sent us straight (its
 * sequence number: a record query waits for the controller to have recorded that far). Kept
 * current by the controller's engine lists and its (un)registration notifications, which travel
 * on different sockets: the registry's count (`seq`) in each keeps the newest view, so a late
 * list never revives an engine that left.
 */
import type { ContentOf, DirectEndpoint, EngineDescription, ReplyMetadata } from "../protocol/messages";
import { isDirectEndpoint } from "../protocol/validate";
import { sharesMemoryWith } from "../protocol/bulk";
import { TimeoutError } from "./errors";

/** How often a wait for engines asks the controller for its list (ms). */
const POLL_MS = 500;

interface EngineInfo {
  uuid: string;
  direct?: DirectEndpoint;
}

export class EngineTable {
  private sorted: number[] = [];
  private readonly info = new Map<number, EngineInfo>();
  /** The controller's registry count behind `sorted`. */
  private seq = -1;
  /** Per engine uuid: shares our /dev/shm (looked up once; see protocol/bulk.ts). */
  private readonly sharedMemory = new Map<string, boolean>();
  /** Per engine uuid: the newest reply sequence number it sent us (ReplyMetadata.seq). */
  private readonly repliesSeen = new Map<string, number>();

  private readonly listeners = new Set<() => void>();

  /**
   * Resolves once `n` engines are registered; rejects with TimeoutError after `timeout` ms.
   * `refresh` fetches the controller's list meanwhile, every `POLL_MS`.
   */
  atLeast(n: number, timeout: number | undefined, refresh: () => Promise<void>): Promise<void> {
    if (this.sorted.length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.sorted.length >= n) done(undefined);
      };
      const late = (): TimeoutError =>
        new TimeoutError(`only ${this.sorted.length} of ${n} engines registered after ${timeout} ms`);
      const timer = timeout !== undefined ? setTimeout(() => done(late()), timeout) : undefined;
      const poll = setInterval(() => void refresh().then(check, () => undefined), POLL_MS);
      const done = (e: Error | undefined): void => {
        clearTimeout(timer);
        clearInterval(poll);
        this.listeners.delete(check);
        if (e) reject(e);
        else resolve();
      };
      this.listeners.add(check);
    });
  }

  private changed(): void {
    for (const l of [...this.listeners]) l();
  }

  /** Registered engine ids, sorted. */
  get ids(): readonly number[] {
    return this.sorted;
  }

  get(id: number): EngineInfo | undefined {
    return this.info.get(id);
  }

  /** A full engine list replaces ours only if it is newer than what notifications told us. */
  takeList(reply: ContentOf<"connection_reply">): void {
    if (reply.seq < this.seq) return;
    this.seq = reply.seq;
    this.sorted = reply.engines.map((e) => e.id).sort((a, b) => a - b);
    this.info.clear();
    for (const e of reply.engines) this.learn(e);
    this.changed();
  }

  /** A registration notice; applied when newer than our view. */
  registered(e: EngineDescription & { seq: number }): void {
    if (e.seq <= this.seq) return;
    this.seq = e.seq;
    if (!this.sorted.includes(e.id)) this.sorted = [...this.sorted, e.id].sort((a, b) => a - b);
    this.learn(e);
    this.changed();
  }

  /**
   * An unregistration notice. Returns whether it is about the engine we know under that id: a
   * stale notice (our list is newer) may name an id a new engine holds now.
   */
  unregistered(e: { id: number; uuid: string; seq: number }): boolean {
    const current = this.info.get(e.id)?.uuid;
    const sameEngine = current === undefined || current === e.uuid;
    if (e.seq > this.seq) {
      this.seq = e.seq;
      this.sorted = this.sorted.filter((id) => id !== e.id);
      this.info.delete(e.id);
    }
    this.repliesSeen.delete(e.uuid);
    return sameEngine;
  }

  /** A new controller counts from the start. */
  reset(): void {
    this.seq = -1;
    this.repliesSeen.clear();
  }

  private learn(e: { id: number; uuid: string; direct?: unknown }): void {
    this.info.set(e.id, { uuid: e.uuid, ...(isDirectEndpoint(e.direct) ? { direct: e.direct } : {}) });
  }

  /** Whether engine `id` shares our /dev/shm (asked once per engine). */
  sharesMemory(id: number): boolean {
    const uuid = this.info.get(id)?.uuid;
    if (uuid === undefined) return false;
    return this.sharesMemoryByUuid(uuid);
  }

  sharesMemoryByUuid(uuid: string): boolean {
    let shares = this.sharedMemory.get(uuid);
    if (shares === undefined) this.sharedMemory.set(uuid, (shares = sharesMemoryWith(uuid)));
    return shares;
  }

  forgetMemory(uuid: string): void {
    this.sharedMemory.delete(uuid);
  }

  /** A reply came straight from its engine: a later record query waits for the controller's copy. */
  repliedDirectly(meta: ReplyMetadata): void {
    if (meta.engine === undefined || meta.seq === undefined) return;
    if (meta.seq > (this.repliesSeen.get(meta.engine) ?? 0)) this.repliesSeen.set(meta.engine, meta.seq);
  }

  /** What a record query waits for (QueryMetadata.waitFor), or undefined when nothing. */
  waitFor(): Record<string, number> | undefined {
    return this.repliesSeen.size > 0 ? Object.fromEntries(this.repliesSeen) : undefined;
  }
}
