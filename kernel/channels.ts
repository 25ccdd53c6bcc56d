/**
 * The five Jupyter channels of the kernel, one role each:
 *   shell    ROUTER  execute/complete/inspect requests, handled one at a time, in order
 *   control  ROUTER  interrupt/shutdown/kernel_info, handled at once even while a cell runs
 *   stdin    ROUTER  bound because front ends connect to it; the kernel never asks for input
 *   iopub    PUB     status, streams, displays, results and errors of the running cell
 *   hb       REP     echoes whatever arrives, so the front end knows the process is alive
 * Framing and signing are protocol/'s: the kernel speaks the same signed wire as the cluster.
 */
import * as fs from "node:fs";
import * as zmq from "zeromq";
import type { AnyMessage, ContentOf, Message, MsgType } from "../protocol/messages";
import { Session } from "../protocol/session";
import { Outbox, receiveLoop } from "../protocol/socket";
import { TsParallelError } from "../protocol/errors";

/** What Jupyter writes to the file it passes as `--config-path`. */
export interface KernelConnection {
  transport: "tcp" | "ipc";
  ip: string;
  key: string;
  signature_scheme: string;
  shell_port: number;
  iopub_port: number;
  stdin_port: number;
  control_port: number;
  hb_port: number;
}

export function readKernelConnection(file: string): KernelConnection {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new TsParallelError(
      `cannot read the kernel connection file ${file}: ${(e as Error).message} (Jupyter passes it as --config-path {connection_file})`,
    );
  }
  const c = JSON.parse(text) as Partial<KernelConnection>;
  for (const k of ["ip", "shell_port", "iopub_port", "stdin_port", "control_port", "hb_port"] as const) {
    if (c[k] === undefined) throw new TsParallelError(`kernel connection file ${file} has no "${k}"`);
  }
  if (c.signature_scheme && c.signature_scheme !== "hmac-sha256") {
    throw new TsParallelError(`signature scheme ${c.signature_scheme} is not supported; use hmac-sha256`);
  }
  return { transport: "tcp", key: "", signature_scheme: "hmac-sha256", ...c } as KernelConnection;
}

export type Channel = "shell" | "control";
export type Request = AnyMessage & { channel: Channel };

export class KernelChannels {
  readonly session: Session;
  private readonly shell = new zmq.Router({ linger: 0 });
  private readonly control = new zmq.Router({ linger: 0 });
  private readonly stdin = new zmq.Router({ linger: 0 });
  private readonly iopub = new zmq.Publisher({ linger: 0 });
  private readonly hb = new zmq.Reply({ linger: 0 });
  private readonly out: Record<Channel | "iopub", Outbox>;

  private constructor(
    conn: KernelConnection,
    private readonly log: (line: string) => void,
  ) {
    this.session = new Session(conn.key, "kernel");
    this.out = { shell: new Outbox(this.shell), control: new Outbox(this.control), iopub: new Outbox(this.iopub) };
  }

  static async bind(conn: KernelConnection, log: (line: string) => void): Promise<KernelChannels> {
    const ch = new KernelChannels(conn, log);
    const addr = (port: number): string =>
      conn.transport === "ipc" ? `ipc://${conn.ip}-${port}` : `tcp://${conn.ip}:${port}`;
    await Promise.all([
      ch.shell.bind(addr(conn.shell_port)),
      ch.control.bind(addr(conn.control_port)),
      ch.stdin.bind(addr(conn.stdin_port)),
      ch.iopub.bind(addr(conn.iopub_port)),
      ch.hb.bind(addr(conn.hb_port)),
    ]);
    return ch;
  }

  /**
   * Starts the receive loops. Shell and control messages are decoded here (bad ones are dropped
   * and counted by the session) and handed on; the handler decides about ordering.
   */
  serve(onRequest: (req: Request) => void): void {
    for (const channel of ["shell", "control"] as const) {
      void receiveLoop(
        this[channel],
        (frames) => {
          const msg = this.session.decode(frames);
          if (msg) onRequest(Object.assign(msg, { channel }));
        },
        (e) => this.log(`${channel} receive error: ${String(e)}`),
      );
    }
    void receiveLoop(
      this.hb,
      (frames) => this.hb.send(frames),
      (e) => this.log(`heartbeat error: ${String(e)}`),
    );
    void receiveLoop(
      this.stdin,
      () => undefined,
      () => undefined,
    );
  }

  reply<T extends MsgType>(req: Request, type: T, content: ContentOf<T>, metadata: Record<string, unknown> = {}): void {
    const { frames } = this.session.encode(type, content, { parent: req.header, identities: req.identities, metadata });
    this.out[req.channel].send(frames);
  }

  /** An iopub message; the topic frame is the msg_type, as ipykernel's `kernel.<id>.<type>` serves only filtering. */
  publish<T extends MsgType>(
    parent: Message,
    type: T,
    content: ContentOf<T>,
    metadata: Record<string, unknown> = {},
  ): void {
    const { frames } = this.session.encode(type, content, {
      parent: parent.header,
      identities: [Buffer.from(`kernel.${type}`)],
      metadata,
    });
    this.out.iopub.send(frames);
  }

  close(): void {
    for (const s of [this.shell, this.control, this.stdin, this.iopub, this.hb]) s.close();
  }
}
