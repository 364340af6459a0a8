# Block collectives (Scatter, Gather, Allgather, Alltoall): an explicit count is per
# rank, MPI's sendcount/recvcount. Blocks whose send and receive type signatures
# differ (MPI-4.1 sec. 6.5) raise MPI.Exception on every rank and never move wrong
# data; legal specs whose counts and datatypes differ but whose signatures match put
# every block where MPI says. A mismatch between ranks has a class that names it:
# ERR_ROOT only for different roots.
import sys

import numpy as np
from mpi4py import MPI

part = sys.argv[1]  # legal, mismatched or classes

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
c2 = MPI.INT.Create_contiguous(2).Commit()
c4 = MPI.INT.Create_contiguous(4).Commit()


def mpi_error(fn, *args, **kw):
    try:
        fn(*args, **kw)
    except MPI.Exception as e:
        return e
    raise AssertionError(f"{fn.__name__} did not raise MPI.Exception")


def same(got, want):
    assert list(got) == list(want), (list(got), list(want))



def legal():
    """The root's buffer longer than size * count, and equal signatures of different
    counts and datatypes."""
    s = np.arange(10 * size, dtype="i")
    r = np.full(2, -1, "i")
    comm.Scatter([s, 2, MPI.INT] if rank == 0 else None, r, root=0)
    same(r, range(2 * rank, 2 * rank + 2))
    r = np.full(4, -1, "i")
    comm.Scatter([np.arange(4 * size, dtype="i"), 1, c4] if rank == 0 else None, [r, 4, MPI.INT], root=0)
    same(r, range(4 * rank, 4 * rank + 4))
    g = np.full(4 * size, -1, "i")
    comm.Gather([np.arange(4, dtype="i") + 10 * rank, 4, MPI.INT], [g, 1, c4] if rank == 0 else None, root=0)
    if rank == 0:
        same(g, [10 * i + j for i in range(size) for j in range(4)])
    g = np.full(10 * size, -1, "i")
    comm.Gather(np.full(3, rank, "i"), [g, 3, MPI.INT] if rank == 0 else None, root=0)
    if rank == 0:
        same(g[: 3 * size], np.repeat(np.arange(size), 3))
        same(g[3 * size :], [-1] * (7 * size))
    g = np.full(4 * size, -1, "i")
    comm.Allgather([np.arange(4, dtype="i") + 10 * rank, 1, c4], [g, 4, MPI.INT])
    same(g, [10 * i + j for i in range(size) for j in range(4)])
    a = np.full(2 * size, -1, "i")
    comm.Alltoall([np.arange(2 * size, dtype="i") + 100 * rank, 1, c2], [a, 2, MPI.INT])
    same(a, [100 * i + 2 * rank + j for i in range(size) for j in range(2)])
    a = np.full(5 * size, -1, "i")
    comm.Alltoall([np.arange(5 * size, dtype="i") + 100 * rank, 1, MPI.INT], [a, 1, MPI.INT])
    same(a[:size], [100 * i + rank for i in range(size)])
    same(a[size:], [-1] * (4 * size))

def mismatched():
    """An error on every rank, no byte written, the next call fine (on another
    communicator: a failed collective leaves its own out of step)."""
    for i, case in enumerate(CASES):
        big = np.full(4 * size, -1, "i")
        e = mpi_error(case, big, comm.Dup())
        assert e.Get_error_class() in (MPI.ERR_TRUNCATE, MPI.ERR_COUNT, MPI.ERR_OTHER), (i, e.Get_error_class(), e)
        same(big, [-1] * (4 * size))
        assert comm.allgather(rank) == list(range(size))


CASES = [
    # The root scatters 4 ints to each rank, which receives 2 (and the reverse).
    lambda r, comm: comm.Scatter([np.arange(4 * size, dtype="i"), 4, MPI.INT] if rank == 0 else None, r[:2], root=0),
    lambda r, comm: comm.Scatter([np.arange(2 * size, dtype="i"), 2, MPI.INT] if rank == 0 else None, r[:4], root=0),
    # Each rank sends 2 ints, the root receives 4 from each.
    lambda r, comm: comm.Gather(np.full(2, rank, "i"), [r, 4, MPI.INT] if rank == 0 else None, root=0),
    lambda r, comm: comm.Allgather(np.full(2, rank, "i"), [r, 4, MPI.INT]),
    # Blocks of 2 ints sent, of 1 received, into exactly size ints of a longer array.
    lambda r, comm: comm.Alltoall([np.arange(2 * size, dtype="i"), 2, MPI.INT], [r[:size], 1, MPI.INT]),
    lambda r, comm: comm.Allgather([np.full(2, rank, "i"), 2, MPI.INT], [r[:size], 1, MPI.INT]),
    lambda r, comm: comm.Ialltoall([np.arange(2 * size, dtype="i"), 2, MPI.INT], [r[:size], 1, MPI.INT]).Wait(),
]


def classes():
    """Mismatches between ranks: counts are not ERR_ROOT; a shorter count than
    another rank's (a longer message than this rank takes) is ERR_TRUNCATE."""
    if size == 1:
        return
    d = comm.Dup()
    n = 2 + rank
    e = mpi_error(d.Allreduce, np.ones(n), np.zeros(n))
    # The class compares this rank's count with that of the rank the error names.
    want = {0: {MPI.ERR_TRUNCATE}, size - 1: {MPI.ERR_COUNT}}.get(rank, {MPI.ERR_TRUNCATE, MPI.ERR_COUNT})
    assert e.Get_error_class() in want, (e.Get_error_class(), e)
    d = comm.Dup()
    b = np.zeros(4 if rank == 0 else 2)
    e = mpi_error(d.Bcast, b, root=0)
    assert e.Get_error_class() == (MPI.ERR_COUNT if rank == 0 else MPI.ERR_TRUNCATE), (e.Get_error_class(), e)
    d = comm.Dup()
    e = mpi_error(d.Allreduce, np.ones(2), np.zeros(2), op=MPI.SUM if rank == 0 else MPI.MAX)
    assert e.Get_error_class() == MPI.ERR_OP, (e.Get_error_class(), e)
    d = comm.Dup()
    e = mpi_error(d.bcast, rank, root=rank % 2)
    assert e.Get_error_class() == MPI.ERR_ROOT, (e.Get_error_class(), e)


{"legal": legal, "mismatched": mismatched, "classes": classes}[part]()
comm.Barrier()
print(f"OK {rank}", flush=True)
