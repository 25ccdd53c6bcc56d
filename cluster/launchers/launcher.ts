/**
 * What every engine launcher is, and the few things they share: finding their command, quoting
 * for a remote shell, and the command line of one engine.
 *
 * A launcher starts one engine set (n engines) and can stop and signal it. It never talks to the
 * engines: they register with the controller by themselves, tagged with the set's id
 * (`TSPARALLEL_ENGINE_SET`), which is how the controller counts a set's engines.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { EngineKind } from "../../protocol/messages";
import type { ConnectionInfo } from "../../protocol/connection";
import { TsParallelError } from "../../protocol/errors";
import { CLI_PATH } from "../../paths";
import { nodeFlags } from "../node-flags";
import { controlCharacter, splitCommand } from "../../protocol/command-line";

export interface LaunchContext {
  /** The set's id, given to its engines. */
  setId: string;
  profile: string;
  profileDir: string;
  /** Working directory of local engines and of the launcher's commands. */
  cwd: string;
  /** Extra environment for the launcher's commands (e.g. the caller's SLURM_CONF). */
  env?: Record<string, string>;
  log(line: string): void;
  /** The launcher saw its engines end (the job, or every ssh session): `how` says why. */
  onExit(how: string): void;
}

export interface EngineLauncher {
  readonly kind: EngineKind;
  /** Where the engines' own output (and the launcher's errors) go, for error messages and `cluster list`. */
  readonly output: string;
  /** The batch system's job id, once submitted. */
  readonly jobId?: string | undefined;
  /** Starts `n` engines; rejects with the scheduler's own message when it refuses. */
  start(n: number, info: ConnectionInfo): Promise<void>;
  /** Ends every engine of the set; resolves when the launcher saw them end (or gave up waiting). */
  stop(): Promise<void>;
  signal(signal: NodeJS.Signals): Promise<void>;
}

// The launchers' callers split command lines as the client's ssh tunnel does.
export { controlCharacter, splitCommand };

/** A word for a POSIX shell: single-quoted unless it is plainly safe. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export function onPath(command: string, env: NodeJS.ProcessEnv = process.env): boolean {
  if (command.includes("/")) return fs.existsSync(command);
  return (env.PATH ?? "").split(path.delimiter).some((d) => d && fs.existsSync(path.join(d, command)));
}

/**
 * The words of `line`; throws one line when its command is not on PATH, naming the Debian package
 * that provides it (`debianPackage`) and the flag that picks another.
 */
export function requireCommand(
  line: string,
  flag?: string,
  env: NodeJS.ProcessEnv = process.env,
  debianPackage?: string,
): string[] {
  const words = splitCommand(line);
  const command = words[0];
  if (!command) throw new TsParallelError(`${flag ?? "the command"} is empty: give a command`);
  if (!onPath(command, env)) {
    const pkg = debianPackage;
    const orPass = flag ? ` or pass ${flag} CMD` : "";
    throw new TsParallelError(
      pkg
        ? `${command} not found: install it (on Debian: sudo apt-get install ${pkg})${orPass}`
        : `${command} not found on PATH: install it${orPass}`,
    );
  }
  return words;
}

/** The command line that runs one engine: this Node and this CLI unless the user gave another. */
export function engineCommand(custom: string | undefined): string[] {
  return custom ? splitCommand(custom) : [process.execPath, ...nodeFlags(), CLI_PATH, "engine"];
}

/** The environment an engine of the set gets, besides the connection info. */
export function engineEnv(ctx: LaunchContext): Record<string, string> {
  return { TSPARALLEL_ENGINE_SET: ctx.setId };
}

/** The last non-empty line of a program's output: the reason it gives when it fails. */
export function lastLine(text: string): string {
  return (
    text
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l.length > 0)
      .pop() ?? ""
  );
}
