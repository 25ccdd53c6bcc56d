/**
 * The tutorial notebooks, executed headless through the tsparallel kernel by Debian's
 * nbconvert (nbclient) against the real clusters they start, with their key outputs checked;
 * then the timeline and a Vega-Lite chart are rendered to PNG in headless chromium.
 */
import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, test } from "node:test";
import { chromium } from "playwright-core";
import { testRoot } from "../helpers/cluster";
import { type Cell, NOTEBOOKS, executeNotebook, tutorials } from "../helpers/notebooks";
import { slurmAvailable, startSlurm } from "../helpers/slurm";
import { type PrivateSshd, startSshd } from "../helpers/sshd";
import { PACKAGE_ROOT } from "../../paths";

const ROOT = PACKAGE_ROOT;
const OUTPUT = path.join(ROOT, "test-output");
fs.mkdirSync(OUTPUT, { recursive: true });

const join = (t: string | string[] | undefined): string => (Array.isArray(t) ? t.join("") : (t ?? ""));

/** Runs a notebook at a quarter of its scale (sleeps and loop sizes) and returns its executed cells. */
function execute(name: string): Promise<Cell[]> {
  return executeNotebook(name, path.join(testRoot, `${name}.out.ipynb`), { scale: 0.25 });
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
  assert.match(t, /engine 0: [\d.]+, load-balanced: [\d.]+, equal: true/, "norm on one engine and load-balanced");
  const rotation = [...t.matchAll(/task \d ran on engine (\d) \(pid \d+\)/g)].map((m) => Number(m[1]));
  assert.equal(rotation.length, 8);
  assert.deepEqual([...new Set(rotation)].sort(), [0, 1, 2, 3], "2 × 4 tasks rotate over every engine");
  assert.match(t, /8 msg ids before any result/);
  // sleepHere over 40 increasing times, then with chunksize 4: each group of 4 is one task (10 for
  // 40 items, below) on one engine, so its results arrive together. The printed arrival times
  // show that to a reader; the test checks the structure, not the clock.
  const engines = [...t.matchAll(/task \d+ on engine (\d): [\d.]+/g)].map((m) => Number(m[1]));
  assert.equal(engines.length, 80);
  for (let g = 40; g < 80; g += 4)
    assert.equal(new Set(engines.slice(g, g + 4)).size, 1, `chunked items ${g - 40}..${g - 37} ran on one engine`);
  assert.match(t, /10 tasks for 40 items; DirectView.map: 4 tasks for 6 items/);
  assert.match(t, /\[6,7,8,9,12,14,16,18,18,21,24,27\]/);
  assert.match(t, /same as the nested loop: true/);
  assert.match(t, /each engine's id: \[0,1,2,3\]/, "scatter with flatten: one value per engine");
  assert.match(
    t,
    /'engine 0 at [\d.]+ s',\s+'engine 1 at [\d.]+ s',\s+'engine 2 at [\d.]+ s',\s+'engine 3 at [\d.]+ s'/,
  );
  assert.match(t, /200 results, sum of squares \d+/, "imap over a million-item generator, stopped early");
  assert.match(t, /\{ step: 3, loss: 0\.333\d* \},\s+\{ step: 6, loss: 0\.1666\d* \}/, "publishData");
});

test("001 introduction: views, data movement, magics with [stdout:N] from every engine", async () => {
  const cells = await execute("001_introduction");
  const t = texts(cells);
  assert.match(t, /a million doublings: here [\d.]+ ms, on 4 engines [\d.]+ ms; same result: true/);
  for (const id of [0, 1, 2, 3]) assert.match(t, new RegExp(`\\[stdout:${id}\\] noise \\d+ \\d+ \\d+`));
  const onEngine0 = cells.find((c) => join(c.source).startsWith("%%px --targets 0"));
  assert.match(t, /Out\[0:\d+\]:/, "shown as engine 0's result");
  const chart = (onEngine0?.outputs ?? []).map((o) => join(o.data?.["image/svg+xml"])).find(Boolean);
  assert.match(chart ?? "", /^<svg/, "engine 0's chart");
  for (const id of [0, 1, 2, 3]) assert.match(t, new RegExp(`\\[stdout:${id}\\] hello from pid \\d+`));
  assert.match(t, /Out\[0:\d+\]: \[ 1, 4, 9 \]/);
  assert.match(t, /Out\[3:\d+\]: 'slept on \d+'/, "%pxresult after --noblock");
  assert.match(t, /\[ 10, 40, 90, 160 \]/, "parallel map");
  for (const id of [0, 1, 2, 3])
    assert.match(t, new RegExp(`\\[stdout:${id}\\] rank ${id}: my chunk adds up to \\d+, all of them to 120`), "comm");
  assert.match(t, /7 items by engine: 2\/2\/2\/1/, "one contiguous task per engine");
  assert.match(t, /\[ 13, -1, 13, -1 \]/, "execute on even and odd engines");
  assert.match(t, /client\.json \(mode 600\)/, "the connection file, private");
  assert.match(t, /a second client sees engines \[0,1,2,3\]/);
  assert.match(t, /\[ 40, 40, 40, 40 \]/, "pushed globals in apply");
  for (const i of [0, 1, 2, 3]) assert.match(t, new RegExp(`Hello world from ${i} out of 4!`));
  assert.match(t, /\[\[1,90\],\[1,90\],\[1,90\],\[1,90\]\]/);
  assert.match(t, /partial sums \[21,70,119,168\], global sum 378, mean 13\.5/);
  assert.match(t, /partial variance sums \[799\.75,113\.75,113\.75,799\.75\]/);
  assert.match(t, /\[\[0,1,2,3,4,5,6\],\[7,8,9,10,11,12,13\],\[14,15,16,17,18,19,20\],\[21,22,23,24,25,26,27\]\]/);
  assert.match(t, /30 items: 8 \(0\.\.7\), 8 \(8\.\.15\), 7 \(16\.\.22\), 7 \(23\.\.29\)/, "an uneven split");
  assert.match(t, /standard deviation 8\.0777/);
  assert.match(t, /ready at once: false\s+wait\(\): true/);
  assert.equal([...t.matchAll(/global sum 511984000/g)].length, 2, "parallel and serial sums");
  assert.match(t, /speedup [\d.]+x on 4 engines/);
  assert.match(t, /load-balanced: 3200 tasks, \d+ ms, sum 5118400/);
  assert.match(t, /direct {7}: 4 tasks, \d+ ms, sum 5118400/);
  assert.match(t, /chunksize 800: 4 tasks/);
  assert.equal([...t.matchAll(/run time: [\d.]+ ms; sum 19840/g)].length, 2);
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
  assert.equal(chartsOf002.length, 7, "two task timelines, three per-item timetables, two histograms");
  assert.match(t, /task 145 here: \d+ ms \(light\)\s+task 0 here: \d+ ms \(heavy\)/);
  assert.match(t, /engine 0 ran 12 heavy items of 12/, "the direct map gives engine 0 every heavy item");
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
  assert.match(t, /2 engines in rc\.view\("1:3"\); <DirectView \[0, 1, 2, 3\]> is a DirectView/);
  assert.match(t, /serial +\[ \d+, \d+, \d+, \d+ \]/);
  assert.match(t, /load-balanced \[ \d+, \d+, \d+, \d+ \]/);
  assert.match(t, /'LoadBalancedView'/);
  assert.match(t, /here: ReferenceError: myVarIn1 is not defined/, "a separate namespace here");
  assert.match(t, /engine 1: I am in 1/);
  assert.match(t, /engine 0: .*myVarIn1/, "engine 0 lacks engine 1's name");
  for (const i of [0, 1, 2, 3]) assert.match(t, new RegExp(`engine ${i}: 50000 values, first true`));
  assert.match(t, /local \d+ ms, on 4 engines \d+ ms/);
  assert.match(t, /same result: true/);
  assert.match(t, /serial [\d.]+ µs per map, load-balanced [\d.]+ ms/);
});

test("004 direct vs load-balanced: scatter, %px, gather, chunksize table", async () => {
  const cells = await execute("004_direct_vs_loadbalanced");
  const t = texts(cells);
  assert.match(t, /5000 sums; all equal to the local ones: true/);
  assert.match(t, /\[ \[ 40, 54, 70, 88 \], \[ 30, 30, 30, 30 \] \]/);
  assert.match(t, /\[ 'function', 'function', 'function', 'function' \]/, "require instead of sync_imports");
  assert.match(t, /submitted; no error yet, the notebook goes on\s+all done: true, successful: false/);
  assert.match(t, /asked for the results: .*RangeError: scenario out of range/);
  for (const n of [5000, 500, 50, 5]) assert.match(t, new RegExp(`${n}/${n} tasks finished`), "waitInteractive");
  assert.match(t, /load-balanced sums equal to the direct ones: true/);
  assert.ok(
    cells.some((c) => (c.outputs ?? []).some((o) => join(o.data?.["text/html"]).includes("<th>chunksize</th>"))),
  );
});

test("005 beyond this machine: a Slurm engine set added to a running cluster, listed, used and stopped", async (t) => {
  const missing = slurmAvailable();
  if (missing) return t.skip(missing);
  const slurm = await startSlurm(path.join(testRoot, "slurm005"));
  const saved = { ...process.env };
  let sshd: PrivateSshd | undefined;
  try {
    sshd = await startSshd(path.join(testRoot, "sshd005"), { alias: "nb-login" });
    // The notebook's kernel, and its cluster, inherit these.
    Object.assign(process.env, { SLURM_CONF: slurm.conf, TSP_SSH_HOST: "nb-login", TSP_SSH_CONFIG: sshd.config });
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
    assert.match(
      t005,
      /added mpi-2; MPI ranks by engine: \["-","-","[01]","[01]"\]/,
      "an MPI set beside the local one",
    );
    assert.match(t005, /after stopping the MPI set: 2 engines/);
    assert.match(t005, /through ssh to nb-login: \[42,42\]/, "a client tunnelled through sshServer");
  } finally {
    for (const name of ["SLURM_CONF", "TSP_SSH_HOST", "TSP_SSH_CONFIG"]) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
    await slurm.stop();
    await sshd?.stop();
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

test("006 engines together: a ring, a distributed mean and variance, a heat equation with halo exchange, split", async () => {
  const t = texts(await execute("006_engines_together"));
  assert.match(t, /sharedMemory: true/, "the four engines share this host's memory, and the communicator says so");
  for (const id of [0, 1, 2, 3])
    assert.match(t, new RegExp(`\\[stdout:${id}\\] rank ${id} of 4 got: hello from rank ${(id + 3) % 4}`));
  assert.match(t, /\[stdout:0\] n = 1000000, mean = 2\.9\d+|n = 1000000, mean = 3\.0\d+/);
  const diff = /meanDifference: ([\d.e+-]+),\s+varianceDifference: ([\d.e+-]+)/.exec(t);
  assert.ok(diff && Number(diff[1]) < 1e-9 && Number(diff[2]) < 1e-9, `distributed = serial: ${diff?.[0]}`);
  assert.match(t, /after 1000 steps the bar holds 0\.1\d+ of the 0\.12533 of heat it started with/);
  assert.match(t, /cells: 400,\s+largestDifference: 0,/, "the halo exchange gives the serial scheme's answer exactly");
  for (const id of [0, 1, 2, 3])
    assert.match(
      t,
      new RegExp(
        `world rank ${id}: rank ${id >> 1} of 2 among the ${id % 2 ? "odd" : "even"} ranks, whose world ranks add up to ${id % 2 ? 4 : 2}`,
      ),
    );
  assert.match(t, /allreduce of 8 MB on 4 engines: \d+ ms with comm, \d+ ms through the client \(sum 10\)/);
});

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
    [2, "timetable-direct-per-item"],
    [3, "gamma-histogram"],
  ] as const) {
    await page.setContent(`<html><body style="margin:0;background:white">${chartsOf002[i]}</body></html>`);
    const svg = page.locator("svg").first();
    const file = path.join(OUTPUT, `${name}.png`);
    await svg.screenshot({ path: file });
    const colours = await page.evaluate<number>(COUNT_COLOURS);
    assert.ok(fs.statSync(file).size > 5_000, `${name}.png is ${fs.statSync(file).size} bytes`);
    const least = name.startsWith("timeline") ? 20 : name.startsWith("timetable") ? 10 : 3;
    assert.ok(colours >= least, `${name} has ${colours} colours`);
  }
});

test("every committed tutorial ships executed: each code cell has its output's count, 1..N in order", () => {
  for (const name of tutorials()) {
    const nb = JSON.parse(fs.readFileSync(path.join(NOTEBOOKS, `${name}.ipynb`), "utf8")) as { cells: Cell[] };
    const code = nb.cells.filter((c) => c.cell_type === "code");
    const counts = code.map((c) => c.execution_count ?? null);
    assert.deepEqual(
      counts,
      code.map((_, i) => i + 1),
      `${name}: execution counts (run \`npm run notebooks:execute ${name.slice(0, 3)}\`)`,
    );
    const errors = code.flatMap((c) => c.outputs ?? []).filter((o) => o.output_type === "error");
    assert.deepEqual(errors, [], `${name}: saved error outputs`);
  }
});

test("001 and 002 at full scale, as a reader runs them, on a machine kept busy by two CPU burners", async () => {
  const burners = [0, 1].map(() => spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" }));
  try {
    const full = (name: string): Promise<Cell[]> =>
      executeNotebook(name, path.join(testRoot, `${name}.full.ipynb`), { scale: 1, timeoutS: 600 });
    const t001 = texts(await full("001_introduction"));
    assert.equal([...t001.matchAll(/global sum 511984000/g)].length, 2, "parallel and serial sums");
    // texts() fails on any error output: every cell after the serial loop reached the cluster.
    assert.match(t001, /speedup [\d.]+x on 4 engines/);
    const t002 = texts(await full("002_more_on_views"));
    assert.match(t002, /Speedup for load-balanced and direct view \(ideal: 12x\): [\d.]+ and [\d.]+/);
    assert.match(t002, /146\/146 tasks finished/);
  } finally {
    for (const b of burners) b.kill("SIGKILL");
  }
});
