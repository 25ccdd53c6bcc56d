/**
 * How a value becomes a MIME bundle, the form every rich output takes on the wire. Engines use
 * it for results and displays, the kernel and the library for local ones.
 */
import * as util from "node:util";
import type { MimeBundle } from "./messages";

/** A value's MIME bundle: `toMimeBundle()` if it has one (e.g. a timeline), else util.inspect. */
export function mimeBundle(value: unknown): MimeBundle {
  const hook = (value as { toMimeBundle?: () => MimeBundle } | null)?.toMimeBundle;
  if (typeof hook === "function") return hook.call(value);
  return { "text/plain": util.inspect(value, { depth: 4, colors: false }) };
}

/** The colours IPython uses in tracebacks; Jupyter front ends render them in error outputs. */
export const ANSI = { red: "\x1b[0;31m", green: "\x1b[0;32m", reset: "\x1b[0m" } as const;

/** The bundle's text/plain, or "" when it has none. */
export function plainText(bundle: MimeBundle): string {
  const text = bundle["text/plain"];
  return typeof text === "string" ? text : "";
}
