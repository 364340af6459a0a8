# Requests, matched probes and the fixes the mpi4py suite asked for, each as a
# user meets it.
import array

from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()

# An irecv of an object is a posted receive: a synchronous send to self after it
# completes (it deadlocked when irecv was matched only at wait).
r = comm.irecv(source=rank, tag=3)
comm.issend({"x": rank}, dest=rank, tag=3).wait()
assert r.wait() == {"x": rank}

# irecv's buffer is mpi4py's: rc.irecv_bufsz bytes, or the given size.
r = comm.irecv(64, source=rank, tag=4)
comm.send("small", dest=rank, tag=4)
assert r.wait() == "small"

# A request on PROC_NULL is active until it is waited on, as in MPI.
r = comm.isend("x", dest=MPI.PROC_NULL)
assert r and r != MPI.REQUEST_NULL
st = MPI.Status()
r.Wait(st)
assert not r and r == MPI.REQUEST_NULL

# Request identity (mpi4py compares handles): two live requests differ, a copy equals
# its original, a handle comes back to an equal request, a finished one is null.
a = comm.Irecv(bytearray(1), source=rank, tag=8)
b = comm.Irecv(bytearray(1), source=rank, tag=9)
assert a != b and not (a == b) and a != MPI.REQUEST_NULL
c = MPI.Request(a)
assert c == a and c != b
assert MPI.Request.fromhandle(b.handle) == b and b.handle != a.handle
comm.Send(bytearray(b"x"), dest=rank, tag=8)
comm.Send(bytearray(b"y"), dest=rank, tag=9)
MPI.Request.Waitall([a, b])
assert a == MPI.REQUEST_NULL and b == MPI.REQUEST_NULL

# Matched probes: the message belongs to its Message; a too-small buffer is
# ERR_TRUNCATE and the Message can still receive it.
comm.Send(array.array("i", [1, 2, 3]), dest=rank, tag=7)
m = comm.Mprobe(rank, 7, st)
assert m and st.Get_count(MPI.INT) == 3
assert comm.Iprobe(rank, 7) is False
try:
    m.Recv(bytearray(4))
    raise AssertionError("not truncated")
except MPI.Exception as e:
    assert e.Get_error_class() == MPI.ERR_TRUNCATE
buf = array.array("i", [0, 0, 0])
m.Recv(buf)
assert list(buf) == [1, 2, 3] and not m and m == MPI.MESSAGE_NULL
assert comm.mprobe(MPI.PROC_NULL) == MPI.MESSAGE_NO_PROC

# Waitsome hands back the objects of the requests it completes.
reqs = [comm.irecv(source=rank, tag=20 + i) for i in range(3)]
for i in range(3):
    comm.send(i * 10, dest=rank, tag=20 + i)
got = {}
while any(reqs):
    idx, objs = MPI.Request.waitsome(reqs)
    got.update(zip(idx, objs))
assert got == {0: 0, 1: 10, 2: 20}, got

# Reduce_scatter_block in place: each rank's block of the sum lands at its start.
buf = array.array("d", [rank] * 2 * size)
comm.Reduce_scatter_block(MPI.IN_PLACE, buf, MPI.SUM)
assert list(buf[:2]) == [sum(range(size))] * 2, list(buf)

# A datatype with holes: every other element travels.
buf = array.array("i", range(10) if rank == 0 else [-1] * 10)
t = MPI.INT.Create_indexed_block(1, list(range(0, 10, 2))).Commit()
comm.Bcast([buf, 1, t], root=0)
assert list(buf) == (list(range(10)) if rank == 0 else [0, -1, 2, -1, 4, -1, 6, -1, 8, -1])

# The status is MPI_Status's C ints.
st = MPI.Status()
st.source, st.tag = 1, 2
mem = st.tomemory()
mem[0] = 5
assert st.source == 5 and st.tag == 2

print(f"OK {rank}")
