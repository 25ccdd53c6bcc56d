/**
 * `tsparallel cluster top [--profile P] [--once] [--json]`: the cluster's engines and their work,
 * live, in a terminal (an HPC login node has no JupyterLab). It reads the controller's monitor
 * stream (client/monitor-feed.ts) and redraws in place (log-update) a table (cli-table3); `q` or
 * Ctrl-C quits. `--once`, or output that is not a terminal, prints one reading and exits, for
 * scripts. `--json` prints every reading as one line of JSON until killed (with `--once`, one):
 * the JupyterLab dashboard's server side relays these lines to the browser.
 */
import * as os from "node:os";
import { parseArgs } from "node:util";
import * as readline from "node:readline";
import Table from "cli-table3";
import { connectionFile, isAlive, readConnectionFile } from "../protocol/connection";
import type { MonitorUpdate } from "../protocol/messages";
import { MonitorHistory, etaSeconds } from "../client/monitor-history";
import { TsParallelError } from "../protocol/errors";
import { MonitorFeed } from "../client/monitor-feed";

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      profile: { type: "string", default: "default" },
      once: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      timeout: { type: "string", default: "10000" },
    },
  });
  const timeout = Number(values.timeout);
  if (!(timeout > 0)) throw new RangeError(`--timeout must be a positive number of ms; got ${values.timeout}`);
  const file = connectionFile("client", values.profile);
  const info = readConnectionFile(file);
  if (info.location === os.hostname() && !isAlive(info.controller_pid))
    throw new TsParallelError(
      `cluster ${values.profile} is not running (its controller, pid ${info.controller_pid}, has exited); start it with \`tsparallel cluster start -n 4 --profile ${values.profile}\``,
    );
  const feed = MonitorFeed.open(info);
  try {
    if (values.json) return await jsonLines(feed, timeout, values.once);
    if (values.once || !process.stdout.isTTY) {
      process.stdout.write(renderTop(await feed.next(timeout), values.profile, undefined) + "\n");
      return;
    }
    await live(feed, values.profile, timeout);
  } finally {
    feed.close();
  }
}

/** Readings as JSON lines; a controller silent for `timeout` ms ends it with its one-line error. */
async function jsonLines(feed: MonitorFeed, timeout: number, once: boolean): Promise<void> {
  do {
    const line = JSON.stringify(await feed.next(timeout)) + "\n";
    // A reader slower than the stream: wait for it rather than buffer readings without bound.
    if (!process.stdout.write(line)) await new Promise((resolve) => process.stdout.once("drain", resolve));
  } while (!once);
}

async function live(feed: MonitorFeed, profile: string, timeout: number): Promise<void> {
  // log-update is an ES module: loaded when needed (Node loads it from CommonJS too).
  const { default: logUpdate } = await import("log-update");
  const first = await feed.next(timeout);
  const history = new MonitorHistory();
  const rate = (u: MonitorUpdate): number => history.add(u).rate.tasksPerSecond;
  logUpdate(renderTop(first, profile, rate(first)));
  readline.emitKeypressEvents(process.stdin);
  process.stdin.setRawMode?.(true);
  const quit = new Promise<void>((resolve) =>
    process.stdin.on("keypress", (_s: string, key: { name?: string; ctrl?: boolean } | undefined) => {
      if (key?.name === "q" || (key?.ctrl && key.name === "c")) resolve();
    }),
  );
  const draw = (async () => {
    for await (const update of feed) logUpdate(renderTop(update, profile, rate(update)));
  })();
  await Promise.race([quit, draw]);
  logUpdate.done();
  process.stdin.setRawMode?.(false);
  process.stdin.pause();
}

/** One reading as text: a header line and one row per engine. Pure, for the tests. */
export function renderTop(u: MonitorUpdate, profile: string, tasksPerSecond: number | undefined): string {
  const busy = u.engines.filter((e) => e.state === "busy").length;
  const failed = u.tasks.filter((t) => t.status === "failed");
  const header = [
    `tsparallel cluster ${profile} · ${u.engines.length} engines (${busy} busy)`,
    `queued ${u.queued} · unassigned ${u.unassigned}`,
    ...(tasksPerSecond === undefined ? [] : [`${tasksPerSecond.toFixed(0)} tasks/s`]),
    new Date(u.at).toLocaleTimeString(),
  ].join(" · ");
  const table = new Table({
    head: ["ID", "HOST", "PID", "SET", "STATE", "CPU %", "RSS", "QUEUED", "DONE", "FAILED", "RUNNING"],
    style: { head: [], border: [], compact: true },
  });
  const now = Date.parse(u.at);
  for (const e of u.engines) {
    const running = e.running
      ? `${e.running.label} (${formatSeconds((now - Date.parse(e.running.since)) / 1000)})`
      : "";
    table.push([
      e.id,
      e.hostname,
      e.pid,
      e.engine_set ?? "",
      e.state,
      e.cpu === null ? "-" : e.cpu.toFixed(0),
      e.rss === null ? "-" : `${(e.rss / 2 ** 20).toFixed(0)} MB`,
      e.queued,
      e.done,
      e.failed,
      running,
    ]);
  }
  const lastError = failed.at(-1);
  const progress = u.progress.map((p) => {
    const ended = p.done + p.failed;
    const eta = etaSeconds(p, now);
    return [
      `${p.label} #${p.id} (${p.client}): ${ended}/${p.size}`,
      ...(p.failed > 0 ? [`${p.failed} failed`] : []),
      p.finished ? "done" : eta === undefined ? "" : `ETA ${formatSeconds(eta)}`,
    ]
      .filter(Boolean)
      .join(" · ");
  });
  return [
    header,
    table.toString(),
    ...progress,
    ...(u.progress_more > 0 ? [`…and ${u.progress_more} more results in flight`] : []),
    ...(lastError ? [`last failure: ${lastError.msg_id} on engine ${lastError.engine_id}: ${lastError.error}`] : []),
  ].join("\n");
}

function formatSeconds(s: number): string {
  if (!(s >= 0)) return "0s";
  return s < 60 ? `${s.toFixed(1)}s` : `${Math.floor(s / 60)}m${Math.floor(s % 60)}s`;
}
