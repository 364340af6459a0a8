"""N calls of one small collective between two barriers, with the buffer specs of
mpi4py's OSU demos (`[buf, count, datatype]` over an mmap, made once before the loop):
for counting instructions per call under callgrind (perf/python_coll_cg.sh).

Usage: coll_loop.py bcast|allreduce|allgather|alltoall|barrier N
"""

import mmap
import sys

from mpi4py import MPI


def main(call, n):
    comm = MPI.COMM_WORLD
    size = comm.Get_size()
    s = mmap.mmap(-1, 8 * size)
    r = mmap.mmap(-1, 8 * size)
    comm.Barrier()
    if call == "bcast":
        msg = [s, 8, MPI.BYTE]
        for _ in range(n):
            comm.Bcast(msg, 0)
    elif call == "allreduce":
        smsg, rmsg, op = [s, 1, MPI.DOUBLE], [r, 1, MPI.DOUBLE], MPI.SUM
        for _ in range(n):
            comm.Allreduce(smsg, rmsg, op)
    elif call == "allgather":
        smsg, rmsg = [s, 8, MPI.BYTE], [r, 8, MPI.BYTE]
        for _ in range(n):
            comm.Allgather(smsg, rmsg)
    elif call == "alltoall":
        smsg, rmsg = [s, 8, MPI.BYTE], [r, 8, MPI.BYTE]
        for _ in range(n):
            comm.Alltoall(smsg, rmsg)
    elif call == "barrier":
        for _ in range(n):
            comm.Barrier()
    else:
        raise SystemExit(f"coll_loop.py: unknown call {call!r}")
    comm.Barrier()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
