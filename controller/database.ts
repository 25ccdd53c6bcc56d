/**
 * `tsparallel controller --db sqlite[:path]`: finished task records persisted in SQLite, so a
 * controller restarted with `--reuse` still answers history queries, `getResult` and `resubmit`
 * for every task the file holds.
 *
 * SQLite comes from node-sqlite3-wasm (SQLite compiled to WebAssembly with a VFS over Node's
 * file system): it installs with no build step and no downloaded binary, and it writes to the
 * file page by page. Finished records are queued and written together in one transaction every
 * FLUSH_MS, so a flush costs what the new records weigh, never the whole database (an
 * in-memory SQLite exported whole each second took 6.8 s per flush at 1.3 GB).
 *
 * The controller's memory keeps metadata for its newest records (records.ts); payloads that
 * left memory, and records older than that, are read back from here by msg id.
 *
 * A write that fails (disk full, a file system turned read-only) is said once in the log; the
 * controller keeps serving from memory, and the queries that would need the file say why they
 * cannot answer.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as v8 from "node:v8";
import { Database, type SQLiteValue } from "node-sqlite3-wasm";
import { TsParallelError } from "../protocol/errors";
import type { Envelope } from "../protocol/wire";
import type { TaskArchive, TaskRecord } from "./records";

const FLUSH_MS = 200;

/** What the file may hold: the oldest records go first once either bound is passed. */
export interface StorePolicy {
  /** Bytes of database file. */
  maxBytes: number;
  /** Age of a record, from its submission. */
  maxAgeMs: number;
}

export const DEFAULT_POLICY: StorePolicy = { maxBytes: 1024 * 1024 * 1024, maxAgeMs: 30 * 24 * 3600 * 1000 };

// auto_vacuum must be chosen before the first table: freed pages then go back to the file system.
const SCHEMA = `PRAGMA auto_vacuum = INCREMENTAL;
CREATE TABLE IF NOT EXISTS records (
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

const META =
  "msg_id, msg_type, client, label, engine_id, state, submitted, started, completed, stdout, stderr, reply IS NOT NULL AS has_reply";

type Change = { save: TaskRecord } | { remove: readonly string[] };

export class TaskDatabase implements TaskArchive {
  /** Why the file can no longer be written, once a write failed. */
  failure: string | undefined;
  private queue: Change[] = [];
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    readonly file: string,
    private readonly db: Database,
    private readonly policy: StorePolicy,
    private readonly log: (line: string) => void,
  ) {}

  /**
   * Opens (or creates) the database at `file`; with `keep: false` it starts empty. Fails at once,
   * in one line, when the file cannot be opened and written.
   */
  static open(
    file: string,
    keep: boolean,
    log: (line: string) => void,
    policy: StorePolicy = DEFAULT_POLICY,
  ): TaskDatabase {
    let db: Database | undefined;
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      if (!keep) for (const f of [file, `${file}-journal`]) fs.rmSync(f, { force: true });
      fs.closeSync(fs.openSync(file, "a", 0o600));
      fs.chmodSync(file, 0o600);
      db = new Database(file);
      db.exec(SCHEMA);
    } catch (e) {
      db?.close();
      throw new TsParallelError(
        `cannot use the task database at ${file}: ${(e as Error).message}; give --db sqlite:PATH a writable path`,
      );
    }
    const store = new TaskDatabase(file, db, policy, log);
    try {
      store.enforcePolicy();
    } catch (e) {
      store.fail(e);
    }
    return store;
  }

  /** The newest `limit` records, oldest first, without their request and reply (find has them). */
  recent(limit: number): TaskRecord[] {
    const rows = this.read(() => this.db.all(`SELECT ${META} FROM records ORDER BY seq DESC LIMIT ?`, [limit])) ?? [];
    return rows.reverse().map((row) => toRecord(row as Row));
  }

  /**
   * Every record `skip` does not want, oldest first, without payloads (history and dbQuery).
   * None once the file failed: what it holds may not be readable either.
   */
  older(skip: (msgId: string) => boolean): TaskRecord[] {
    this.flush();
    const rows = this.read(() => this.db.all(`SELECT ${META} FROM records ORDER BY seq`) as Row[]) ?? [];
    return rows.filter((row) => !skip(String(row.msg_id))).map(toRecord);
  }

  /** The record of `msgId` with its request and reply, as saved. */
  find(msgId: string): TaskRecord | undefined {
    this.flush();
    const row = this.read(() => this.db.get(`SELECT ${META}, request, reply FROM records WHERE msg_id = ?`, [msgId]));
    return row ? toRecord(row as Row) : undefined;
  }

  /** A query's answer, or undefined (the failure said once) when the file cannot be read. */
  private read<T>(query: () => T): T | undefined {
    if (this.failure) return undefined;
    try {
      return query();
    } catch (e) {
      this.fail(e);
      return undefined;
    }
  }

  save(r: TaskRecord): void {
    if (this.failure) return;
    r.replyArchived = r.reply !== undefined;
    this.queue.push({ save: r });
    this.schedule();
  }

  /** Removes these records (all with `undefined`); returns the msg ids it held. */
  remove(msgIds: readonly string[] | undefined): string[] {
    this.flush();
    if (this.failure) return [];
    const held =
      this.read(() =>
        msgIds === undefined
          ? (this.db.all("SELECT msg_id FROM records") as Row[]).map((row) => String(row.msg_id))
          : msgIds.filter((id) => this.db.get("SELECT 1 FROM records WHERE msg_id = ?", [id]) !== null),
      ) ?? [];
    this.queue.push({ remove: held });
    this.flush();
    return held;
  }

  /** Writes what is queued, in one transaction (from the timer, before reads, and at close). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.queue.length === 0) return;
    const changes = this.queue;
    this.queue = [];
    if (this.failure) return;
    try {
      this.db.exec("BEGIN");
      for (const c of changes) {
        if ("save" in c) this.insert(c.save);
        else for (const id of c.remove) this.db.run("DELETE FROM records WHERE msg_id = ?", [id]);
      }
      this.db.exec("COMMIT");
      this.enforcePolicy();
    } catch (e) {
      for (const c of changes) if ("save" in c) c.save.replyArchived = false;
      this.fail(e);
    }
  }

  close(): void {
    this.flush();
    try {
      this.db.close();
    } catch (e) {
      if (!this.failure) this.fail(e); // a failed file: what was written stays valid
    }
  }

  private insert(r: TaskRecord): void {
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
  }

  /** Drops records past the age bound, then the oldest until the file is back under its size bound. */
  private enforcePolicy(): void {
    this.db.run("DELETE FROM records WHERE submitted < ?", [Date.now() - this.policy.maxAgeMs]);
    for (let used = this.usedBytes(); used > this.policy.maxBytes; used = this.usedBytes()) {
      const count = Number(this.db.get("SELECT COUNT(*) AS n FROM records")?.n ?? 0);
      if (count === 0) break;
      // Down to 90% of the bound, so a full store does not trim on every flush.
      const share = Math.max(1, Math.ceil((count * (used - 0.9 * this.policy.maxBytes)) / used));
      this.db.run("DELETE FROM records WHERE seq IN (SELECT seq FROM records ORDER BY seq LIMIT ?)", [share]);
      this.db.exec("PRAGMA incremental_vacuum");
    }
  }

  private usedBytes(): number {
    const pragma = (name: string): number => Number(Object.values(this.db.get(`PRAGMA ${name}`) ?? {})[0] ?? 0);
    return (pragma("page_count") - pragma("freelist_count")) * pragma("page_size");
  }

  private fail(e: unknown): void {
    try {
      if (this.db.inTransaction) this.db.exec("ROLLBACK");
    } catch {
      // the rollback failed too: SQLite rolls the journal back when the file is next opened
    }
    this.failure = `using ${this.file} failed (${(e as Error).message}${this.cause()})`;
    this.log(`task database: ${this.failure}; from now on finished tasks are kept in memory only (the newest 10,000)`);
  }

  /** SQLite says only "disk I/O error": a probe write beside the file finds the system's reason. */
  private cause(): string {
    const probe = `${this.file}.probe`;
    try {
      fs.writeFileSync(probe, Buffer.alloc(64 * 1024), { mode: 0o600 });
      return "";
    } catch (e) {
      return `: ${(e as Error).message.replace(/, open .*$/, "")}`;
    } finally {
      fs.rmSync(probe, { force: true });
    }
  }

  private schedule(): void {
    this.timer ??= setTimeout(() => this.flush(), FLUSH_MS);
    this.timer.unref();
  }
}

type Row = Record<string, SQLiteValue>;

function toRecord(row: Row): TaskRecord {
  const text = (v: SQLiteValue | undefined): string | undefined => (typeof v === "string" ? v : undefined);
  const started = text(row.started);
  const completed = text(row.completed);
  const label = text(row.label);
  return {
    msgId: String(row.msg_id),
    msgType: row.msg_type === "execute_request" ? "execute_request" : "apply_request",
    client: Buffer.from(row.client as Uint8Array),
    route: { kind: "task" },
    state: row.state === "done" || row.state === "failed" ? row.state : "aborted",
    engineId: typeof row.engine_id === "number" ? row.engine_id : undefined,
    submitted: Number(row.submitted),
    ...(started !== undefined ? { started } : {}),
    ...(completed !== undefined ? { completed } : {}),
    stdout: String(row.stdout),
    stderr: String(row.stderr),
    envelope: undefined,
    retriesLeft: 0,
    blacklist: new Set<number>(),
    ...(label !== undefined ? { label } : {}),
    replyArchived: row.has_reply === 1,
    ...(row.request instanceof Uint8Array ? { request: toEnvelope(row.request) } : {}),
    ...(row.reply instanceof Uint8Array ? { reply: toEnvelope(row.reply) } : {}),
  };
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
