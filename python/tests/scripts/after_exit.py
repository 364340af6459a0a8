# Rank 1 sends one object and leaves. Rank 0's loops of tests on receives that only
# rank 1 could complete end with an exception naming it instead of spinning for ever
# (a wait on them fails the same way); what rank 1 sent before leaving still arrives.
import time

import numpy as np
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank = comm.Get_rank()


def until_done(test):
    start = time.monotonic()
    while time.monotonic() - start < 20:
        flag, value = test()
        if flag:
            return value
    raise AssertionError("still unfinished after 20 s of tests")


def fails_naming_rank_1(test):
    try:
        until_done(test)
    except MPI.Exception as e:
        assert "rank 1" in str(e), str(e)
    else:
        raise AssertionError("a test of a receive from a rank that left succeeded")


if rank == 1:
    comm.send("bye", dest=0, tag=3)
else:
    req = comm.irecv(source=1, tag=3)
    assert until_done(req.test) == "bye"
    req = comm.irecv(source=1, tag=5)
    fails_naming_rank_1(req.test)
    buf = np.zeros(4)
    req = comm.Irecv(buf, source=1, tag=6)
    fails_naming_rank_1(lambda: (req.Test(), None))
    req = comm.irecv(source=MPI.ANY_SOURCE, tag=7)
    fails_naming_rank_1(req.test)
print(f"OK {rank}")
