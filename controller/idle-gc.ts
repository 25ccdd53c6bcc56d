/**
 * One full garbage collection when the controller goes quiet after a burst of work.
 *
 * V8 sizes its heap for the busiest moment (10,000 tasks submitted at once, each a live record
 * until its reply) and then, with nothing more allocated, has no reason to collect again: the
 * garbage of that burst stays in the heap, and its pages stay in the controller's RSS for as
 * long as it sits idle. One collection in the first quiet second gives them back to the OS.
 * Nothing is collected while messages flow, so no task ever waits for it.
 */
import * as v8 from "node:v8";
import * as vm from "node:vm";

/** Heap growth since the last collection that makes one worth its pause (tens of ms at 100 MB). */
const WORTH_BYTES = 32 * 1024 * 1024;

/**
 * Messages in one tick that still count as quiet: every client says it is alive once a period,
 * so a controller with no work still hears a trickle; a busy one handles thousands a second.
 */
const QUIET_MESSAGES = 100;

export interface IdleState {
  /** Messages handled at the previous tick. */
  handledAtTick: number;
  /** Heap used just after the previous collection (or at start). */
  usedAfterCollect: number;
}

/** Whether to collect now: at most a trickle of messages in the last tick, and the heap grew enough since. */
export function shouldCollect(state: IdleState, handled: number, used: number): boolean {
  return handled - state.handledAtTick < QUIET_MESSAGES && used - state.usedAfterCollect >= WORTH_BYTES;
}

/**
 * Starts the check every `periodMs`; `handled()` is the count of messages the controller has
 * handled so far. Returns the timer, for the controller to clear at close.
 */
export function collectWhenIdle(handled: () => number, periodMs = 1000): NodeJS.Timeout {
  const gc = exposedGc();
  const state: IdleState = { handledAtTick: handled(), usedAfterCollect: v8.getHeapStatistics().used_heap_size };
  const timer = setInterval(() => {
    const now = handled();
    if (shouldCollect(state, now, v8.getHeapStatistics().used_heap_size)) {
      gc();
      state.usedAfterCollect = v8.getHeapStatistics().used_heap_size;
    }
    state.handledAtTick = now;
  }, periodMs);
  timer.unref();
  return timer;
}

/**
 * V8's `gc()`, whether or not node was started with --expose-gc (a controller started by hand
 * is not): the flag, set now, puts `gc` on every context created after it.
 */
function exposedGc(): () => void {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (existing) return existing;
  v8.setFlagsFromString("--expose-gc");
  return vm.runInNewContext("gc") as () => void;
}
