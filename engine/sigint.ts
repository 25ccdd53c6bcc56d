/**
 * SIGINT for an engine: interrupt the running task, ignore it when idle.
 *
 * vm's `breakOnSigint` (what stops a busy `while (true) {}`) starts and joins a watchdog thread
 * on every call: 40 µs on an idle machine and up to ~0.7 ms on a loaded 2-core one, more than a
 * tiny task costs. Node's contextify binding (the one its REPL uses) can keep that thread running:
 * started once, each vm call only registers with it, and a SIGINT that arrives while no vm call
 * runs is held as pending, which we poll. A process SIGINT listener must not exist meanwhile:
 * libuv would take the signal back from the watchdog. Without the binding (a future Node), a
 * plain listener does the job at the old per-call cost.
 */
interface SigintWatchdog {
  startSigintWatchdog(): void;
  stopSigintWatchdog(): boolean;
  watchdogHasPendingSigint(): boolean;
}

const POLL_MS = 50;

export function onSigint(handler: () => void): void {
  const watchdog = contextifyWatchdog();
  if (!watchdog) {
    process.on("SIGINT", handler);
    return;
  }
  watchdog.startSigintWatchdog();
  const timer = setInterval(() => {
    if (!watchdog.watchdogHasPendingSigint()) return;
    // Start then stop: the count goes 2 → 1, which clears the pending flag but keeps the thread.
    watchdog.startSigintWatchdog();
    watchdog.stopSigintWatchdog();
    handler();
  }, POLL_MS);
  timer.unref();
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
