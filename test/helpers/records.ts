/** Plain engine entries and task records for the controller's unit tests. */
import type { TaskRecord } from "../../controller/records";
import type { EngineEntry } from "../../controller/registry";

export function engineEntry(id: number, over: Partial<EngineEntry> = {}): EngineEntry {
  return {
    id,
    uuid: `uuid-${id}`,
    pid: 100 + id,
    hostname: "here",
    identity: Buffer.from(`uuid-${id}`),
    cwd: "/",
    registeredAt: 0,
    lastBeat: 0,
    heardAtPing: 0,
    beating: true,
    lbLoad: 0,
    completed: 0,
    avgTaskMs: undefined,
    lastAssigned: 0,
    dispatched: 0,
    ...over,
  };
}

export function taskRecord(msgId: string, over: Partial<TaskRecord> = {}): TaskRecord {
  return {
    msgId,
    msgType: "apply_request",
    client: Buffer.from("c"),
    route: { kind: "task" },
    state: "pending",
    engineId: undefined,
    submitted: 0,
    stdout: "",
    stderr: "",
    envelope: undefined,
    retriesLeft: 0,
    blacklist: new Set(),
    ...over,
  };
}
