/**
 * Every message tsparallel sends, as one map from `msg_type` to its content type.
 *
 * Kernel messages follow Jupyter's messaging protocol; apply/queue/registration messages
 * follow ipyparallel's. A `Message<T>` carries the content and metadata of its type; `isMsg`
 * narrows one message, and a `Handlers` table (one function per type, `dispatch`) narrows each
 * handler's message (the zeromq.js `EventOfType` idea, instead of jupyterlab's overloads).
 */
import type { MonitorReading } from "./monitor";

/** Jupyter's error content; also what `RemoteError` is rebuilt from. */
export interface ErrorContent {
  status: "error";
  ename: string;
  evalue: string;
  traceback: string[];
  engine_info?: EngineInfoRef;
  /** Set when tsparallel raised the error on the task's behalf (see protocol/errors.ts). */
  origin?: "tsparallel";
}
export interface EngineInfoRef {
  engine_id: number;
  engine_uuid: string;
  method: "apply" | "execute";
}
export interface OkContent {
  status: "ok";
}
export interface AbortedContent {
  status: "aborted";
}
export type ReplyStatus<T> = (T & OkContent) | ErrorContent | AbortedContent;

export interface EngineDescription {
  id: number;
  uuid: string;
  pid: number;
  hostname: string;
  /** Where a client may send this engine its DirectView tasks itself (see engine/direct.ts). */
  direct?: DirectEndpoint;
}

/** An engine's own ROUTER for direct tasks, with its CURVE public key when the cluster encrypts. */
export interface DirectEndpoint {
  endpoint: string;
  curveKey?: string;
}

/** How engines start: the launchers of `--engines KIND`. */
export type EngineKind = "local" | "mpi" | "ssh" | "slurm" | "batch";

/** What a launcher needs to start one engine set; every field but `engines` belongs to one kind. */
export interface EngineSetSpec {
  engines: EngineKind;
  /** mpi: the mpiexec command line (default "mpiexec"). */
  mpiexec?: string;
  /** ssh: "hostA:2,hostB:4" (a host without a count shares `n` with the others). */
  hosts?: string;
  /** ssh: the ssh command line (default "ssh"), e.g. "ssh -F my_config". */
  ssh?: string;
  /** slurm: extra sbatch options, e.g. ["--partition=debug", "--time=1:00:00"]. */
  slurmArgs?: string[];
  /** batch: the submit and cancel commands and the job-script template's path. */
  submit?: string;
  cancel?: string;
  template?: string;
  /** ssh, slurm, batch: the command that runs one engine there (default: this node and CLI). */
  engineCommand?: string;
  /** Environment for the launcher's commands, e.g. the caller's SLURM_CONF. */
  env?: Record<string, string>;
}

/** One engine set as the controller reports it (`cluster list`). */
export interface EngineSetInfo {
  id: string;
  kind: EngineKind;
  state: "starting" | "running" | "stopped" | "failed";
  /** Engines asked for, and those registered now. */
  n: number;
  registered: number;
  /** The batch system's job id (slurm, batch). */
  jobId?: string;
  /** Where the engines' own output goes: a log file, or the job's output file. */
  output: string;
  /** Why the set failed or ended, in one line. */
  detail?: string;
}

/**
 * How the controller should route a task: to one engine, to several at once (one message in,
 * fanned out by the controller, the replies coalesced into one `batch`), or through the load
 * balancer.
 */
export type Route =
  | { kind: "direct"; engine: number }
  | { kind: "broadcast"; targets: number[] }
  | {
      kind: "task";
      /** Engine ids the task may run on (default: any). */
      targets?: number[];
      /** msg ids that must finish (successfully) before this task starts. */
      after?: string[];
      /** msg ids whose engine this task must run on. */
      follow?: string[];
      /** ms to wait for an engine/dependencies before failing with TimeoutError. */
      timeout?: number;
      /** times to resubmit after the engine died while running it. */
      retries?: number;
    };

/** A buffer handed over through shared memory (see bulk.ts): its index among the message's buffers, file name and size. */
export interface BulkRef {
  index: number;
  name: string;
  bytes: number;
}

export interface RequestMetadata {
  route?: Route;
  /** ms of run time before the engine interrupts the task and fails it with TimeoutError. */
  timeLimit?: number;
  /** Source map (JSON) of transpiled code, to map tracebacks back to TypeScript lines. */
  sourceMap?: string;
  /** A user's label for the task (`{ label: "stage-2" }`), kept in its record. */
  label?: string;
  /** Buffers handed over through shared memory (see bulk.ts): emptied in the message, read by name. */
  bulk?: BulkRef[];
  /** The client's pid: it shares the engine's /dev/shm, so large results may come back that way too. */
  bulkReply?: number;
  /** Set by an engine forwarding a direct task: how many tasks from the controller it had received first. */
  queuedAfter?: number;
  /** The AsyncResult this task is one of (the dashboard's progress bars). */
  progress?: ProgressTag;
  [key: string]: unknown;
}

/**
 * Which of its client's AsyncResults a task belongs to: a number the client counts up, and how
 * many tasks that result has. The controller counts them done per (client session, id).
 */
export interface ProgressTag {
  id: number;
  size: number;
}

/**
 * A task reply's metadata: from its engine, or fabricated by the controller for a task that
 * never ran or whose engine was lost (no engine uuid, `engineId` null when it never had one).
 */
export interface ReplyMetadata {
  engine?: string;
  engineId?: number | null;
  started?: string | null;
  completed?: string;
  /** Result buffers handed over through shared memory, when the request allowed it. */
  bulk?: BulkRef[];
  /**
   * The engine numbers its replies 1, 2, 3…: a client that got reply `seq` straight from the
   * engine asks the controller to answer about records only once it has recorded that far.
   */
  seq?: number;
  status?: "aborted" | "error";
  [key: string]: unknown;
}

/** A record query's metadata: per engine uuid, the newest reply seq its client got from that engine directly. */
export interface QueryMetadata {
  waitFor?: Record<string, number>;
  [key: string]: unknown;
}

/** Metadata by message type: what a handler may read without a cast (checked in validate.ts). */
interface MetadataMap {
  apply_request: RequestMetadata;
  execute_request: RequestMetadata;
  apply_reply: ReplyMetadata;
  execute_reply: ReplyMetadata;
  queue_request: QueryMetadata;
  hub_history_request: QueryMetadata;
  result_request: QueryMetadata;
  resubmit_request: QueryMetadata;
  purge_request: QueryMetadata;
  db_request: QueryMetadata;
}
export type MetadataOf<T extends MsgType> = T extends keyof MetadataMap ? MetadataMap[T] : Record<string, unknown>;

export interface ContentMap {
  // ---- Jupyter kernel messages (engines, and the tsparallel kernel itself)
  execute_request: {
    code: string;
    silent: boolean;
    store_history: boolean;
    user_expressions: Record<string, string>;
    allow_stdin: boolean;
    stop_on_error: boolean;
  };
  execute_reply: ReplyStatus<{ execution_count: number; user_expressions?: Record<string, unknown> }> & {
    execution_count?: number;
  };
  execute_input: { code: string; execution_count: number };
  execute_result: { execution_count: number; data: MimeBundle; metadata: Record<string, unknown> };
  display_data: { data: MimeBundle; metadata: Record<string, unknown>; transient?: { display_id?: string } };
  update_display_data: { data: MimeBundle; metadata: Record<string, unknown>; transient: { display_id: string } };
  clear_output: { wait: boolean };
  stream: { name: "stdout" | "stderr"; text: string };
  error: Omit<ErrorContent, "status">;
  status: { execution_state: "busy" | "idle" | "starting" };
  kernel_info_request: Record<string, never>;
  kernel_info_reply: Record<string, unknown>;
  complete_request: { code: string; cursor_pos: number };
  complete_reply: Record<string, unknown>;
  inspect_request: { code: string; cursor_pos: number; detail_level: number };
  inspect_reply: Record<string, unknown>;
  is_complete_request: { code: string };
  is_complete_reply: { status: "complete" | "incomplete" | "invalid" | "unknown"; indent?: string };
  comm_info_request: { target_name?: string };
  comm_info_reply: { status: "ok"; comms: Record<string, unknown> };
  history_request: Record<string, unknown>;
  history_reply: { status: "ok"; history: unknown[] };
  interrupt_request: Record<string, never>;
  interrupt_reply: { status: "ok" };

  // ---- engine work (buffers carry the apply payload and the result)
  apply_request: ApplyContent;
  apply_reply: ReplyStatus<object>;

  // ---- engine control (controller → engine)
  abort_request: { msg_ids: string[] };
  abort_reply: { status: "ok"; aborted: string[] };
  clear_request: Record<string, never>;
  clear_reply: { status: "ok" };
  shutdown_request: { restart: boolean; targets?: number[]; hub?: boolean };
  shutdown_reply: { status: "ok"; restart: boolean };

  // ---- registration (engine ↔ controller)
  /** `engine_set`: the launcher's set this engine belongs to (from TSPARALLEL_ENGINE_SET). */
  registration_request: {
    uuid: string;
    pid: number;
    hostname: string;
    cwd: string;
    requested_id?: number;
    engine_set?: string;
    direct?: DirectEndpoint;
  };
  registration_reply: ReplyStatus<{ id: number; heartbeat_period: number; controller: string }>;
  unregistration_request: { id: number };
  /** Engine → controller: its direct socket's drop counters, when they changed (at most once a second). */
  engine_dropped: { dropped: Record<string, number> };
  /** Controller → engine whose heart beats but which it does not know: register again. */
  reregistration_request: { reason: string };

  // ---- client queries (client ↔ controller)
  connection_request: Record<string, never>;
  /** `seq`: the registry's change count when the list was taken (see the notifications). */
  connection_reply: {
    status: "ok";
    engines: EngineDescription[];
    controller: string;
    heartbeat_period: number;
    seq: number;
  };
  queue_request: { targets?: number[]; verbose?: boolean };
  queue_reply: { status: "ok"; engines: Record<string, QueueStatus>; unassigned: number };
  signal_request: { targets: number[]; signal: string };
  signal_reply: ReplyStatus<{ signalled: number[] }>;
  restart_request: { targets: number[] };
  restart_reply: ReplyStatus<{ restarted: number[] }>;
  task_abort_request: { msg_ids: string[] };
  task_abort_reply: { status: "ok"; aborted: string[] };
  /** Stop these tasks wherever they are: queued ones are aborted, running ones interrupted. */
  task_interrupt_request: { msg_ids: string[]; signal: string };
  task_interrupt_reply: { status: "ok"; aborted: string[]; interrupted: string[] };
  // ---- task history across clients (ipyparallel's Hub queries)
  hub_history_request: Record<string, never>;
  hub_history_reply: { status: "ok"; history: string[] };
  /** With `fetch`, the stored replies (and later ones, for live tasks) are forwarded to the asker. */
  /** `missing_ok`: ids with no reply to fetch (unknown, or purged) are listed in `missing`, not refused. */
  result_request: { msg_ids: string[]; fetch?: boolean; missing_ok?: boolean };
  result_reply: {
    status: "ok";
    pending: string[];
    completed: string[];
    missing?: string[];
    records: Record<
      string,
      { msgType: "apply_request" | "execute_request"; engineId: number | null; stdout: string; stderr: string }
    >;
  };
  resubmit_request: { msg_ids: string[]; new_msg_ids: string[] };
  resubmit_reply: { status: "ok"; resubmitted: string[] };
  /** Engine sets of a running cluster: list them, add one through a launcher, stop or signal them. */
  engine_sets_request:
    | { action: "list" }
    | { action: "add"; n: number; spec: EngineSetSpec }
    | { action: "stop"; set: string }
    | { action: "signal"; signal: string; set?: string };
  engine_sets_reply: ReplyStatus<{ sets: EngineSetInfo[]; set?: string }>;
  purge_request: { msg_ids?: string[]; all?: boolean };
  purge_reply: { status: "ok"; purged: string[] };
  db_request: { query: Record<string, unknown>; keys?: string[] };
  db_reply: { status: "ok"; records: Array<Record<string, unknown>> };
  /** Engine → controller → client: `publishData(...)` from a running task; the dict is in the buffers. */
  data_pub: Record<string, never>;

  /**
   * Several signed messages in one: their frames (message i has `counts[i]` of them: its
   * signature, four JSON parts and its own buffers), of `sizes` bytes each, packed end to end in
   * the one buffer. Each inner message is verified on its own.
   */
  batch: { counts: number[]; sizes: number[] };

  /** Client → controller, once a heartbeat period: this client is still there (no reply). */
  client_alive: Record<string, never>;
  stats_request: Record<string, never>;
  stats_reply: {
    status: "ok";
    rss: number;
    heap: number;
    external: number;
    records: number;
    dropped: Record<string, number>;
    /** Dropped by the engines' direct sockets, summed over the engines that reported. */
    engines_dropped?: Record<string, number>;
  };
  hub_error: ErrorContent;

  // ---- notifications (controller PUB → clients)
  registration_notification: EngineDescription & { seq: number };
  unregistration_notification: EngineDescription & { reason: string; seq: number };
  controller_heartbeat: { controller: string; period: number };
  /** An engine's own reading of itself, once a second: CPU (% of one core since the last) and RSS (bytes). */
  engine_stats: { cpu: number; rss: number };
  /** Engine to engine, for a communicator (engine/comm.ts): its id, the sender's rank, a tag; the value in the buffers. */
  comm_msg: { comm: string; from: number; tag: string };
  /** Controller to engines: a registered engine was lost, so the communicators it was in fail. */
  peer_lost: { uuid: string; engine_id: number; reason: string };
  /** What the controller's monitor stream publishes, a few times a second (controller/monitor.ts). */
  monitor_update: MonitorReading;
}

export interface ApplyContent {
  /** What to call: user function source (evaluated in the engine namespace) or an engine builtin. */
  call: { kind: "source"; source: string; name: string } | { kind: "builtin"; name: BuiltinName };
}
export type BuiltinName = "push" | "pull" | "clear" | "info" | "require" | "comm_open";

export interface QueueStatus {
  queue: number;
  completed: number;
  tasks: number;
  /** msg id at the head of the engine's queue (running, or next to run). */
  running: string | null;
}

export type MimeBundle = Record<string, unknown>;

export type { MonitorUpdate, MonitoredEngine, MonitoredProgress, MonitoredTask } from "./monitor";

export type MsgType = keyof ContentMap;
export type ContentOf<T extends MsgType> = ContentMap[T];

export interface Header<T extends MsgType = MsgType> {
  msg_id: string;
  msg_type: T;
  session: string;
  username: string;
  date: string;
  version: string;
}

export interface Message<T extends MsgType = MsgType> {
  identities: Buffer[];
  header: Header<T>;
  /** `{}` when the message answers nothing. */
  parent_header: Header | Record<string, never>;
  metadata: MetadataOf<T>;
  content: ContentOf<T>;
  buffers: Buffer[];
}

/** The union of every concrete message: `switch` on `msg.header.msg_type` narrows it. */
export type AnyMessage = { [T in MsgType]: Message<T> }[MsgType];
export type MessageOf<T extends MsgType> = Extract<AnyMessage, { header: { msg_type: T } }>;

const MSG_TYPES: ReadonlySet<string> = new Set<keyof ContentMap>([
  "execute_request",
  "execute_reply",
  "execute_input",
  "execute_result",
  "display_data",
  "update_display_data",
  "clear_output",
  "stream",
  "error",
  "status",
  "kernel_info_request",
  "kernel_info_reply",
  "complete_request",
  "complete_reply",
  "inspect_request",
  "inspect_reply",
  "is_complete_request",
  "is_complete_reply",
  "comm_info_request",
  "comm_info_reply",
  "history_request",
  "history_reply",
  "interrupt_request",
  "interrupt_reply",
  "apply_request",
  "apply_reply",
  "abort_request",
  "abort_reply",
  "clear_request",
  "clear_reply",
  "shutdown_request",
  "shutdown_reply",
  "registration_request",
  "registration_reply",
  "unregistration_request",
  "engine_dropped",
  "comm_msg",
  "peer_lost",
  "reregistration_request",
  "connection_request",
  "connection_reply",
  "queue_request",
  "queue_reply",
  "signal_request",
  "signal_reply",
  "restart_request",
  "restart_reply",
  "task_abort_request",
  "task_abort_reply",
  "task_interrupt_request",
  "task_interrupt_reply",
  "client_alive",
  "hub_history_request",
  "hub_history_reply",
  "result_request",
  "result_reply",
  "resubmit_request",
  "resubmit_reply",
  "engine_sets_request",
  "engine_sets_reply",
  "purge_request",
  "purge_reply",
  "db_request",
  "db_reply",
  "data_pub",
  "batch",
  "stats_request",
  "stats_reply",
  "hub_error",
  "registration_notification",
  "unregistration_notification",
  "controller_heartbeat",
  "engine_stats",
  "monitor_update",
]);

/**
 * Client queries that read task records. A client names in such a query's `metadata.waitFor`,
 * per engine, the newest reply it got from that engine directly, and the controller answers once
 * it has recorded that far (the engine's copies may still be on the way).
 */
export type RecordQuery =
  "queue_request" | "hub_history_request" | "result_request" | "resubmit_request" | "purge_request" | "db_request";
export const RECORD_QUERIES: ReadonlySet<MsgType> = new Set<RecordQuery>([
  "queue_request",
  "hub_history_request",
  "result_request",
  "resubmit_request",
  "purge_request",
  "db_request",
]);

export function isRecordQuery(m: AnyMessage): m is MessageOf<RecordQuery> {
  return RECORD_QUERIES.has(m.header.msg_type);
}

export function isMsgType(t: unknown): t is MsgType {
  return typeof t === "string" && MSG_TYPES.has(t);
}

/** The parent's msg_id, or "" when the message answers nothing. */
export function parentId(m: Message): string {
  return (m.parent_header as Partial<Header>).msg_id ?? "";
}

/** Type guard: TypeScript does not narrow `msg` from a switch on the nested `msg.header.msg_type`. */
export function isMsg<T extends MsgType>(m: AnyMessage, type: T): m is MessageOf<T> {
  return m.header.msg_type === type;
}

/** What clients send the controller (its client ROUTER's role). */
export type ClientToController =
  | "client_alive"
  | "apply_request"
  | "execute_request"
  | "connection_request"
  | "queue_request"
  | "signal_request"
  | "restart_request"
  | "task_interrupt_request"
  | "task_abort_request"
  | "hub_history_request"
  | "result_request"
  | "resubmit_request"
  | "purge_request"
  | "db_request"
  | "engine_sets_request"
  | "shutdown_request"
  | "stats_request";

/** What registered engines send the controller (its engine ROUTER's role); registration comes first. */
export type EngineToController =
  | "apply_request"
  | "execute_request"
  | "apply_reply"
  | "execute_reply"
  | "engine_dropped"
  | "engine_stats"
  | "stream"
  | "display_data"
  | "update_display_data"
  | "execute_result"
  | "error"
  | "execute_input"
  | "clear_output"
  | "data_pub"
  | "abort_reply"
  | "unregistration_request"
  | "shutdown_reply";

/** The replies the controller sends clients. */
export type ControllerReply =
  | "connection_reply"
  | "queue_reply"
  | "signal_reply"
  | "restart_reply"
  | "task_abort_reply"
  | "task_interrupt_reply"
  | "hub_history_reply"
  | "result_reply"
  | "resubmit_reply"
  | "purge_reply"
  | "db_reply"
  | "engine_sets_reply"
  | "shutdown_reply"
  | "stats_reply"
  | "hub_error";

/** What the controller publishes to clients (its notification PUB's role). */
export type ControllerNotice = "registration_notification" | "unregistration_notification" | "controller_heartbeat";

/** One handler per message type in `T`, each given its own message type and `A`. */
export type Handlers<T extends MsgType, A extends unknown[]> = { [K in T]: (msg: MessageOf<K>, ...args: A) => void };

/** Calls the handler `table` has for `msg`'s type; false when it has none. */
export function dispatch<T extends MsgType, A extends unknown[]>(
  table: Handlers<T, A>,
  msg: AnyMessage,
  ...args: A
): boolean {
  const type = msg.header.msg_type;
  if (!Object.hasOwn(table, type)) return false;
  // The one cast of the tables: the key is the message's own type, so its handler takes it.
  (table[type as T] as (m: AnyMessage, ...rest: A) => void)(msg, ...args);
  return true;
}
