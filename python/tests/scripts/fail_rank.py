# Rank 1 (or 0 alone) raises; the others wait for it in a receive.
import sys

from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
culprit = 1 if size > 1 else 0
if rank == culprit:
    raise ValueError("deliberate failure in rank %d" % rank)
comm.recv(source=culprit, tag=99)
print("not reached", file=sys.stderr)
