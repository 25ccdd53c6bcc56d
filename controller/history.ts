/**
 * Task history queries, as ipyparallel's Hub answers them (`db_query`, `result_status`): pure
 * functions over task records, so the hub stays about routing and these are tested alone.
 *
 * A query is a dict of fields to conditions, MongoDB style as in ipyparallel:
 *   { label: "stage-2", engineId: { $in: [0, 1] }, completed: { $gt: "2026-11-29T06:00:00Z" } }
 * A plain value means equality; operators are $eq $ne $gt $gte $lt $lte $in $nin $exists.
 */
import type { TaskRecord } from "./records";

/** What a client may see of a record. Dates are ISO strings (JSON on the wire). */
export interface RecordView {
  msgId: string;
  msgType: "apply_request" | "execute_request";
  label: string | null;
  engineId: number | null;
  state: TaskRecord["state"];
  submitted: string;
  started: string | null;
  completed: string | null;
  stdout: string;
  stderr: string;
  /** False when the result's frames were purged or evicted; the metadata stays. */
  hasResult: boolean;
}

export const RECORD_KEYS: ReadonlyArray<keyof RecordView> = [
  "msgId",
  "msgType",
  "label",
  "engineId",
  "state",
  "submitted",
  "started",
  "completed",
  "stdout",
  "stderr",
  "hasResult",
];

const OPERATORS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"] as const;
type Operator = (typeof OPERATORS)[number];

export function recordView(r: TaskRecord): RecordView {
  return {
    msgId: r.msgId,
    msgType: r.msgType,
    label: r.label ?? null,
    engineId: r.engineId ?? null,
    state: r.state,
    submitted: new Date(r.submitted).toISOString(),
    started: r.started ?? null,
    completed: r.completed ?? null,
    stdout: r.stdout,
    stderr: r.stderr,
    hasResult: r.reply !== undefined || r.replyArchived === true,
  };
}

/** Why `query` (and `keys`) cannot be run, in one line; undefined when they can. */
export function queryProblem(query: unknown, keys: unknown): string | undefined {
  if (typeof query !== "object" || query === null || Array.isArray(query))
    return 'the query must be an object of fields to conditions, e.g. { label: "stage-2" }';
  for (const [field, cond] of Object.entries(query as Record<string, unknown>)) {
    if (!(RECORD_KEYS as readonly string[]).includes(field))
      return `unknown field ${JSON.stringify(field)} in the query; fields are ${RECORD_KEYS.join(", ")}`;
    if (typeof cond !== "object" || cond === null || Array.isArray(cond)) continue;
    for (const [op, arg] of Object.entries(cond as Record<string, unknown>)) {
      if (!(OPERATORS as readonly string[]).includes(op))
        return `unknown operator ${op} on ${field}; use ${OPERATORS.join(" ")}`;
      if ((op === "$in" || op === "$nin") && !Array.isArray(arg)) return `${field}.${op} needs an array`;
    }
  }
  if (
    keys !== undefined &&
    (!Array.isArray(keys) || keys.some((k) => !(RECORD_KEYS as readonly unknown[]).includes(k)))
  )
    return `keys must be a list of record fields: ${RECORD_KEYS.join(", ")}`;
  return undefined;
}

function test(value: unknown, op: Operator, arg: unknown): boolean {
  const ordered = (f: (a: number | string, b: number | string) => boolean): boolean =>
    (typeof value === "number" || typeof value === "string") &&
    (typeof arg === "number" || typeof arg === "string") &&
    typeof value === typeof arg &&
    f(value, arg);
  switch (op) {
    case "$eq":
      return value === arg;
    case "$ne":
      return value !== arg;
    case "$gt":
      return ordered((a, b) => a > b);
    case "$gte":
      return ordered((a, b) => a >= b);
    case "$lt":
      return ordered((a, b) => a < b);
    case "$lte":
      return ordered((a, b) => a <= b);
    case "$in":
      return (arg as unknown[]).includes(value);
    case "$nin":
      return !(arg as unknown[]).includes(value);
    case "$exists":
      return (value !== null && value !== undefined) === Boolean(arg);
  }
}

/** Does a record match a query that `queryProblem` accepted? */
export function matches(view: RecordView, query: Record<string, unknown>): boolean {
  for (const [field, cond] of Object.entries(query)) {
    const value = view[field as keyof RecordView];
    if (typeof cond === "object" && cond !== null && !Array.isArray(cond)) {
      for (const [op, arg] of Object.entries(cond)) if (!test(value, op as Operator, arg)) return false;
    } else if (value !== cond) return false;
  }
  return true;
}

/** The fields `keys` asks for (msgId always), or the whole view. */
export function pick(view: RecordView, keys: ReadonlyArray<keyof RecordView> | undefined): Partial<RecordView> {
  if (!keys) return view;
  const out: Partial<Record<keyof RecordView, unknown>> = { msgId: view.msgId };
  for (const k of keys) out[k] = view[k];
  return out as Partial<RecordView>;
}
