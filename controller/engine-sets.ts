/**
 * The engine sets of a running controller: each is n engines started by one launcher (local
 * processes, an MPI job, ssh sessions, a Slurm or other batch job). Clients add, list, stop and
 * signal them (`engine_sets_request`); the controller stops them all when it stops.
 *
 * The controller owns the sets, not the process that asked for them: `tsparallel cluster engines`
 * may exit at once, and `cluster stop` still ends every set. Anyone holding the cluster's key may
 * do this, as they may already run any code on the engines.
 */
import * as os from "node:os";
import type { ConnectionInfo } from "../protocol/connection";
import type { ContentOf, EngineSetInfo, EngineSetSpec } from "../protocol/messages";
import { TsParallelError } from "../protocol/errors";
import type { EngineLauncher } from "../cluster/launchers/launcher";
import { LocalLauncher } from "../cluster/launchers/local";
import { checkSpec, createLauncher } from "../cluster/launchers/spec";
import type { Registry } from "./registry";

export interface EngineSetsContext {
  profile: string;
  profileDir: string;
  /** Working directory of local engines and of the launchers' commands. */
  cwd: string;
  engineFile: string;
  restartEngines: boolean;
  registry: Registry;
  connectionInfo(): ConnectionInfo;
  log(line: string): void;
  /** A local engine process exited: the hub declares its engine lost at once. */
  engineProcessExited(pid: number, how: string): void;
  /** A set's engines ended: the hub checks its engines now rather than at the next beat. */
  setEnded(): void;
}

interface EngineSet {
  info: Omit<EngineSetInfo, "registered" | "jobId">;
  launcher: EngineLauncher;
}

export class EngineSets {
  private readonly sets = new Map<string, EngineSet>();
  private next = 0;
  private readonly hostname = os.hostname();

  constructor(private readonly ctx: EngineSetsContext) {}

  /** Starts a set; resolves with its id once the launcher started it (not when engines registered). */
  async add(n: number, spec: EngineSetSpec): Promise<string> {
    checkSpec(spec, n);
    const id = `${spec.engines}-${this.next++}`;
    const launcher = createLauncher(
      spec,
      {
        setId: id,
        profile: this.ctx.profile,
        profileDir: this.ctx.profileDir,
        cwd: this.ctx.cwd,
        ...(spec.env ? { env: spec.env } : {}),
        log: (line) => this.ctx.log(`[${id}] ${line}`),
        onExit: (how) => this.ended(id, how),
      },
      {
        engineFile: this.ctx.engineFile,
        restart: this.ctx.restartEngines,
        onEngineExit: (pid, how) => this.ctx.engineProcessExited(pid, how),
      },
    );
    const set: EngineSet = {
      info: { id, kind: spec.engines, state: "starting", n, output: launcher.output },
      launcher,
    };
    this.sets.set(id, set);
    try {
      await launcher.start(n, this.ctx.connectionInfo());
    } catch (e) {
      set.info.state = "failed";
      set.info.detail = e instanceof Error ? e.message : String(e);
      this.ctx.log(`engine set ${id} failed to start: ${set.info.detail}`);
      throw e;
    }
    if (set.info.state === "starting") set.info.state = "running";
    this.ctx.log(`engine set ${id}: ${n} ${spec.engines} engines started (output: ${launcher.output})`);
    return id;
  }

  private ended(id: string, how: string): void {
    const set = this.sets.get(id);
    if (!set || set.info.state === "stopped" || set.info.state === "failed") return;
    set.info.state = "stopped";
    if (how !== "stopped") set.info.detail = how;
    this.ctx.setEnded();
  }

  list(): EngineSetInfo[] {
    const registered = new Map<string, number>();
    for (const e of this.ctx.registry.all())
      if (e.engineSet !== undefined) registered.set(e.engineSet, (registered.get(e.engineSet) ?? 0) + 1);
    return [...this.sets.values()].map(({ info, launcher }) => ({
      ...info,
      registered: registered.get(info.id) ?? 0,
      ...(launcher.jobId !== undefined ? { jobId: launcher.jobId } : {}),
    }));
  }

  private get(id: string): EngineSet {
    const set = this.sets.get(id);
    if (!set)
      throw new TsParallelError(
        `no engine set ${JSON.stringify(id)}: the sets are ${[...this.sets.keys()].join(", ")}`,
      );
    return set;
  }

  async stop(id: string): Promise<void> {
    const set = this.get(id);
    await set.launcher.stop();
    set.info.state = set.info.state === "failed" ? "failed" : "stopped";
    this.ctx.setEnded();
  }

  async stopAll(): Promise<void> {
    await Promise.allSettled([...this.sets.keys()].map((id) => this.stop(id)));
  }

  /**
   * Signals every engine of the set (or of all sets): those on this host directly by pid, the
   * others through their launcher (kill over ssh, `scancel --signal`).
   */
  async signal(signal: NodeJS.Signals, id?: string): Promise<void> {
    const sets = id === undefined ? [...this.sets.values()] : [this.get(id)];
    const remote: EngineSet[] = [];
    for (const set of sets) {
      if (set.info.state !== "running") continue;
      const engines = this.ctx.registry.all().filter((e) => e.engineSet === set.info.id);
      let elsewhere = false;
      for (const e of engines) {
        if (e.hostname !== this.hostname) elsewhere = true;
        else
          try {
            process.kill(e.pid, signal);
          } catch {
            // gone already
          }
      }
      if (elsewhere) remote.push(set);
    }
    await Promise.all(remote.map((s) => s.launcher.signal(signal)));
  }

  /** An engine registered: a local set starts its next engine (see the start window in local.ts). */
  registered(setId: string | undefined, pid: number): void {
    const launcher = setId === undefined ? undefined : this.sets.get(setId)?.launcher;
    if (launcher instanceof LocalLauncher) launcher.engineRegistered(pid);
  }

  /** Restarts the local engine process `pid` (its set's launcher must be local). */
  restart(pid: number): boolean {
    for (const { launcher } of this.sets.values())
      if (launcher instanceof LocalLauncher && launcher.owns(pid)) return launcher.restart(pid);
    return false;
  }

  /** The `engine_sets_request` handler. Errors become the reply's one line. */
  async handle(req: ContentOf<"engine_sets_request">): Promise<ContentOf<"engine_sets_reply">> {
    let set: string | undefined;
    switch (req.action) {
      case "add":
        set = await this.add(req.n, req.spec);
        break;
      case "stop":
        await this.stop(req.set);
        break;
      case "signal":
        if (!/^SIG[A-Z0-9]+$/.test(req.signal) || !(req.signal in os.constants.signals))
          throw new TsParallelError(`unknown signal ${JSON.stringify(req.signal)}: use a name such as SIGINT`);
        await this.signal(req.signal as NodeJS.Signals, req.set);
        break;
      case "list":
        break;
    }
    return { status: "ok", sets: this.list(), ...(set !== undefined ? { set } : {}) };
  }
}
