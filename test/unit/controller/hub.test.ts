import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Hub, type HubPorts } from "../../../controller/hub";
import type { EngineEntry } from "../../../controller/registry";
import { packApply } from "../../../protocol/apply";
import type { AnyMessage, MsgType } from "../../../protocol/messages";
import { Session } from "../../../protocol/session";

const KEY = "unit-test-key";

/** Ports that keep what the hub sends, decoded, per destination. */
class FakePorts implements HubPorts {
  readonly reader = new Session(KEY, "reader");
  readonly toClients: AnyMessage[] = [];
  readonly toEngines: AnyMessage[] = [];
  readonly notices: AnyMessage[] = [];
  readonly signals: Array<{ engine: number; signal: string }> = [];
  shutdowns = 0;

  toClient(frames: Buffer[]): void {
    this.toClients.push(this.decode(frames));
  }
  toEngine(frames: Buffer[]): void {
    this.toEngines.push(this.decode(frames));
  }
  notify(frames: Buffer[]): void {
    this.notices.push(this.decode(frames));
  }
  signal(engine: EngineEntry, signal: NodeJS.Signals): boolean {
    this.signals.push({ engine: engine.id, signal });
    return true;
  }
  restart(): boolean {
    return false;
  }
  shutdown(): void {
    this.shutdowns++;
  }
  log(): void {}

  /** Forwarded frames keep their sender's signature, so a fresh reader verifies each one. */
  private decode(frames: Buffer[]): AnyMessage {
    const msg = new Session(KEY, "reader").decode(frames);
    assert.ok(msg, "the hub sent a message that does not verify");
    return msg;
  }
}

/** A hub with fake ports, and a client and engines that talk to it through real signed frames. */
function setup(): {
  hub: Hub;
  ports: FakePorts;
  client: (type: MsgType, content: object, metadata?: Record<string, unknown>, buffers?: Buffer[]) => string;
  engine: (uuid: string) => {
    send: (type: MsgType, content: object, parent?: AnyMessage, metadata?: Record<string, unknown>) => void;
  };
  /** A client's task sent straight to engine `uuid`, which forwards it (engine/direct.ts); its msg id. */
  direct: (uuid: string, queuedAfter: number, clientSession?: Session) => string;
} {
  const ports = new FakePorts();
  const hubSession = new Session(KEY, "controller");
  const hub = new Hub(hubSession, ports, { scheme: "leastload", hwm: 1, heartbeatPeriod: 1000, heartbeatMisses: 5 });
  const clientSession = new Session(KEY, "client");
  const deliver = (frames: Buffer[], toHub: (m: AnyMessage, env: NonNullable<ReturnType<Session["open"]>>) => void) => {
    const env = hubSession.open(frames);
    const msg = env && hubSession.parse(env);
    if (env && msg) toHub(msg, env);
  };
  const client = (type: MsgType, content: object, metadata: Record<string, unknown> = {}, buffers: Buffer[] = []) => {
    const { frames, header } = clientSession.encode(type, content, {
      identities: [Buffer.from("client-1")],
      metadata,
      buffers,
    });
    deliver(frames, (m, env) => hub.onClientMessage(m, env));
    return header.msg_id;
  };
  const engine = (uuid: string) => {
    const s = new Session(KEY, "engine");
    const send = (
      type: MsgType,
      content: object,
      parent?: AnyMessage,
      metadata: Record<string, unknown> = {},
    ): void => {
      const { frames } = s.encode(type, content, {
        identities: [Buffer.from(uuid, "latin1")],
        metadata,
        ...(parent ? { parent: parent.header } : {}),
      });
      deliver(frames, (m, env) => hub.onEngineMessage(m, env));
    };
    send("registration_request", { uuid, pid: process.pid, hostname: "elsewhere", cwd: "/" });
    return { send };
  };
  const direct = (uuid: string, queuedAfter: number, from = new Session(KEY, "client")): string => {
    const { frames, header } = from.encode("apply_request", noop.content, {
      metadata: { route: { kind: "direct", engine: 0 } },
      buffers: noop.buffers,
    });
    const engineSession = new Session(KEY, "engine");
    const env = engineSession.open(frames)!;
    const msg = engineSession.parse(env)!;
    const copy = engineSession.resign(env, msg.header, { ...msg.metadata, queuedAfter });
    deliver(Session.forward([Buffer.from(uuid, "latin1")], copy), (m, e) => hub.onEngineMessage(m, e));
    return header.msg_id;
  };
  return { hub, ports, client, engine, direct };
}

const noop = packApply({ kind: "source", source: "() => 1", name: "f" }, []);

describe("Hub", () => {
  test("heartbeats count pings the controller's own heart answered: a stall declares no one lost, silence does", () => {
    const { hub, engine } = setup();
    engine("uuid-a");
    engine("uuid-b");
    // Pings 1..3 answered by both engines and the canary.
    for (let seq = 1; seq <= 3; seq++) {
      hub.pinged(seq);
      hub.beat("uuid-a", seq);
      hub.beat("uuid-b", seq);
      hub.canaryBeat(seq);
    }
    // The controller stalls (no pings sent, no echoes read): however long, nobody is lost.
    hub.checkEngines();
    assert.deepEqual(hub.registry.ids(), [0, 1]);
    // It resumes and reads the canary's echo of a new ping before the engines' ones: still nobody.
    hub.pinged(4);
    hub.canaryBeat(4);
    hub.checkEngines();
    assert.deepEqual(hub.registry.ids(), [0, 1]);
    // Engine b answers the next pings, a does not: after `heartbeatMisses` (5) more, a is lost.
    for (let seq = 5; seq <= 9; seq++) {
      hub.pinged(seq);
      hub.beat("uuid-b", seq);
      hub.canaryBeat(seq);
      hub.checkEngines();
    }
    assert.deepEqual(hub.registry.ids(), [1]);
    // Any message from an engine counts as a beat at the newest ping.
    hub.pinged(10);
    hub.canaryBeat(10);
    engine("uuid-c"); // registers at ping 10
    engine("uuid-d"); // and so does d, whose heart echoes ping 11, then falls silent
    hub.beat("uuid-d", 11);
    for (let seq = 11; seq <= 17; seq++) {
      hub.pinged(seq);
      hub.beat("uuid-b", seq);
      hub.canaryBeat(seq);
      hub.checkEngines();
    }
    assert.deepEqual(
      hub.registry.ids(),
      [1, 2],
      "d, beating and then silent for 6 pings, is lost; c's heart has not beaten yet",
    );
    // A heart that never echoes at all is given six times the misses, then its engine is lost too.
    for (let seq = 18; seq <= 41; seq++) {
      hub.pinged(seq);
      hub.beat("uuid-b", seq);
      hub.canaryBeat(seq);
      hub.checkEngines();
    }
    assert.deepEqual(hub.registry.ids(), [1], "c, silent for 31 pings after registering, is lost");
  });

  test("registration gives ids in order and tells the clients", () => {
    const { hub, ports, engine } = setup();
    engine("uuid-a");
    engine("uuid-b");
    assert.deepEqual(hub.registry.ids(), [0, 1]);
    assert.deepEqual(
      ports.notices.map((m) => m.header.msg_type),
      ["registration_notification", "registration_notification"],
    );
  });

  test("a direct task to an unregistered engine fails with a library EngineError", () => {
    const { ports, client } = setup();
    client("apply_request", noop.content, { route: { kind: "direct", engine: 7 } }, noop.buffers);
    const reply = ports.toClients[0]!;
    assert.equal(reply.header.msg_type, "apply_reply");
    assert.deepEqual(
      { ...reply.content, traceback: undefined },
      {
        status: "error",
        ename: "EngineError",
        evalue: "engine 7 is not registered (registered: [])",
        origin: "tsparallel",
        traceback: undefined,
      },
    );
  });

  test("a load-balanced task goes to an engine, and its reply reaches the client", () => {
    const { ports, client, engine } = setup();
    const e = engine("uuid-a");
    const id = client("apply_request", noop.content, { route: { kind: "task" } }, noop.buffers);
    const sent = ports.toEngines.find((m) => m.header.msg_id === id)!;
    assert.ok(sent, "the task reached the engine");
    e.send("apply_reply", { status: "ok" }, sent);
    assert.equal(ports.toClients.at(-1)!.header.msg_type, "apply_reply");
  });

  test("an engine lost mid-task: its load-balanced task with retries moves, its direct task fails", () => {
    const { hub, ports, client, engine } = setup();
    engine("uuid-a");
    const lb = client("apply_request", noop.content, { route: { kind: "task", retries: 1 } }, noop.buffers);
    const direct = client("apply_request", noop.content, { route: { kind: "direct", engine: 0 } }, noop.buffers);
    engine("uuid-b");
    hub.engineLost(0, "it was killed");
    const failed = ports.toClients.find((m) => m.header.msg_type === "apply_reply");
    assert.ok(failed && "msg_id" in failed.parent_header && failed.parent_header.msg_id === direct);
    assert.match(String((failed.content as { evalue: string }).evalue), /Engine 0 died .*it was killed/);
    const moved = ports.toEngines.filter((m) => m.header.msg_id === lb);
    assert.equal(moved.length, 2, "sent to engine 0, then again to engine 1");
  });

  test("a direct task is recorded in its engine's order; its reply only recorded; a lost engine fails it to its client", () => {
    const { hub, ports, client, engine, direct } = setup();
    const e = engine("uuid-a");
    const viaHub = client("apply_request", noop.content, { route: { kind: "direct", engine: 0 } }, noop.buffers);
    // The engine had received no task from the controller when this one arrived: it runs first.
    const owner = new Session(KEY, "client");
    const first = direct("uuid-a", 0, owner);
    const second = direct("uuid-a", 1, owner);
    assert.deepEqual(hub.ledger.queue(0), [first, viaHub, second]);
    assert.equal(ports.toEngines.filter((m) => m.header.msg_id === first).length, 0, "never sent anywhere");
    const sentBefore = ports.toClients.length;
    e.send("apply_reply", { status: "ok" }, { header: { msg_id: first } } as unknown as AnyMessage);
    assert.equal(ports.toClients.length, sentBefore, "the engine gave the client its reply itself");
    assert.equal(hub.records.get(first)!.state, "done");
    hub.engineLost(0, "it was killed");
    const failed = ports.toClients.find((m) => "msg_id" in m.parent_header && m.parent_header.msg_id === second)!;
    assert.match(String((failed.content as { evalue: string }).evalue), /Engine 0 died before running/);
    assert.equal(failed.identities[0]?.toString(), owner.id, "addressed by the client's session id");
  });

  test("a client's query about records waits until the engine's replies it names are recorded", () => {
    const { ports, client, engine, direct } = setup();
    const e = engine("uuid-a");
    const first = direct("uuid-a", 0);
    const id = direct("uuid-a", 0);
    const before = ports.toClients.length;
    // The client got replies 1 and 2 straight from the engine; the controller has recorded neither.
    client("db_request", { query: { msgId: id }, keys: ["completed"] }, { waitFor: { "uuid-a": 2, "uuid-gone": 9 } });
    assert.equal(ports.toClients.length, before, "no answer while the engine's copies are on their way");
    e.send("apply_reply", { status: "ok" }, { header: { msg_id: first } } as unknown as AnyMessage, { seq: 1 });
    assert.equal(ports.toClients.length, before, "reply 1 is not reply 2; an unknown engine is not waited for");
    e.send("apply_reply", { status: "ok" }, { header: { msg_id: id } } as unknown as AnyMessage, { seq: 2 });
    const answer = ports.toClients.at(-1)!;
    assert.equal(answer.header.msg_type, "db_reply");
    const [record] = (answer.content as { records: Array<{ completed: unknown }> }).records;
    assert.ok(record?.completed, "answered with the task finished");
    // Recorded that far already: the next query is answered at once.
    client("db_request", { query: { msgId: id } }, { waitFor: { "uuid-a": 2 } });
    assert.equal(ports.toClients.at(-1)!.header.msg_type, "db_reply");
  });

  test("a query parked on an engine's replies is answered when that engine is lost instead", () => {
    const { hub, ports, client, engine, direct } = setup();
    engine("uuid-a");
    const id = direct("uuid-a", 0);
    client("result_request", { msg_ids: [id] }, { waitFor: { "uuid-a": 1 } });
    assert.ok(!ports.toClients.some((m) => m.header.msg_type === "result_reply"));
    hub.engineLost(0, "it was killed");
    const types = ports.toClients.map((m) => m.header.msg_type);
    assert.deepEqual(types.slice(-2), ["apply_reply", "result_reply"], "its task failed first, then the answer");
    const answer = ports.toClients.at(-1)!.content as { completed: string[] };
    assert.deepEqual(answer.completed, [id]);
  });

  test("a malformed waitFor is dropped and counted, never parked", () => {
    const { hub, ports, client } = setup();
    client("db_request", { query: {} }, { waitFor: ["not", "a", "map"] });
    client("db_request", { query: {} }, { waitFor: { "uuid-a": "1" } });
    assert.equal(ports.toClients.length, 0);
    assert.equal(hub.session.dropped.malformed, 2);
  });

  test("a stop for a direct task the engine has not forwarded yet applies when it arrives", () => {
    const { hub, ports, client, engine, direct } = setup();
    engine("uuid-a");
    const blocker = direct("uuid-a", 0);
    const owner = new Session(KEY, "client");
    const msgId = `${owner.id}_1`; // the id `direct` will send next
    client("task_abort_request", { msg_ids: [msgId] });
    assert.equal(direct("uuid-a", 0, owner), msgId);
    const abort = ports.toEngines.find((m) => m.header.msg_type === "abort_request");
    assert.deepEqual((abort?.content as { msg_ids: string[] }).msg_ids, [msgId]);
    // Queued behind the running one: dropped when its turn comes, the running one spared.
    assert.deepEqual(hub.ledger.queue(0), [blocker, msgId]);
  });

  test("aborting an unassigned task answers it with TaskAborted", () => {
    const { ports, client } = setup();
    const id = client("apply_request", noop.content, { route: { kind: "task" } }, noop.buffers);
    client("task_abort_request", { msg_ids: [id] });
    const replies = ports.toClients.map((m) => [m.header.msg_type, (m.content as { ename?: string }).ename]);
    assert.deepEqual(replies, [
      ["apply_reply", "TaskAborted"],
      ["task_abort_reply", undefined],
    ]);
  });

  test("a forged route never reaches the hub: it is dropped and counted as malformed", () => {
    const { hub, ports, client } = setup();
    client("apply_request", noop.content, { route: { kind: "direct", engine: "0; rm -rf" } }, noop.buffers);
    assert.equal(ports.toClients.length, 0);
    assert.equal(hub.session.dropped.malformed, 1);
  });

  test("a request the controller does not serve gets a hub_error naming it", () => {
    const { ports, client } = setup();
    client("kernel_info_request", {});
    assert.equal(ports.toClients[0]!.header.msg_type, "hub_error");
    assert.match(String((ports.toClients[0]!.content as { evalue: string }).evalue), /kernel_info_request/);
  });
});
