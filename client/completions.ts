/**
 * Tasks in the order they finish, each taken in O(1). Racing every remaining task once per result
 * (`Promise.race`) builds n promises per result: quadratic, and 10,000 tasks ran a client out of
 * memory. Here each task gets one callback when it settles, which appends it to a queue; memory
 * is the tasks in flight plus the finished ones not taken yet.
 */
export class Completions<T extends { readonly done: Promise<unknown> }> {
  private finished: Array<T | undefined> = [];
  private head = 0;
  private unsettled = 0;
  private wake: (() => void) | undefined;

  constructor(tasks: Iterable<T> = []) {
    for (const t of tasks) this.add(t);
  }

  /** Follows one more task. */
  add(task: T): void {
    this.unsettled++;
    const settled = (): void => {
      this.unsettled--;
      this.finished.push(task);
      const wake = this.wake;
      this.wake = undefined;
      wake?.();
    };
    task.done.then(settled, settled);
  }

  /** Tasks followed and not taken yet, finished or not. */
  get size(): number {
    return this.unsettled + this.finished.length - this.head;
  }

  /** The next task to finish (settled, ok or failed), or undefined once every one was taken. */
  async next(): Promise<T | undefined> {
    while (this.head === this.finished.length) {
      if (this.unsettled === 0) return undefined;
      await new Promise<void>((r) => (this.wake = r));
    }
    const task = this.finished[this.head];
    this.finished[this.head++] = undefined;
    // Drop the taken prefix now and then, so the queue holds only what is not taken.
    if (this.head > 1024 && this.head * 2 > this.finished.length) {
      this.finished = this.finished.slice(this.head);
      this.head = 0;
    }
    return task;
  }
}
