/**
 * The hook through which library code (`ar.waitInteractive()`) reaches whatever front end is
 * attached. The hook lives on globalThis under a registered symbol, so a
 * notebook's own copy of tsparallel and the kernel's find the same one.
 */
import type { MimeBundle } from "../protocol/messages";

export interface DisplayHook {
  display(data: MimeBundle, metadata?: Record<string, unknown>, displayId?: string): void;
  /** Text on the cell's stdout/stderr (`ar.displayOutputs()`); absent: process streams. */
  stream?(name: "stdout" | "stderr", text: string): void;
  update(displayId: string, data: MimeBundle, metadata?: Record<string, unknown>): void;
}

const HOOK = Symbol.for("tsparallel.display");

export function setDisplayHook(hook: DisplayHook | undefined): void {
  (globalThis as Record<symbol, unknown>)[HOOK] = hook;
}

/** The attached front end's display, or undefined in a plain script. */
export function getDisplayHook(): DisplayHook | undefined {
  return (globalThis as Record<symbol, unknown>)[HOOK] as DisplayHook | undefined;
}
