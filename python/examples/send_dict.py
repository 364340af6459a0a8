# The seed lecture's object message: rank 0 sends a dict with tag 11 (pickled).
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank = comm.Get_rank()

if rank == 0:
    data = {"a": 7, "b": 3.14}
    comm.send(data, dest=1, tag=11)
elif rank == 1:
    data = comm.recv(source=0, tag=11)
    assert data == {"a": 7, "b": 3.14}, data
    print(f"rank 1 received {data}")
