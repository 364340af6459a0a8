# The seed lecture's rank branching: rank 0 does one thing, the others another.
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank = comm.Get_rank()

if rank == 0:
    print(f"rank {rank}: I am the controller of {comm.Get_size()} ranks")
else:
    print(f"rank {rank}: I am a worker")
