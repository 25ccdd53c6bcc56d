/**
 * Traffic from a peer without the key, for the flood tests and the benchmark (no cluster
 * fixtures here: the benchmark imports this too).
 */
import * as fs from "node:fs";
import * as zmq from "zeromq";

/** VmRSS of a process, in MB. */
export function rssMB(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(kb) / 1024;
}

/** Sends `frames` from a fresh socket without the key; resolves once the receiver has cut it off. */
export async function floodUntilCutOff(address: string, frames: Buffer[]): Promise<void> {
  const sock = new zmq.Dealer({ linger: 0 });
  const cutOff = (async () => {
    for await (const e of sock.events) if (e.type === "disconnect") return;
  })();
  sock.connect(address);
  try {
    await sock.send(frames);
    await Promise.race([
      cutOff,
      new Promise((_, reject) => setTimeout(() => reject(new Error(`${address} did not cut the flood off`)), 30_000)),
    ]);
  } finally {
    sock.close();
  }
}
