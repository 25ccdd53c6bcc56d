/**
 * `tsparallel/engine`: for code that runs on engines (`%px` cells, applied functions), typed.
 *
 * ```ts
 * import { comm } from "tsparallel/engine";
 * const total = await comm.allreduce(local, "sum");
 * ```
 *
 * `comm` is the engine's newest communicator (`await rc.view(targets).comm()` forms one), the
 * same object as the engine's global `comm`.
 */
import { CURRENT_COMM, CommError, type Communicator } from "./comm";

export type { CommMember, Communicator, SendOptions } from "./comm";
export { CommError } from "./comm";
export type { ReduceOp } from "./reduce";

function current(): Communicator {
  const c = (globalThis as Record<PropertyKey, unknown>)[CURRENT_COMM] as Communicator | undefined;
  if (!c)
    throw new CommError(
      "this engine is in no communicator yet: form one from the client with `await rc.view(targets).comm()`",
    );
  return c;
}

/** This engine's end of its newest communicator (read at each use, so a newer one takes over). */
export const comm: Communicator = new Proxy({} as Communicator, {
  get(_target, prop) {
    const c = current();
    const v: unknown = Reflect.get(c, prop, c);
    return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(c) : v;
  },
});
