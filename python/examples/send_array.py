# The seed lecture's array message: rank 0 sends 100 float64 with tag 13 through the
# buffer interface (uppercase Send/Recv), for Python 3 and NumPy 2.
import numpy
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank = comm.Get_rank()

if rank == 0:
    data = numpy.arange(100, dtype=float)
    comm.Send(data, dest=1, tag=13)
elif rank == 1:
    data = numpy.empty(100, dtype=float)
    comm.Recv(data, source=0, tag=13)
    assert (data == numpy.arange(100, dtype=float)).all()
    print(f"rank 1 received {data[:3]} ... {data[-1]}")
