/**
 * `lview.imap(f, input, { maxOutstanding })`: a map over an input read lazily, one item at a
 * time, with at most `maxOutstanding` tasks in flight; results come out as an async iterator, in
 * input order or (`ordered: false`) as they finish. Nothing is materialised: a generator of ten
 * million items runs in constant memory.
 */
import { TsParallelError } from "../protocol/errors";
import type { SubmittedTask } from "./task";
import { Completions } from "./completions";

export interface ImapOptions {
  /** Tasks in flight at most (default 64). */
  maxOutstanding?: number;
  /** Yield in input order (default) or as tasks finish. */
  ordered?: boolean;
  /** A label kept in the tasks' records. */
  label?: string;
}

export class ImapResult<R> implements AsyncIterable<R> {
  private cancelled = false;
  private readonly inflight = new Set<SubmittedTask>();
  private started = false;

  constructor(
    private readonly input: Iterable<unknown> | AsyncIterable<unknown>,
    private readonly submit: (item: unknown) => SubmittedTask,
    private readonly cancelTasks: (msgIds: string[]) => Promise<unknown>,
    private readonly opts: Required<Pick<ImapOptions, "maxOutstanding" | "ordered">>,
  ) {}

  /** Stops reading the input and stops the tasks in flight; the iterator then ends. */
  async cancel(): Promise<void> {
    this.cancelled = true;
    const ids = [...this.inflight].filter((t) => !t.ready).map((t) => t.msgId);
    this.inflight.clear();
    if (ids.length > 0) await this.cancelTasks(ids);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<R, void, undefined> {
    if (this.started) throw new TsParallelError("an imap result can be iterated once");
    this.started = true;
    const source = iteratorOf(this.input);
    const queue: SubmittedTask[] = []; // in input order, at most maxOutstanding
    const finished = new Completions<SubmittedTask>();
    let exhausted = false;
    const fill = async (): Promise<void> => {
      while (!exhausted && !this.cancelled && this.inflight.size < this.opts.maxOutstanding) {
        const next = await source.next();
        if (next.done) {
          exhausted = true;
          return;
        }
        const task = this.submit(next.value);
        task.done.catch(() => undefined);
        this.inflight.add(task);
        queue.push(task);
        if (!this.opts.ordered) finished.add(task);
      }
    };
    try {
      await fill();
      while (!this.cancelled && queue.length > 0) {
        let task: SubmittedTask;
        if (this.opts.ordered) task = queue.shift()!;
        else {
          task = (await finished.next())!;
          queue.splice(queue.indexOf(task), 1);
        }
        await task.done.catch(() => undefined);
        this.inflight.delete(task);
        if (this.cancelled) return;
        if (task.error) throw task.error;
        await fill();
        yield task.value as R;
      }
    } finally {
      if (!exhausted) await source.return?.();
      if (this.inflight.size > 0) await this.cancel();
    }
  }
}

function iteratorOf(input: Iterable<unknown> | AsyncIterable<unknown>): AsyncIterator<unknown> | Iterator<unknown> {
  if (Symbol.asyncIterator in input) return input[Symbol.asyncIterator]();
  if (Symbol.iterator in input) return input[Symbol.iterator]();
  throw new TypeError("imap needs an iterable or async iterable input");
}
