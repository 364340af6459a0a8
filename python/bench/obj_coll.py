"""Time per lowercase collective call (mpi4py's object forms), in the style of
mpi4py's OSU demos: 1000 warm-up calls, then N timed (default 20 000), the loop time
per call at rank 0 in microseconds. `bcast`: a small dict from rank 0; `allgather`,
`allreduce`, `gather` and `reduce` (to rank 0), `scan`: each rank's float (the
reductions with the default `SUM`); `scatter`: a float per rank from rank 0;
`alltoall`: an int from every rank to every rank. Runs unchanged under shmpi and the
real mpi4py.

Usage: shmrun -n 8 python -m shmpi obj_coll.py CALL [N]
       mpirun -n 8 python obj_coll.py CALL [N]
       (CALL: bcast allgather allreduce gather reduce scatter alltoall scan)"""

import sys

from mpi4py import MPI


def main(call, n):
    comm = MPI.COMM_WORLD
    size = comm.Get_size()
    if call == "bcast":
        obj = {"a": 7, "b": 3.14} if comm.rank == 0 else None
        want = {"a": 7, "b": 3.14}

        def step():
            return comm.bcast(obj, 0)
    elif call == "allgather":
        x = comm.rank + 0.5
        want = [r + 0.5 for r in range(size)]

        def step():
            return comm.allgather(x)
    elif call == "allreduce":
        x = comm.rank + 0.5
        want = sum(r + 0.5 for r in range(size))

        def step():
            return comm.allreduce(x)
    elif call == "gather":
        x = comm.rank + 0.5
        want = [r + 0.5 for r in range(size)] if comm.rank == 0 else None

        def step():
            return comm.gather(x, 0)
    elif call == "reduce":
        x = comm.rank + 0.5
        want = sum(r + 0.5 for r in range(size)) if comm.rank == 0 else None

        def step():
            return comm.reduce(x, root=0)
    elif call == "scatter":
        parts = [r + 0.5 for r in range(size)] if comm.rank == 0 else None
        want = comm.rank + 0.5

        def step():
            return comm.scatter(parts, 0)
    elif call == "alltoall":
        parts = [comm.rank * 100 + r for r in range(size)]
        want = [r * 100 + comm.rank for r in range(size)]

        def step():
            return comm.alltoall(parts)
    elif call == "scan":
        x = comm.rank + 0.5
        want = sum(r + 0.5 for r in range(comm.rank + 1))

        def step():
            return comm.scan(x)
    else:
        raise SystemExit(f"obj_coll.py: unknown call {call!r}")
    comm.Barrier()
    for i in range(n + 1000):
        if i == 1000:
            t = MPI.Wtime()
        got = step()
    t = MPI.Wtime() - t
    comm.Barrier()
    assert got == want, (got, want)
    if comm.rank == 0:
        print(f"{t / n * 1e6:.2f}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20000)
