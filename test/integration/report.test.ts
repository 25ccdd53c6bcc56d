/**
 * `rc.performanceReport`: a 200-task run saved as one HTML file, opened in headless Chromium with
 * every network request refused: no request, no console error, the task stream drawn, and its
 * JSON block holding the 200 tasks as the controller's records have them. Screenshot in
 * test-output/report.png.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, test } from "node:test";
import { type Browser, chromium } from "playwright-core";
import { startCluster } from "../helpers/cluster";
import { PACKAGE_ROOT } from "../../paths";
import type { ReportTask } from "../../client/report";

const OUTPUT = path.join(PACKAGE_ROOT, "test-output");
let browser: Browser | undefined;
after(async () => browser?.close());

test("a 200-task run's report opens offline, with no console error, and its JSON matches rc.dbQuery", async () => {
  const t = await startCluster(4);
  try {
    const rc = t.rc;
    const since = new Date();
    const lview = rc.loadBalancedView();
    const squares = lview.with({ label: "square" }).map(
      (x: number) => x * x,
      Array.from({ length: 190 }, (_, i) => i),
    );
    assert.equal((await squares).length, 190);
    const odd = lview.with({ label: "odd <b>label</b>" }).map(
      function check(x: number) {
        if (x % 3 === 0) throw new RangeError(`${x} is a multiple of 3`);
        return x;
      },
      Array.from({ length: 10 }, (_, i) => i),
    );
    await odd.wait();
    fs.mkdirSync(OUTPUT, { recursive: true });
    const file = path.join(OUTPUT, "report.html");
    const written = await rc.performanceReport(file, { since });
    assert.deepEqual(written, { file, tasks: 200 });
    const html = fs.readFileSync(file, "utf8");
    const json = /<script type="application\/json" id="tsparallel-tasks">([^<]*)<\/script>/.exec(html)?.[1];
    assert.ok(json, "the JSON block is there");
    const tasks = JSON.parse(json) as ReportTask[];
    assert.equal(tasks.length, 200);
    const ids = [...squares.msgIds, ...odd.msgIds];
    assert.deepEqual(new Set(tasks.map((x) => x.msgId)), new Set(ids));
    const records = await rc.dbQuery({ msgId: { $in: ids } }, ["msgId", "engineId", "started", "completed", "state"]);
    const byId = new Map(records.map((r) => [r.msgId as string, r]));
    for (const task of tasks) {
      const r = byId.get(task.msgId)!;
      assert.deepEqual(
        [task.engineId, task.started, task.completed, task.status],
        [r.engineId, r.started, r.completed, r.state],
        task.msgId,
      );
      assert.equal(task.label, squares.msgIds.includes(task.msgId) ? "square" : "odd <b>label</b>");
    }
    assert.equal(tasks.filter((x) => x.status === "failed").length, 4, "0, 3, 6 and 9 failed");
    assert.ok(!html.includes("<b>label</b>"), "labels are escaped");
    assert.ok(!/<script(?![^>]*application\/json)/.test(html), "no script that runs");

    browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
    });
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const requests: string[] = [];
    const problems: string[] = [];
    await page.route("**/*", (route) => {
      const url = route.request().url();
      if (url.startsWith("file:")) return route.continue();
      requests.push(url);
      return route.abort();
    });
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") problems.push(m.text());
    });
    page.on("pageerror", (e) => problems.push(String(e)));
    await page.goto(`file://${file}`);
    assert.equal(await page.locator("#task-stream svg").count(), 1, "the task stream is drawn");
    assert.equal(await page.locator("#engines tr").count(), 5, "a row per engine and the header");
    assert.equal(await page.locator("#slowest tr").count(), 11, "the ten slowest and the header");
    assert.match(
      (await page.locator("#summary").innerText()).replace(/\s+/g, " "),
      /tasks 200 failed or aborted 4 engines 4/,
    );
    await page.screenshot({ path: path.join(OUTPUT, "report.png"), fullPage: true });
    assert.deepEqual(requests, [], "no request left the file");
    assert.deepEqual(problems, [], "no console error or warning");
  } finally {
    await t.stop();
  }
});
