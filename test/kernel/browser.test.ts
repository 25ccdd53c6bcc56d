/**
 * The main job end to end: `tsparallel start` (what `npm start` runs) installs the kernelspec,
 * starts a cluster and Debian's Jupyter Notebook; headless chromium types a `%%px` cell with
 * Shift+Enter and reads `[stdout:N]` from the page; Ctrl-C (SIGINT) stops everything.
 */
import { strict as assert } from "node:assert";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, test } from "node:test";
import { chromium } from "playwright-core";
import { isAlive, readConnectionFile, connectionFile } from "../../protocol/connection";
import { killQuietly, testRoot, until } from "../helpers/cluster";
import { CLI_PATH, PACKAGE_ROOT } from "../../paths";

const ROOT = PACKAGE_ROOT;
const OUTPUT = path.join(ROOT, "test-output");

test("tsparallel start: kernelspec, cluster and Notebook; a %%px cell typed in chromium streams [stdout:N]", async () => {
  const dir = path.join(testRoot, "browser-notebooks");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, "typed.ipynb"),
    JSON.stringify({
      cells: [],
      metadata: { kernelspec: { name: "tsparallel", display_name: "TypeScript (tsparallel)", language: "typescript" } },
      nbformat: 4,
      nbformat_minor: 5,
    }),
  );
  const port = 20000 + (process.pid % 20000);
  const env = {
    ...process.env,
    JUPYTER_DATA_DIR: path.join(testRoot, "start-data"),
    JUPYTER_PATH: "",
    TSPARALLEL_DIR: path.join(testRoot, "start-cluster"),
  };
  const start: ChildProcess = spawn(
    process.execPath,
    [CLI_PATH, "start", "-n", "2", "--port", String(port), "--dir", dir],
    { env, stdio: ["ignore", "pipe", "pipe"] },
  );
  after(() => killQuietly(start.pid!));
  let log = "";
  start.stdout!.on("data", (c: Buffer) => (log += c.toString()));
  start.stderr!.on("data", (c: Buffer) => (log += c.toString()));
  await until(() => /Jupyter Notebook is at (\S+)/.test(log), 60_000, `the Notebook URL in:\n${log}`);
  const url = /Jupyter Notebook is at (\S+)/.exec(log)![1]!;
  const token = new URL(url).searchParams.get("token")!;
  const specs = (await (await fetch(`http://127.0.0.1:${port}/api/kernelspecs?token=${token}`)).json()) as {
    kernelspecs: Record<string, unknown>;
  };
  assert.ok("tsparallel" in specs.kernelspecs, "kernelspec installed");
  // The tutorials are signed, so their saved charts display without a manual "Trust" step.
  const check = spawnSync(
    "/usr/bin/python3",
    [
      "-c",
      "import sys, nbformat\nfrom nbformat.sign import NotebookNotary\nprint(all(NotebookNotary().check_signature(nbformat.read(p, 4)) for p in sys.argv[1:]))",
      ...fs
        .readdirSync(path.join(ROOT, "notebooks"))
        .filter((f) => f.endsWith(".ipynb"))
        .map((f) => path.join(ROOT, "notebooks", f)),
    ],
    { env, encoding: "utf8" },
  );
  assert.equal(check.stdout.trim(), "True", `tutorials not trusted: ${check.stderr}`);
  const controllerPid = readConnectionFile(
    connectionFile("client", "default").replace(process.env.TSPARALLEL_DIR!, env.TSPARALLEL_DIR),
  ).controller_pid;

  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
    await page.goto(`http://127.0.0.1:${port}/notebooks/typed.ipynb?token=${token}`);
    await page.waitForSelector("#kernel_indicator_icon.kernel_idle_icon", { timeout: 60_000 });
    const cell = page.locator(".cell.code_cell").nth(0);
    await cell.locator(".CodeMirror").click();
    await page.keyboard.insertText('%%px\nconst who: string = "engine";\nconsole.log(`${who} ${process.pid}`);');
    await page.keyboard.press("Shift+Enter");
    const output = cell.locator(".output_area");
    await until(
      async () =>
        /\[stdout:0\] engine \d+[^]*\[stdout:1\] engine \d+|\[stdout:1\] engine \d+[^]*\[stdout:0\] engine \d+/.test(
          (await output.allInnerTexts()).join("\n"),
        ),
      30_000,
      "[stdout:N] in the page",
    );
    fs.mkdirSync(OUTPUT, { recursive: true });
    await page.screenshot({ path: path.join(OUTPUT, "classic-notebook-px.png"), fullPage: true });
  } finally {
    await browser.close();
  }

  start.kill("SIGINT");
  await until(() => start.exitCode !== null, 20_000, "tsparallel start to exit after Ctrl-C");
  await until(() => !isAlive(controllerPid), 10_000, "the cluster to stop");
});
