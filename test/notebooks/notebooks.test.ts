/**
 * The five tutorial notebooks, executed headless through the tsparallel kernel by Debian's
 * nbconvert (nbclient) against the real clusters they start, with their key outputs checked;
 * then the timeline and a Vega-Lite chart are rendered to PNG in headless chromium.
 */
import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, test } from "node:test";
import { chromium } from "playwright-core";
import { testRoot } from "../helpers/cluster";
import { PYTHON, installKernel } from "../helpers/jupyter";
import { slurmAvailable, startSlurm } from "../helpers/slurm";
import { PACKAGE_ROOT } from "../../paths";

const ROOT = PACKAGE_ROOT;
const OUTPUT = path.join(ROOT, "test-output");
fs.mkdirSync(OUTPUT, { recursive: true });

interface Output {
  output_type: string;
  text?: string | string[];
  data?: Record<string, string | string[]>;
  traceback?: string[];
}
interface Cell {
  cell_type: string;
  source: string | string[];
  outputs?: Output[];
}

const join = (t: string | string[] | undefined): string => (Array.isArray(t) ? t.join("") : (t ?? ""));

/** Runs a notebook with nbconvert (kernel cwd: notebooks/) and returns its executed cells. */
function execute(name: string): Promise<Cell[]> {
  installKernel();
  const out = path.join(testRoot, `${name}.out.ipynb`);
  const args = [
    "-Xfrozen_modules=off",
    "-m",
    "nbconvert",
    "--to",
    "notebook",
    "--execute",
    path.join(ROOT, "notebooks", `${name}.ipynb`),
    "--output",
    out,
    "--ExecutePreprocessor.timeout=180",
  ];
  return new Promise((resolve, reject) => {
    execFile(
      PYTHON,
      args,
      { env: { ...process.env, TSP_NOTEBOOK_SCALE: "0.25" }, timeout: 300_000, maxBuffer: 32 << 20 },
      (err, _stdout, stderr) => {
        if (err) return reject(new Error(`${name} failed:\n${stderr.slice(-4000)}`));
        resolve((JSON.parse(fs.readFileSync(out, "utf8")) as { cells: Cell[] }).cells);
      },
    );
  });
}

function texts(cells: Cell[]): string {
  const outputs = cells.flatMap((c) => c.outputs ?? []);
  const errors = outputs.filter((o) => o.output_type === "error");
  assert.equal(errors.length, 0, `error outputs: ${errors.map((e) => join(e.traceback)).join("\n")}`);
  return outputs.map((o) => join(o.text) + join(o.data?.["text/plain"])).join("\n");
}

test("000 load balancing: maps, chunksize, arrival order, progress, the nested-loop exercise", async () => {
  const t = texts(await execute("000_load_balancing"));
  assert.match(t, /\[ 100, 200, 300, 400 \]/, "results in finishing order");
  assert.match(t, /4 tasks of 4 items/);
  assert.match(t, /24\/24 tasks finished after/);
  assert.match(t, /12 products, same as the serial loop/);
  assert.match(t, /each engine's id: \[0,1,2,3\]/, "scatter with flatten: one value per engine");
  assert.match(
    t,
    /'engine 0 at [\d.]+ s',\s+'engine 1 at [\d.]+ s',\s+'engine 2 at [\d.]+ s',\s+'engine 3 at [\d.]+ s'/,
  );
  assert.match(t, /200 results, sum of squares \d+/, "imap over a million-item generator, stopped early");
  assert.match(t, /\{ step: 3, loss: 0\.333\d* \},\s+\{ step: 6, loss: 0\.1666\d* \}/, "publishData");
});

test("001 introduction: views, data movement, magics with [stdout:N] from every engine", async () => {
  const t = texts(await execute("001_introduction"));
  for (const id of [0, 1, 2, 3]) assert.match(t, new RegExp(`\\[stdout:${id}\\] hello from pid \\d+`));
  assert.match(t, /Out\[0:\d+\]: \[ 1, 4, 9 \]/);
  assert.match(t, /Out\[3:\d+\]: 'slept on \d+'/, "%pxresult after --noblock");
  assert.match(t, /\[ 10, 40, 90, 160 \]/, "parallel map");
  assert.match(t, /7 items by engine: 2\/2\/2\/1/, "one contiguous task per engine");
  assert.match(t, /\[ 13, -1, 13, -1 \]/, "execute on even and odd engines");
});

let chartsOf002: string[] = [];
test("002 more on views: on 12 engines the load-balanced speedup beats the direct one", async () => {
  const cells = await execute("002_more_on_views");
  const t = texts(cells);
  const m = /Speedup for load-balanced and direct view \(ideal: 12x\): ([\d.]+) and ([\d.]+)/.exec(t);
  assert.ok(m, t);
  assert.ok(Number(m[1]) > Number(m[2]), `load-balanced ${m[1]} should beat direct ${m[2]}`);
  assert.match(t, /146\/146 tasks finished/);
  chartsOf002 = cells
    .flatMap((c) => c.outputs ?? [])
    .map((o) => join(o.data?.["image/svg+xml"]))
    .filter(Boolean);
  assert.equal(chartsOf002.length, 3, "two timelines and a histogram");
  assert.ok(
    cells.some((c) => (c.outputs ?? []).some((o) => join(o.data?.["text/html"]).includes("<table"))),
    "per-engine table as HTML",
  );
});

test("003 basics: apply, remote errors, Reference, scatter/gather round trip", async () => {
  const t = texts(await execute("003_basics"));
  for (const id of [0, 1, 2, 3]) assert.match(t, new RegExp(`\\[stdout:${id}\\] engine pid \\d+`), "%px output");
  assert.match(t, /longrun\(2e6\) on all 4 engines at once: \d+ ms/);
  assert.match(t, /\[1:apply\] ReferenceError: missing is not defined/);
  assert.match(t, /\[ 105, 105, 105, 105 \]/);
  assert.match(t, /1000000 values; round trip equal: true/);
});

test("004 direct vs load-balanced: scatter, %px, gather, chunksize table", async () => {
  const cells = await execute("004_direct_vs_loadbalanced");
  const t = texts(cells);
  assert.match(t, /5000 sums; all equal to the local ones: true/);
  assert.match(t, /\[ \[ 40, 54, 70, 88 \], \[ 30, 30, 30, 30 \] \]/);
  assert.ok(
    cells.some((c) => (c.outputs ?? []).some((o) => join(o.data?.["text/html"]).includes("<th>chunksize</th>"))),
  );
});

test("005 beyond this machine: a Slurm engine set added to a running cluster, listed, used and stopped", async (t) => {
  const missing = slurmAvailable();
  if (missing) return t.skip(missing);
  const slurm = await startSlurm(path.join(testRoot, "slurm005"));
  const saved = process.env.SLURM_CONF;
  process.env.SLURM_CONF = slurm.conf; // the notebook's kernel, and its cluster, inherit it
  try {
    const t005 = texts(await execute("005_beyond_this_machine"));
    assert.match(t005, /added engine set slurm-1; the cluster now has 4 engines: \[0, 1, 2, 3\]/);
    assert.match(t005, /slurm-1: slurm, running, 2 of 2 registered, Slurm job \d+/);
    assert.match(
      t005,
      /engine 0: local\nengine 1: local\nengine 2: Slurm job \d+, task [01]\nengine 3: Slurm job \d+, task [01]/,
    );
    assert.match(t005, /16 squares on 4 engines, sum 1240/);
    assert.match(t005, /after stopEngines: 2 engines; slurm-1 is stopped/);
    assert.deepEqual(slurm.jobs(), [], "the job was cancelled");
  } finally {
    if (saved === undefined) delete process.env.SLURM_CONF;
    else process.env.SLURM_CONF = saved;
    await slurm.stop();
  }
});

/** Runs in the page: draws the SVG on a canvas and counts the distinct colours of its pixels. */
const COUNT_COLOURS = `(async () => {
  const el = document.querySelector("svg");
  const img = new Image();
  img.src = "data:image/svg+xml;base64," + btoa(unescape(encodeURIComponent(new XMLSerializer().serializeToString(el))));
  await img.decode();
  const canvas = Object.assign(document.createElement("canvas"), { width: img.width, height: img.height });
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  const seen = new Set();
  for (let k = 0; k < px.length; k += 4) seen.add((px[k] << 16) | (px[k + 1] << 8) | px[k + 2]);
  return seen.size;
})()`;

test("the timeline and the histogram render to PNG with several colours", async (t) => {
  if (chartsOf002.length === 0) return t.skip("002 did not run");
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu"],
  });
  after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 900, height: 700 } });
  for (const [i, name] of [
    [0, "timeline-load-balanced"],
    [2, "gamma-histogram"],
  ] as const) {
    await page.setContent(`<html><body style="margin:0;background:white">${chartsOf002[i]}</body></html>`);
    const svg = page.locator("svg").first();
    const file = path.join(OUTPUT, `${name}.png`);
    await svg.screenshot({ path: file });
    const colours = await page.evaluate<number>(COUNT_COLOURS);
    assert.ok(fs.statSync(file).size > 5_000, `${name}.png is ${fs.statSync(file).size} bytes`);
    assert.ok(colours >= (name.startsWith("timeline") ? 20 : 3), `${name} has ${colours} colours`);
  }
});
