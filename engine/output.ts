/**
 * Engine output capture: stdout/stderr writes and `display()` calls become stream and
 * display_data messages under the header of the task that produced them.
 *
 * The task is found with AsyncLocalStorage, so output from a timer or promise a task started
 * is still attributed to that task (tslab instead swaps process.stdout globally and sends late
 * output to whatever cell runs next). Writes are coalesced and flushed before the task's
 * reply, so output always reaches the client before the result.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { mimeBundle, plainText } from "../protocol/mime";
import type { Header, MimeBundle } from "../protocol/messages";
import { serialize } from "../protocol/serialize";

export interface OutputSink {
  /** `publishData(dict)` from a task: the dict, serialized. */
  data?(parent: Header, buffers: Buffer[]): void;
  stream(parent: Header, name: "stdout" | "stderr", text: string): void;
  display(
    parent: Header,
    data: MimeBundle,
    metadata: Record<string, unknown>,
    displayId?: string,
    update?: boolean,
  ): void;
}

interface TaskContext {
  parent: Header;
  pending: { name: "stdout" | "stderr"; text: string } | undefined;
}

const FLUSH_MS = 20;

export class OutputCapture {
  private readonly als = new AsyncLocalStorage<TaskContext>();
  private readonly dirty = new Set<TaskContext>();
  private flushScheduled = false;

  constructor(private readonly sink: OutputSink) {}

  /** Patch process.stdout/stderr once; writes outside any task go to the real streams. */
  install(): void {
    for (const name of ["stdout", "stderr"] as const) {
      const stream = process[name];
      const real = stream.write.bind(stream) as (chunk: unknown, ...rest: unknown[]) => boolean;
      stream.write = (chunk: unknown, ...rest: unknown[]) => {
        const ctx = this.als.getStore();
        if (!ctx) return real(chunk, ...rest);
        this.write(ctx, name, typeof chunk === "string" ? chunk : Buffer.from(chunk as Uint8Array).toString("utf8"));
        const cb = rest.find((r) => typeof r === "function") as (() => void) | undefined;
        cb?.();
        return true;
      };
    }
  }

  run<T>(parent: Header, fn: () => T): T {
    this.lastParent = parent;
    return this.als.run({ parent, pending: undefined }, fn);
  }

  /** The request the engine ran last: output that belongs to no running task goes there. */
  private lastParent: Header | undefined;

  /** Writes `text` as output of the last request (or to the real stream before any ran). */
  writeToLast(name: "stdout" | "stderr", text: string): void {
    const parent = this.lastParent;
    if (!parent) {
      process[name].write(text);
      return;
    }
    this.als.run({ parent, pending: undefined }, () => process[name].write(text));
  }

  display(data: MimeBundle, metadata: Record<string, unknown> = {}, displayId?: string, update = false): void {
    const ctx = this.als.getStore();
    if (!ctx) {
      process.stdout.write(plainText(data) + "\n");
      return;
    }
    this.flushContext(ctx); // keep stdout and displays in the order they happened
    this.sink.display(ctx.parent, data, metadata, displayId, update);
  }

  /**
   * `publishData({ step, loss })` from a running task: the dict reaches that task's AsyncResult
   * as `ar.data` (ipyparallel's publish_data). A value that cannot be sent is refused here.
   */
  publishData(data: unknown): void {
    const ctx = this.als.getStore();
    if (!ctx) throw new TypeError("publishData works inside a task (apply, map or execute), not outside one");
    if (typeof data !== "object" || data === null || Array.isArray(data))
      throw new TypeError(
        `publishData takes a dict of names to values, e.g. publishData({ step: 3 }); got ${typeof data}`,
      );
    const buffers = serialize(data, "publishData"); // throws UnserializableError naming the value
    this.flushContext(ctx);
    this.sink.data?.(ctx.parent, buffers);
  }

  /** Flush everything (before a reply is sent). */
  flush(): void {
    for (const ctx of this.dirty) this.flushContext(ctx);
    this.dirty.clear();
  }

  private write(ctx: TaskContext, name: "stdout" | "stderr", text: string): void {
    if (ctx.pending && ctx.pending.name !== name) this.flushContext(ctx);
    if (ctx.pending) ctx.pending.text += text;
    else ctx.pending = { name, text };
    this.dirty.add(ctx);
    if (ctx.pending.text.length > 64 * 1024) this.flushContext(ctx);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setTimeout(() => {
      this.flushScheduled = false;
      this.flush();
    }, FLUSH_MS);
  }

  private flushContext(ctx: TaskContext): void {
    const p = ctx.pending;
    ctx.pending = undefined;
    if (p && p.text) this.sink.stream(ctx.parent, p.name, p.text);
  }
}

/** A rich-display helper installed as the engine global `display` (and `display.html`, …). */
export function makeDisplay(capture: OutputCapture) {
  const show = (value: unknown): void =>
    capture.display(typeof value === "string" ? { "text/plain": value } : mimeBundle(value));
  const typed =
    (mime: string, transform: (v: unknown) => unknown = (v) => v) =>
    (v: unknown) =>
      capture.display({ [mime]: transform(v), "text/plain": `<${mime}>` });
  return Object.assign(show, {
    html: typed("text/html"),
    markdown: typed("text/markdown"),
    svg: typed("image/svg+xml"),
    json: typed("application/json"),
    png: typed("image/png", (v) => Buffer.from(v as Uint8Array).toString("base64")),
    text: (v: unknown) => capture.display({ "text/plain": String(v) }),
  });
}
