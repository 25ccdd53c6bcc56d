/** The tsparallel library: `import { Client, Cluster, Reference } from "tsparallel"`. */
export { Client, type ConnectOptions } from "./client";
export { Cluster, type ClusterOptions } from "./cluster";
export { DirectView, LoadBalancedView, type LoadBalancedOptions, type MapOptions, type PerEngine } from "./views";
export { AsyncResult, type GetOptions } from "./async-result";
export type { TaskMetadata, OutputEvent } from "./task";
export { ExecuteReply } from "./execute-reply";
export { Reference, type ReferenceMarker } from "./reference";
export { type Targets } from "./targets";
export { getActiveClient } from "./active";
export {
  TsParallelError, RemoteError, CompositeError, EngineError, TimeoutError, TaskAborted, DependencyError, NoEnginesError,
} from "./errors";
export { UnserializableError } from "../protocol/serialize";
export { TranspileError } from "../transpile/transpile";
export { Chart, Table, table, vegaLite } from "./charts";
export { getDisplayHook, type DisplayHook } from "./display";
