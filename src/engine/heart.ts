/**
 * The engine's heart, in a worker thread so it keeps beating while user code holds the main
 * thread (ipyparallel runs its Heart as a C-level zmq device for the same reason). It tells
 * the main thread when the controller answers as someone new, forgets the engine (restart), or
 * stops answering.
 */
import { parentPort, workerData } from "node:worker_threads";
import * as zmq from "zeromq";
import { beatMac } from "../controller/sockets";

export interface HeartConfig {
  endpoint: string;
  uuid: string;
  key: string;
  period: number;
  misses: number;
  curve?: { serverKey: string; publicKey: string; secretKey: string };
}

export type HeartEvent = { type: "pong"; controller: string; known: boolean } | { type: "lost"; silentMs: number };

async function main(cfg: HeartConfig): Promise<void> {
  const sock = new zmq.Dealer({ routingId: cfg.uuid, linger: 0, sendHighWaterMark: 2 });
  if (cfg.curve) {
    sock.curveServerKey = cfg.curve.serverKey;
    sock.curvePublicKey = cfg.curve.publicKey;
    sock.curveSecretKey = cfg.curve.secretKey;
  }
  sock.connect(cfg.endpoint);
  const key = Buffer.from(cfg.key);
  let seq = Date.now() * 1000; // increases across engine restarts with the same uuid
  let lastPong = Date.now();
  let lastController = "";
  let lastKnown = true;
  let reportedLost = false;
  const beating = setInterval(() => {
    seq++;
    sock.send([String(seq), beatMac(key, cfg.uuid, String(seq))]).catch(() => undefined);
    const silent = Date.now() - lastPong;
    if (silent > cfg.period * cfg.misses && !reportedLost) {
      reportedLost = true;
      post({ type: "lost", silentMs: silent });
    }
  }, cfg.period);
  // Close from inside on "stop": terminating a worker that holds a zmq socket aborts the
  // whole process (a Napi::Error thrown during teardown), so the engine asks instead.
  parentPort?.once("message", (m: unknown) => {
    if (m !== "stop") return;
    clearInterval(beating);
    sock.close();
    parentPort?.close();
  });
  for await (const [controller, status] of sock) {
    lastPong = Date.now();
    reportedLost = false;
    const c = controller?.toString() ?? "";
    const known = status?.toString() === "ok";
    if (c !== lastController || known !== lastKnown) post({ type: "pong", controller: c, known });
    lastController = c;
    lastKnown = known;
  }
}

function post(e: HeartEvent): void {
  parentPort?.postMessage(e);
}

if (parentPort) void main(workerData as HeartConfig);
