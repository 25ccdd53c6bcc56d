/**
 * The seam between views and the connection that carries their tasks. Views depend on this
 * narrow interface, not on `Client`, so the import graph has no cycle and a view can be tested
 * against a fake host.
 */
import type { ConnectionInfo } from "../protocol/connection";
import type { ContentOf, DirectEndpoint, QueueStatus, RequestMetadata } from "../protocol/messages";
import type { SubmittedTask } from "./task";
import type { Targets } from "./targets";

export type TaskRequestType = "apply_request" | "execute_request";

/** Per engine: tasks queued there, completed, and the msg id at the head; plus unassigned LB tasks. */
export type QueueStatusReport = Record<string, QueueStatus> & { unassigned: number };

export interface ViewHost {
  /** The connection file this host was opened from (the magics check its controller is alive). */
  readonly info: ConnectionInfo;
  /** Sends one task to the controller (`engineId` undefined: load-balanced) and tracks its reply. */
  submit<T extends TaskRequestType>(
    type: T,
    content: ContentOf<T>,
    metadata: RequestMetadata,
    buffers: Buffer[],
    engineId: number | undefined,
    /** How many engines the request this task is part of goes to (a DirectView's targets). */
    fanout?: number,
  ): SubmittedTask;
  /** Sends one task for all of `ids` (route `broadcast`); one tracked task per engine, in `ids` order. */
  submitBroadcast<T extends TaskRequestType>(
    type: T,
    content: ContentOf<T>,
    metadata: RequestMetadata,
    buffers: Buffer[],
    ids: number[],
  ): SubmittedTask[];
  /** An engine's uuid and direct socket, as it registered them (undefined for an unknown id). */
  engineLink(id: number): { uuid: string; direct?: DirectEndpoint } | undefined;
  /** Engine ids for a targets spec right now; throws NoEnginesError when none are registered. */
  targetIds(spec: Targets): { ids: number[]; scalar: boolean };
  /** Drops queued tasks by msg id; running ones are interrupted. Resolves to the ids it affected. */
  abort(msgIds: string[]): Promise<string[]>;
  interrupt(targets?: Targets, signal?: string): Promise<void>;
  /** Stops tasks wherever they are: queued ones aborted, running ones interrupted. */
  cancel(msgIds: string[], signal?: string): Promise<{ aborted: string[]; interrupted: string[] }>;
  queueStatus(targets?: Targets): Promise<QueueStatusReport>;
  close(): void;
}

/** How `Client.connect` finds and reaches a controller. */
export interface ConnectOptions {
  profile?: string;
  /** Path of a client.json; default: the profile's. */
  file?: string;
  /** ms to wait for the controller to answer (default 10000). */
  timeout?: number;
  /** Make this client the target of %px (default true). */
  activate?: boolean;
  /**
   * Reach the controller through SSH ("user@login-node"): its ports are forwarded to this host
   * with `ssh -L`, for a client outside the cluster's network. The tunnel ends with `close()`.
   */
  sshServer?: string;
  /** The ssh command line for `sshServer` (default "ssh"), e.g. "ssh -F my_config". */
  sshCommand?: string;
}
