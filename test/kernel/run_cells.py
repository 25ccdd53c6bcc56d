"""Runs cells on a kernel through jupyter_client and prints, per cell, the execute_reply and
every iopub message it caused, as one JSON document on stdout.

input (stdin, JSON): {"kernel": name, "cwd": dir, "cells": [{"code": str, "interrupt_on": text?, "stop_on_error": bool?} | {"batch": [str], "sent_file": path?}]}
`sent_file`: created once every request of the batch is sent, so a cell can wait for the rest of
the batch to be on its way, however slowly this process is scheduled.
`interrupt_on`: interrupt the kernel (as a front end's Interrupt does) once an output shows that text,
so the interrupt lands while the cell is known to be running, however loaded the machine is.
Run by Debian's /usr/bin/python3 (jupyter_client 7). The kernel is shut down in `finally`.
"""
import json, sys, time
from jupyter_client.manager import start_new_kernel

spec = json.load(sys.stdin)
km, kc = start_new_kernel(kernel_name=spec["kernel"], startup_timeout=60, cwd=spec.get("cwd"))
results = []
try:
    for cell in spec["cells"]:
        if "batch" in cell:
            # Several requests sent at once, as "run all" in a browser does; only replies are kept.
            ids = [kc.execute(code) for code in cell["batch"]]
            if "sent_file" in cell:
                open(cell["sent_file"], "w").close()
            replies = {}
            while len(replies) < len(ids):
                r = kc.get_shell_msg(timeout=60)
                if r["parent_header"].get("msg_id") in ids:
                    replies[r["parent_header"]["msg_id"]] = r["content"]
            results.append({"batch": [replies[i] for i in ids]})
            continue
        msg_id = kc.execute(cell["code"], stop_on_error=cell.get("stop_on_error", True))
        started = time.time()
        interrupted = False
        iopub = []
        while True:
            try:
                m = kc.get_iopub_msg(timeout=0.2)
            except Exception:
                if time.time() - started > cell.get("timeout", 60):
                    # What the earlier cells and this one printed tells a failed CI run's story.
                    json.dump({"done": results, "hung": iopub}, sys.stderr, indent=1)
                    raise RuntimeError("cell timed out: " + cell["code"])
                continue
            if m["parent_header"].get("msg_id") != msg_id:
                continue
            if cell.get("interrupt_on") and not interrupted and cell["interrupt_on"] in json.dumps(m["content"]):
                km.interrupt_kernel()
                interrupted = True
            iopub.append({"msg_type": m["msg_type"], "content": m["content"]})
            if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
                break
        while True:
            r = kc.get_shell_msg(timeout=30)
            if r["parent_header"].get("msg_id") == msg_id:
                break
        results.append({"reply": r["content"], "iopub": iopub})
    print(json.dumps({"results": results, "alive": km.is_alive()}))
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=True)
