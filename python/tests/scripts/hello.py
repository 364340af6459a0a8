from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
assert (comm.rank, comm.size) == (rank, size)
print(f"Hello from rank {rank} of {size}")
print(f"OK {rank}")
