import * as util from "node:util";
import type { ResultMetadata } from "./task";

/** What `execute` returns per engine: `<ExecuteReply[7]: 5>`, as ipyparallel prints it. */
export class ExecuteReply {
  constructor(readonly metadata: ResultMetadata) {}
  get executionCount(): number | undefined {
    return this.metadata.executionCount;
  }
  get engineId(): number | undefined {
    return this.metadata.engineId;
  }
  /** The text/plain of the last expression, if the cell had one. */
  get text(): string | undefined {
    return this.metadata.executeResult?.data["text/plain"] as string | undefined;
  }
  get stdout(): string {
    return this.metadata.stdout;
  }
  toString(): string {
    return `<ExecuteReply[${this.executionCount ?? "?"}]${this.text !== undefined ? `: ${this.text}` : ""}>`;
  }
  [util.inspect.custom](): string {
    return this.toString();
  }
}
