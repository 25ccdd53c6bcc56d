"""Kernel figures for `npm run bench`, through a real Jupyter client (jupyter_client, Debian's).

input (stdin, JSON): {"kernel": name, "starts": n, "setup": code, "px": code, "runs": n, "cwd": dir,
                      "ipp_engines": n?}
With "ipp_engines", an ipyparallel cluster of that many engines is started here first, in a
throw-away profile dir that replaces "{profile_dir}" in `setup`.
                      "loops": {"toplevel": code, "function": code}?}
output (stdout, JSON): {"start_s": [...], "px_s": [...], "loop_s": {"toplevel": [...], "function": [...]}}

start_s: seconds from launching the kernel process until it answers kernel_info (what a front end
waits for before it says "Kernel ready"). px_s: one `%px` no-op, from execute_request until the
execute_reply reaches the client, after `setup` connected the kernel to a running cluster.
Run by /usr/bin/python3 for tsparallel's kernel and for IPython's (ipyparallel's %px) alike.
"""
import json, sys, time
from jupyter_client.manager import start_new_kernel

spec = json.load(sys.stdin)
out = {"start_s": [], "px_s": [], "loop_s": {"toplevel": [], "function": []}}
cluster = None
if spec.get("ipp_engines"):
    import logging, tempfile
    import ipyparallel as ipp

    cluster = ipp.Cluster(n=spec["ipp_engines"], cluster_id="", profile_dir=tempfile.mkdtemp(prefix="ipp-kernel-bench-"), log_level=logging.WARNING)
    cluster.start_and_connect_sync().close()
    spec["setup"] = spec["setup"].replace("{profile_dir}", cluster.profile_dir)


def run(kc, code, timeout=120):
    msg_id = kc.execute(code)
    while True:
        r = kc.get_shell_msg(timeout=timeout)
        if r["parent_header"].get("msg_id") == msg_id:
            if r["content"]["status"] != "ok":
                raise RuntimeError(f"{code!r} failed: {r['content'].get('ename')}: {r['content'].get('evalue')}")
            return


def measure():
    for i in range(spec["starts"]):
        t0 = time.perf_counter()
        km, kc = start_new_kernel(kernel_name=spec["kernel"], startup_timeout=120, cwd=spec.get("cwd"))
        out["start_s"].append(time.perf_counter() - t0)
        try:
            if i == 0:
                run(kc, spec["setup"])
                for _ in range(5):
                    run(kc, spec["px"])
                for _ in range(spec["runs"]):
                    t0 = time.perf_counter()
                    run(kc, spec["px"])
                    out["px_s"].append(time.perf_counter() - t0)
                # loop_s: a cell's top-level loop against the same loop inside a function, alternated.
                for _ in range(5 if spec.get("loops") else 0):
                    for kind in ("toplevel", "function"):
                        t0 = time.perf_counter()
                        run(kc, spec["loops"][kind])
                        out["loop_s"][kind].append(time.perf_counter() - t0)
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)



try:
    measure()
finally:
    if cluster is not None:
        cluster.stop_cluster_sync()
print(json.dumps(out))
