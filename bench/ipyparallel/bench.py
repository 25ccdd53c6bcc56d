"""ipyparallel's side of `npm run bench`: the same workloads as bench/core.ts, under the same metric
names, so that one run compares both on one machine.

    /usr/bin/python3 bench/ipyparallel/bench.py --out FILE [--quick] [--only afgh,fan]

Writes {"meta": {...}, "metrics": {name: {"value": v, "unit": u}}}. Needs Debian's
python3-ipyparallel and python3-numpy. Every cluster it starts lives in a temporary profile
directory and is stopped on exit, also on SIGTERM.

Workloads (engines: 2 unless said):
  a  apply of a no-op on one engine: round-trip median and p99
  b  execute("x=1") on all engines: median
  c  load-balanced map of 2000 no-op tasks, chunksize 1 and 50: tasks/s
  d  DirectView map of 100,000 items: seconds
  e  push then pull of a float64 array of 1, 8 and 64 MB to one engine: MB/s each way
  f  scatter then gather of 1e6 float64: seconds
  g  12 engines, 146 tasks (the first 12 sleep 1 s, the rest 0.2 s): speedup, load-balanced and direct
  h  Cluster(n=4).start_and_connect_sync() until all are registered: seconds
  fan  execute("x=1") on all of 16 and 64 engines, and on one of them: ms
"""

import argparse
import json
import logging
import os
import platform
import signal
import statistics
import sys
import tempfile
import time

import ipyparallel as ipp
import numpy as np

metrics = {}
clusters = []
root = tempfile.mkdtemp(prefix="ipp-bench-")


def put(name, value, unit):
    metrics[name] = {"value": value, "unit": unit}
    print(f"  {name}: {value:.4g} {unit}", file=sys.stderr, flush=True)


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.99 * (len(xs) - 1))))]


def clock(fn, reps):
    """Seconds per call of fn, one sample per call."""
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def start(n, **kw):
    cluster = ipp.Cluster(n=n, profile_dir=tempfile.mkdtemp(dir=root), log_level=logging.WARNING, **kw)
    clusters.append(cluster)
    rc = cluster.start_and_connect_sync()
    rc.wait_for_engines(n, timeout=600)
    return cluster, rc


def stop(cluster, rc):
    rc.close()
    cluster.stop_cluster_sync()
    clusters.remove(cluster)


def noop():
    return None


def sleep_here(t):
    import time

    time.sleep(t)
    return t


def small_cluster(quick):
    cluster, rc = start(2)
    try:
        e0, dview, lview = rc[0], rc[:], rc.load_balanced_view()
        for _ in range(20):
            e0.apply_sync(noop)
        lat = clock(lambda: e0.apply_sync(noop), 30 if quick else 300)
        put("a apply_sync latency median", statistics.median(lat) * 1e6, "us")
        put("a apply_sync latency p99", p99(lat) * 1e6, "us")
        ex = clock(lambda: dview.execute("x=1", block=True), 10 if quick else 100)
        put("b execute('x=1') all engines median", statistics.median(ex) * 1e6, "us")
        ntasks = 200 if quick else 2000
        for chunksize in (1, 50):
            times = clock(lambda: lview.map_sync(noop_arg, range(ntasks), chunksize=chunksize), 1 if quick else 3)
            put(f"c LB map {ntasks} no-op chunksize={chunksize} throughput", ntasks / statistics.median(times), "tasks/s")
        dm = clock(lambda: dview.map_sync(noop_arg, range(100_000)), 2 if quick else 5)
        put("d DV map_sync 100000 items time", statistics.median(dm), "s")
        for size in (1, 8, 64):
            data = np.random.random(size * 1024 * 1024 // 8)
            pushes, pulls = [], []
            for _ in range(1 if quick else 3):
                pushes += clock(lambda: e0.push({"data": data}, block=True), 1)
                pulls += clock(lambda: e0.pull("data", block=True), 1)
            put(f"e push {size} MB", size / statistics.median(pushes), "MB/s")
            put(f"e pull {size} MB", size / statistics.median(pulls), "MB/s")
        values = np.random.random(1_000_000)

        def scatter_gather():
            dview.scatter("v", values, block=True)
            dview.gather("v", block=True)

        put("f scatter+gather 1e6 float64", statistics.median(clock(scatter_gather, 2 if quick else 5)), "s")
    finally:
        stop(cluster, rc)


def noop_arg(x):
    return x


def load_balance(quick):
    n = 12
    cluster, rc = start(n)
    try:
        total = n * n + 2
        times = [1.0 if i < total // n else 0.2 for i in range(total)]
        dview = rc[:]
        dview.apply_sync(sleep_here, 0.0)
        for name, view in (("load_balanced", rc.load_balanced_view()), ("direct", dview)):
            runs = []
            for _ in range(1 if quick else 2):
                ar = view.map_async(sleep_here, times)
                ar.get()
                runs.append((ar.serial_time / ar.wall_time, ar.wall_time))
            put(f"g {name} map_async speedup", statistics.median(r[0] for r in runs), "x")
            put(f"g {name} map_async wall_time ({n} engines)", statistics.median(r[1] for r in runs), "s")
    finally:
        stop(cluster, rc)


def startup(quick):
    runs = []
    for _ in range(1 if quick else 2):
        t0 = time.perf_counter()
        cluster, rc = start(4)
        runs.append(time.perf_counter() - t0)
        stop(cluster, rc)
    put("h startup 4 engines (Cluster.start_and_connect_sync)", statistics.median(runs), "s")


def fan_out(quick):
    for n in (16,) if quick else (16, 64):
        cluster, rc = start(n)
        try:
            one, every = rc[0], rc[:]
            for _ in range(3):
                every.execute("x=1", block=True)
            reps = 5 if quick else 20
            put(f"(fan-out) execute('x=1') on 1 of {n} engines median", statistics.median(clock(lambda: one.execute("x=1", block=True), reps)) * 1e3, "ms")
            put(f"(fan-out) execute('x=1') on all {n} engines median", statistics.median(clock(lambda: every.execute("x=1", block=True), reps)) * 1e3, "ms")
        finally:
            stop(cluster, rc)


SECTIONS = {"af": small_cluster, "g": load_balance, "h": startup, "fan": fan_out}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    ap.add_argument("--only", default=",".join(SECTIONS), help="comma-separated: " + ", ".join(SECTIONS))
    args = ap.parse_args()
    unknown = set(args.only.split(",")) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    errors = {}
    try:
        for name in args.only.split(","):
            print(f"ipyparallel {name}:", file=sys.stderr, flush=True)
            try:
                SECTIONS[name](args.quick)
            except Exception as e:  # one failed section must not cost the others
                errors[name] = repr(e)
                print(f"  failed: {e!r}", file=sys.stderr, flush=True)
    finally:
        for cluster in list(clusters):
            try:
                cluster.stop_cluster_sync()
            except Exception:
                pass
    meta = {"ipyparallel": ipp.__version__, "python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()}
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "metrics": metrics, "errors": errors}, f, indent=1)


if __name__ == "__main__":
    main()
