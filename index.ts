/** The tsparallel library: `import { Client, Cluster, Reference } from "tsparallel"`. Nothing else is public. */
export { Client, type ConnectOptions } from "./client/client";
export { getActiveClient } from "./client/activation";
export { Cluster, type ClusterInfo, type ClusterOptions, type EngineSetOptions } from "./cluster/cluster";
export type { EngineKind, EngineSetInfo } from "./protocol/messages";
export { connectionFile, readConnectionFile } from "./protocol/connection";
export { MonitorFeed } from "./client/monitor-feed";
export type { MonitorUpdate, MonitoredEngine, MonitoredProgress, MonitoredTask } from "./protocol/messages";
export {
  BroadcastView,
  DirectView,
  LoadBalancedView,
  type LoadBalancedOptions,
  type MapOptions,
  type PerEngine,
} from "./client/views";
export { AsyncResult, type GetOptions, type WaitOptions } from "./client/async-result";
export { ImapResult, type ImapOptions } from "./client/imap";
export type { GroupBy } from "./client/render";
export type { ResultMetadata, OutputEvent } from "./client/task";
export { ExecuteReply } from "./client/execute-reply";
export { Reference, type ReferenceMarker } from "./client/reference";
export { type Targets } from "./client/targets";
export {
  TsParallelError,
  RemoteError,
  CompositeError,
  EngineError,
  TimeoutError,
  TaskAborted,
  DependencyError,
  NoEnginesError,
} from "./client/errors";
export { UnserializableError } from "./protocol/serialize";
export { TranspileError } from "./transpile/transpile";
export { Chart, Table, table, vegaLite } from "./client/charts";
export { getDisplayHook, type DisplayHook } from "./client/display";
