/** The progress line of `ar.waitInteractive()` and of a long blocking `%px`: `%px: 3/4 tasks finished after 2 s`. */
import type { MimeBundle } from "../protocol/messages";

interface Progressing {
  readonly progress: number;
  readonly length: number;
  readonly elapsed: number;
  readonly tasks: ReadonlyArray<{ readonly error: Error | undefined }>;
}

function seconds(s: number): string {
  return s < 10 ? s.toFixed(1) : s.toFixed(0);
}

/**
 * "3/4 tasks finished after 2.0 s"; tasks that ended in an error are named, so an interrupted
 * run does not read as a finished one: "2/2 tasks finished (2 interrupted) after 1.5 s".
 */
function summary(ar: Progressing): string {
  const counts = new Map<string, number>();
  for (const t of ar.tasks) {
    if (!t.error) continue;
    const name = (t.error as { ename?: string }).ename ?? t.error.name;
    const kind = name === "KeyboardInterrupt" ? "interrupted" : `failed with ${name}`;
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }
  const failed = [...counts].map(([kind, n]) => `${n} ${kind}`).join(", ");
  return `${ar.progress}/${ar.length} tasks finished${failed ? ` (${failed})` : ""} after ${seconds(ar.elapsed)} s`;
}

export function progressText(ar: Progressing, label: string): string {
  const width = 20;
  const filled = ar.length === 0 ? width : Math.round((width * ar.progress) / ar.length);
  return `${label}: ${"█".repeat(filled)}${"░".repeat(width - filled)} ${summary(ar)}`;
}

/** A bar for front ends (HTML `<progress>`) with the text line as text/plain. */
export function progressBundle(ar: Progressing, label: string): MimeBundle {
  const escaped = label.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  return {
    "text/plain": progressText(ar, label),
    "text/html": `<div class="tsparallel-progress"><progress value="${ar.progress}" max="${Math.max(ar.length, 1)}" style="width: 20em"></progress> <code>${escaped}: ${summary(ar)}</code></div>`,
  };
}

/**
 * `TSPARALLEL_NONINTERACTIVE=1` (ipyparallel's IPP_NONINTERACTIVE): no live progress bars and
 * no streaming of `%px` output, for logs and CI; results and final lines are still shown.
 */
export function nonInteractive(): boolean {
  return ["1", "true", "yes"].includes((process.env.TSPARALLEL_NONINTERACTIVE ?? "").toLowerCase());
}
