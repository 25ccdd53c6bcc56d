/**
 * `tsparallel controller --db sqlite[:path]`: finished task records persisted in SQLite, so a
 * controller restarted with `--reuse` still answers history queries and `getResult`.
 *
 * SQLite comes from sql.js (SQLite compiled to WebAssembly): it installs with no build step and
 * no downloaded binary. The database lives in memory and is written to its file (atomically,
 * by rename) at most once a second while tasks finish, and at close.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as v8 from "node:v8";
import initSqlJs, { type Database } from "sql.js";
import { TsParallelError } from "../protocol/errors";
import type { Envelope } from "../protocol/wire";
import type { TaskRecord } from "./records";

const FLUSH_MS = 1000;

const SCHEMA = `CREATE TABLE IF NOT EXISTS records (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  msg_id TEXT UNIQUE NOT NULL,
  msg_type TEXT NOT NULL,
  client BLOB NOT NULL,
  label TEXT,
  engine_id INTEGER,
  state TEXT NOT NULL,
  submitted REAL NOT NULL,
  started TEXT,
  completed TEXT,
  stdout TEXT NOT NULL,
  stderr TEXT NOT NULL,
  request BLOB,
  reply BLOB
)`;

export class TaskDatabase {
  private timer: NodeJS.Timeout | undefined;
  private dirty = false;

  private constructor(
    readonly file: string,
    private readonly db: Database,
  ) {}

  /**
   * Opens (or creates) the database at `file`; with `keep: false` it starts empty. Fails at once,
   * in one line, when the file cannot be written.
   */
  static async open(file: string, keep: boolean): Promise<TaskDatabase> {
    const SQL = await initSqlJs();
    let bytes: Buffer | undefined;
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      if (keep && fs.existsSync(file)) bytes = fs.readFileSync(file);
      fs.writeFileSync(`${file}.probe`, ""); // can we write beside it (the atomic rename needs to)?
      fs.rmSync(`${file}.probe`);
    } catch (e) {
      throw new TsParallelError(
        `cannot use the task database at ${file}: ${(e as Error).message}; give --db sqlite:PATH a writable path`,
      );
    }
    const db = new SQL.Database(bytes);
    db.run(SCHEMA);
    const out = new TaskDatabase(file, db);
    out.flush();
    return out;
  }

  /** Every record, oldest first, as the controller's finished records. */
  load(): TaskRecord[] {
    const rows = this.db.exec(
      "SELECT msg_id, msg_type, client, label, engine_id, state, submitted, started, completed, stdout, stderr, request, reply FROM records ORDER BY seq",
    )[0];
    return (rows?.values ?? []).map((v) => {
      const [
        msgId,
        msgType,
        client,
        label,
        engineId,
        state,
        submitted,
        started,
        completed,
        stdout,
        stderr,
        request,
        reply,
      ] = v;
      return {
        msgId: String(msgId),
        msgType: msgType === "execute_request" ? "execute_request" : "apply_request",
        client: Buffer.from(client as Uint8Array),
        route: { kind: "task" },
        state: state === "done" || state === "failed" ? state : "aborted",
        engineId: typeof engineId === "number" ? engineId : undefined,
        submitted: Number(submitted),
        ...(typeof started === "string" ? { started } : {}),
        ...(typeof completed === "string" ? { completed } : {}),
        stdout: String(stdout),
        stderr: String(stderr),
        envelope: undefined,
        retriesLeft: 0,
        blacklist: new Set<number>(),
        ...(typeof label === "string" ? { label } : {}),
        ...(request instanceof Uint8Array ? { request: toEnvelope(request) } : {}),
        ...(reply instanceof Uint8Array ? { reply: toEnvelope(reply) } : {}),
      } satisfies TaskRecord;
    });
  }

  save(r: TaskRecord): void {
    this.db.run(
      `INSERT INTO records (msg_id, msg_type, client, label, engine_id, state, submitted, started, completed, stdout, stderr, request, reply)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(msg_id) DO UPDATE SET state = excluded.state, engine_id = excluded.engine_id,
         started = excluded.started, completed = excluded.completed, stdout = excluded.stdout,
         stderr = excluded.stderr, reply = excluded.reply`,
      [
        r.msgId,
        r.msgType,
        r.client,
        r.label ?? null,
        r.engineId ?? null,
        r.state,
        r.submitted,
        r.started ?? null,
        r.completed ?? null,
        r.stdout,
        r.stderr,
        r.request ? fromEnvelope(r.request) : null,
        r.reply ? fromEnvelope(r.reply) : null,
      ],
    );
    this.schedule();
  }

  remove(msgIds: readonly string[]): void {
    for (const id of msgIds) this.db.run("DELETE FROM records WHERE msg_id = ?", [id]);
    this.schedule();
  }

  /** Writes the file now (at close, and from the debounce timer). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const tmp = `${this.file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, this.db.export(), { mode: 0o600 });
    fs.renameSync(tmp, this.file);
    this.dirty = false;
  }

  close(): void {
    if (this.dirty || this.timer) this.flush();
    this.db.close();
  }

  private schedule(): void {
    this.dirty = true;
    this.timer ??= setTimeout(() => this.flush(), FLUSH_MS);
    this.timer.unref();
  }
}

function fromEnvelope(env: Envelope): Uint8Array {
  return v8.serialize({ signature: env.signature, parts: env.parts, buffers: env.buffers });
}

function toEnvelope(bytes: Uint8Array): Envelope {
  const e = v8.deserialize(bytes) as { signature: Uint8Array; parts: Uint8Array[]; buffers: Uint8Array[] };
  const buf = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  return {
    identities: [],
    signature: buf(e.signature),
    parts: e.parts.map(buf) as Envelope["parts"],
    buffers: e.buffers.map(buf),
  };
}
