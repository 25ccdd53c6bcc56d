/**
 * The flags of `%%px`, `%pxresult` and `%pxconfig`, parsed with node:util's parseArgs (strict:
 * an unknown flag is a usage error naming it). Pure: words in, options or UsageError out.
 */
import { type ParseArgsConfig, parseArgs } from "node:util";
import { TsParallelError } from "../protocol/errors";
import { splitCommand } from "../protocol/command-line";
import type { GroupBy } from "../client/render";
import { nonInteractive } from "../client/progress";

export type { GroupBy };

/** The persistent defaults `%pxconfig` changes, and what `%%px` flags override for one cell. */
export interface PxOptions {
  /** A target spec (`all`, `2`, `1,3`, `::2`); undefined means the active view's own targets. */
  targets: string | undefined;
  block: boolean;
  stream: boolean;
  /** Seconds a blocking %px waits before it shows live progress (-1: never). */
  progressAfter: number;
  verbose: boolean;
  groupBy: GroupBy;
  signal: string;
}

export interface CellFlags {
  options: PxOptions;
  /** Also run the cell in the kernel, after submitting it. */
  local: boolean;
  /** Store the AsyncResult under this name in the notebook. */
  out: string | undefined;
}

/** A magic's flags or arguments are wrong; the message is the usage line. */
export class UsageError extends TsParallelError {
  override name = "UsageError";
  override readonly code = "ERR_USAGE";
}

/** Defaults; TSPARALLEL_NONINTERACTIVE (read when the kernel starts) turns streaming and progress off. */
export const DEFAULT_PX: PxOptions = {
  targets: undefined,
  block: true,
  stream: !nonInteractive(),
  progressAfter: nonInteractive() ? -1 : 2,
  verbose: false,
  groupBy: "type",
  signal: "SIGINT",
};

const EXEC = {
  targets: { type: "string", short: "t" },
  block: { type: "boolean", short: "b" },
  noblock: { type: "boolean", short: "a" },
  stream: { type: "boolean" },
  "no-stream": { type: "boolean" },
  verbose: { type: "boolean" },
  "no-verbose": { type: "boolean" },
  "progress-after": { type: "string" },
  "signal-on-interrupt": { type: "string" },
} as const;
const OUTPUT = {
  "group-outputs": { type: "string" },
  e: { type: "boolean" },
  r: { type: "boolean" },
  out: { type: "string", short: "o" },
  "save-name": { type: "string" },
} as const;
const CELL = { ...EXEC, ...OUTPUT, local: { type: "boolean" } } as const;

const HELP: Record<string, string> = {
  "%%px":
    "-t/--targets T, -b/--block, -a/--noblock, --local, --group-outputs engine|order|type, -e, -r, --stream/--no-stream, -o/--out NAME, --progress-after S, --verbose, --signal-on-interrupt SIG",
  "%pxconfig":
    "-t/--targets T, -b/--block, -a/--noblock, --stream/--no-stream, --progress-after S, --verbose/--no-verbose, --signal-on-interrupt SIG",
  "%pxresult": "--group-outputs engine|order|type, -e, -r, -o/--out NAME",
  "%pxreport": "FILE, --since DATE",
};

/** `%pxreport FILE [--since DATE]`: where the performance report goes, and from when. */
export function parseReportArgs(args: string): { file: string; since: string | undefined } {
  const [file, ...rest] = splitCommand(args, "the line");
  if (!file || file.startsWith("-"))
    throw new UsageError(
      `%pxreport: give the report's file first, as in %pxreport report.html (options: ${HELP["%pxreport"]})`,
    );
  const v = parseWords("%pxreport", rest, { since: { type: "string" } });
  const since = typeof v.since === "string" ? v.since : undefined;
  if (since !== undefined && Number.isNaN(Date.parse(since)))
    throw new UsageError(
      `%pxreport: --since ${JSON.stringify(since)} is not a date; give one such as 2026-12-03T10:00`,
    );
  return { file, since };
}

/** `%%px` flags over the current defaults; the defaults themselves are not changed. */
export function parseCellFlags(args: string, defaults: PxOptions): CellFlags {
  const v = parse("%%px", args, CELL);
  return {
    options: applyExec(applyOutput({ ...defaults }, v, "%%px"), v, "%%px"),
    local: v.local === true,
    out: outName(v, "%%px"),
  };
}

/** `%pxconfig` flags: the new persistent defaults. */
export function parseConfigFlags(args: string, defaults: PxOptions): PxOptions {
  return applyExec({ ...defaults }, parse("%pxconfig", args, EXEC), "%pxconfig");
}

/** `%pxresult` flags. */
export function parseResultFlags(args: string, defaults: PxOptions): { groupBy: GroupBy; out: string | undefined } {
  const v = parse("%pxresult", args, OUTPUT);
  return { groupBy: applyOutput({ ...defaults }, v, "%pxresult").groupBy, out: outName(v, "%pxresult") };
}

type Values = Record<string, string | boolean | undefined>;

function parse(magic: string, args: string, options: NonNullable<ParseArgsConfig["options"]>): Values {
  try {
    return parseWords(magic, splitCommand(args, "the line"), options);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`${magic}: ${(e as Error).message}`);
  }
}

function parseWords(magic: string, words: string[], options: NonNullable<ParseArgsConfig["options"]>): Values {
  try {
    const { values, positionals } = parseArgs({
      args: words,
      options,
      strict: true,
      allowPositionals: true,
    });
    if (positionals.length > 0)
      throw new UsageError(`${magic}: unexpected argument ${JSON.stringify(positionals[0])} (options: ${HELP[magic]})`);
    return values as Values;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    const what = /'([^']+)'/.exec((e as Error).message)?.[1];
    const code = (e as { code?: string }).code;
    const problem =
      code === "ERR_PARSE_ARGS_UNKNOWN_OPTION"
        ? `unknown option ${what}`
        : code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE"
          ? `option ${what?.replace(/ <value>$/, "").replace(", ", "/") ?? ""} needs a value`
          : (e as Error).message.split("\n")[0];
    throw new UsageError(`${magic}: ${problem} (options: ${HELP[magic]})`);
  }
}

function applyExec(o: PxOptions, v: Values, magic: string): PxOptions {
  if (v.block && v.noblock) throw new UsageError(`${magic}: --block and --noblock contradict each other; give one`);
  if (typeof v.targets === "string") o.targets = v.targets;
  if (v.block) o.block = true;
  if (v.noblock) o.block = false;
  if (v.stream) o.stream = true;
  if (v["no-stream"]) o.stream = false;
  if (v.verbose) o.verbose = true;
  if (v["no-verbose"]) o.verbose = false;
  if (typeof v["progress-after"] === "string") {
    const s = Number(v["progress-after"]);
    if (!Number.isFinite(s))
      throw new UsageError(
        `${magic}: --progress-after takes seconds (-1 for never, 0 for at once); got ${JSON.stringify(v["progress-after"])}`,
      );
    o.progressAfter = s;
  }
  if (typeof v["signal-on-interrupt"] === "string") o.signal = parseSignal(v["signal-on-interrupt"], magic);
  return o;
}

function applyOutput(o: PxOptions, v: Values, magic: string): PxOptions {
  const g = v["group-outputs"];
  if (typeof g === "string") {
    if (g !== "type" && g !== "engine" && g !== "order")
      throw new UsageError(`${magic}: --group-outputs takes engine, order or type; got ${JSON.stringify(g)}`);
    o.groupBy = g;
  }
  if (v.e) o.groupBy = "engine";
  if (v.r) o.groupBy = "order";
  return o;
}

function outName(v: Values, magic: string): string | undefined {
  const name = (v.out ?? v["save-name"]) as string | undefined;
  if (name !== undefined && !/^[A-Za-z_$][\w$]*$/.test(name))
    throw new UsageError(`${magic}: -o/--out needs a variable name; got ${JSON.stringify(name)}`);
  return name;
}

const SIGNALS: Record<string, string> = { "2": "SIGINT", "9": "SIGKILL", "15": "SIGTERM", "0": "0" };
function parseSignal(text: string, magic: string): string {
  const s = SIGNALS[text] ?? (text.startsWith("SIG") ? text : `SIG${text}`).toUpperCase();
  if (!/^(SIG[A-Z0-9]+|0)$/.test(s))
    throw new UsageError(
      `${magic}: --signal-on-interrupt takes a signal such as SIGINT or 9; got ${JSON.stringify(text)}`,
    );
  return s;
}
