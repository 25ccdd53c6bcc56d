/**
 * `%px`, `%%px`, `%pxresult`, `%pxconfig` and `%autopx` (with view suffixes: `%px_even`).
 *
 * Built on the public client API: the active view executes the code, `AsyncResult.onOutput`
 * streams what engines print while they run, and render.ts formats it as ipyparallel does.
 * Beyond it, three internals of the library, because only the kernel needs them:
 *   - `getActiveView`/`deactivate` (client.ts): the per-suffix views `view.activate()` set, and
 *     forgetting a client whose controller is gone so the next `%px` reconnects;
 *   - `progressBundle` (progress.ts): the same progress line `ar.waitInteractive()` draws;
 *   - `connectionFile`/`recordedControllerPid` (protocol): to say "no cluster is running" at
 *     once instead of after a connection timeout.
 */
import * as os from "node:os";
import type { AsyncResult } from "../client/async-result";
import { Client } from "../client/client";
import { deactivate, getActiveClient, getActiveView } from "../client/activation";
import type { ViewHost } from "../client/host";
import { CompositeError, RemoteError, TsParallelError } from "../client/errors";
import { progressBundle } from "../client/progress";
import type { OutputEvent, SubmittedTask } from "../client/task";
import type { DirectView } from "../client/views";
import { connectionFile, isAlive, recordedControllerPid } from "../protocol/connection";
import { TranspileError } from "../transpile/transpile";
import {
  type CellFlags,
  DEFAULT_PX,
  type PxOptions,
  UsageError,
  parseCellFlags,
  parseConfigFlags,
  parseReportArgs,
  parseResultFlags,
} from "./args";
import type { CellError, CellIO, CellOutcome, LocalCells } from "./cell-io";
import { type Rendered, renderDisplay, renderOutputs, renderResult, streamText, verboseLine } from "../client/render";

const NAMES = /^(pxresult|pxconfig|pxreport|autopx|px|result)(_\w+)?$/;
const NO_CLUSTER =
  "start one with `tsparallel cluster start -n 4` (or `await Cluster.start({ n: 4 })` in a cell), then run this cell again";

export class ParallelMagics {
  private readonly config = new Map<string, PxOptions>();
  private readonly last = new Map<string, AsyncResult<unknown>>();
  /** The suffix `%autopx` was enabled with, or undefined. */
  autopx: string | undefined;
  private running:
    | { client: ViewHost; ids: number[]; signal: string; io: CellIO; ar: AsyncResult<unknown>; giveUp: () => void }
    | undefined;

  constructor(private readonly local: LocalCells) {}

  static knows(name: string): boolean {
    return NAMES.test(name);
  }

  async line(name: string, args: string, io: CellIO, line: number): Promise<CellOutcome> {
    return this.guard(async () => {
      const [magic, suffix] = this.parseName(name, "%");
      switch (magic) {
        case "px":
          return this.execute(args, suffix, { options: this.options(suffix), local: false, out: undefined }, io, line);
        case "pxresult":
        case "result":
          return this.result(suffix, args, io);
        case "pxconfig":
          this.config.set(suffix, parseConfigFlags(args, this.options(suffix)));
          return { ok: true };
        case "pxreport": {
          const { file, since } = parseReportArgs(args);
          const host = (await this.view(suffix)).client as Partial<Client>;
          if (typeof host.performanceReport !== "function")
            throw new UsageError("%pxreport: the active client has no performanceReport; update tsparallel");
          const report = await host.performanceReport(file, since ? { since } : {});
          io.stream("stdout", `Performance report of ${report.tasks} tasks written to ${report.file}\n`);
          return { ok: true };
        }
        case "autopx":
          this.autopx = this.autopx === undefined ? suffix : undefined;
          io.stream("stdout", `%autopx ${this.autopx === undefined ? "disabled" : "enabled"}\n`);
          return { ok: true };
        default:
          throw new UsageError(`unknown magic %${name}`);
      }
    });
  }

  async cell(name: string, args: string, body: string, io: CellIO, bodyLine: number): Promise<CellOutcome> {
    return this.guard(async () => {
      const [magic, suffix] = this.parseName(name, "%%");
      if (magic !== "px") throw new UsageError(`%%${name} is a line magic: write it as %${name} on its own line`);
      return this.execute(body, suffix, parseCellFlags(args, this.options(suffix)), io, bodyLine);
    });
  }

  /** A cell while `%autopx` is on: the whole cell runs as `%%px`. */
  async autoCell(code: string, io: CellIO): Promise<CellOutcome> {
    const suffix = this.autopx ?? "";
    return this.guard(() =>
      this.execute(code, suffix, { options: this.options(suffix), local: false, out: undefined }, io, 1),
    );
  }

  /** Ctrl-C / interrupt_request during a blocking %px: signal the engines. True if one was running. */
  interrupt(): boolean {
    const r = this.running;
    if (!r) return false;
    // Engines get 5 s to report the interrupt; a wedged one must not hang the kernel.
    setTimeout(r.giveUp, 5000).unref();
    r.io.stream("stderr", `Received Keyboard Interrupt. Sending signal ${r.signal} to engines...\n`);
    // Per task: the controller aborts what is queued and signals the engine of each running task
    // until it stops, so a task that had not started when the signal landed is still stopped.
    void r.ar.cancel(r.signal).catch(() => undefined);
    return true;
  }

  private options(suffix: string): PxOptions {
    return this.config.get(suffix) ?? DEFAULT_PX;
  }

  private parseName(name: string, sigil: string): [string, string] {
    const m = NAMES.exec(name);
    if (!m)
      throw new UsageError(
        `unknown magic ${sigil}${name}: the tsparallel kernel knows %px, %%px, %pxresult, %pxconfig, %pxreport and %autopx`,
      );
    return [m[1]!, m[2] ?? ""];
  }

  private async execute(
    code: string,
    suffix: string,
    flags: CellFlags,
    io: CellIO,
    firstLine: number,
  ): Promise<CellOutcome> {
    const opts = flags.options;
    const base = await this.view(suffix);
    const view = opts.targets !== undefined ? base.withTargets(targetSpec(opts.targets)) : base;
    const ids = view.ids;
    if (opts.verbose) io.stream("stdout", verboseLine(opts.block, opts.targets, ids));
    let ar: AsyncResult<unknown>;
    try {
      // The active view's own kind: %px does not switch to a BroadcastView for many engines. The
      // benchmark (bench/RESULTS.md, fan-out) measured it 0-25% faster at 16-256 engines, inside the
      // machine's noise, while its coalesced replies would hold back every engine's `Out[N:M]`
      // until the slowest engine answers. `rc.broadcastView().activate()` opts in.
      ar = view.execute(code);
    } catch (e) {
      if (e instanceof TranspileError) {
        const line = e.line + firstLine - 1;
        const evalue = `${e.message.replace(/\s*\(line \d+.*\)$/, "")} (cell line ${line})`;
        return {
          ok: false,
          error: {
            ename: "SyntaxError",
            evalue,
            traceback: [`SyntaxError: ${evalue}`, `  ${e.lineText}`, "nothing was sent to the engines"],
          },
        };
      }
      throw e;
    }
    this.last.set(suffix, ar);
    // Subscribe before anything else can yield, or early output of fast engines is missed.
    const stopStreaming = opts.block && opts.stream ? this.streamLive(ar, io) : () => undefined;
    try {
      if (flags.out) {
        const bound = await this.bind(flags.out, ar);
        if (!bound.ok) return bound;
      }
      const localOutcome = flags.local ? await this.local.run(code, firstLine) : undefined;
      if (!opts.block) return localOutcome && !localOutcome.ok ? localOutcome : { ok: true, value: { value: ar } };

      let giveUp!: () => void;
      const interruptedLong = new Promise<void>((resolve) => (giveUp = resolve));
      this.running = { client: view.client, ids, signal: opts.signal, io, ar, giveUp };
      await this.waitWithProgress(ar, Promise.race([ar.wait(), interruptedLong]), opts.progressAfter, io);
      stopStreaming();
      if (!opts.stream) publish(io, renderOutputs(ar.metadata, opts.groupBy));
      const failed = failure(ar, "%px");
      if (failed) return { ok: false, error: failed, shown: opts.stream };
      return localOutcome ?? { ok: true };
    } finally {
      stopStreaming();
      this.running = undefined;
    }
  }

  private async result(suffix: string, args: string, io: CellIO): Promise<CellOutcome> {
    const { groupBy, out } = parseResultFlags(args, this.options(suffix));
    const ar = this.last.get(suffix);
    if (!ar) throw new UsageError(`%pxresult recalls last %px${suffix} result, which has not yet been used.`);
    if (out) {
      const bound = await this.bind(out, ar);
      if (!bound.ok) return bound;
    }
    await this.waitWithProgress(ar, ar.wait(), this.options(suffix).progressAfter, io);
    publish(io, renderOutputs(ar.metadata, groupBy));
    const failed = failure(ar, "%pxresult");
    return failed ? { ok: false, error: failed } : { ok: true };
  }

  /** The view for a suffix; with none active, the default profile's running cluster. */
  private async view(suffix: string): Promise<DirectView> {
    const active = getActiveView(suffix);
    if (active) {
      checkController(active.client);
      return active;
    }
    if (suffix) throw new UsageError(`%px${suffix} has no view: activate one with view.activate("${suffix}")`);
    let client = getActiveClient();
    if (client) checkController(client);
    client ??= await connectDefault();
    return client.view().activate("");
  }

  /** Declares `name` in the notebook (typed, for later cells) as the AsyncResult. */
  private bind(name: string, ar: AsyncResult<unknown>): Promise<CellOutcome> {
    (globalThis as Record<symbol, unknown>)[OUT] = ar;
    return this.local.run(
      `const ${name} = (globalThis as any)[Symbol.for("tsparallel.out")] as import("tsparallel").AsyncResult<import("tsparallel").ExecuteReply[]>;`,
      1,
    );
  }

  /**
   * Engine output as it arrives: one in-place display per engine and stream, like ipyparallel in a
   * kernel. A display holds all the text so far, so updates are coalesced (one per 50 ms per display)
   * lest a print loop resend a growing text once per line. Returns the stop function (idempotent).
   */
  private streamLive(ar: AsyncResult<unknown>, io: CellIO): () => void {
    const shown = new Set<string>();
    const dirty = new Map<string, () => string>();
    let timer: NodeJS.Timeout | undefined;
    const flush = (): void => {
      timer = undefined;
      for (const [id, text] of dirty) io.update(id, { "text/plain": text() });
      dirty.clear();
    };
    let active = true;
    const off = ar.onOutput((e: OutputEvent, t: SubmittedTask) => {
      const engine = t.metadata.engineId;
      if (e.type === "stream") {
        const id = `${io.cellId}-${e.name}-${engine}`;
        const text = (): string => streamText(engine, e.name, t.metadata[e.name]).replace(/\n$/, "");
        if (!shown.has(id)) {
          shown.add(id);
          io.display({ "text/plain": text() }, { engine }, id);
        } else {
          dirty.set(id, text);
          timer ??= setTimeout(flush, 50);
        }
        return;
      }
      flush(); // keep each engine's text ahead of what it displayed next
      if (e.type === "display_data")
        publish(io, renderDisplay(engine, e.data, e.metadata), e.displayId && `${e.displayId}-${engine}`);
      else if (e.type === "update_display_data")
        io.update(`${e.displayId}-${engine}`, e.data, { ...e.metadata, engine });
      else if (e.type === "execute_result") publish(io, renderResult(engine, e.executionCount, e.data));
    });
    for (const t of ar.tasks) {
      t.done.catch((err: unknown) => {
        if (!active) return;
        flush();
        io.error(engineError(err));
      });
    }
    return () => {
      if (!active) return;
      active = false;
      off();
      clearTimeout(timer);
      flush();
    };
  }

  /** Waits for `settled`; after `progressAfter` seconds shows `%px: 3/4 tasks finished after 2 s`, updated in place. */
  private async waitWithProgress(
    ar: AsyncResult<unknown>,
    settled: Promise<unknown>,
    progressAfter: number,
    io: CellIO,
  ): Promise<void> {
    if (
      progressAfter < 0 ||
      (await Promise.race([settled.then(() => true), delay(progressAfter * 1000).then(() => false)]))
    )
      return;
    const id = `${io.cellId}-progress`;
    io.display(progressBundle(ar, "%px"), {}, id);
    const timer = setInterval(() => io.update(id, progressBundle(ar, "%px")), 500);
    try {
      await settled;
    } finally {
      clearInterval(timer);
      io.update(id, progressBundle(ar, "%px"));
    }
  }

  /** Any error becomes the cell's error, in one line where it is ours (no cluster, bad flag). */
  private async guard(run: () => Promise<CellOutcome>): Promise<CellOutcome> {
    try {
      return await run();
    } catch (e) {
      const err = e as Error;
      return {
        ok: false,
        error: { ename: err.name || "Error", evalue: err.message, traceback: [`${err.name}: ${err.message}`] },
      };
    }
  }
}

const OUT = Symbol.for("tsparallel.out");

function publish(io: CellIO, items: readonly Rendered[], displayId?: string): void {
  for (const r of items) {
    if (r.kind === "stream") io.stream(r.name, r.text);
    else io.display(r.data, r.metadata, displayId || undefined);
  }
}

/** `-t [0,2]` (Python list style) is accepted as `0,2`. */
function targetSpec(text: string): string {
  return text.trim().replace(/^\[(.*)\]$/, "$1");
}

function engineError(e: unknown): CellError {
  if (e instanceof RemoteError) return { ename: e.ename, evalue: e.evalue, traceback: e.render().split("\n") };
  const err = e as Error;
  const engine = (e as { engineId?: number }).engineId;
  return {
    ename: err.name,
    evalue: err.message,
    traceback: [`[${engine ?? "?"}:execute]: ${err.name}: ${err.message}`],
  };
}

/** The cell's error when engines failed: the one error, or all of them as a CompositeError. */
function failure(ar: AsyncResult<unknown>, method: string): CellError | undefined {
  const errors = ar.tasks.map((t) => t.error).filter((e): e is Error => e !== undefined);
  if (errors.length === 0) return undefined;
  if (errors.length === 1) return engineError(errors[0]);
  const c = new CompositeError(errors, method);
  return { ename: c.name, evalue: `one or more exceptions raised in ${method}`, traceback: c.render().split("\n") };
}

/** A client whose controller has stopped gives one line, and is dropped so the next %px reconnects. */
function checkController(client: ViewHost): void {
  const { controller_pid: pid, location } = client.info;
  if (location === os.hostname() && !isAlive(pid)) {
    deactivate(client);
    client.close();
    throw new TsParallelError(
      `the cluster this notebook was using has stopped (controller pid ${pid} is gone): ${NO_CLUSTER}`,
    );
  }
}

async function connectDefault(): Promise<Client> {
  const pid = recordedControllerPid(connectionFile("client", "default"));
  if (pid === undefined) throw new TsParallelError(`no cluster is running for profile "default": ${NO_CLUSTER}`);
  if (!isAlive(pid))
    throw new TsParallelError(
      `no cluster is running for profile "default" (its controller, pid ${pid}, has exited): ${NO_CLUSTER}`,
    );
  return Client.connect({ timeout: 5000 });
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

export { UsageError };
