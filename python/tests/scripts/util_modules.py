# mpi4py.util's pkl5 and sync, as mpi4py users write them: pickle-5 messages whose
# large arrays travel out of band (point to point, non-blocking, matched probes,
# broadcast), and the RMA-based counter, mutex and sequential section. Runs under the
# real mpi4py too.
from mpi4py import MPI
from mpi4py.util import pkl5, sync
import numpy as np

world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()
comm = pkl5.Intracomm(world)
right, left = (rank + 1) % size, (rank - 1) % size

# A 1 MiB array (past pickle's out-of-band threshold) and a small one, in one object.
big = np.arange(1 << 17, dtype="f8") + rank
obj = {"rank": rank, "big": big, "small": np.full(3, rank)}
req = comm.isend(obj, dest=right, tag=7)
got = comm.recv(source=left, tag=7)
req.wait()
assert got["rank"] == left and np.array_equal(got["big"], np.arange(1 << 17, dtype="f8") + left)
assert list(got["small"]) == [left] * 3
# Matched probe, then receive: the message is the probed one.
comm.send([rank] * 1000, dest=right, tag=8)
msg = comm.mprobe(source=left, tag=8)
assert msg.recv() == [left] * 1000
# Non-blocking: a send, and the receive of a matched message (pkl5 has no irecv).
sreq = comm.isend(("to", right), dest=right, tag=9)
rreq = comm.mprobe(source=left, tag=9).irecv()
out = pkl5.Request.waitall([sreq, rreq])
assert out[1] == ("to", rank), out
# Broadcast of a large object.
root_obj = comm.bcast({"data": np.ones(1 << 16)} if rank == 0 else None, root=0)
assert root_obj["data"].sum() == 1 << 16

# sync: a counter every rank draws from; each value drawn once.
counter = sync.Counter(comm=world)
drawn = [counter.next() for _ in range(5)]
every = sorted(v for vs in world.allgather(drawn) for v in vs)
assert every == list(range(5 * size)), every
counter.free()
# A mutex around a read-modify-write of rank 0's window value, which is not atomic.
win = MPI.Win.Allocate(8 if rank == 0 else 0, 8, comm=world)
mutex = sync.Mutex(comm=world)
for _ in range(10):
    with mutex:
        cell = np.zeros(1, dtype="i8")
        win.Lock(0)
        win.Get(cell, 0)
        win.Unlock(0)
        cell += 1
        win.Lock(0)
        win.Put(cell, 0)
        win.Unlock(0)
world.Barrier()
if rank == 0:
    total = np.zeros(1, dtype="i8")
    win.Lock(0)
    win.Get(total, 0)
    win.Unlock(0)
    assert total[0] == 10 * size, total
mutex.free()
win.Free()
# A sequential section: ranks enter in rank order.
order = MPI.Win.Allocate(8 * size if rank == 0 else 0, 8, comm=world)
with sync.Sequential(world):
    seen = np.zeros(1, dtype="i8")
    order.Lock(0)
    order.Get(seen, 0, target=[0, 1, MPI.INT64_T] if hasattr(MPI, "INT64_T") else [0, 1, MPI.LONG])
    order.Unlock(0)
    assert seen[0] == rank, (seen, rank)
    order.Lock(0)
    order.Put(np.array([rank + 1], dtype="i8"), 0)
    order.Unlock(0)
world.Barrier()
order.Free()

print(f"OK {rank}", flush=True)
