/**
 * Runs every test file with node:test (Node 20's --test takes no globs, so they are listed here).
 * Unit tests first; integration tests run one file at a time (`--test-concurrency=1`) because
 * each starts real processes on a 2-core machine.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { TEST_REQUIREMENTS, ensure } from "../cluster/setup";

function files(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((d) => {
      const p = path.join(dir, d.name);
      return d.isDirectory() ? files(p) : d.name.endsWith(".test.js") ? [p] : [];
    })
    .sort();
}

// A fresh machine: what the tests drive (Jupyter, chromium, the schedulers) is installed when we
// are root with apt-get, or named in one line to install.
try {
  ensure(TEST_REQUIREMENTS, "npm test");
} catch (e) {
  console.error(`tsparallel: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}

const root = __dirname;
const only = process.argv.slice(2);
const all = ["unit", "integration", "kernel", "notebooks"].flatMap((d) => files(path.join(root, d)));
const selected = only.length > 0 ? all.filter((f) => only.some((o) => f.includes(o))) : all;
const result = spawnSync(process.execPath, ["--test", "--test-concurrency=1", "--test-reporter=spec", ...selected], {
  stdio: "inherit",
});
process.exitCode = result.status ?? 1;
