/**
 * Runs work in the engine's namespace: the engine's own global object, like tslab's
 * `runInThisContext`, so values that arrive here are instances of this realm's built-ins (a
 * pushed Map is `instanceof Map`) and names defined by one request live on for the next.
 *
 * Synchronous code runs under `vm` with `breakOnSigint` (an interrupt stops a busy loop) and,
 * with a time limit, vm's `timeout`; the asynchronous rest races an interrupt/timeout promise.
 */
import * as engineModule from "./index";
import * as vm from "node:vm";
import { createRequire, SourceMap } from "node:module";
import * as path from "node:path";
import { isReference, REFERENCE_KEY, unpackArgs } from "../protocol/apply";
import type { LibraryErrorName } from "../protocol/errors";
import { ANSI } from "../protocol/mime";
import type { ApplyContent } from "../protocol/messages";

/** What a failed task reports: user code's error, or (with `origin`) one tsparallel raised for it. */
export class TaskError extends Error {
  constructor(
    readonly ename: string,
    message: string,
    readonly traceback: string[],
    readonly origin?: "tsparallel",
  ) {
    super(message);
    this.name = ename;
  }

  /** An error the engine raises on the task's behalf (aborted, over its time limit). */
  static library(ename: LibraryErrorName, message: string): TaskError {
    return new TaskError(ename, message, [`${ename}: ${message}`], "tsparallel");
  }
}

/** What the engine must know about a request to run it. */
export interface RunOptions {
  timeLimit?: number;
  sourceMap?: string;
  /** The TypeScript source, for code excerpts in tracebacks. */
  source?: string;
}

/** A task's synchronous start: its function with decoded arguments, ready to call. */
export type Start = () => unknown;
export type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (
    (typeof v === "object" || typeof v === "function") &&
    v !== null &&
    typeof (v as { then?: unknown }).then === "function"
  );
}

const CALL = Symbol.for("tsparallel.call");
const callScript = new vm.Script("globalThis[Symbol.for('tsparallel.call')]()", { filename: "tsparallel:call" });

export class Executor {
  executionCount = 0;
  private readonly baseline: Set<string>;
  private readonly functionCache = new Map<string, (...args: unknown[]) => unknown>();
  private interruptCurrent: ((e: Error) => void) | undefined;

  constructor(
    readonly cwd: string,
    globals: Record<string, unknown>,
    /** Builtins the engine answers itself (`comm_open`), beside push, pull, clear, info, require. */
    private readonly engineBuiltins: Record<string, (args: unknown[]) => unknown> = {},
  ) {
    const g = globalThis as Record<string, unknown>;
    g.require = engineRequire(createRequire(path.join(cwd, "__engine__.js")));
    // tslab compiles references to earlier cells' names as `exports.x`: on an engine those
    // are engine globals, so `exports` is the global object (functions sent from tslab work).
    g.exports = globalThis;
    g.module = { exports: globalThis };
    Object.assign(g, globals);
    this.baseline = new Set(Object.getOwnPropertyNames(globalThis));
  }

  /**
   * Fails the task that is awaiting something with `error` (an uncaught exception its timers
   * threw); false when no task is waiting.
   */
  failCurrent(error: unknown): boolean {
    const f = this.interruptCurrent;
    f?.(error instanceof Error ? error : new Error(String(error)));
    return !!f;
  }

  /** Interrupt the running task (SIGINT arrives here when no vm script is on the stack). */
  interrupt(): boolean {
    const f = this.interruptCurrent;
    f?.(new TaskError("KeyboardInterrupt", "interrupted by SIGINT", ["KeyboardInterrupt: interrupted by SIGINT"]));
    return !!f;
  }

  /** Runs JavaScript produced by the sender's transpile step; resolves to the last expression. */
  async execute(code: string, opts: RunOptions): Promise<unknown> {
    ++this.executionCount;
    // One name for the cell on every engine (a per-engine count would label it differently on each).
    const filename = "<cell>";
    const result = await this.guard(
      opts,
      () => vm.runInThisContext(code, this.vmOptions(filename, opts)) as Promise<{ value: unknown } | undefined>,
    );
    return result?.value;
  }

  /** Decodes an apply request's arguments and compiles its function; the call runs in `startAll`. */
  prepareApply(call: ApplyContent["call"], buffers: readonly Buffer[]): Start {
    const args = unpackArgs(buffers).map((a) => (isReference(a) ? this.evaluate(a[REFERENCE_KEY]) : a));
    if (call.kind === "builtin") return () => this.builtin(call.name, args);
    let fn = this.functionCache.get(call.source);
    if (!fn) {
      fn = vm.runInThisContext(`(${call.source})`, { filename: `<apply:${call.name || "anonymous"}>` }) as (
        ...args: unknown[]
      ) => unknown;
      if (typeof fn !== "function") throw new TaskError("TypeError", "the applied source is not a function", []);
      if (this.functionCache.size > 256) this.functionCache.clear();
      this.functionCache.set(call.source, fn);
    }
    const f = fn;
    return () => f(...args);
  }

  /**
   * Runs the synchronous part of each start, in order, inside one vm call with breakOnSigint (and
   * vm's timeout when `opts.timeLimit` is set): an interrupt stops a busy loop. `done` gets each
   * synchronous outcome at once, so its reply leaves before a long task later in the batch runs.
   * Stops after a start that returns a promise (the next task must wait for it) or once
   * `budgetMs` has passed. `unfinished` is that promise, or the interrupt that stopped the call.
   */
  startAll(
    starts: readonly Start[],
    opts: RunOptions,
    budgetMs: number,
    done: (index: number, outcome: Outcome) => void,
  ): { reached: number; unfinished?: Outcome } {
    let reached = 0;
    let unfinished: Outcome | undefined;
    (globalThis as Record<symbol, unknown>)[CALL] = () => {
      const began = performance.now(); // not before the vm call: starting its watchdog can take a while
      for (const start of starts) {
        reached++;
        let outcome: Outcome;
        try {
          outcome = { ok: true, value: start() };
        } catch (error) {
          outcome = { ok: false, error };
        }
        if (outcome.ok && isThenable(outcome.value)) {
          unfinished = outcome;
          return;
        }
        done(reached - 1, outcome);
        if (performance.now() - began > budgetMs) return;
      }
    };
    try {
      callScript.runInThisContext(this.vmOptions("tsparallel:call", opts));
    } catch (error) {
      unfinished = { ok: false, error }; // interrupted or timed out: vm's termination cannot be caught inside
    } finally {
      delete (globalThis as Record<symbol, unknown>)[CALL];
    }
    return { reached, ...(unfinished ? { unfinished } : {}) };
  }

  /** A started task's value: awaited (racing interrupt and time limit) when it is a promise. */
  async settle(outcome: Outcome, opts: RunOptions): Promise<unknown> {
    if (!outcome.ok) throw this.taskError(outcome.error, opts);
    if (!isThenable(outcome.value)) return outcome.value;
    return this.guard(opts, () => outcome.value);
  }

  /** Evaluates an expression (a name, `a.b`, `g[1]`) in the namespace: Reference and pull. */
  evaluate(expr: string): unknown {
    try {
      return vm.runInThisContext(`(${expr})`, { filename: "<reference>" });
    } catch (e) {
      if (e instanceof ReferenceError) {
        throw new TaskError(
          "ReferenceError",
          `${e.message} on this engine; push it first (view.push({ ... })) or define it with execute / %px`,
          [`ReferenceError: ${e.message}`],
        );
      }
      throw e;
    }
  }

  private builtin(name: string, args: unknown[]): unknown {
    switch (name) {
      case "push": {
        const ns = args[0] as Record<string, unknown>;
        Object.assign(globalThis, ns);
        return undefined;
      }
      case "pull": {
        const names = args[0];
        return Array.isArray(names) ? names.map((n) => this.evaluate(String(n))) : this.evaluate(String(names));
      }
      case "clear":
        for (const key of Object.getOwnPropertyNames(globalThis)) {
          if (!this.baseline.has(key)) delete (globalThis as Record<string, unknown>)[key];
        }
        this.functionCache.clear();
        return undefined;
      case "info":
        return { pid: process.pid, cwd: this.cwd, executionCount: this.executionCount, mpiRank: mpiRank() };
      case "require":
        return (args[0] as string[]).map((spec) => this.requireGlobal(spec));
      default:
        if (Object.hasOwn(this.engineBuiltins, name)) return this.engineBuiltins[name]!(args);
        throw new TaskError("ValueError", `unknown engine builtin ${name}`, []);
    }
  }

  /**
   * `view.require(...)`: loads a module from the engine's working directory and binds it as a
   * global named after it (`lodash`, `./local-module` → `local_module`), or fails naming it.
   */
  private requireGlobal(spec: string): string {
    const name = moduleGlobalName(spec);
    let mod: unknown;
    try {
      mod = (globalThis as unknown as { require: NodeJS.Require }).require(spec);
    } catch (e) {
      throw new TaskError(
        "ModuleNotFoundError",
        `cannot load ${JSON.stringify(spec)} on this engine (from ${this.cwd}): ${(e as Error).message.split("\n")[0]}`,
        [],
      );
    }
    (globalThis as Record<string, unknown>)[name] = mod;
    return name;
  }

  private vmOptions(filename: string, opts: RunOptions): vm.RunningScriptOptions & { filename: string } {
    return { filename, breakOnSigint: true, ...(opts.timeLimit ? { timeout: opts.timeLimit } : {}) };
  }

  /** Runs `start` (synchronous part under vm), then awaits its result racing interrupt and time limit. */
  private async guard<T>(opts: RunOptions, start: () => T | Promise<T>): Promise<Awaited<T>> {
    let timer: NodeJS.Timeout | undefined;
    const stopped = new Promise<never>((_, reject) => {
      this.interruptCurrent = reject;
      if (opts.timeLimit) timer = setTimeout(() => reject(timeLimitError(opts.timeLimit!)), opts.timeLimit);
    });
    stopped.catch(() => undefined);
    try {
      return await Promise.race([Promise.resolve(start()), stopped]);
    } catch (e) {
      throw this.taskError(e, opts);
    } finally {
      this.interruptCurrent = undefined;
      clearTimeout(timer);
    }
  }

  /** What the client sees of an error thrown by user code: KeyboardInterrupt, TimeoutError or the error with its TypeScript trace. */
  taskError(e: unknown, opts: RunOptions): TaskError {
    if (e instanceof TaskError) return e;
    const code = (e as NodeJS.ErrnoException | null)?.code;
    if (code === "ERR_SCRIPT_EXECUTION_INTERRUPTED")
      return new TaskError("KeyboardInterrupt", "interrupted by SIGINT", ["KeyboardInterrupt: interrupted by SIGINT"]);
    if (code === "ERR_SCRIPT_EXECUTION_TIMEOUT") return timeLimitError(opts.timeLimit ?? 0);
    if (!(e instanceof Error)) return new TaskError("Error", String(e), [`Uncaught ${String(e)}`]);
    const ename = e.name || "Error";
    return new TaskError(ename, withHint(e), traceback(e, opts));
  }
}

/**
 * A free name nobody defined on the engine: functions travel as source, so their closures stay
 * behind. Say so, and how to fix it.
 */
function withHint(e: Error): string {
  const missing = e instanceof ReferenceError ? /^(\S+) is not defined$/.exec(e.message)?.[1] : undefined;
  if (!missing) return e.message;
  return `${missing} is not defined on this engine; push it first (view.push({ ${missing} })) or define it with execute / %px`;
}

function timeLimitError(ms: number): TaskError {
  const msg = `task exceeded its time limit of ${ms} ms and was interrupted`;
  return TaskError.library("TimeoutError", msg);
}

/**
 * The user's frames only, with transpiled positions mapped back to TypeScript lines through the
 * sender's source map, and the offending TypeScript line quoted.
 */
export function traceback(e: Error, opts: RunOptions): string[] {
  const map = opts.sourceMap
    ? new SourceMap(JSON.parse(opts.sourceMap) as ConstructorParameters<typeof SourceMap>[0])
    : undefined;
  const sourceLines = opts.source?.split("\n");
  const lines = (e.stack ?? "").split("\n");
  const out = [`${ANSI.red}${e.name}${ANSI.reset}: ${withHint(e)}`];
  let excerpt: string | undefined;
  for (const line of lines.slice(1)) {
    if (!/^\s+at /.test(line)) continue;
    // Only the user's frames: not the engine's own, nor Node's vm/async_hooks plumbing.
    if (!/<(cell|apply:[^>]*|reference)>/.test(line) && !/\((?!node:)[^)]*\)$/.test(line)) continue;
    if (line.includes("tsparallel:call") || line.includes(__dirname) || /\(node:|at node:/.test(line)) continue;
    const mapped = line.replace(/(<cell>):(\d+):(\d+)/, (all, file: string, l: string, c: string) => {
      if (!map) return all;
      const entry = map.findEntry(Number(l) - 1, Number(c) - 1) as { originalLine?: number; originalColumn?: number };
      if (entry.originalLine === undefined) return all;
      const tsLine = entry.originalLine + 1;
      excerpt ??=
        sourceLines?.[entry.originalLine] !== undefined
          ? `${ANSI.green}----> ${tsLine}${ANSI.reset} ${sourceLines[entry.originalLine]!.trimEnd()}`
          : undefined;
      return `${file}:${tsLine}:${(entry.originalColumn ?? 0) + 1}`;
    });
    // The cell's wrapper and its first statement can map to the same place: show it once.
    if (mapped !== out[out.length - 1]) out.push(mapped);
  }
  if (excerpt) out.splice(1, 0, excerpt);
  return out;
}

/**
 * The engines' `require`, from their working directory, except `tsparallel/engine`: that is this
 * engine's own module (its `comm`), whether or not the working directory has tsparallel installed.
 */
function engineRequire(fromCwd: NodeJS.Require): NodeJS.Require {
  const own = ((spec: string): unknown =>
    spec === "tsparallel/engine" ? engineModule : fromCwd(spec)) as NodeJS.Require;
  return Object.assign(own, {
    resolve: fromCwd.resolve,
    cache: fromCwd.cache,
    main: fromCwd.main,
    extensions: fromCwd.extensions,
  });
}

/** This process's rank when mpiexec started it (Open MPI, MPICH and Slurm's PMI say so), else null. */
export function mpiRank(env = process.env): number | null {
  const rank = env.OMPI_COMM_WORLD_RANK ?? env.PMI_RANK ?? env.PMIX_RANK;
  return rank !== undefined && /^\d+$/.test(rank) ? Number(rank) : null;
}

/** The global a required module is bound to: its last path segment as an identifier. */
export function moduleGlobalName(spec: string): string {
  const base =
    spec
      .replace(/^node:/, "")
      .replace(/\.[cm]?[jt]s$/, "")
      .split("/")
      .filter(Boolean)
      .pop() ?? spec;
  const id = base.replace(/[^\w$]/g, "_");
  return /^\d/.test(id) ? `_${id}` : id;
}
