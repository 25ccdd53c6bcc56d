/**
 * The transport's floor, measured in the same run as everything else: raw zeromq.js with no
 * session code (no signing, no JSON, no records) on the route a task takes, client DEALER →
 * relay ROUTER/ROUTER → engine DEALER and back, each in its own process as in a cluster. A
 * target that tsparallel misses is compared with these, not with a guess.
 *
 *   node dist/bench/floor.js relay <front port> <back port>   a controller stand-in: forwards both ways
 *   node dist/bench/floor.js echo <back port>                 an engine stand-in: answers every message
 *   node dist/bench/floor.js direct <port>                     an engine's direct socket stand-in (ROUTER)
 */
import { type ChildProcess, spawn } from "node:child_process";
import { performance } from "node:perf_hooks";
import * as zmq from "zeromq";
import { MB, median, put, quick } from "./metrics";
import { cpuPer, putCpu } from "./cpu";
import { freePort } from "../client/tunnel";

/** Frames of a small task message as ours are sent: identity, delimiter, signature, 4 JSON parts, 1 buffer. */
const SMALL = [Buffer.from("<IDS|MSG>"), Buffer.alloc(64), ...Array.from({ length: 5 }, () => Buffer.alloc(120))];

async function relay(front: number, back: number): Promise<void> {
  const clients = new zmq.Router({ sendHighWaterMark: 0, receiveHighWaterMark: 0 });
  const engines = new zmq.Router({ sendHighWaterMark: 0, receiveHighWaterMark: 0 });
  await clients.bind(`tcp://127.0.0.1:${front}`);
  await engines.bind(`tcp://127.0.0.1:${back}`);
  const engine = Buffer.from("engine");
  // What the controller does at the least: take the sender's identity off, put the peer's on.
  void (async () => {
    for await (const [client, ...rest] of clients) await engines.send([engine, client!, ...rest]);
  })();
  for await (const [, client, ...rest] of engines) await clients.send([client!, ...rest]);
}

async function echo(back: number): Promise<void> {
  const socket = new zmq.Dealer({ routingId: "engine", sendHighWaterMark: 0, receiveHighWaterMark: 0 });
  socket.connect(`tcp://127.0.0.1:${back}`);
  for await (const frames of socket) await socket.send(frames);
}

/** The direct path's engine: a ROUTER that answers each client on its own connection. */
async function directEcho(port: number): Promise<void> {
  const socket = new zmq.Router({ sendHighWaterMark: 0, receiveHighWaterMark: 0 });
  await socket.bind(`tcp://127.0.0.1:${port}`);
  for await (const frames of socket) await socket.send(frames);
}

function peer(args: string[]): ChildProcess {
  return spawn(process.execPath, [__filename, ...args], { stdio: "ignore" });
}

/** Round-trip latency, relayed throughput and relayed bandwidth of raw zeromq.js on a task's route. */
export async function floor(): Promise<void> {
  const [front, back, direct] = [await freePort(), await freePort(), await freePort()];
  const peers = [
    peer(["relay", String(front), String(back)]),
    peer(["echo", String(back)]),
    peer(["direct", String(direct)]),
  ];
  const client = new zmq.Dealer({ sendHighWaterMark: 0, receiveHighWaterMark: 0 });
  const straight = new zmq.Dealer({ sendHighWaterMark: 0, receiveHighWaterMark: 0 });
  try {
    client.connect(`tcp://127.0.0.1:${front}`);
    straight.connect(`tcp://127.0.0.1:${direct}`);
    // The direct path's route (engine/direct.ts): client DEALER to the engine's ROUTER, two hops.
    for (let i = 0; i < 201; i++) await straight.send(SMALL).then(() => straight.receive());
    const straightLat: number[] = [];
    const rounds = quick ? 300 : 3000;
    const [relayPid, echoPid, directPid] = peers.map((p) => p.pid!);
    const straightCpu = await cpuPer({ client: process.pid, engine: directPid! }, rounds, async () => {
      for (let i = 0; i < rounds; i++) {
        const t0 = performance.now();
        await straight.send(SMALL);
        await straight.receive();
        straightLat.push(performance.now() - t0);
      }
    });
    putCpu("(floor) raw zeromq.js round trip straight to an engine", straightCpu);
    put(
      "(floor) raw zeromq.js round trip straight to an engine (a's direct route)",
      median(straightLat) * 1e3,
      "us",
      "lower",
    );
    const roundTrip = async (frames: Buffer[]): Promise<void> => {
      await client.send(frames);
      await client.receive();
    };
    // The relay and the echo may still be starting: the first round trip waits for them.
    await roundTrip(SMALL);
    for (let i = 0; i < 200; i++) await roundTrip(SMALL);
    const lat: number[] = [];
    const relayCpu = await cpuPer(
      { client: process.pid, controller: relayPid!, engine: echoPid! },
      rounds,
      async () => {
        for (let i = 0; i < rounds; i++) {
          const t0 = performance.now();
          await roundTrip(SMALL);
          lat.push(performance.now() - t0);
        }
      },
    );
    putCpu("(floor) raw zeromq.js round trip through a relay", relayCpu);
    put("(floor) raw zeromq.js round trip through a relay (a's route), 8 frames", median(lat) * 1e3, "us", "lower");
    // Throughput: as many messages in flight as the LB benchmark's 2,000 tasks.
    const n = quick ? 2000 : 20_000;
    const t0 = performance.now();
    const received = (async () => {
      for (let i = 0; i < n; i++) await client.receive();
    })();
    for (let i = 0; i < n; i++) await client.send(SMALL);
    await received;
    put(
      "(floor) raw zeromq.js relayed round trips per second (c's route)",
      n / ((performance.now() - t0) / 1000),
      "tasks/s",
      "higher",
    );
    // Bandwidth: 64 MB out and back is four hops; one way through the relay is two.
    const big = Buffer.alloc(64 * MB, 1);
    const times: number[] = [];
    for (let i = 0; i < (quick ? 2 : 5); i++) {
      const t = performance.now();
      await roundTrip([SMALL[0]!, SMALL[1]!, big]);
      times.push((performance.now() - t) / 2);
    }
    put(
      "(floor) raw zeromq.js 64 MB through a relay, one way (e's route)",
      64 / (median(times) / 1000),
      "MB/s",
      "higher",
    );
    // Whatever the transport, the receiver ends with the data in memory it had not touched
    // before: one copy of 64 MB into a fresh buffer (page faults included) bounds e's speed.
    const copies: number[] = [];
    for (let i = 0; i < (quick ? 2 : 5); i++) {
      const t = performance.now();
      const copy = Buffer.from(big);
      copies.push(performance.now() - t);
      if (copy.length !== big.length) throw new Error("floor: short copy");
    }
    put("(floor) 64 MB copied once into fresh memory (e's bound)", 64 / (median(copies) / 1000), "MB/s", "higher");
  } finally {
    client.close();
    straight.close();
    for (const p of peers) p.kill("SIGKILL");
  }
}

if (require.main === module) {
  const [role, ...ports] = process.argv.slice(2);
  const run =
    role === "relay"
      ? relay(Number(ports[0]), Number(ports[1]))
      : role === "direct"
        ? directEcho(Number(ports[0]))
        : echo(Number(ports[0]));
  run.catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
