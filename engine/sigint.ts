/**
 * SIGINT for an engine: interrupt the running task, ignore it when idle.
 *
 * vm's `breakOnSigint` (what stops a busy `while (true) {}`) starts and joins a watchdog thread
 * on every call: 40 µs on an idle machine and up to ~0.7 ms on a loaded 2-core one, more than a
 * tiny task costs. Node's contextify binding (the one its REPL uses) can keep that thread running:
 * started once, each vm call only registers with it, and a SIGINT that arrives while no vm call
 * runs is held as pending, which we poll while there is work. A process SIGINT listener must not exist meanwhile:
 * libuv would take the signal back from the watchdog. Without the binding (a future Node), a
 * plain listener does the job at the old per-call cost.
 */
interface SigintWatchdog {
  startSigintWatchdog(): void;
  stopSigintWatchdog(): boolean;
  watchdogHasPendingSigint(): boolean;
}

const POLL_MS = 50;

/** Switched on while the engine has tasks: an idle engine has nothing to interrupt. */
export interface SigintWatch {
  busy(on: boolean): void;
}

/**
 * Polls for a pending SIGINT only while tasks run or are awaited: the poll woke every idle
 * engine 20 times a second, which at 64 engines on 2 cores took a third of the machine. A
 * SIGINT that arrived while idle is still read, and reported, when work starts again.
 */
export function onSigint(handler: () => void): SigintWatch {
  const watchdog = contextifyWatchdog();
  if (!watchdog) {
    process.on("SIGINT", handler);
    return { busy: () => undefined };
  }
  watchdog.startSigintWatchdog();
  const takePending = (): boolean => {
    if (!watchdog.watchdogHasPendingSigint()) return false;
    // Start then stop: the count goes 2 → 1, which clears the pending flag but keeps the thread.
    watchdog.startSigintWatchdog();
    watchdog.stopSigintWatchdog();
    return true;
  };
  let timer: NodeJS.Timeout | undefined;
  return {
    busy(on) {
      if (on && !timer) {
        if (takePending()) handler(); // it came while idle: the handler reports it as ignored
        timer = setInterval(() => takePending() && handler(), POLL_MS);
        timer.unref();
      } else if (!on && timer) {
        clearInterval(timer);
        timer = undefined;
      }
    },
  };
}

function contextifyWatchdog(): SigintWatchdog | undefined {
  try {
    const binding = (process as unknown as { binding(name: string): Partial<SigintWatchdog> }).binding("contextify");
    const { startSigintWatchdog, stopSigintWatchdog, watchdogHasPendingSigint } = binding;
    if (
      typeof startSigintWatchdog !== "function" ||
      typeof stopSigintWatchdog !== "function" ||
      typeof watchdogHasPendingSigint !== "function"
    )
      return undefined;
    return binding as SigintWatchdog;
  } catch {
    return undefined;
  }
}
