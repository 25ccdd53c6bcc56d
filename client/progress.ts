/** The progress line of `ar.waitInteractive()` and of a long blocking `%px`: `%px: 3/4 tasks finished after 2 s`. */
import type { MimeBundle } from "../protocol/messages";

interface Progressing {
  readonly progress: number;
  readonly length: number;
  readonly elapsed: number;
}

function seconds(s: number): string {
  return s < 10 ? s.toFixed(1) : s.toFixed(0);
}

export function progressText(ar: Progressing, label: string): string {
  const width = 20;
  const filled = ar.length === 0 ? width : Math.round((width * ar.progress) / ar.length);
  return `${label}: ${"█".repeat(filled)}${"░".repeat(width - filled)} ${ar.progress}/${ar.length} tasks finished after ${seconds(ar.elapsed)} s`;
}

/** A bar for front ends (HTML `<progress>`) with the text line as text/plain. */
export function progressBundle(ar: Progressing, label: string): MimeBundle {
  const escaped = label.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  return {
    "text/plain": progressText(ar, label),
    "text/html": `<div class="tsparallel-progress"><progress value="${ar.progress}" max="${Math.max(ar.length, 1)}" style="width: 20em"></progress> <code>${escaped}: ${ar.progress}/${ar.length} tasks finished after ${seconds(ar.elapsed)} s</code></div>`,
  };
}
