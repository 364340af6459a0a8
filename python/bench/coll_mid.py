"""Allgather (in place and not), alltoall and broadcast of 64 KiB to 1 MiB per rank,
in mpi4py's API, on buffers whose pages are written first: mpi4py's demo/osu_*.py
allocate fresh mmaps that they never write, so what they read is the kernel's zero
page, whose single-copy reads cost more than real pages' (perf/coll_floor.sh).

    shmrun -n 2 --bind-to core python -m shmpi python/bench/coll_mid.py [SIZES...]
    mpirun -n 2 --bind-to core python python/bench/coll_mid.py [SIZES...]

Rank 0 prints `name ranks size microseconds-per-call` lines.
"""
import mmap
import sys

from mpi4py import MPI

comm = MPI.COMM_WORLD
n = comm.Get_size()
sizes = [int(x) for x in sys.argv[1:]] or [65536, 131072, 262144, 1048576]
M = max(sizes)
s = mmap.mmap(-1, M * n)
r = mmap.mmap(-1, M * n)
s.write(bytes([comm.rank + 1]) * (M * n))
r.write(b"\x07" * (M * n))
for size in sizes:
    iters = max(20, min(2000, (64 << 20) // (size * n * n)))
    calls = {
        "allgather_in_place": lambda: comm.Allgather(MPI.IN_PLACE, [r, size, MPI.BYTE]),
        "allgather": lambda: comm.Allgather([s, size, MPI.BYTE], [r, size, MPI.BYTE]),
        "alltoall": lambda: comm.Alltoall([s, size, MPI.BYTE], [r, size, MPI.BYTE]),
        "bcast": lambda: comm.Bcast([r, size, MPI.BYTE], 0),
    }
    for name, f in calls.items():
        for _ in range(5):
            f()
        comm.Barrier()
        t = MPI.Wtime()
        for _ in range(iters):
            f()
        t = (MPI.Wtime() - t) / iters * 1e6
        if comm.rank == 0:
            print(f"{name} {n} {size} {t:.2f}", flush=True)
