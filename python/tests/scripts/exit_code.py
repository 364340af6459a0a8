# sys.exit with a code in one rank ends the job with that code.
import sys

from mpi4py import MPI

comm = MPI.COMM_WORLD
if comm.Get_rank() == comm.Get_size() - 1:
    sys.exit(3)
comm.Barrier()
