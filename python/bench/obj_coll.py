"""Time per lowercase `comm.bcast` of a small dict from rank 0 (mpi4py's most common
collective), in the style of mpi4py's OSU demos: 1000 warm-up calls, then N timed
(default 20 000), the root's loop time per call in microseconds. Runs unchanged under
shmpi and the real mpi4py.

Usage: shmrun -n 8 python -m shmpi obj_bcast.py [N]
       mpirun -n 8 python obj_bcast.py [N]
"""

import sys

from mpi4py import MPI


def main(n):
    comm = MPI.COMM_WORLD
    obj = {"a": 7, "b": 3.14} if comm.rank == 0 else None
    comm.Barrier()
    for i in range(n + 1000):
        if i == 1000:
            t = MPI.Wtime()
        got = comm.bcast(obj, 0)
    t = MPI.Wtime() - t
    comm.Barrier()
    assert got == {"a": 7, "b": 3.14}
    if comm.rank == 0:
        print(f"{t / n * 1e6:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000)
