/**
 * The controller process: binds the four sockets, writes the connection files, runs the hub,
 * the heartbeat checks and (optionally) its local engines.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as os from "node:os";
import { randomBytes } from "node:crypto";
import * as zmq from "zeromq";
import { Session } from "../protocol/session";
import { Outbox } from "../protocol/socket";
import { sweepStale } from "../protocol/bulk";
import {
  type ConnectionInfo,
  connectionFile,
  endpoint,
  isAlive,
  profileDir,
  readConnectionFile,
  writeSecret,
} from "../protocol/connection";
import { Hub, type HubOptions } from "./hub";
import { type Curve, HeartbeatRole, routeLoop, serverSocket } from "./sockets";
import type { EngineSetSpec } from "../protocol/messages";
import { type StorePolicy, TaskDatabase } from "./database";
import { RECORDS_IN_MEMORY } from "./records";
import { EngineSets } from "./engine-sets";
import { checkSpec } from "../cluster/launchers/spec";
import { collectWhenIdle } from "./idle-gc";

/** How often the monitor stream publishes a reading while someone watches (ms): four a second. */
const MONITOR_MS = 250;
/** Readings queued per watcher before the newest are dropped for it. */
const MONITOR_HWM = 16;

export interface ControllerOptions extends Partial<HubOptions> {
  profile?: string;
  /** Interface to bind; 127.0.0.1 unless asked (ipyparallel's default too). */
  ip?: string;
  /** Reuse the ports and key of the existing connection files (restart in place). */
  reuse?: boolean;
  /** Engines to start with the controller, as its first engine set. */
  engines?: number;
  /** How those engines start (default: local child processes). */
  engineSpec?: EngineSetSpec;
  restartEngines?: boolean;
  curve?: boolean;
  /** `sqlite` or `sqlite:PATH`: persist finished task records (see database.ts). */
  db?: string;
  /** How much the task database keeps (default: DEFAULT_POLICY). */
  dbPolicy?: StorePolicy;
  /** Working directory of local engines (require/import resolve from it). */
  cwd?: string;
  log?: (line: string) => void;
}

interface ControllerSecret {
  curve?: Curve;
}

export class Controller {
  readonly session: Session;
  readonly hub: Hub;
  info!: ConnectionInfo;
  private readonly clients = new zmq.Router();
  private readonly engines = new zmq.Router();
  private readonly ping = new zmq.Publisher();
  private readonly heartbeat = new zmq.Router();
  private heartbeatRole: HeartbeatRole | undefined;
  private readonly notification = new zmq.Publisher();
  /** The monitor stream: an XPUB, so the controller knows whether anyone watches (controller/monitor.ts). */
  private readonly monitorSocket = new zmq.XPublisher({ verbosity: "allSubsUnsubs" });
  readonly engineSets: EngineSets;
  /** The connection file being reused (`--reuse`): same ports and key as before. */
  private readonly previous: ConnectionInfo | undefined;
  private timers: NodeJS.Timeout[] = [];
  private loops: Promise<void>[] = [];
  private closed = false;
  /** Client and engine messages handled so far: the idle collector's sign of quiet. */
  private handled = 0;
  private readonly log: (line: string) => void;
  readonly done: Promise<void>;
  private resolveDone!: () => void;

  constructor(private readonly opts: ControllerOptions = {}) {
    this.log = opts.log ?? ((l) => process.stderr.write(`[controller] ${l}\n`));
    const previous = (this.previous = opts.reuse ? tryRead(connectionFile("client", opts.profile)) : undefined);
    this.session = new Session(previous?.key ?? randomBytes(32).toString("hex"), "controller");
    const clientsOut = new Outbox(this.clients, { coalesce: this.session.coalesce, routed: true });
    const enginesOut = new Outbox(this.engines, { coalesce: this.session.coalesce, routed: true });
    const notifyOut = new Outbox(this.notification);
    this.hub = new Hub(
      this.session,
      {
        toClient: (f) => clientsOut.send(f),
        toEngine: (f) => enginesOut.send(f),
        notify: (f) => notifyOut.send(f),
        signal: (engine, sig) => {
          if (engine.hostname !== os.hostname()) return false;
          try {
            process.kill(engine.pid, sig);
            return true;
          } catch {
            return false;
          }
        },
        restart: (id) => {
          const e = this.hub.registry.get(id);
          return !!e && this.engineSets.restart(e.pid);
        },
        shutdown: () => void this.close(),
        engineSets: (request) => this.engineSets.handle(request),
        registered: (engine) => this.engineSets.registered(engine.engineSet, engine.pid),
        // Shared-memory files a killed engine (or a client killed meanwhile) left on this host.
        lost: (engine) => {
          if (engine.hostname === os.hostname()) sweepStale(isAlive);
        },
        log: this.log,
      },
      {
        scheme: opts.scheme ?? "leastload",
        hwm: opts.hwm ?? 32,
        heartbeatPeriod: opts.heartbeatPeriod ?? 1000,
        heartbeatMisses: opts.heartbeatMisses ?? 5,
        dropOrphans: opts.dropOrphans ?? false,
      },
    );
    this.done = new Promise((r) => (this.resolveDone = r));
    this.engineSets = new EngineSets({
      profile: opts.profile ?? "default",
      profileDir: profileDir(opts.profile),
      cwd: opts.cwd ?? process.cwd(),
      engineFile: connectionFile("engine", opts.profile),
      restartEngines: !!opts.restartEngines,
      registry: this.hub.registry,
      connectionInfo: () => this.info,
      log: this.log,
      engineProcessExited: (pid, how) => {
        const e = this.hub.registry.all().find((x) => x.pid === pid && x.hostname === os.hostname());
        if (e) this.hub.engineLost(e.id, `its process ${how}`);
      },
      setEnded: () => this.hub.checkEngines(),
    });
  }

  async start(): Promise<ConnectionInfo> {
    const { profile, ip = "127.0.0.1" } = this.opts;
    if (this.opts.db) this.openDatabase(this.opts.db);
    const firstSet: EngineSetSpec = this.opts.engineSpec ?? { engines: "local" };
    if (this.opts.engines) checkSpec(firstSet, this.opts.engines); // before any connection file is written
    const previous = this.previous;
    const secret: ControllerSecret =
      (this.opts.reuse ? tryReadJson<ControllerSecret>(connectionFile("controller", profile)) : undefined) ?? {};
    if (this.opts.curve && !secret.curve) secret.curve = zmq.curveKeyPair();
    const curve = this.opts.curve || previous?.curve_serverkey ? secret.curve : undefined;
    const host = ip.includes(":") ? `[${ip}]` : ip;
    const bind = async (s: zmq.Router | zmq.Publisher | zmq.XPublisher, port?: number): Promise<number> => {
      serverSocket(s, curve);
      // A watcher that cannot keep up loses readings; the controller never holds them for it.
      if (s === this.monitorSocket) s.sendHighWaterMark = MONITOR_HWM;
      if (ip.includes(":")) s.ipv6 = true;
      await s.bind(`tcp://${host}:${port ?? "*"}`);
      return Number(/:(\d+)$/.exec(s.lastEndpoint ?? "")?.[1]);
    };
    const ports = {
      clients: await bind(this.clients, previous?.ports.clients),
      notification: await bind(this.notification, previous?.ports.notification),
      engines: await bind(this.engines, previous?.ports.engines),
      ping: await bind(this.ping, previous?.ports.ping),
      heartbeat: await bind(this.heartbeat, previous?.ports.heartbeat),
      monitor: await bind(this.monitorSocket, previous?.ports.monitor),
    };
    const connectIp = ip === "0.0.0.0" || ip === "*" ? guessAddress() : ip === "::" ? "::1" : ip;
    this.info = {
      transport: "tcp",
      ip: connectIp,
      ports,
      key: this.session.key,
      signature_scheme: "hmac-sha256",
      ...(curve ? { curve_serverkey: curve.publicKey } : {}),
      controller_pid: process.pid,
      location: os.hostname(),
    };
    writeSecret(connectionFile("controller", profile), secret);
    writeSecret(connectionFile("engine", profile), this.info);
    writeSecret(connectionFile("client", profile), this.info);

    const hb = (this.heartbeatRole = new HeartbeatRole(this.ping, this.heartbeat, this.info.key, this.hub));
    this.loops.push(
      routeLoop(
        this.clients,
        this.session,
        this.counted((m, env) => this.hub.onClientMessage(m, env)),
        this.log,
      ),
      routeLoop(
        this.engines,
        this.session,
        this.counted((m, env) => this.hub.onEngineMessage(m, env)),
        this.log,
      ),
      hb.start(
        this.log,
        { ping: endpoint(this.info, ports.ping), pong: endpoint(this.info, ports.heartbeat) },
        curve ? { serverKey: curve.publicKey, ...zmq.curveKeyPair() } : undefined,
      ),
    );
    const period = this.hub.options.heartbeatPeriod;
    this.timers.push(
      setInterval(() => this.hub.checkEngines(), Math.min(period, 250)),
      setInterval(() => this.hub.checkClients(), period),
      setInterval(() => {
        hb.ping();
        this.hub.heartbeatNotice();
      }, period),
      collectWhenIdle(() => this.handled),
      this.publishMonitor(),
    );
    this.loops.push(this.countWatchers());
    if (this.opts.engines) await this.engineSets.add(this.opts.engines, firstSet);
    this.log(`listening on ${this.info.ip} ports ${JSON.stringify(ports)}${curve ? " (CURVE)" : ""}`);
    const exposure = exposedWithoutCurve(ip, !!curve);
    if (exposure) this.log(exposure);
    return this.info;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    await this.engineSets.stopAll();
    await this.heartbeatRole?.stop();
    for (const s of [this.clients, this.engines, this.ping, this.heartbeat, this.notification, this.monitorSocket])
      s.close();
    await Promise.allSettled(this.loops);
    this.database?.close();
    this.resolveDone();
  }

  /**
   * The monitor's readings, `MONITOR_MS` apart, while someone subscribes: one signed message each
   * (CURVE like every socket when the cluster uses it), nothing at all when nobody watches.
   */
  private publishMonitor(): NodeJS.Timeout {
    const out = new Outbox(this.monitorSocket);
    const timer = setInterval(() => {
      if (this.hub.monitor.watching) out.send(this.session.encode("monitor_update", this.hub.monitorUpdate()).frames);
    }, MONITOR_MS);
    timer.unref();
    return timer;
  }

  /** Subscriptions and their ends, as the XPUB reports them: whether anyone watches. */
  private async countWatchers(): Promise<void> {
    try {
      for await (const [frame] of this.monitorSocket) {
        if (frame?.[0] === 1) this.hub.monitor.watchers++;
        else if (frame?.[0] === 0) this.hub.monitor.watchers = Math.max(0, this.hub.monitor.watchers - 1);
      }
    } catch {
      // the socket closed
    }
  }

  /** A message handler that also counts the message, for the idle collector. */
  private counted<M, E>(handle: (msg: M, env: E) => void): (msg: M, env: E) => void {
    return (msg, env) => {
      this.handled++;
      handle(msg, env);
    };
  }

  private database: TaskDatabase | undefined;

  /**
   * `--db sqlite[:path]`: finished records go to SQLite; with `--reuse` the ones a previous
   * controller saved are loaded first, so their results can still be fetched.
   */
  private openDatabase(spec: string): void {
    const m = /^sqlite(?::(.+))?$/.exec(spec);
    if (!m) throw new RangeError(`unknown --db ${spec}: use sqlite or sqlite:PATH`);
    const file = path.resolve(m[1] ?? path.join(profileDir(this.opts.profile), "tasks.sqlite"));
    const db = (this.database = TaskDatabase.open(file, this.opts.reuse === true, this.log, this.opts.dbPolicy));
    // Metadata of the newest records; their payloads, and older records, stay in the file.
    for (const r of db.recent(RECORDS_IN_MEMORY)) this.hub.records.restore(r);
    this.hub.queries.archive = db;
    this.log(`task database: ${file}`);
  }
}

function tryRead(file: string): ConnectionInfo | undefined {
  try {
    return fs.existsSync(file) ? readConnectionFile(file) : undefined;
  } catch {
    return undefined;
  }
}

function tryReadJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as T;
  } catch {
    return undefined;
  }
}

/** With `--ip 0.0.0.0`, engines on other hosts need a reachable address in the file. */
function guessAddress(): string {
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return "127.0.0.1";
}

/**
 * What binding to `ip` without CURVE lets others on the network do, or undefined on loopback.
 * The key keeps them from running code, but the traffic is readable and the notification feed
 * answers any subscriber.
 */
export function exposedWithoutCurve(ip: string, curve: boolean): string | undefined {
  const loopback = ip === "localhost" || ip === "::1" || ip.startsWith("127.");
  if (curve || loopback) return undefined;
  return (
    `warning: listening on ${ip} without --curve: anyone who can reach it reads the traffic (your code, data ` +
    `and results) and the notification feed (engine ids, pids, hosts and direct endpoints); start with --curve to encrypt`
  );
}
