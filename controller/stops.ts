/**
 * Stopping tasks, wherever they are (abort and interrupt share it): unassigned ones fail with
 * TaskAborted here; each engine is told which of its tasks to stop (a queued one is dropped when
 * its turn comes, a running one is interrupted), and a running one's engine gets the signal too,
 * again every `RESIGNAL_MS` while that task is still at the head of its queue: the engine may not
 * have started it when the first signal lands. Only the engine running that very task is
 * signalled, never another client's.
 */
import * as os from "node:os";
import type { LibraryErrorName } from "../protocol/errors";
import type { ContentOf } from "../protocol/messages";
import type { Refusal } from "./queries";
import type { Session } from "../protocol/session";
import type { StopOptions, TaskLedger } from "./ledger";
import type { Records, TaskRecord } from "./records";
import type { EngineEntry, Registry } from "./registry";
import type { TaskScheduler } from "./task-scheduler";

/** How often, and how many times, a task being interrupted is signalled again while it runs. */
const RESIGNAL_MS = 250;
const RESIGNAL_TRIES = 40;

export interface StopDeps {
  records: Records;
  registry: Registry;
  scheduler: TaskScheduler;
  ledger: TaskLedger<unknown>;
  session: Session;
  ports: {
    toEngine(frames: Buffer[]): void;
    signal(engine: EngineEntry, signal: NodeJS.Signals): boolean;
    restart(engineId: number): boolean;
  };
  fail(record: TaskRecord, ename: LibraryErrorName, evalue: string, state: "failed" | "aborted"): void;
}

export class TaskStops {
  constructor(private readonly deps: StopDeps) {}

  /**
   * The one mechanism behind abort and interrupt: unassigned tasks fail with TaskAborted here;
   * each engine is told which of its tasks to stop (a queued one is dropped when its turn comes,
   * a running one, if `running`, is interrupted).
   */
  stop(ids: readonly string[], opts: StopOptions): { aborted: string[]; interrupted: string[] } {
    const aborted: string[] = [];
    const interrupted: string[] = [];
    const perEngine = new Map<EngineEntry, string[]>();
    for (const id of ids) {
      const r = this.deps.records.getLive(id);
      if (!r) {
        // Perhaps a direct task whose engine has not forwarded it yet: stop it when it does.
        if (!this.deps.records.get(id)) this.deps.ledger.stopLater(id, opts);
        continue;
      }
      if (this.deps.scheduler.remove(r)) {
        this.deps.fail(r, "TaskAborted", `task ${id} was aborted before it started`, "aborted");
        aborted.push(id);
        continue;
      }
      const engine = r.engineId === undefined ? undefined : this.deps.registry.get(r.engineId);
      if (!engine) continue;
      const running = this.deps.ledger.running(engine.id) === id;
      if (running && !opts.running) continue;
      perEngine.set(engine, [...(perEngine.get(engine) ?? []), id]);
      (running ? interrupted : aborted).push(id);
      if (running && opts.signal) this.signalWhileRunning(r, engine, opts.signal);
    }
    for (const [engine, list] of perEngine)
      this.deps.ports.toEngine(
        this.deps.session.encode("abort_request", { msg_ids: list }, { identities: [engine.identity] }).frames,
      );
    return { aborted, interrupted };
  }

  private signalWhileRunning(record: TaskRecord, engine: EngineEntry, signal: NodeJS.Signals): void {
    let left = RESIGNAL_TRIES;
    const tick = (): void => {
      const live = this.deps.records.getLive(record.msgId) && this.deps.registry.get(engine.id) === engine;
      if (!live || left-- <= 0) return clearInterval(timer);
      if (this.deps.ledger.running(engine.id) === record.msgId) this.deps.ports.signal(engine, signal);
    };
    // The first signal waits one period: a task still at the head after it is really running
    // (a busy loop), while one that was about to finish has replied by then. Signalling at once
    // would hit the engine's next task whenever the reply was still on its way.
    const timer = setInterval(tick, RESIGNAL_MS);
    timer.unref();
  }

  /** An interrupt: queued tasks are aborted, running ones interrupted (and signalled, unless "0"). */
  interrupt(content: ContentOf<"task_interrupt_request">): Refusal | ContentOf<"task_interrupt_reply"> {
    const { msg_ids: ids, signal } = content;
    if (signal !== "0" && !(signal in os.constants.signals))
      return { ename: "ValueError", evalue: `unknown signal ${signal}; use a name such as SIGINT` };
    const { aborted, interrupted } = this.stop(ids, {
      running: true,
      ...(signal !== "0" ? { signal: signal as NodeJS.Signals } : {}),
    });
    return { status: "ok", aborted, interrupted };
  }

  private unknown(targets: number[]): string | undefined {
    const bad = targets.filter((t) => !this.deps.registry.get(t));
    return bad.length > 0 ? `no engine with id ${bad.join(", ")}` : undefined;
  }

  signalEngines({ targets, signal }: ContentOf<"signal_request">): ContentOf<"signal_reply"> {
    const bad = this.unknown(targets);
    if (bad) return engineError(bad);
    const sig = signal as NodeJS.Signals;
    return { status: "ok", signalled: targets.filter((t) => this.deps.ports.signal(this.deps.registry.get(t)!, sig)) };
  }

  restartEngines({ targets }: ContentOf<"restart_request">): ContentOf<"restart_reply"> {
    const bad = this.unknown(targets);
    if (bad) return engineError(bad);
    const notOurs = targets.filter((t) => !this.deps.ports.restart(t));
    if (notOurs.length > 0)
      return engineError(
        `engine(s) ${notOurs.join(", ")} were not started by this controller; restart them where they run`,
      );
    return { status: "ok", restarted: targets };
  }

  /** When each client (by identity) was last heard from, for `dropOrphans`. */
  private readonly clientSeen = new Map<string, number>();

  seen(client: Buffer): void {
    this.clientSeen.set(client.toString("latin1"), Date.now());
  }

  /**
   * The load-balanced tasks still queued for a client silent for `silentMs` fail with
   * TaskAborted: nobody will read them, and they would hold the engines from everyone else.
   * Clients send `client_alive` every heartbeat period.
   */
  dropOrphans(silentMs: number, log: (line: string) => void): void {
    const limit = Date.now() - silentMs;
    for (const [key, seen] of this.clientSeen) {
      if (seen > limit) continue;
      this.clientSeen.delete(key);
      const dropped = this.deps.scheduler.removeClient(Buffer.from(key, "latin1"));
      if (dropped.length > 0) log(`dropping ${dropped.length} queued tasks of a client gone silent`);
      for (const r of dropped)
        this.deps.fail(r, "TaskAborted", `task ${r.msgId} was dropped: its client is gone`, "aborted");
    }
  }
}

function engineError(evalue: string): { status: "error"; ename: string; evalue: string; traceback: string[] } {
  return { status: "error", ename: "EngineError", evalue, traceback: [] };
}
