# Point to point, objects and buffers, at any N >= 1 (ring neighbours).
import array

import numpy as np
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
right, left = (rank + 1) % size, (rank - 1) % size

# Objects around the ring (sends never wait for the receive, so no deadlock).
comm.send({"from": rank, "list": list(range(rank))}, dest=right, tag=1)
st = MPI.Status()
got = comm.recv(source=left, tag=1, status=st)
assert got == {"from": left, "list": list(range(left))}, got
assert (st.Get_source(), st.Get_tag(), st.source, st.tag) == (left, 1, left, 1)
assert st.Get_count() > 0 and st.error == MPI.SUCCESS

# None travels as None; wildcards.
comm.send(None, dest=right, tag=2)
st = MPI.Status()
assert comm.recv(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=st) is None
assert (st.source, st.tag) == (left, 2)

# Non-blocking objects.
req = comm.isend(("isend", rank), dest=right, tag=3)
rreq = comm.irecv(source=left, tag=3)
assert rreq.wait() == ("isend", left)
assert req.wait() is None
assert not req and not rreq and req == MPI.REQUEST_NULL

reqs = [comm.irecv(source=left, tag=4), comm.isend(rank * 10, dest=right, tag=4)]
assert MPI.Request.waitall(reqs) == [left * 10, None]

r = comm.irecv(source=left, tag=5)
flag, obj = r.test()
comm.send("five", dest=right, tag=5)
while not flag:
    flag, obj = r.test()
assert obj == "five"

# sendrecv of objects.
assert comm.sendrecv(rank, dest=right, sendtag=6, source=left, recvtag=6) == left

# Buffers: NumPy, bytearray, array.array, buffer specs.
a = np.arange(10, dtype="i") + rank
comm.Send(a, dest=right, tag=7)
b = np.empty(10, dtype="i")
comm.Recv([b, MPI.INT], source=left, tag=7)
assert (b == np.arange(10, dtype="i") + left).all()

comm.Send([bytearray(b"xyz" * (rank + 1)), "B"], dest=right, tag=8)
buf = bytearray(100)
st = MPI.Status()
comm.Recv(buf, source=left, tag=8, status=st)
assert st.Get_count(MPI.BYTE) == 3 * (left + 1) and buf[: st.count] == b"xyz" * (left + 1)

x = array.array("d", [rank + 0.5] * 4)
comm.Send([x, 2, MPI.DOUBLE], dest=right, tag=9)
y = array.array("d", [0.0] * 4)
st = MPI.Status()
comm.Recv([y, (2, 1), MPI.DOUBLE], source=left, tag=9, status=st)
assert list(y) == [0.0, left + 0.5, left + 0.5, 0.0], y
assert st.Get_count(MPI.DOUBLE) == 2 and st.Get_elements(MPI.DOUBLE) == 2

# A pickle sent as raw bytes is received by recv (as in mpi4py).
comm.Isend([MPI.pickle.dumps({"raw": rank}), "B"], dest=right, tag=10).Wait()
assert comm.recv(source=left, tag=10) == {"raw": left}
# An empty message is None.
comm.Send([b"", MPI.BYTE], dest=right, tag=11)
assert comm.recv(source=left, tag=11) is None

# Empty messages: [None, 0, datatype] sends and receives nothing; a bare None is a
# message only to or from PROC_NULL, and elsewhere mpi4py's TypeError, nothing sent.
for call, peer in [(comm.Send, right), (comm.Isend, right), (comm.Ssend, right),
                   (comm.Recv, left), (comm.Irecv, left), (comm.Send_init, right),
                   (comm.Recv_init, left), (comm.Recv, MPI.ANY_SOURCE)]:
    try:
        call(None, peer, 14)
    except TypeError as e:
        assert "expecting buffer or list/tuple" in str(e), e
    else:
        raise AssertionError(f"{call.__name__}(None, {peer}) was accepted")
comm.Send(None, dest=MPI.PROC_NULL, tag=14)
comm.Recv(None, source=MPI.PROC_NULL, tag=14)
comm.Sendrecv(None, MPI.PROC_NULL, 14, None, MPI.PROC_NULL, 14)
comm.Send([None, 0, MPI.INT], dest=right, tag=14)
st = MPI.Status()
comm.Recv([None, 0, MPI.INT], source=left, tag=14, status=st)
assert st.Get_count(MPI.INT) == 0

# Non-blocking buffers.
sreq = comm.Isend(np.full(1000, rank, dtype="d"), dest=right, tag=12)
out = np.zeros(1000)
rreq = comm.Irecv([out, MPI.DOUBLE], source=left, tag=12)
sts = []
MPI.Request.Waitall([sreq, rreq], sts)
assert (out == left).all() and sts[1].source == left and sts[1].Get_count(MPI.DOUBLE) == 1000

outs = [np.zeros(3) for _ in range(3)]
reqs = [comm.Irecv(o, source=left, tag=13 + i) for i, o in enumerate(outs)]
for i in range(3):
    comm.Send(np.full(3, 100 * i + rank, dtype="d"), dest=right, tag=13 + i)
seen = set()
for _ in range(3):
    st = MPI.Status()
    i = MPI.Request.Waitany(reqs, st)
    seen.add(i)
    assert st.tag == 13 + i and (outs[i] == 100 * i + left).all()
assert seen == {0, 1, 2}
assert MPI.Request.Waitany(reqs) == MPI.UNDEFINED

# A window of large non-blocking messages, in place (the shape of osu_bw.py): eight
# receives into the rows of one array, eight sends of one array.
big = np.arange(300_000, dtype="d") + rank
dst = np.zeros((8, 300_000))
rreqs = [comm.Irecv(dst[i], source=left, tag=30 + i) for i in range(8)]
sreqs = [comm.Isend(big, dest=right, tag=30 + i) for i in range(8)]
MPI.Request.Waitall(rreqs + sreqs)
assert (dst == np.arange(300_000) + left).all()

# A receive cancelled before any message came leaves its buffer untouched.
buf = bytearray(b"x" * 8)
r = comm.Irecv(buf, source=left, tag=99)
r.Cancel()
st = MPI.Status()
r.Wait(st)
assert st.Is_cancelled() and buf == b"x" * 8

# Persistent requests: Start again after each Wait; null only once freed.
sbuf = np.zeros(4)
rbuf = np.zeros(4)
sreq = comm.Send_init(sbuf, dest=right, tag=15)
rreq = comm.Recv_init(rbuf, source=left, tag=15)
for i in range(3):
    sbuf[:] = rank * 10 + i
    MPI.Prequest.Startall([rreq, sreq])
    MPI.Request.Waitall([sreq, rreq])
    assert (rbuf == left * 10 + i).all()
    assert sreq != MPI.REQUEST_NULL and rreq != MPI.REQUEST_NULL
sreq.Free()
rreq.Free()
assert sreq == MPI.REQUEST_NULL and rreq == MPI.REQUEST_NULL

# Sendrecv and Sendrecv_replace.
s = np.full(5, rank, dtype="q")
r = np.empty(5, dtype="q")
st = MPI.Status()
comm.Sendrecv(s, dest=right, sendtag=20, recvbuf=r, source=left, recvtag=20, status=st)
assert (r == left).all() and st.source == left
comm.Sendrecv_replace(s, dest=right, sendtag=21, source=left, recvtag=21)
assert (s == left).all()

# Probe, Iprobe.
comm.send("probe me", dest=right, tag=30)
st = MPI.Status()
comm.Probe(source=MPI.ANY_SOURCE, tag=30, status=st)
assert st.source == left and st.tag == 30
assert comm.Iprobe(source=left, tag=30)
assert comm.recv(source=left, tag=30) == "probe me"
comm.Barrier()
assert not comm.iprobe(source=left, tag=30)

# PROC_NULL: sends vanish, receives complete at once with an empty status.
comm.send("nothing", dest=MPI.PROC_NULL)
comm.Send(np.zeros(3), dest=MPI.PROC_NULL)
st = MPI.Status()
assert comm.recv(source=MPI.PROC_NULL, status=st) is None
assert st.source == MPI.PROC_NULL and st.Get_count() == 0
z = np.ones(3)
comm.Recv(z, source=MPI.PROC_NULL)
assert (z == 1).all()

comm.barrier()
# Lowercase receives of very different sizes in turn (shmpi reuses one receive buffer
# below 64 MiB and frees a larger one): each object arrives whole and unchanged.
# (isend, not send: under an MPI that hands large messages over only to a posted
# receive, every rank sending first would deadlock.)
for n in (1 << 20, 3, 70000, 0, (64 << 20) + 5, 1 << 16, 7):
    obj = bytes(range(256)) * (n // 256) + b"x" * (n % 256)
    req = comm.isend(obj, dest=right, tag=15)
    assert comm.recv(source=left, tag=15) == obj, n
    req.wait()

print(f"OK {rank}")
