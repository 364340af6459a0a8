"""N broadcasts of 8 bytes from rank 0, as mpi4py's demo/osu_bcast.py makes them
(`[buf, size, MPI.BYTE]` from an mmap), between two barriers: for counting
instructions per call under callgrind (perf/python_bcast.sh callgrind)."""

import mmap
import sys

from mpi4py import MPI


def main(n):
    comm = MPI.COMM_WORLD
    buf = mmap.mmap(-1, 8)
    msg = [buf, 8, MPI.BYTE]
    comm.Barrier()
    for _ in range(n):
        comm.Bcast(msg, 0)
    comm.Barrier()


if __name__ == "__main__":
    main(int(sys.argv[1]))
