# Synchronous sends (MPI_Ssend): complete only once the matching receive has started.
import time

from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
if size >= 2 and rank == 0:
    req = comm.issend({"a": 7}, dest=1, tag=3)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 0.2:
        assert not req.Test(), "issend complete before the receive was posted"
    req.wait()
    buf = bytearray(b"abc")
    req = comm.Issend([buf, MPI.BYTE], dest=1, tag=4)
    req.Wait()
    t0 = time.monotonic()
    comm.ssend([1, 2], dest=1, tag=5)
    assert time.monotonic() - t0 >= 0.15, "ssend returned before the receive"
    comm.Ssend(bytearray(b"xy"), dest=1, tag=6)
    comm.ssend("nowhere", dest=MPI.PROC_NULL)
elif size >= 2 and rank == 1:
    time.sleep(0.3)
    assert comm.recv(source=0, tag=3) == {"a": 7}
    b = bytearray(3)
    comm.Recv([b, MPI.BYTE], source=0, tag=4)
    assert b == b"abc"
    time.sleep(0.2)
    assert comm.recv(source=0, tag=5) == [1, 2]
    b = bytearray(2)
    comm.Recv(b, source=0, tag=6)
    assert b == b"xy"
print(f"OK {rank}", flush=True)
