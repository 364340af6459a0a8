# Built-in reduction ops on the datatypes MPI-4.1 sec. 6.9.2 defines them for: any
# other pair is MPI.Exception ERR_OP (never a result, never another exception); a
# contiguous datatype of one named type is reduced as that type, as Open MPI does.
import numpy as np
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()


def err_op(fn, *args, **kw):
    try:
        fn(*args, **kw)
    except MPI.Exception as e:
        assert e.Get_error_class() == MPI.ERR_OP, (e.Get_error_class(), e)
        return e
    raise AssertionError(f"{fn.__name__} did not raise MPI.Exception")


# MAX and MIN: integer and real types, not complex.
for op in (MPI.MAX, MPI.MIN):
    err_op(comm.Allreduce, np.array([rank * 1j]), np.zeros(1, "D"), op=op)
    err_op(comm.Reduce, np.array([rank * 1j]), np.zeros(1, "D"), op=op, root=0)
# MAXLOC and MINLOC: pair types only.
err_op(comm.Allreduce, np.ones(2), np.zeros(2), op=MPI.MAXLOC)
err_op(comm.Allreduce, np.ones(2, "i"), np.zeros(2, "i"), op=MPI.MINLOC)
err_op(MPI.MAXLOC.Reduce_local, np.ones(2), np.zeros(2))
# OP_NULL, on buffers and on objects.
err_op(comm.Allreduce, np.ones(2), np.zeros(2), op=MPI.OP_NULL)
if size > 1:
    # The lowercase form calls the op on the objects, and calling OP_NULL is mpi4py's
    # ValueError (its test_op).
    try:
        comm.allreduce(rank, op=MPI.OP_NULL)
    except ValueError:
        pass
    else:
        raise AssertionError("allreduce with OP_NULL did not raise")
# An unnamed buffer type (NumPy's float16 has no MPI datatype here): ERR_OP that says so.
e = err_op(comm.Allreduce, np.ones(2, "e"), np.zeros(2, "e"), op=MPI.SUM)
assert "NumPy" not in str(e).split(":")[0] and "need NumPy" not in str(e), e

# Defined pairs still reduce.
r = np.zeros(1, "D")
comm.Allreduce(np.array([rank * 1j + 1]), r, op=MPI.SUM)
assert r[0] == size + 1j * sum(range(size)), r
c3 = MPI.DOUBLE.Create_contiguous(3).Commit()
out = np.zeros(3)
comm.Allreduce([np.arange(3.0) + rank, 1, c3], [out, 1, c3], op=MPI.SUM)
assert (out == np.arange(3.0) * size + sum(range(size))).all(), out
comm.Allreduce([np.arange(6.0) + rank, 2, c3], [out2 := np.zeros(6), 2, c3], op=MPI.MAX)
assert (out2 == np.arange(6.0) + size - 1).all(), out2
comm.Reduce([np.full(3, rank + 1.0), 1, c3], [out3 := np.zeros(3), 1, c3], op=MPI.PROD, root=0)
if rank == 0:
    prod = 1.0
    for i in range(size):
        prod *= i + 1
    assert (out3 == prod).all(), out3
comm.Barrier()
print(f"OK {rank}", flush=True)
