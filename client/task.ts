/** One submitted task message and everything learned about it: the unit an AsyncResult is made of. */
import type { MimeBundle } from "../protocol/messages";

export type OutputEvent =
  | { type: "stream"; name: "stdout" | "stderr"; text: string }
  | { type: "display_data"; data: MimeBundle; metadata: Record<string, unknown>; displayId?: string }
  | { type: "update_display_data"; data: MimeBundle; metadata: Record<string, unknown>; displayId: string }
  | { type: "execute_result"; executionCount: number; data: MimeBundle }
  | { type: "error"; ename: string; evalue: string; traceback: string[] };

/** Per-task metadata, as ipyparallel's `ar.metadata[i]` (timestamps are Dates). */
export interface ResultMetadata {
  msgId: string;
  engineId: number | undefined;
  submitted: Date;
  started: Date | undefined;
  completed: Date | undefined;
  received: Date | undefined;
  status: "pending" | "ok" | "error";
  stdout: string;
  stderr: string;
  /** Rich outputs in order: display_data, execute_result, error. */
  outputs: OutputEvent[];
  executeResult: { executionCount: number; data: MimeBundle } | undefined;
  executionCount: number | undefined;
  /** What the task published with `publishData`, merged (the latest value of each name). */
  data: Record<string, unknown>;
  /** The label given at submission, if any. */
  label: string | undefined;
}

export class SubmittedTask {
  readonly metadata: ResultMetadata;
  readonly done: Promise<unknown>;
  private settle!: { resolve: (v: unknown) => void; reject: (e: unknown) => void };
  private listeners: Array<(e: OutputEvent, t: SubmittedTask) => void> = [];
  value: unknown;
  error: Error | undefined;

  constructor(
    msgId: string,
    engineId: number | undefined,
    public method: "apply" | "execute",
  ) {
    this.metadata = {
      msgId,
      engineId,
      submitted: new Date(),
      started: undefined,
      completed: undefined,
      received: undefined,
      status: "pending",
      stdout: "",
      stderr: "",
      outputs: [],
      executeResult: undefined,
      executionCount: undefined,
      data: {},
      label: undefined,
    };
    this.done = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    this.done.catch(() => undefined); // observed through AsyncResult; never an unhandled rejection
  }

  get msgId(): string {
    return this.metadata.msgId;
  }

  get ready(): boolean {
    return this.metadata.status !== "pending";
  }

  private dataListeners: Array<(data: Record<string, unknown>, engineId: number | undefined) => void> = [];

  onData(listener: (data: Record<string, unknown>, engineId: number | undefined) => void): () => void {
    this.dataListeners.push(listener);
    return () => (this.dataListeners = this.dataListeners.filter((l) => l !== listener));
  }

  /** A `publishData` dict arrived from the engine. */
  published(data: Record<string, unknown>): void {
    Object.assign(this.metadata.data, data);
    for (const l of this.dataListeners) l(data, this.metadata.engineId);
  }

  onOutput(listener: (e: OutputEvent, t: SubmittedTask) => void): () => void {
    this.listeners.push(listener);
    return () => (this.listeners = this.listeners.filter((l) => l !== listener));
  }

  output(e: OutputEvent): void {
    const m = this.metadata;
    if (e.type === "stream") m[e.name] += e.text;
    else m.outputs.push(e);
    if (e.type === "execute_result") m.executeResult = { executionCount: e.executionCount, data: e.data };
    for (const l of this.listeners) l(e, this);
  }

  resolve(value: unknown): void {
    if (this.ready) return;
    this.value = value;
    this.metadata.status = "ok";
    this.metadata.received = new Date();
    this.settle.resolve(value);
  }

  reject(error: Error): void {
    if (this.ready) return;
    this.error = error;
    this.metadata.status = "error";
    this.metadata.received = new Date();
    this.settle.reject(error);
  }
}
