/**
 * Requests to the controller and their replies, matched by msg id, each with its own deadline.
 * A query about records carries what it must wait for (`waitFor`, see client/engine-table.ts).
 */
import { type AnyMessage, type ContentOf, type MsgType, RECORD_QUERIES, isMsg } from "../protocol/messages";
import type { Session } from "../protocol/session";
import { TimeoutError, TsParallelError } from "./errors";

export type QueryType =
  | "connection_request"
  | "queue_request"
  | "signal_request"
  | "restart_request"
  | "task_abort_request"
  | "task_interrupt_request"
  | "shutdown_request"
  | "stats_request"
  | "hub_history_request"
  | "result_request"
  | "resubmit_request"
  | "purge_request"
  | "db_request"
  | "engine_sets_request";
export type ReplyOf<Q extends QueryType> = Q extends `${infer B}_request`
  ? `${B}_reply` extends MsgType
    ? ContentOf<`${B}_reply`>
    : never
  : never;

export class QueryChannel {
  private readonly pending = new Map<string, { resolve: (c: unknown) => void; reject: (e: Error) => void }>();

  constructor(
    private readonly session: Session,
    private readonly send: (frames: Buffer[]) => void,
    private readonly waitFor: () => Record<string, number> | undefined,
  ) {}

  ask<Q extends QueryType>(type: Q, content: ContentOf<Q>, timeout: number): Promise<ReplyOf<Q>> {
    const waitFor = RECORD_QUERIES.has(type) ? this.waitFor() : undefined;
    const { frames, header } = this.session.encode(type, content as never, waitFor ? { metadata: { waitFor } } : {});
    return new Promise<ReplyOf<Q>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(header.msg_id);
        reject(new TimeoutError(`the controller did not answer ${type} within ${timeout} ms`));
      }, timeout);
      this.pending.set(header.msg_id, {
        resolve: (c) => (clearTimeout(timer), resolve(c as ReplyOf<Q>)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.send(frames);
    });
  }

  /** Settles the query `msg` answers (`parent`); false when it answers none of ours. */
  answer(msg: AnyMessage, parent: string): boolean {
    const query = this.pending.get(parent);
    if (!query) return false;
    this.pending.delete(parent);
    if (isMsg(msg, "hub_error")) query.reject(new TsParallelError(`${msg.content.ename}: ${msg.content.evalue}`));
    else query.resolve(msg.content);
    return true;
  }

  close(): void {
    for (const q of this.pending.values()) q.reject(new TsParallelError("the client was closed"));
    this.pending.clear();
  }
}
