# Arrays that offer DLPack instead of the buffer protocol (PyTorch's and JAX's tensors
# on the CPU): the uppercase methods take them wherever they take a buffer, as mpi4py
# does, with their element type (a reduction or a receive count needs no datatype),
# in DLPack 1.0 (`max_version`) and before; a read-only array can be sent but not
# received into, and a strided one is a BufferError, as for buffers. Portable: it also
# runs under the real mpi4py (scripts/mpi_python_mpi4py.sh); only the refusal of an
# array on a device is shmpi's own.
import numpy as np
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
right, left = (rank + 1) % size, (rank - 1) % size
SHMPI = MPI.Get_library_version().startswith("shmpi")


class DL:
    """A NumPy array seen only through DLPack 1.0."""

    def __init__(self, a):
        self.a = a

    def __dlpack_device__(self):
        return self.a.__dlpack_device__()

    def __dlpack__(self, stream=None, max_version=None, dl_device=None, copy=None):
        return self.a.__dlpack__(stream=stream, max_version=max_version, dl_device=dl_device, copy=copy)


class DL0(DL):
    """The same through DLPack before 1.0 (no `max_version`)."""

    def __dlpack__(self, stream=None):
        return self.a.__dlpack__(stream=stream)


def fails(fn, *args):
    try:
        fn(*args)
    except (BufferError, ValueError, TypeError):
        return True
    return False


for kind in (DL, DL0):
    # Point to point, typed: a count in elements of the array's type.
    src = np.arange(5, dtype=np.float64) + 10 * rank
    dst = np.zeros(5)
    st = MPI.Status()
    comm.Sendrecv(kind(src), right, 1, kind(dst), left, 1, st)
    assert (dst == np.arange(5) + 10 * left).all(), dst
    assert st.Get_count(MPI.DOUBLE) == 5, st.Get_count(MPI.DOUBLE)
    dst[:] = 0
    reqs = [comm.Irecv(kind(dst), left, 2), comm.Isend(kind(src), right, 2)]
    MPI.Request.Waitall(reqs)
    assert (dst == np.arange(5) + 10 * left).all(), dst
    comm.Send([kind(src), 2, MPI.DOUBLE], right, 3)
    got = np.full(5, -1.0)
    comm.Recv([kind(got), 5, MPI.DOUBLE], left, 3)
    assert list(got) == [10 * left, 10 * left + 1, -1, -1, -1], got
    # Collectives: a reduction typed by the array (int32, SUM), a broadcast of a 2-D
    # array in C and in Fortran order, an allgather.
    x = np.full(3, rank + 1, dtype=np.int32)
    y = np.zeros(3, dtype=np.int32)
    comm.Allreduce(kind(x), kind(y))
    assert (y == size * (size + 1) // 2).all(), y
    for order in "CF":
        m = np.asarray(np.arange(6.0).reshape(2, 3) * (rank == 0), order=order)
        comm.Bcast(kind(m), root=0)
        assert (m == np.arange(6.0).reshape(2, 3)).all(), m
    out = np.zeros(2 * size, dtype=np.int64)
    comm.Allgather(kind(np.array([rank, -rank], dtype=np.int64)), kind(out))
    assert list(out) == [v for r in range(size) for v in (r, -r)], out

# A read-only array (DLPack 1.0 says so) is sent; receiving into it fails before anything
# is received, and the message then goes to a writable one.
ro = np.arange(3.0) + rank
ro.flags.writeable = False
comm.Send(DL(ro), right, 4)
target = np.zeros(3)
target.flags.writeable = False
assert fails(comm.Recv, DL(target), left, 4)
ok = np.zeros(3)
comm.Recv(DL(ok), left, 4)
assert (ok == np.arange(3.0) + left).all(), ok

# Not contiguous: an error, as for a strided buffer; nothing is sent.
assert fails(comm.Send, DL(np.ones((3, 2))[:, 0]), right, 5)

if SHMPI:
    # An array on a device (here one that says so): shmpi moves host memory only.
    class OnDevice(DL):
        def __dlpack_device__(self):
            return (2, 0)

    assert fails(comm.Send, OnDevice(np.ones(2)), right, 6)
    # The view keeps the producer's memory alive by itself.
    v = MPI._mv(DL(np.arange(4, dtype=np.int16)))
    assert (v.format, v.itemsize, v.nbytes, v.tolist()) == ("h", 2, 8, [0, 1, 2, 3]), v

comm.Barrier()
print(f"OK {rank}")
