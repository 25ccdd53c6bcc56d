"""The reference for `npm run bench`'s comm workload: the same collectives with mpi4py on Open MPI.

Run as `mpiexec -n 4 python3 bench/comm_mpi4py.py OUT.json [--quick]`: rank 0 writes the medians,
in seconds per operation, under the names bench/comm.ts gives its own figures.
"""
import json
import sys
import time

import numpy as np
from mpi4py import MPI

comm = MPI.COMM_WORLD
quick = "--quick" in sys.argv
rounds = 3 if quick else 7


def median_time(op, repeat):
    """The median over rounds of the time per op (seconds) of the slowest rank, all started together."""
    times = []
    for _ in range(rounds):
        comm.Barrier()
        t0 = time.perf_counter()
        for _ in range(repeat):
            op()
        times.append((time.perf_counter() - t0) / repeat)
    return comm.allreduce(sorted(times)[len(times) // 2], op=MPI.MAX)


small = np.array([float(comm.rank)])
small_out = np.empty(1)
big = np.full(1 << 20, float(comm.rank + 1))  # 8 MB of float64
big_out = np.empty_like(big)
figures = {
    "(comm, vs mpi4py) allreduce 8 bytes, 4 engines": median_time(
        lambda: comm.Allreduce(small, small_out, op=MPI.SUM), 20 if quick else 100
    ),
    # The buffer calls, into memory the program has: beside our { inPlace: true }.
    "(comm, vs mpi4py) allreduce 8 MB in place, 4 engines": median_time(
        lambda: comm.Allreduce(big, big_out, op=MPI.SUM), 2 if quick else 5
    ),
    "(comm, vs mpi4py) bcast 8 MB in place, 4 engines": median_time(lambda: comm.Bcast(big, root=0), 2 if quick else 5),
    # The object calls (pickled), which return a new array: beside our default.
    "(comm, vs mpi4py) allreduce 8 MB to a new array, 4 engines": median_time(
        lambda: comm.allreduce(big, op=MPI.SUM), 2 if quick else 5
    ),
    "(comm, vs mpi4py) bcast 8 MB to a new array, 4 engines": median_time(
        lambda: comm.bcast(big if comm.rank == 0 else None, root=0), 2 if quick else 5
    ),
}
assert big_out[0] == sum(r + 1 for r in range(comm.size))
if comm.rank == 0:
    with open(sys.argv[1], "w") as f:
        json.dump({name: {"value": s * 1000, "unit": "ms"} for name, s in figures.items()}, f)
