# For plain `python hello_shmpi.py`: no launcher, no mpi4py alias.
from shmpi import MPI

comm = MPI.COMM_WORLD
assert MPI.Is_initialized() and not MPI.Is_finalized()
print(f"Hello from rank {comm.Get_rank()} of {comm.Get_size()}")
print(f"OK {comm.Get_rank()}")
