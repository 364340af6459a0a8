# A user-defined op's function gets its buffers as mpi4py's MPI.buffer objects (as
# mpi4py's test_op writes them: `b[:] = array("i", ...)`, byte length, item access),
# in Allreduce, Reduce, Iallreduce and Op.Reduce_local. Uses mpi4py's API only.
import array

from mpi4py import MPI
import numpy as np

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
seen = []


def mysum(a, b, dt):
    seen.append(type(a) is MPI.buffer and type(b) is MPI.buffer)
    assert dt == MPI.INT and len(a) == len(b)
    x = array.array("i", bytes(a))
    y = array.array("i", bytes(b))
    b[:] = array.array("i", [p + q for p, q in zip(x, y)])


op = MPI.Op.Create(mysum, commute=True)
a = np.array([rank, 1, 2 * rank], "i")
b = np.zeros(3, "i")
comm.Allreduce([a, MPI.INT], [b, MPI.INT], op)
want = [sum(range(size)), size, 2 * sum(range(size))]
assert b.tolist() == want, b
b[:] = 0
comm.Iallreduce([a, MPI.INT], [b, MPI.INT], op).Wait()
assert b.tolist() == want, b
r = np.zeros(3, "i")
comm.Reduce([a, MPI.INT], [r, MPI.INT], op, root=0)
if rank == 0:
    assert r.tolist() == want, r
io = np.array([10, 20, 30], "i")
op.Reduce_local([np.array([1, 2, 3], "i"), MPI.INT], [io, MPI.INT])
assert io.tolist() == [11, 22, 33]
assert all(seen) and (seen or size == 1), seen
op.Free()
comm.Barrier()
print(f"OK {rank}", flush=True)
