# Argument errors that mpi4py (over an MPI library) raises at the call, where shmpi
# raised nothing or another exception: the persistent requests' init calls check the
# rank, tag and root; a negative count is mpi4py's ValueError; DATATYPE_NULL in a
# message is ERR_TYPE; Split's color and key are integers; Ssend_init's starts are
# synchronous. Uses mpi4py's API only.
from mpi4py import MPI
import numpy as np

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
right, left = (rank + 1) % size, (rank - 1) % size


def raises(exc, fn, cls=None):
    try:
        fn()
    except exc as e:
        if cls is not None:
            assert e.Get_error_class() == cls, (fn, e.Get_error_class(), cls, e)
        return e
    raise AssertionError(f"{fn} did not raise {exc.__name__}")


a = np.zeros(4)
# -- persistent point-to-point: rank and tag checked when made --
for init in (comm.Send_init, comm.Ssend_init, comm.Bsend_init, comm.Rsend_init):
    raises(MPI.Exception, lambda: init(a, size, 0), MPI.ERR_RANK)
    raises(MPI.Exception, lambda: init(a, -7, 0), MPI.ERR_RANK)
    raises(MPI.Exception, lambda: init(a, MPI.ANY_SOURCE, 0), MPI.ERR_RANK)
    raises(MPI.Exception, lambda: init(a, right, -3), MPI.ERR_TAG)
    raises(MPI.Exception, lambda: init(a, right, MPI.ANY_TAG), MPI.ERR_TAG)
raises(MPI.Exception, lambda: comm.Recv_init(a, size, 0), MPI.ERR_RANK)
raises(MPI.Exception, lambda: comm.Recv_init(a, left, -3), MPI.ERR_TAG)
# ANY_SOURCE, ANY_TAG and PROC_NULL are valid where MPI says so.
comm.Recv_init(a, MPI.ANY_SOURCE, MPI.ANY_TAG).Free()
comm.Send_init(a, MPI.PROC_NULL, 0).Free()

# -- rooted persistent collectives: the root checked when made --
b = np.zeros(size)
for root in (size, -1):
    raises(MPI.Exception, lambda: comm.Bcast_init(a, root), MPI.ERR_ROOT)
    raises(MPI.Exception, lambda: comm.Reduce_init(a, np.zeros(4), MPI.SUM, root), MPI.ERR_ROOT)
    raises(MPI.Exception, lambda: comm.Gather_init(a[:1], b, root), MPI.ERR_ROOT)
    raises(MPI.Exception, lambda: comm.Gatherv_init(a[:1], b, root), MPI.ERR_ROOT)
    raises(MPI.Exception, lambda: comm.Scatter_init(b, a[:1], root), MPI.ERR_ROOT)
    raises(MPI.Exception, lambda: comm.Scatterv_init(b, a[:1], root), MPI.ERR_ROOT)
comm.Barrier()  # nothing above started a collective

# -- message specs --
raises(ValueError, lambda: comm.Send([a, -1, MPI.DOUBLE], right, 0))
raises(ValueError, lambda: comm.Isend([a, -1, MPI.DOUBLE], right, 0))
raises(ValueError, lambda: comm.Recv([a, -1, MPI.DOUBLE], left, 0))
raises(MPI.Exception, lambda: comm.Send([a, 1, MPI.DATATYPE_NULL], right, 0), MPI.ERR_TYPE)
raises(MPI.Exception, lambda: comm.Send([a, 0, MPI.DATATYPE_NULL], right, 0), MPI.ERR_TYPE)
raises(MPI.Exception, lambda: comm.Recv([a, 1, MPI.DATATYPE_NULL], left, 0), MPI.ERR_TYPE)
raises(MPI.Exception, lambda: comm.Isend([a, (1, 0), MPI.DATATYPE_NULL], right, 0), MPI.ERR_TYPE)
# None of them sent anything: the next message from the left is this one.
comm.Send(np.full(4, rank, "d"), right, 0)
got = np.zeros(4)
comm.Recv(got, left, 0)
assert got.tolist() == [left] * 4, got

# -- Split's color and key are integers --
raises(TypeError, lambda: comm.Split(0, "x"))
raises(TypeError, lambda: comm.Split(1.5, 0))
comm.Barrier()

# -- Ssend_init: each start completes only once the receive has matched it --
if size > 1:
    if rank == 0:
        p = comm.Ssend_init(np.arange(3.0), 1, 4)
        for it in range(2):
            p.Start()
            for _ in range(200):
                assert not p.Test(), "a synchronous send completed before its receive was posted"
            comm.send("go", 1, 5)
            p.Wait()
        p.Free()
    elif rank == 1:
        for it in range(2):
            assert comm.recv(None, 0, 5) == "go"
            r = np.zeros(3)
            comm.Recv(r, 0, 4)
            assert r.tolist() == [0.0, 1.0, 2.0]
comm.Barrier()
print(f"OK {rank}", flush=True)
