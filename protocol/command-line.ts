/**
 * Command lines as words, split as a POSIX shell would, without running one. Here, in the layer
 * everyone stands on, because the client (its ssh tunnel), the launchers and the magics all split
 * them and may not import one another.
 */
import { parse as parseShell } from "shell-quote";
import { TsParallelError } from "./errors";

/** The first control character in `text` (a tab is a space here), or undefined. */
export function controlCharacter(text: string): string | undefined {
  for (const c of text) {
    const code = c.charCodeAt(0);
    if ((code < 0x20 && c !== "\t") || code === 0x7f) return c;
  }
  return undefined;
}

/**
 * A command line as words, split as a POSIX shell would, without running one:
 * "ssh -F 'my config'" → ["ssh", "-F", "my config"], `--x="a b"` → one word `--x=a b`.
 * `$VAR` and globs stay literal (no shell expands them: the words go to spawn or a job
 * script's directives). Control characters (a newline would become a line of a job script) and
 * shell operators are refused in one line naming `what`.
 */
export function splitCommand(line: string, what = "the command line"): string[] {
  const control = controlCharacter(line);
  if (control !== undefined)
    throw new TsParallelError(
      `${what} holds a control character (${JSON.stringify(control)}): give it on one line, without them`,
    );
  return parseShell(line, (name) => `$${name}`).map((w) => {
    if (typeof w === "string") return w;
    if ("op" in w && w.op === "glob") return w.pattern;
    const shown = "op" in w ? w.op : `#${w.comment}`;
    throw new TsParallelError(
      `${what} holds the shell syntax ${JSON.stringify(shown)}: quote it if it is meant literally`,
    );
  });
}
