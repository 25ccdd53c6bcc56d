/**
 * A JupyterLab 4 notebook page (lab/index.ts, built from npm's @jupyterlab/* packages) served by
 * Debian's Jupyter Server: headless chromium types a `%%px` cell with Shift+Enter and reads the
 * `[stdout:N]` lines from the page; a screenshot goes to test-output/.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, test } from "node:test";
import { chromium } from "playwright-core";
import { startCluster, testRoot, until } from "../helpers/cluster";
import { startJupyterServer } from "../helpers/jupyter-server";
import { buildLabPage } from "../helpers/lab";
import { PACKAGE_ROOT } from "../../paths";

const OUTPUT = path.join(PACKAGE_ROOT, "test-output");

test("JupyterLab 4 notebook page: a %%px cell typed in chromium streams [stdout:N]", async () => {
  const cluster = await startCluster(2, { profile: "default" });
  after(() => cluster.stop());
  const staticDir = path.join(testRoot, "lab-static");
  await buildLabPage(staticDir);
  const server = await startJupyterServer({ staticDir });
  after(() => server.stop());
  fs.writeFileSync(
    path.join(server.root, "lab-px.ipynb"),
    JSON.stringify({
      cells: [{ cell_type: "code", source: "", metadata: {}, outputs: [], execution_count: null }],
      metadata: { kernelspec: { name: "tsparallel", display_name: "TypeScript (tsparallel)", language: "typescript" } },
      nbformat: 4,
      nbformat_minor: 5,
    }),
  );

  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
  });
  after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${server.url}/static/lab/index.html?token=${server.token}&path=lab-px.ipynb`);
  await until(
    async () => {
      const body = page.locator("body");
      const failed = await body.getAttribute("data-error");
      if (failed) throw new Error(`the page failed: ${failed}`);
      return (await body.getAttribute("data-kernel-status")) === "idle";
    },
    60_000,
    `the kernel to be idle in the page (errors: ${errors.join("; ")})`,
  );
  await page.locator(".jp-CodeCell .cm-content").first().click();
  await page.keyboard.insertText('%%px\nconst who: string = "lab";\nconsole.log(`${who} ${process.pid}`);');
  await page.keyboard.press("Shift+Enter");
  const output = page.locator(".jp-CodeCell .jp-OutputArea").first();
  await until(
    async () => {
      const shown = (await output.allInnerTexts()).join("\n");
      return /\[stdout:0\] lab \d+/.test(shown) && /\[stdout:1\] lab \d+/.test(shown);
    },
    30_000,
    "[stdout:0] and [stdout:1] in the JupyterLab page",
  );
  assert.match(await page.locator(".jp-CodeCell .jp-InputPrompt").first().innerText(), /\[1\]/);
  fs.mkdirSync(OUTPUT, { recursive: true });
  await page.screenshot({ path: path.join(OUTPUT, "jupyterlab-px.png"), fullPage: true });
});
