/**
 * Shape checks for the messages a process acts on, run by `Session.parse` before anyone sees a
 * message. A message that fails is dropped and counted as malformed, so handlers may trust the
 * types the compiler gives them (a forged `route` never reaches the hub as a cast).
 *
 * Requests are checked whole; of task replies, the metadata the client and the controller act on
 * (timings, engine, shared-memory refs, sequence number); outputs are forwarded or displayed.
 */
import type { DirectEndpoint, EngineSetSpec, MsgType, Route } from "./messages";
import { isBulkRefs } from "./bulk";

type Check = (content: Record<string, unknown>, metadata: Record<string, unknown>) => string | undefined;

const isInt = (v: unknown): v is number => Number.isInteger(v);
const isIntArray = (v: unknown): v is number[] => Array.isArray(v) && v.every(isInt);
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === "string");
const optional = (v: unknown, check: (v: unknown) => boolean): boolean => v === undefined || check(v);
const isNonNegative = (v: unknown): boolean => typeof v === "number" && v >= 0;

/** A task's route, as a client may send it: direct to one engine, or load-balanced. */
export function isRoute(v: unknown): v is Route {
  if (typeof v !== "object" || v === null) return false;
  const r = v as Record<string, unknown>;
  if (r.kind === "direct") return isInt(r.engine);
  if (r.kind === "broadcast")
    return isIntArray(r.targets) && r.targets.length > 0 && new Set(r.targets).size === r.targets.length;
  if (r.kind !== "task") return false;
  return (
    optional(r.targets, isIntArray) &&
    optional(r.after, isStringArray) &&
    optional(r.follow, isStringArray) &&
    optional(r.timeout, isNonNegative) &&
    optional(r.retries, (x) => isInt(x) && x >= 0)
  );
}

/** An engine's direct endpoint, as it registers it (and as clients read it from notifications). */
export function isDirectEndpoint(v: unknown): v is DirectEndpoint {
  if (typeof v !== "object" || v === null) return false;
  const d = v as Record<string, unknown>;
  return (
    typeof d.endpoint === "string" &&
    /^tcp:\/\/[^\s]+:\d+$/.test(d.endpoint) &&
    optional(d.curveKey, (k) => typeof k === "string" && k.length === 40)
  );
}

const KINDS = new Set(["local", "mpi", "ssh", "slurm", "batch"]);
const STRING_FIELDS = ["mpiexec", "hosts", "ssh", "submit", "cancel", "template", "engineCommand"] as const;

function isEngineSetSpec(v: unknown): v is EngineSetSpec {
  if (typeof v !== "object" || v === null) return false;
  const s = v as Record<string, unknown>;
  return (
    KINDS.has(s.engines as string) &&
    STRING_FIELDS.every((f) => optional(s[f], (x) => typeof x === "string")) &&
    optional(s.slurmArgs, isStringArray) &&
    optional(s.env, (e) => typeof e === "object" && e !== null && Object.values(e).every((x) => typeof x === "string"))
  );
}

function taskMetadata(metadata: Record<string, unknown>): string | undefined {
  if (!optional(metadata.route, isRoute)) return "metadata.route is not a valid route";
  if (!optional(metadata.timeLimit, isNonNegative)) return "metadata.timeLimit must be a non-negative number";
  if (!optional(metadata.sourceMap, (s) => typeof s === "string")) return "metadata.sourceMap must be a string";
  if (!optional(metadata.label, (s) => typeof s === "string")) return "metadata.label must be a string";
  if (!optional(metadata.bulk, isBulkRefs))
    return "metadata.bulk must list {index, name, bytes} of shared-memory buffers";
  if (!optional(metadata.bulkReply, (p) => isInt(p) && p > 0)) return "metadata.bulkReply must be a pid";
  if (!optional(metadata.queuedAfter, (n) => isInt(n) && n >= 0))
    return "metadata.queuedAfter must count the tasks queued before";
  if (!optional(metadata.progress, isProgressTag))
    return "metadata.progress must be {id, size}, whole numbers naming the client's AsyncResult";
  return undefined;
}

function isProgressTag(t: unknown): boolean {
  const tag = t as { id?: unknown; size?: unknown } | null;
  return typeof tag === "object" && tag !== null && isInt(tag.id) && isInt(tag.size) && tag.size >= 1;
}

/** A task reply's metadata (messages.ts, ReplyMetadata). */
function replyMetadata(m: Record<string, unknown>): string | undefined {
  const isTime = (t: unknown): boolean => typeof t === "string" && !Number.isNaN(Date.parse(t));
  if (!optional(m.engine, (u) => typeof u === "string")) return "metadata.engine must be a uuid";
  if (!optional(m.engineId, (id) => id === null || isInt(id))) return "metadata.engineId must be an engine id";
  if (!optional(m.started, (t) => t === null || isTime(t))) return "metadata.started must be an ISO time";
  if (!optional(m.completed, isTime)) return "metadata.completed must be an ISO time";
  if (!optional(m.bulk, isBulkRefs)) return "metadata.bulk must list {index, name, bytes} of shared-memory buffers";
  if (!optional(m.seq, (n) => isInt(n) && n > 0)) return "metadata.seq must count the engine's replies";
  return undefined;
}

/** Most engines one record query may wait for. */
const WAIT_FOR_MAX = 10_000;

/** A record query's metadata (messages.ts, QueryMetadata), then its content's own check. */
function recordQuery(check: Check): Check {
  return (c, m) => {
    const w = m.waitFor;
    if (w !== undefined) {
      const ok = typeof w === "object" && w !== null && !Array.isArray(w) && Object.values(w).every(isInt);
      if (!ok || Object.keys(w).length > WAIT_FOR_MAX)
        return "metadata.waitFor must map engine uuids to reply sequence numbers";
    }
    return check(c, m);
  };
}

const CHECKS: Partial<Record<MsgType, Check>> = {
  apply_reply: (_c, m) => replyMetadata(m),
  execute_reply: (_c, m) => replyMetadata(m),
  apply_request: (c, m) => {
    const call = c.call as Record<string, unknown> | undefined;
    const ok =
      typeof call === "object" &&
      call !== null &&
      (call.kind === "source"
        ? typeof call.source === "string"
        : call.kind === "builtin" && typeof call.name === "string");
    return ok ? taskMetadata(m) : "content.call must be a function source or a builtin";
  },
  execute_request: (c, m) => (typeof c.code === "string" ? taskMetadata(m) : "content.code must be a string"),
  queue_request: recordQuery((c) => (optional(c.targets, isIntArray) ? undefined : "targets must be engine ids")),
  hub_history_request: recordQuery(() => undefined),
  signal_request: (c) =>
    isIntArray(c.targets) && typeof c.signal === "string"
      ? undefined
      : "signal_request needs targets (engine ids) and a signal name",
  restart_request: (c) => (isIntArray(c.targets) ? undefined : "targets must be engine ids"),
  task_abort_request: (c) => (isStringArray(c.msg_ids) ? undefined : "msg_ids must be strings"),
  task_interrupt_request: (c) =>
    isStringArray(c.msg_ids) && typeof c.signal === "string" ? undefined : "needs msg_ids and a signal name",
  result_request: recordQuery((c) => (isStringArray(c.msg_ids) ? undefined : "msg_ids must be strings")),
  resubmit_request: recordQuery((c) =>
    isStringArray(c.msg_ids) && isStringArray(c.new_msg_ids) && c.msg_ids.length === c.new_msg_ids.length
      ? undefined
      : "resubmit needs msg_ids and as many new_msg_ids",
  ),
  engine_sets_request: (c) => {
    if (c.action === "list") return undefined;
    if (c.action === "stop") return typeof c.set === "string" ? undefined : "stop needs a set id";
    if (c.action === "signal")
      return typeof c.signal === "string" && optional(c.set, (s) => typeof s === "string")
        ? undefined
        : "signal needs a signal name";
    if (c.action !== "add") return "action must be list, add, stop or signal";
    if (!isInt(c.n) || c.n < 1) return "n must be a whole number of engines ≥ 1";
    return isEngineSetSpec(c.spec) ? undefined : "spec is not an engine set spec";
  },
  purge_request: recordQuery((c) => (optional(c.msg_ids, isStringArray) ? undefined : "msg_ids must be strings")),
  db_request: recordQuery((c) =>
    typeof c.query === "object" && c.query !== null && optional(c.keys, isStringArray)
      ? undefined
      : "db_request needs a query object",
  ),
  abort_request: (c) => (isStringArray(c.msg_ids) ? undefined : "msg_ids must be strings"),
  shutdown_request: (c) => (optional(c.targets, isIntArray) ? undefined : "targets must be engine ids"),
  registration_request: (c) =>
    typeof c.uuid === "string" &&
    isInt(c.pid) &&
    typeof c.hostname === "string" &&
    optional(c.requested_id, isInt) &&
    optional(c.engine_set, (s) => typeof s === "string") &&
    optional(c.direct, isDirectEndpoint)
      ? undefined
      : "registration needs uuid, pid and hostname",
  engine_dropped: (c) =>
    typeof c.dropped === "object" && c.dropped !== null && Object.values(c.dropped).every(isInt)
      ? undefined
      : "dropped must count messages by reason",
  engine_stats: (c) =>
    typeof c.cpu === "number" && c.cpu >= 0 && isInt(c.rss) && c.rss >= 0 ? undefined : "needs cpu (%) and rss (bytes)",
  unregistration_request: (c) => (isInt(c.id) ? undefined : "id must be an engine id"),
  comm_msg: (c) =>
    typeof c.comm === "string" && isInt(c.from) && c.from >= 0 && typeof c.tag === "string"
      ? undefined
      : "comm_msg needs comm (an id), from (a rank) and tag",
  peer_lost: (c) =>
    typeof c.uuid === "string" && isInt(c.engine_id) && typeof c.reason === "string"
      ? undefined
      : "peer_lost needs the engine's uuid, id and the reason",
  // Each inner message has at least its signature and four JSON parts.
  batch: (c) =>
    isIntArray(c.counts) && c.counts.every((n) => n >= 5)
      ? isIntArray(c.sizes) && c.sizes.every((n) => n >= 0) && c.sizes.length === c.counts.reduce((a, b) => a + b, 0)
        ? undefined
        : "sizes must give a byte length ≥ 0 for each of the frames the counts add up to"
      : "counts must be frame counts ≥ 5",
};

/** Why a message of `type` is malformed, or undefined when it is well formed. */
export function malformation(
  type: MsgType,
  content: Record<string, unknown>,
  metadata: Record<string, unknown>,
): string | undefined {
  return CHECKS[type]?.(content, metadata);
}
