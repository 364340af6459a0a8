# Errors are MPI.Exception with MPI's error classes, and leave the job usable.
import pickle
import threading

import numpy as np
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
right, left = (rank + 1) % size, (rank - 1) % size


def raises(exc, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except exc as e:
        return e
    raise AssertionError(f"{fn.__name__} did not raise {exc.__name__}")


# Truncation: ERR_TRUNCATE, and the message is still there to receive.
comm.Send(np.arange(10, dtype="d"), dest=right, tag=1)
small = np.zeros(5)
e = raises(MPI.Exception, comm.Recv, small, source=left, tag=1)
assert isinstance(e, RuntimeError)
assert e.Get_error_class() == MPI.ERR_TRUNCATE, e.Get_error_class()
assert e.error_class == MPI.ERR_TRUNCATE and "truncated" in str(e)
whole = np.zeros(10)
comm.Recv(whole, source=left, tag=1)
assert (whole == np.arange(10)).all()

# The same through Irecv.
comm.Send(np.arange(10, dtype="d"), dest=right, tag=2)
req = comm.Irecv(small, source=left, tag=2)
e = raises(MPI.Exception, req.Wait)
assert e.Get_error_class() == MPI.ERR_TRUNCATE
comm.Recv(whole, source=left, tag=2)

# An unpicklable object: pickle's error, and nothing is sent.
e = raises((pickle.PicklingError, TypeError, AttributeError), comm.send, threading.Lock(), dest=right, tag=3)
e = raises((pickle.PicklingError, TypeError, AttributeError), comm.isend, lambda: 0, dest=right, tag=3)
comm.Barrier()
assert not comm.Iprobe(source=left, tag=3)
comm.Barrier()
comm.send("after", dest=right, tag=3)
assert comm.recv(source=left, tag=3) == "after"

# A read-only buffer cannot receive.
comm.Send(np.ones(3), dest=right, tag=4)
ro = np.zeros(3)
ro.flags.writeable = False
raises((BufferError, ValueError), comm.Recv, ro, source=left, tag=4)
raises((BufferError, ValueError), comm.Recv, b"\0" * 24, source=left, tag=4)
raises((BufferError, ValueError), comm.Irecv, ro, source=left, tag=4)
ok = np.zeros(3)
comm.Recv(ok, source=left, tag=4)
assert (ok == 1).all()

# Bad ranks, tags, roots, and a count past the buffer.
assert raises(MPI.Exception, comm.send, 1, dest=size, tag=0).Get_error_class() == MPI.ERR_RANK
assert raises(MPI.Exception, comm.Send, np.zeros(1), dest=-5).Get_error_class() == MPI.ERR_RANK
assert raises(MPI.Exception, comm.send, 1, dest=right, tag=-7).Get_error_class() == MPI.ERR_TAG
assert raises(MPI.Exception, comm.recv, source=size + 3).Get_error_class() == MPI.ERR_RANK
assert raises(MPI.Exception, comm.bcast, 1, root=size).Get_error_class() == MPI.ERR_ROOT
raises(ValueError, comm.Send, [np.zeros(2), 5, MPI.DOUBLE], dest=right)
# A datatype that does not divide the buffer (mpi4py's ValueError), and one that
# names no type.
raises(ValueError, comm.Send, [bytearray(10), MPI.INT], dest=right)
raises(KeyError, comm.Send, [bytearray(8), "not-a-type"], dest=right)
# A non-contiguous buffer.
raises((BufferError, ValueError), comm.Send, np.zeros((4, 4))[:, 1], dest=right)

# A freed communicator.
d = comm.Dup()
d.Free()
raises(MPI.Exception, d.Get_rank)

comm.Barrier()
print(f"OK {rank}")
