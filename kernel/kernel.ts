/**
 * The kernel's request handling, in Jupyter's messaging protocol:
 * shell requests one at a time in arrival order, control requests at once. Compared with tslab
 * it sends `execute_input` (so execution counts are recorded), the last expression as
 * `execute_result`, failures as `error` with ename/evalue/traceback, and honours `stop_on_error`
 * by aborting only the requests already queued, with no 200 ms window that drops new ones.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { setDisplayHook } from "../client/display";
import { PACKAGE_ROOT } from "../paths";
import { mimeBundle } from "../protocol/mime";
import type { CellIO } from "../magics/cell-io";
import type { Header, MimeBundle } from "../protocol/messages";
import type { KernelChannels, Request } from "./channels";
import { routeTslabDisplays, tslabTypeScriptVersion } from "./local";
import type { Shell } from "./shell";

const VERSION = (JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, "package.json"), "utf8")) as { version: string })
  .version;
const STREAM_FLUSH_MS = 20;
const WARM_UP_QUIET_MS = 500;

export class Kernel {
  private executionCount = 0;
  private readonly queue: Request[] = [];
  private draining = false;
  /** Loading tslab blocks the event loop for about a second: it waits for a quiet moment. */
  private warmUpTimer: NodeJS.Timeout | undefined;
  /** The running cell's outputs; late output (a timer firing after its cell) goes to the last cell. */
  private io: CellOutputs | undefined;

  constructor(
    private readonly channels: KernelChannels,
    private readonly shell: Shell,
    private readonly log: (line: string) => void,
  ) {}

  start(): void {
    this.captureStdio();
    // tslab.display.* and the library's progress bars publish into the current cell.
    routeTslabDisplays((d, update) => {
      const id = d.transient?.display_id;
      if (update && id) this.io?.update(id, d.data, d.metadata);
      else this.io?.display(d.data, d.metadata, id);
    });
    setDisplayHook({
      display: (data, metadata, id) => this.io?.display(data, metadata, id),
      stream: (name, text) => this.io?.stream(name, text),
      update: (id, data, metadata) => this.io?.update(id, data, metadata),
    });
    process.on("SIGINT", () => this.shell.interrupt());
    this.warmUpWhenQuiet(2000); // if no front end asks for kernel_info
    this.channels.serve((req) => {
      if (this.warmUpTimer) this.warmUpWhenQuiet(WARM_UP_QUIET_MS);
      if (req.channel === "control") void this.handle(req);
      else {
        this.queue.push(req);
        void this.drain();
      }
    });
  }

  /**
   * Builds tslab's program once the front end has been quiet for `ms`, so that the user's first
   * cell does not pay for it. Not sooner: jupyter_client asks for kernel_info again when the iopub
   * status of its first request was lost to a slow subscriber, and that retry must not wait a second.
   */
  private warmUpWhenQuiet(ms: number): void {
    clearTimeout(this.warmUpTimer);
    this.warmUpTimer = setTimeout(() => {
      if (this.draining) return this.warmUpWhenQuiet(ms); // a running %px keeps streaming meanwhile
      this.warmUpTimer = undefined;
      this.shell.warmUp();
    }, ms);
    this.warmUpTimer.unref();
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      for (let req = this.queue.shift(); req; req = this.queue.shift()) await this.handle(req);
    } finally {
      this.draining = false;
    }
  }

  private async handle(req: Request): Promise<void> {
    this.channels.publish(req, "status", { execution_state: "busy" });
    try {
      await this.dispatch(req);
    } catch (e) {
      this.log(`error handling ${req.header.msg_type}: ${(e as Error).stack ?? String(e)}`);
    } finally {
      this.channels.publish(req, "status", { execution_state: "idle" });
    }
  }

  private async dispatch(req: Request): Promise<void> {
    const c = req.content as Record<string, unknown>;
    switch (req.header.msg_type) {
      case "kernel_info_request":
        this.channels.reply(req, "kernel_info_reply", kernelInfo());
        return;
      case "execute_request":
        return this.execute(req);
      case "complete_request": {
        const r = this.shell.complete(String(c.code), Number(c.cursor_pos));
        return this.channels.reply(req, "complete_reply", {
          status: "ok",
          matches: r.matches,
          cursor_start: r.start,
          cursor_end: r.end,
          metadata: {},
        });
      }
      case "inspect_request": {
        const text = this.shell.inspect(String(c.code), Number(c.cursor_pos));
        return this.channels.reply(req, "inspect_reply", {
          status: "ok",
          found: text !== undefined,
          data: text ? { "text/plain": text } : {},
          metadata: {},
        });
      }
      case "is_complete_request":
        return this.channels.reply(req, "is_complete_reply", this.shell.isComplete(String(c.code)));
      case "comm_info_request":
        return this.channels.reply(req, "comm_info_reply", { status: "ok", comms: {} });
      case "history_request":
        return this.channels.reply(req, "history_reply", { status: "ok", history: [] });
      case "interrupt_request":
        this.shell.interrupt();
        return this.channels.reply(req, "interrupt_reply", { status: "ok" });
      case "shutdown_request": {
        const restart = c.restart === true;
        this.channels.reply(req, "shutdown_reply", { status: "ok", restart });
        setTimeout(() => this.shutdown(), 50); // let the reply leave first
        return;
      }
      default:
        this.log(`ignored ${req.header.msg_type}`);
    }
  }

  private async execute(req: Request): Promise<void> {
    const c = req.content as { code?: unknown; silent?: unknown; store_history?: unknown; stop_on_error?: unknown };
    const code = typeof c.code === "string" ? c.code : "";
    const silent = c.silent === true;
    if (!silent && c.store_history !== false) this.executionCount++;
    const count = this.executionCount;
    if (!silent) this.channels.publish(req, "execute_input", { code, execution_count: count });

    const io = new CellOutputs(this.channels, req, silent);
    this.io = io;
    const outcome = await this.shell.run(code, io);
    if (outcome.ok) {
      if (outcome.value && !silent) io.result(count, mimeBundle(outcome.value.value));
      io.flush();
      this.channels.reply(req, "execute_reply", { status: "ok", execution_count: count, user_expressions: {} });
      return;
    }
    const { ename, evalue, traceback } = outcome.error;
    if (!outcome.shown) io.error(outcome.error);
    io.flush();
    this.channels.reply(req, "execute_reply", { status: "error", ename, evalue, traceback, execution_count: count });
    if (c.stop_on_error !== false) await this.abortQueued();
  }

  /**
   * "Run all" must stop at a failed cell: the execute requests already sent are answered
   * `aborted`. One turn of the event loop first, so requests that arrived while a synchronous
   * cell blocked it are read and counted as queued.
   */
  private async abortQueued(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 0));
    for (let i = 0; i < this.queue.length;) {
      const req = this.queue[i]!;
      if (req.header.msg_type !== "execute_request") {
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      this.channels.publish(req, "status", { execution_state: "busy" });
      this.channels.reply(req, "execute_reply", { status: "aborted" });
      this.channels.publish(req, "status", { execution_state: "idle" });
    }
  }

  /** process.stdout/stderr of the kernel (console.log in cells, library warnings) go to the cell. */
  private captureStdio(): void {
    for (const name of ["stdout", "stderr"] as const) {
      const stream = process[name];
      const original = stream.write.bind(stream);
      stream.write = (
        chunk: string | Uint8Array,
        encoding?: BufferEncoding | ((e?: Error) => void),
        cb?: (e?: Error) => void,
      ): boolean => {
        const done = typeof encoding === "function" ? encoding : cb;
        const text =
          typeof chunk === "string"
            ? chunk
            : Buffer.from(chunk).toString(typeof encoding === "string" ? encoding : "utf8");
        if (this.io) this.io.stream(name, text);
        else original(text);
        done?.();
        return true;
      };
    }
  }

  private shutdown(): void {
    this.shell.local.close();
    this.channels.close();
    process.exit(0);
  }
}

/** One cell's iopub outputs; stream text is batched (20 ms) so a print loop is not a message flood. */
class CellOutputs implements CellIO {
  readonly cellId: string;
  private pending: { name: "stdout" | "stderr"; text: string } | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly channels: KernelChannels,
    private readonly parent: Request,
    private readonly silent: boolean,
  ) {
    this.cellId = (parent.header as Header).msg_id;
  }

  stream(name: "stdout" | "stderr", text: string): void {
    if (this.silent || !text) return;
    if (this.pending && this.pending.name !== name) this.flush();
    if (this.pending) this.pending.text += text;
    else this.pending = { name, text };
    this.timer ??= setTimeout(() => this.flush(), STREAM_FLUSH_MS);
  }

  display(data: MimeBundle, metadata: Record<string, unknown> = {}, displayId?: string): void {
    if (this.silent) return;
    this.flush();
    this.channels.publish(this.parent, "display_data", {
      data,
      metadata,
      transient: displayId ? { display_id: displayId } : {},
    });
  }

  update(displayId: string, data: MimeBundle, metadata: Record<string, unknown> = {}): void {
    if (this.silent) return;
    this.flush();
    this.channels.publish(this.parent, "update_display_data", { data, metadata, transient: { display_id: displayId } });
  }

  error(e: { ename: string; evalue: string; traceback: string[] }): void {
    if (this.silent) return;
    this.flush();
    this.channels.publish(this.parent, "error", { ename: e.ename, evalue: e.evalue, traceback: e.traceback });
  }

  result(count: number, data: MimeBundle): void {
    this.flush();
    this.channels.publish(this.parent, "execute_result", { execution_count: count, data, metadata: {} });
  }

  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const p = this.pending;
    this.pending = undefined;
    if (p) this.channels.publish(this.parent, "stream", p);
  }
}

function kernelInfo(): Record<string, unknown> {
  return {
    status: "ok",
    protocol_version: "5.3",
    implementation: "tsparallel",
    implementation_version: VERSION,
    language_info: {
      name: "typescript",
      version: tslabTypeScriptVersion(),
      mimetype: "text/x-typescript",
      file_extension: ".ts",
      pygments_lexer: "typescript",
      codemirror_mode: { name: "javascript", typescript: true },
    },
    banner: `tsparallel ${VERSION}: TypeScript (tslab) with %px magics for a tsparallel cluster`,
  };
}
