# The seed lecture's three programs, for Python 3 and NumPy 2.
import numpy
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
size = comm.Get_size()

# 1. Rank branching.
if rank == 0:
    role = "controller"
else:
    role = "worker"
print(f"rank {rank} of {size} is a {role}")

# 2. A Python object: rank 0 sends a dict with tag 11, rank 1 receives it.
if rank == 0:
    data = {"a": 7, "b": 3.14}
    comm.send(data, dest=1, tag=11)
elif rank == 1:
    data = comm.recv(source=0, tag=11)
    assert data == {"a": 7, "b": 3.14}, data

# 3. A NumPy array with the buffer interface: 100 float64 with tag 13.
if rank == 0:
    data = numpy.arange(100, dtype="d")
    comm.Send(data, dest=1, tag=13)
elif rank == 1:
    data = numpy.empty(100, dtype=numpy.float64)
    st = MPI.Status()
    comm.Recv(data, source=0, tag=13, status=st)
    assert numpy.array_equal(data, numpy.arange(100, dtype="d"))
    assert (st.Get_source(), st.Get_tag(), st.Get_count(MPI.DOUBLE)) == (0, 13, 100)

print(f"OK {rank}")
