/**
 * The controller's copies of direct tasks (engine/direct.ts): the request as it arrived, its
 * outputs and its reply. The client has them already, so they travel off the reply's path,
 * several to one ZeroMQ send, yet within a bound:
 *
 *   - every copy waiting leaves before a task starts (`flush` from the task queue), so the
 *     controller knows of each direct task before it runs, and can stop or signal it;
 *   - before anything else the engine sends the controller, so the controller hears everything
 *     from this engine in the order it was sent;
 *   - and no copy waits past the end of the current turn of the event loop (`setImmediate`: the
 *     client's reply has left by then, so this is off its path), or, while a task holds the
 *     thread (its output streams), longer than `COPY_FLUSH_MS`: the next copy added past that
 *     age takes the waiting ones along.
 * A burst (a batch of applies) thus costs the controller one receive instead of one per message.
 */
import type { Frames } from "../protocol/socket";

/** The longest a copy waits while a task holds the thread (ms). */
export const COPY_FLUSH_MS = 2;

export class ControllerCopies {
  private waiting: Frames[] = [];
  private since = 0;
  private scheduled: NodeJS.Immediate | undefined;

  constructor(private readonly send: (messages: readonly Frames[]) => void) {}

  add(frames: Frames): void {
    if (this.waiting.length === 0) {
      this.since = performance.now();
      this.scheduled = setImmediate(() => this.flush());
    }
    this.waiting.push(frames);
    if (performance.now() - this.since >= COPY_FLUSH_MS) this.flush();
  }

  flush(): void {
    if (this.waiting.length === 0) return;
    clearImmediate(this.scheduled);
    this.scheduled = undefined;
    const messages = this.waiting;
    this.waiting = [];
    this.send(messages);
  }
}
