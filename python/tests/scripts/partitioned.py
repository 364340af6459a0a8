# Partitioned communication (MPI 4.1 sec. 4, mpi4py's Psend_init, Precv_init, Pready,
# Pready_range, Pready_list, Parrived) around a ring, and its errors. Uses mpi4py's
# API only.
from mpi4py import MPI
import numpy as np

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
right, left = (rank + 1) % size, (rank - 1) % size
parts, per = 4, 3


def err(cls, f):
    try:
        f()
    except MPI.Exception as e:
        assert e.Get_error_class() == cls, (e.Get_error_class(), cls, e)
    else:
        raise AssertionError(f"{f} did not raise")


sbuf = np.zeros(parts * per, "d")
rbuf = np.full(parts * per, -1.0)
sreq = comm.Psend_init(sbuf, parts, right, tag=3)
rreq = comm.Precv_init(rbuf, parts, left, tag=3)
for it in range(3):
    sbuf[:] = np.arange(parts * per) + 100 * rank + it
    rreq.Start()
    sreq.Start()
    comm.Barrier()
    # Nothing arrives before the sender has marked every partition ready.
    assert not any(rreq.Parrived(i) for i in range(parts))
    comm.Barrier()
    if it == 0:
        for i in range(parts):
            sreq.Pready(i)
    elif it == 1:
        sreq.Pready_range(0, 1)
        sreq.Pready_range(2, parts - 1)
    else:
        sreq.Pready_list([3, 1])
        sreq.Pready_list([0, 2])
    for i in range(parts):
        while not rreq.Parrived(i):
            pass
    MPI.Request.Waitall([rreq, sreq])
    assert sreq and rreq  # persistent: still usable
    want = np.arange(parts * per) + 100 * left + it
    assert rbuf.tolist() == want.tolist(), (rank, it, rbuf)

# Errors: a partition out of range, Pready twice or on a receive, Parrived on a send,
# a wait on a send whose partitions are not all ready (it could never complete).
rreq.Start()
sreq.Start()
err(MPI.ERR_ARG, lambda: sreq.Pready(parts))
err(MPI.ERR_REQUEST, lambda: rreq.Pready(0))
err(MPI.ERR_REQUEST, lambda: sreq.Parrived(0))
sreq.Pready(0)
err(MPI.ERR_REQUEST, lambda: sreq.Pready(0))
err(MPI.ERR_REQUEST, lambda: sreq.Wait())
sreq.Pready_range(1, parts - 1)
MPI.Request.Waitall([sreq, rreq])
sreq.Free()
rreq.Free()
assert not sreq and not rreq
# A buffer that does not split into the partitions: mpi4py's ValueError.
try:
    comm.Psend_init(np.zeros(5), 2, right)
except ValueError:
    pass
else:
    raise AssertionError("5 elements in 2 partitions")
# Rank and tag are checked when the request is made.
err(MPI.ERR_RANK, lambda: comm.Psend_init(sbuf, parts, size))
err(MPI.ERR_TAG, lambda: comm.Precv_init(rbuf, parts, left, -5))
comm.Barrier()
print(f"OK {rank}", flush=True)
