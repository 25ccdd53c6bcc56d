/**
 * The controller's answers about records, across clients (ipyparallel's hub queries): history,
 * result status and fetch, resubmission checks, purge, dbQuery, queue status. Each is a function
 * of the records, the archive and the ledger; the hub sends what they return. A refusal is an
 * `Refusal` (a library error name and one line), never a throw.
 */
import { type ContentOf, type MessageOf, isMsg } from "../protocol/messages";
import type { Session } from "../protocol/session";
import { type Envelope, splitFrames } from "../protocol/wire";
import { type RecordView, matches, pick, queryProblem, recordView } from "./history";
import { type Records, type TaskArchive, type TaskRecord, isFinished } from "./records";
import type { Registry } from "./registry";
import type { TaskLedger } from "./ledger";

export interface Refusal {
  ename: "KeyError" | "ValueError";
  evalue: string;
}

export function isRefusal(x: unknown): x is Refusal {
  return typeof x === "object" && x !== null && "ename" in x && "evalue" in x;
}

export class RecordQueries {
  /** Set by the controller when a task database is on (database.ts). */
  archive: TaskArchive | undefined;

  constructor(
    private readonly records: Records,
    private readonly registry: Registry,
    private readonly ledger: TaskLedger<unknown>,
    private readonly unassigned: () => number,
  ) {}

  /** Every record, oldest first: those only the archive still has, then those in memory. */
  *all(): IterableIterator<TaskRecord> {
    if (this.archive) yield* this.archive.older((id) => this.records.get(id) !== undefined);
    yield* this.records.all();
  }

  /** The record of `id`, from memory, or from the archive when memory lacks it or its `payload`. */
  find(id: string, payload?: "request" | "reply"): TaskRecord | undefined {
    const r = this.records.get(id);
    if (r && (payload === undefined || r[payload] || !isFinished(r.state))) return r;
    return this.archive?.find(id) ?? r;
  }

  history(): ContentOf<"hub_history_reply"> {
    return { status: "ok", history: [...this.all()].map((r) => r.msgId) };
  }

  /**
   * Status of tasks by msg id; with `fetch`, the replies of finished ones to send the asker now,
   * and the live ones to watch for it. With `missing_ok`, ids it has no reply for (unknown, or
   * finished with their result gone) are listed in `missing`, not refused.
   */
  results(
    content: ContentOf<"result_request">,
  ): Refusal | { content: ContentOf<"result_reply">; send: Envelope[]; watch: TaskRecord[] } {
    // Each record looked up once: from the archive when memory let its reply go.
    const found = new Map(content.msg_ids.map((id) => [id, this.find(id, "reply")]));
    const unknown = content.msg_ids.filter((id) => !found.get(id));
    if (unknown.length > 0 && !content.missing_ok)
      return { ename: "KeyError", evalue: `unknown msg id(s): ${unknown.join(", ")} (see rc.history())${this.note()}` };
    const reply: ContentOf<"result_reply"> = { status: "ok", pending: [], completed: [], records: {} };
    if (content.missing_ok) reply.missing = unknown;
    const send: Envelope[] = [];
    const watch: TaskRecord[] = [];
    for (const [id, r] of found) {
      if (!r) continue;
      reply.records[id] = { msgType: r.msgType, engineId: r.engineId ?? null, stdout: r.stdout, stderr: r.stderr };
      const done = isFinished(r.state);
      (done ? reply.completed : reply.pending).push(id);
      if (!content.fetch) continue;
      if (!done) watch.push(r);
      else if (r.reply) send.push(r.reply);
      else if (content.missing_ok) reply.missing!.push(id);
      else
        return {
          ename: "KeyError",
          evalue: `the result of ${id} was purged; only its metadata is kept (rc.dbQuery)${this.note()}`,
        };
    }
    return { content: reply, send, watch };
  }

  /** The signed requests of finished tasks, to run again, or why not. */
  resubmittable(ids: readonly string[]): Refusal | Envelope[] {
    const requests: Envelope[] = [];
    for (const id of ids) {
      const r = this.find(id, "request");
      if (!r) return { ename: "KeyError", evalue: `unknown msg id ${id} (see rc.history())${this.note()}` };
      if (!isFinished(r.state))
        return {
          ename: "ValueError",
          evalue: `cannot resubmit tasks that have not finished: ${id} is ${r.state}; wait for it or cancel it first`,
        };
      if (!r.request) return { ename: "KeyError", evalue: `the request of ${id} was purged; it cannot be resubmitted` };
      requests.push(r.request);
    }
    return requests;
  }

  purge(content: ContentOf<"purge_request">): Refusal | ContentOf<"purge_reply"> {
    const { msg_ids: ids, all } = content;
    if (!all && !ids) return { ename: "ValueError", evalue: "purge needs msg ids or all: true" };
    const live = (ids ?? []).filter((id) => this.records.getLive(id));
    if (live.length > 0)
      return { ename: "ValueError", evalue: `cannot purge tasks that have not finished: ${live.join(", ")}` };
    const which = all ? undefined : ids;
    const purged = [...new Set([...this.records.purge(which), ...(this.archive?.remove(which) ?? [])])];
    return { status: "ok", purged };
  }

  db(content: ContentOf<"db_request">): Refusal | ContentOf<"db_reply"> {
    const { query, keys } = content;
    const problem = queryProblem(query, keys);
    if (problem) return { ename: "ValueError", evalue: `malformed dbQuery: ${problem}` };
    const picked = keys as Array<keyof RecordView> | undefined;
    const records: Array<Record<string, unknown>> = [];
    for (const r of this.all()) {
      const view = recordView(r);
      if (matches(view, query)) records.push(pick(view, picked));
    }
    return { status: "ok", records };
  }

  queueStatus(targets?: number[]): ContentOf<"queue_reply"> {
    const engines: ContentOf<"queue_reply">["engines"] = {};
    for (const e of this.registry.all()) {
      if (targets && !targets.includes(e.id)) continue;
      engines[String(e.id)] = {
        queue: this.ledger.queue(e.id).length,
        completed: e.completed,
        tasks: e.lbLoad,
        running: this.ledger.running(e.id) ?? null,
      };
    }
    return { status: "ok", engines, unassigned: this.unassigned() };
  }

  /** The controller's memory and drop counters (`rc.stats()`). */
  stats(dropped: Record<string, number>, enginesDropped: Record<string, number>): ContentOf<"stats_reply"> {
    const mem = process.memoryUsage();
    return {
      status: "ok",
      rss: mem.rss,
      heap: mem.heapUsed,
      external: mem.external,
      records: this.records.size,
      dropped: { ...dropped },
      engines_dropped: enginesDropped,
    };
  }

  /** What a query that missed should add when the archive could not be written. */
  note(): string {
    return this.archive?.failure ? `; the task database could not keep it: ${this.archive.failure}` : "";
  }
}

/** A kept request signed anew under msg id `msgId`, from `asker`: a resubmission. */
export function renamed(
  session: Session,
  request: Envelope,
  msgId: string,
  asker: Buffer,
): { msg: MessageOf<"apply_request" | "execute_request">; env: Envelope } | undefined {
  const old = session.parse(request);
  if (!old || !(isMsg(old, "apply_request") || isMsg(old, "execute_request"))) return undefined;
  const { frames } = session.encode(old.header.msg_type, old.content, {
    msgId,
    metadata: old.metadata,
    buffers: old.buffers,
    identities: [asker],
  });
  const env = splitFrames(frames.slice(1));
  const msg = session.parse(env);
  if (!msg || !(isMsg(msg, "apply_request") || isMsg(msg, "execute_request"))) return undefined;
  return { msg, env: { ...env, identities: [asker] } };
}
