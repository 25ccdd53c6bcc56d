/**
 * Splits a cell into what runs locally (tslab) and what is a magic, before tslab sees it: a line
 * starting with `%` is a TypeScript syntax error, so magics must be taken out first. Pure.
 *
 * - `%%name args` on the first line makes the whole cell a cell magic, its body the rest;
 * - `%name args` on any line is a line magic; the local lines around it run in order.
 */
export type Segment =
  | { kind: "local"; code: string; line: number }
  | { kind: "line-magic"; name: string; args: string; line: number }
  | { kind: "cell-magic"; name: string; args: string; body: string; bodyLine: number };

const CELL_MAGIC = /^\s*%%([A-Za-z_][\w]*)[ \t]*([^\n]*)(?:\n|$)/;
const LINE_MAGIC = /^\s*%([A-Za-z_][\w]*)(?:[ \t]+(.*))?$/;

export function splitCell(code: string): Segment[] {
  const cell = CELL_MAGIC.exec(code);
  if (cell) {
    const head = cell[0];
    return [
      {
        kind: "cell-magic",
        name: cell[1]!,
        args: cell[2]!.trim(),
        body: code.slice(head.length),
        bodyLine: head.endsWith("\n") ? 2 : 1,
      },
    ];
  }
  const segments: Segment[] = [];
  let local: string[] = [];
  let localStart = 1;
  const flush = (): void => {
    if (local.some((l) => l.trim() !== "")) segments.push({ kind: "local", code: local.join("\n"), line: localStart });
    local = [];
  };
  code.split("\n").forEach((text, i) => {
    const m = LINE_MAGIC.exec(text);
    if (!m) {
      if (local.length === 0) localStart = i + 1;
      local.push(text);
      return;
    }
    flush();
    segments.push({ kind: "line-magic", name: m[1]!, args: (m[2] ?? "").trim(), line: i + 1 });
  });
  flush();
  return segments;
}

/** True when a cell holds any magic (a plain cell goes straight to tslab, untouched). */
export function hasMagic(segments: readonly Segment[]): boolean {
  return segments.some((s) => s.kind !== "local");
}
