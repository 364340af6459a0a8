# A receive into a buffer it cannot write (not contiguous, read-only) with a datatype
# with holes fails before the message is matched, which stays queued (mpi4py gets a
# writable contiguous buffer before calling MPI); a Fortran-order buffer is received
# in memory order, as without a datatype; a send of a non-contiguous buffer with a
# datatype with holes fails as one without a datatype does.
import numpy as np
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
right, left = (rank + 1) % size, (rank - 1) % size
col = MPI.DOUBLE.Create_vector(4, 1, 5).Commit()
pair = MPI.DOUBLE.Create_vector(2, 1, 2).Commit()


def raises(exc, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except exc as e:
        return e
    raise AssertionError(f"{fn.__name__} did not raise {exc}")


def unusable():
    ro = np.zeros(4)
    ro.flags.writeable = False
    return [np.zeros((4, 5))[:, 1:], ro]


# Recv, Irecv, Sendrecv, Recv_init, Message.Recv: the message stays queued.
comm.Send(np.arange(4.0) + rank, dest=right, tag=1)
for bad in unusable():
    spec = [bad, 1, col] if bad.ndim == 2 else [bad, 1, pair]
    raises((BufferError, ValueError), comm.Recv, spec, source=left, tag=1)
    raises((BufferError, ValueError), comm.Irecv, spec, source=left, tag=1)
    raises((BufferError, ValueError), comm.Recv_init, spec, source=left, tag=1)
    raises((BufferError, ValueError), comm.Sendrecv, None, MPI.PROC_NULL, recvbuf=spec, source=left, recvtag=1)
    msg = comm.Mprobe(source=left, tag=1)
    raises((BufferError, ValueError), msg.Recv, spec)
    got = np.zeros(4)
    msg.Recv(got)
    assert (got == np.arange(4.0) + left).all(), got
    comm.Send(np.arange(4.0) + rank, dest=right, tag=1)
got = np.zeros(4)
comm.Recv(got, source=left, tag=1)
assert (got == np.arange(4.0) + left).all(), got

# Fortran order: the bytes in memory order, every second element of them.
comm.Send(np.array([1.0, 2.0]) + rank, dest=right, tag=2)
fo = np.asfortranarray(np.zeros((2, 2)))
comm.Recv([fo, 1, pair], source=left, tag=2)
assert (fo.ravel(order="K") == [1 + left, 0, 2 + left, 0]).all(), fo

# Bcast at a non-root: every rank raises before the broadcast (the root at once, as
# it reads a buffer it cannot read either), and the next one works.
raises((BufferError, ValueError), comm.Bcast, [np.zeros((4, 5))[:, 1:], 1, col], root=0)
B = np.zeros((4, 5))
if rank == 0:
    B[:, 0] = np.arange(4.0)
comm.Bcast([B, 1, col], root=0)
assert (B[:, 0] == np.arange(4.0)).all(), B

# Send: the same error class as a plain non-contiguous buffer.
plain = raises((BufferError, ValueError), comm.Send, np.zeros((4, 5))[:, 1:], dest=right, tag=3)
holes = raises((BufferError, ValueError), comm.Send, [np.zeros((4, 5))[:, 1:], 1, col], dest=right, tag=3)
assert type(plain) is type(holes), (plain, holes)
comm.Barrier()
assert not comm.Iprobe(source=left, tag=3)
print(f"OK {rank}", flush=True)
