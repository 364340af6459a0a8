# Rank 0 sends large messages (longer than the ring) and leaves at once.
import numpy as np
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
if rank == 0:
    comm.isend(list(range(100_000)), dest=1, tag=1)
    comm.Isend(np.arange(1_000_000, dtype="d"), dest=1, tag=2)
else:
    assert comm.recv(source=0, tag=1) == list(range(100_000))
    a = np.empty(1_000_000)
    comm.Recv(a, source=0, tag=2)
    assert (a == np.arange(1_000_000)).all()
print(f"OK {rank}")
