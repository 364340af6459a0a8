# Comm's inner-loop methods (Send, Recv, Isend, Irecv, send, recv, isend, Barrier,
# Bcast, Allgather, Alltoall, Allreduce, Reduce, the lowercase collectives) and
# Request.Waitall as mpi4py documents them: positional and keyword arguments, defaults,
# PROC_NULL, COMM_NULL and a freed communicator, communicators the program makes itself
# (Intracomm(comm), a subclass overriding a method), and MPI.pickle's settings honoured
# by the lowercase methods. Portable: it also runs under the real mpi4py
# (scripts/mpi_python_mpi4py.sh).
import array
import marshal
import pickle

from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
right, left = (rank + 1) % size, (rank - 1) % size
SHMPI = MPI.Get_library_version().startswith("shmpi")


def raises(cls, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except MPI.Exception as e:
        assert e.Get_error_class() == cls, (fn, e.Get_error_class(), cls, e)
        return
    raise AssertionError(f"{fn} did not raise error class {cls}")


# Send/Recv: positional, keywords, a status, the defaults (any source, any tag).
buf = array.array("i", [rank, 7])
got = array.array("i", [0, 0])
comm.Send(buf, right, 3)
comm.Recv(got, left, 3)
assert list(got) == [left, 7], got
st = MPI.Status()
comm.Send(buf=buf, dest=right, tag=4)
comm.Recv(buf=got, source=left, tag=4, status=st)
assert (st.source, st.tag, st.Get_count(MPI.INT)) == (left, 4, 2), st
comm.Send([buf, 1, MPI.INT], right)  # tag 0
got[0] = -1
comm.Recv(got, status=st)
assert (got[0], st.source, st.tag, st.Get_count(MPI.INT)) == (left, left, 0, 1)

# PROC_NULL: nothing moves, the receive's status is the null one.
comm.Send(buf, MPI.PROC_NULL, 5)
got[0] = 99
comm.Recv(got, MPI.PROC_NULL, 5, st)
assert got[0] == 99 and (st.source, st.tag, st.Get_count(MPI.INT)) == (MPI.PROC_NULL, MPI.ANY_TAG, 0)
comm.send({"x": 1}, dest=MPI.PROC_NULL)
assert comm.recv(source=MPI.PROC_NULL, status=st) is None and st.source == MPI.PROC_NULL

# Bad ranks and tags are MPI errors, from the native methods as from the Python ones.
raises(MPI.ERR_RANK, comm.Send, buf, size, 0)
raises(MPI.ERR_TAG, comm.Send, buf, right, -5)
raises(MPI.ERR_RANK, comm.send, 1, dest=size)
raises(MPI.ERR_ROOT, comm.Bcast, buf, size)

# Isend/Irecv: positional, keywords, the defaults (any source, any tag), the aliases;
# the requests they return are MPI.Request objects that Waitall, Wait and Test complete
# and make null, and that compare, hash and weakref as mpi4py's.
import weakref

outs = [array.array("i", [rank, t]) for t in range(4)]
ins = [array.array("i", [-1, -1]) for _ in range(4)]
rr = [
    comm.Irecv(ins[0], left, 20),
    comm.Irecv(buf=ins[1], source=left, tag=21),
    comm.Irecv(ins[2]),  # any source, any tag: the first message the others leave
    comm.Irecv([ins[3], 2, MPI.INT], left, 23),
]
sr = [
    comm.Isend(outs[0], right, 20),
    comm.Isend(buf=outs[1], dest=right, tag=21),
    comm.Irsend(outs[2], right, 22),
    comm.Ibsend(outs[3], right, 23),
]
assert all(type(r) is MPI.Request and r != MPI.REQUEST_NULL for r in rr + sr)
assert weakref.ref(rr[0])() is rr[0] and rr[0] == rr[0] and rr[0] != rr[1]
try:
    hash(rr[0])
    raise AssertionError("a request hashed")
except TypeError:
    pass
MPI.Request.Waitall(sr)
assert all(r == MPI.REQUEST_NULL and not r for r in sr)
MPI.Request.Waitall(rr[:2] + [MPI.REQUEST_NULL])
assert [list(b) for b in ins[:2]] == [[left, 0], [left, 1]] and not rr[0] and not rr[1]
rr[2].Wait(st)
assert list(ins[2]) == [left, 2] and (st.source, st.tag) == (left, 22), (ins[2], st.tag)
h = rr[3].handle  # a request with a handle is null too once completed
assert h and MPI.Request.fromhandle(h) == rr[3]
MPI.Request.Waitall([rr[3]])
assert list(ins[3]) == [left, 3] and rr[3] == MPI.REQUEST_NULL and rr[3].Test()
# Two small sends, each done as it starts: active until completed, then both null.
# In shmpi each is equal only to itself (Open MPI gives both one shared handle).
a, b = comm.Isend(outs[0], right, 25), comm.Isend(outs[1], right, 25)
assert a == a and b != MPI.REQUEST_NULL and a and b
assert a != b or not SHMPI
assert MPI.Request.Testall([a, b]) and a == b == MPI.REQUEST_NULL
comm.Recv(ins[0], left, 25)
comm.Recv(ins[1], left, 25)
assert [list(x) for x in ins[:2]] == [[left, 0], [left, 1]]
# PROC_NULL: complete at once, the receive's status the null one, its buffer untouched.
r = comm.Irecv(ins[0], MPI.PROC_NULL, 24)
r.Wait(st)
assert list(ins[0]) == [left, 0] and st.source == MPI.PROC_NULL and st.tag == MPI.ANY_TAG
assert comm.Isend(outs[0], MPI.PROC_NULL, 24).Test()
raises(MPI.ERR_RANK, comm.Isend, buf, size, 0)
raises(MPI.ERR_TAG, comm.Isend, buf, right, -5)
raises(MPI.ERR_RANK, comm.Irecv, got, size, 0)

# Lowercase send/recv with keywords and a status, and an object larger than a page.
big = {"rank": rank, "payload": list(range(5000))}
# (sendrecv: MPI may hand a large message over only to a posted receive)
out = comm.sendrecv(big, dest=right, sendtag=6, source=MPI.ANY_SOURCE, recvtag=MPI.ANY_TAG, status=st)
assert out["rank"] == left and out["payload"][-1] == 4999 and st.tag == 6
comm.send(obj=None, dest=right, tag=7)
assert comm.recv(None, left, 7) is None

# Lowercase isend: positional, keywords, the default tag, PROC_NULL, an object larger
# than one ring record; its request completes with None.
reqs = [
    comm.isend({"n": rank}, right, 12),
    comm.isend(obj=("t", rank), dest=right),
    comm.isend(list(range(20000)), right, 13),
    comm.isend("nothing", MPI.PROC_NULL, 12),
]
assert comm.recv(source=left, tag=12) == {"n": left}
assert comm.recv(source=left, tag=0) == ("t", left)
assert comm.recv(source=left, tag=13)[-1] == 19999
assert MPI.Request.waitall(reqs) == [None] * 4 and all(r == MPI.REQUEST_NULL for r in reqs)
raises(MPI.ERR_RANK, comm.isend, 1, size)
raises(MPI.ERR_TAG, comm.isend, 1, right, -3)

# MPI.pickle's protocol and functions are honoured; the default comes back after.
for protocol in (2, 4, 5):
    MPI.pickle.PROTOCOL = protocol
    comm.send(("p", rank), dest=right, tag=8)
    raw = bytearray(256)
    comm.Recv(raw, left, 8, st)
    assert raw[:2] == bytes([0x80, protocol]), (protocol, bytes(raw[:4]))
MPI.pickle.__init__(marshal.dumps, marshal.loads)
comm.send([rank, "m"], dest=right, tag=9)
raw = bytearray(256)
comm.Recv(raw, left, 9, st)
assert raw[0] != 0x80 and marshal.loads(bytes(raw[: st.Get_count()])) == [left, "m"]
comm.send([rank, "m"], dest=right, tag=9)
assert comm.recv(source=left, tag=9) == [left, "m"]
MPI.pickle.__init__()
comm.send(("back", rank), dest=right, tag=10)
comm.Recv(raw, left, 10)
assert raw[:2] == b"\x80\x05"

# bcast: the default root (0) and keywords, runs of objects of every size (a small
# one, pickles past a cache line and past 1 KiB), each root in turn; the root gets an
# equal copy, not its own object; MPI.pickle's functions are used, at the root to
# pickle and at every rank to unpickle; a root out of range is ERR_ROOT.
for i in range(300):
    root = (i // 100) % size
    objs = [None, {"a": i, "b": 3.14}, list(range(i % 40)), b"x" * (i * 7 % 3000), ("t", i)]
    sent = objs[i % len(objs)]
    if i % 3 == 0:
        back = comm.bcast(obj=sent if rank == root else None, root=root)
    elif root == 0:
        back = comm.bcast(sent if rank == root else rank)
    else:
        back = comm.bcast(sent if rank == root else rank, root)
    assert back == sent, (i, back)
    if rank == root and isinstance(sent, (dict, list)):
        assert back is not sent
calls = []
MPI.pickle.__init__(
    lambda o, *a: calls.append("dumps") or marshal.dumps(o),
    lambda b, *a: calls.append("loads") or marshal.loads(b),
)
assert comm.bcast([rank, "m"], size - 1) == [size - 1, "m"]
assert calls == (["dumps", "loads"] if rank == size - 1 else ["loads"]), calls
MPI.pickle.__init__()
raises(MPI.ERR_ROOT, comm.bcast, 1, size)
raises(MPI.ERR_ROOT, comm.bcast, 1, -1)

# allgather and allreduce of objects: rank order, the default op (SUM) and a keyword
# op, a user op, mixed ints and floats, an object past a data slot's half at one rank,
# and MPI.pickle's functions.
big = b"y" * 200_000 if rank == size - 1 else b""
assert comm.allgather(sendobj=(rank, big)) == [
    (r, b"y" * 200_000 if r == size - 1 else b"") for r in range(size)
]
assert comm.allreduce(str(rank)) == "".join(map(str, range(size)))
assert comm.allreduce(rank if rank % 2 else rank + 0.5) == sum(
    r if r % 2 else r + 0.5 for r in range(size)
)
assert comm.allreduce([rank], op=MPI.SUM) == list(range(size))
assert comm.allreduce(rank + 2, op=MPI.PROD) == eval("*".join(str(r + 2) for r in range(size)))
assert comm.allreduce(sendobj=rank, op=MPI.MAX) == size - 1
cat = MPI.Op.Create(lambda a, b, dt: f"{a}|{b}")
assert comm.allreduce(rank, cat) == ("|".join(map(str, range(size))) if size > 1 else 0)
cat.Free()
last = size - 1
want = [(r, b"y" * 200_000 if r == size - 1 else b"") for r in range(size)]
assert comm.gather((rank, big), last) == (want if rank == last else None)
assert comm.gather(sendobj=rank) == (list(range(size)) if rank == 0 else None)
assert comm.reduce(str(rank), root=last) == ("".join(map(str, range(size))) if rank == last else None)
assert comm.reduce(rank, op=MPI.MAX) == (last if rank == 0 else None)
assert comm.reduce(sendobj=rank + 2, op=MPI.PROD, root=last) == (
    eval("*".join(str(r + 2) for r in range(size))) if rank == last else None
)
cat = MPI.Op.Create(lambda a, b, dt: f"{a}|{b}")
assert comm.reduce(rank, cat, 0) == (("|".join(map(str, range(size))) if size > 1 else 0) if rank == 0 else None)
cat.Free()
raises(MPI.ERR_ROOT, comm.gather, 1, size)
raises(MPI.ERR_ROOT, comm.reduce, 1, MPI.SUM, -1)

# scatter of objects: keywords and defaults (root 0), one object past a slot's half,
# None at the root (None everywhere), any iterable, the root's copy, a wrong count
# (mpi4py's ValueError, at the root only, nothing sent), and MPI.pickle's functions.
parts = [(r, b"z" * (200_000 if r == 0 else r)) for r in range(size)]
assert comm.scatter(sendobj=parts if rank == last else None, root=last) == parts[rank]
assert comm.scatter(list(range(10, 10 + size)) if rank == 0 else None) == 10 + rank
assert comm.scatter(None, root=last) is None
assert comm.scatter((str(r) for r in range(size)) if rank == 0 else None) == str(rank)
mine = [[r] for r in range(size)]
part = comm.scatter(mine if rank == last else rank, last)
assert part == [rank] and (rank != last or part is not mine[rank]), part
if rank == last:
    try:
        comm.scatter(list(range(size + 1)), last)
    except ValueError as e:
        assert str(e) == f"expecting {size} items, got {size + 1}", e
    else:
        raise AssertionError("a scatter of size + 1 objects did not raise ValueError")
raises(MPI.ERR_ROOT, comm.scatter, [1] * size, size)

# scan and exscan of objects: the default op (SUM), a keyword op, a user op applied in
# rank order, exscan's None at rank 0.
assert comm.scan(rank + 0.5) == sum(r + 0.5 for r in range(rank + 1))
assert comm.scan(sendobj=str(rank)) == "".join(map(str, range(rank + 1)))
assert comm.scan(rank, op=MPI.MAX) == rank
assert comm.exscan(rank + 1) == (None if rank == 0 else sum(range(1, rank + 1)))
assert comm.exscan(sendobj=[rank], op=MPI.SUM) == (None if rank == 0 else list(range(rank)))
cat = MPI.Op.Create(lambda a, b, dt: f"{a}|{b}")
assert comm.scan(rank, cat) == ("|".join(map(str, range(rank + 1))) if rank else 0)
assert comm.exscan(rank, op=cat) == (None if rank == 0 else ("|".join(map(str, range(rank))) if rank > 1 else 0))
cat.Free()

# alltoall of objects: rank order, one object past a slot's half, None (None from
# every rank), any iterable, this rank's own object a copy, a wrong count (mpi4py's
# ValueError, nothing sent), and MPI.pickle's functions.
sent = [(rank, j, b"w" * (200_000 if (rank, j) == (0, last) else j)) for j in range(size)]
assert comm.alltoall(sendobj=sent) == [
    (r, rank, b"w" * (200_000 if (r, rank) == (0, last) else rank)) for r in range(size)
]
assert comm.alltoall(None) == [None] * size
assert comm.alltoall(f"{rank}>{j}" for j in range(size)) == [f"{r}>{rank}" for r in range(size)]
mine = [[rank, j] for j in range(size)]
back = comm.alltoall(mine)
assert back[rank] == [rank, rank] and back[rank] is not mine[rank], back
try:
    comm.alltoall(list(range(size + 1)))
except ValueError as e:
    assert str(e) == f"expecting {size} items, got {size + 1}", e
else:
    raise AssertionError("an alltoall of size + 1 objects did not raise ValueError")
calls = []
MPI.pickle.__init__(
    lambda o, *a: calls.append("dumps") or marshal.dumps(o),
    lambda b, *a: calls.append("loads") or marshal.loads(b),
)
assert comm.alltoall([rank] * size) == list(range(size))
assert calls == ["dumps"] * size + ["loads"] * size, calls
calls.clear()
assert comm.scatter(list(range(size)) if rank == last else None, last) == rank
assert calls == (["dumps"] * size + ["loads"] if rank == last else ["loads"]), calls
MPI.pickle.__init__()
calls = []
MPI.pickle.__init__(
    lambda o, *a: calls.append("dumps") or marshal.dumps(o),
    lambda b, *a: calls.append("loads") or marshal.loads(b),
)
assert comm.gather(rank, last) == (list(range(size)) if rank == last else None)
assert calls == (["dumps"] + ["loads"] * size if rank == last else ["dumps"]), calls
calls.clear()
assert comm.allgather(rank) == list(range(size))
assert calls == ["dumps"] + ["loads"] * size, calls
calls.clear()
assert comm.allreduce(rank) == size * (size - 1) // 2
assert "dumps" in calls and (size == 1 or "loads" in calls), calls
MPI.pickle.__init__()

# Collectives: defaults (root 0, op SUM), keywords, IN_PLACE.
x = array.array("d", [rank + 1.0])
y = array.array("d", [0.0])
comm.Allreduce(x, y)
assert y[0] == size * (size + 1) / 2
comm.Allreduce(sendbuf=x, recvbuf=y, op=MPI.MAX)
assert y[0] == size
y[0] = 0.0
comm.Reduce(x, y)  # root 0, SUM
assert y[0] == (size * (size + 1) / 2 if rank == 0 else 0.0)
comm.Reduce(x, y, op=MPI.MIN, root=size - 1)
assert rank != size - 1 or y[0] == 1.0
b = array.array("i", [rank, rank])
comm.Bcast(b)
assert list(b) == [0, 0]
b = array.array("i", [rank, rank])
comm.Bcast(buf=b, root=size - 1)
assert list(b) == [size - 1, size - 1]
for call in (lambda b: comm.Bcast(b, size - 1), lambda b: comm.Bcast(b, root=size - 1),
             lambda b: MPI.Comm.Bcast(comm, b, size - 1), lambda b: MPI.Intracomm.Bcast(comm, b, root=size - 1)):
    b = array.array("i", [rank, rank])
    call(b)
    assert list(b) == [size - 1, size - 1]


def type_error(fn, *args, **kw):
    try:
        fn(*args, **kw)
    except TypeError:
        return
    raise AssertionError(f"{fn} {args} {kw}: no TypeError")


# Bad calls raise TypeError at every rank before anything moves.
type_error(comm.Bcast)
type_error(comm.Bcast, b, 0, 1)
type_error(comm.Bcast, b, rot=0)
type_error(comm.Bcast, b, "0")
type_error(comm.Bcast, b, 0, root=0)
type_error(comm.Barrier, 1)
for call in (lambda s, r: comm.Allreduce(s, r, MPI.MAX), lambda s, r: comm.Allreduce(s, r, op=MPI.MAX),
             lambda s, r: comm.Allreduce([s, 1, MPI.DOUBLE], [r, 1, MPI.DOUBLE], MPI.MAX),
             lambda s, r: MPI.Comm.Allreduce(comm, s, r, MPI.MAX)):
    s, r = array.array("d", [rank + 1.0]), array.array("d", [0.0])
    call(s, r)
    assert r[0] == size, (r, size)
type_error(comm.Allreduce, x)
type_error(comm.Allreduce, x, y, MPI.SUM, 1)
type_error(comm.Allreduce, x, y, opp=MPI.SUM)
type_error(comm.Allreduce, x, y, MPI.SUM, op=MPI.SUM)
if SHMPI:  # mpi4py 4.1.2 does not check `self` here: a segmentation fault
    type_error(MPI.Comm.Bcast, 3, b)
g = array.array("i", [0] * size)
comm.Allgather(array.array("i", [rank * 10]), g)
assert list(g) == [10 * r for r in range(size)]
g = array.array("i", [rank * 100 + r for r in range(size)])
h = array.array("i", [0] * size)
comm.Alltoall(sendbuf=g, recvbuf=h)
assert list(h) == [r * 100 + rank for r in range(size)]
comm.Barrier()
comm.barrier()

# Hints: Dup_with_info, Set_info and Get_info take and give MPI.Info objects.
d = comm.Dup_with_info(MPI.INFO_NULL)
assert MPI.Comm.Compare(comm, d) == MPI.CONGRUENT
hints = MPI.Info.Create()
d.Set_info(hints)
in_use = d.Get_info()
assert isinstance(in_use, MPI.Info)
in_use.Free()
hints.Free()
d.Free()

# COMM_NULL and a freed communicator: MPI.ERR_COMM from every method. (shmpi only:
# MPI invokes no communicator's error handler for COMM_NULL, and Open MPI aborts.)
d = comm.Dup()
d.Free()
assert d == MPI.COMM_NULL
for c in (MPI.COMM_NULL, d) if SHMPI else ():
    raises(MPI.ERR_COMM, c.Send, buf, 0)
    raises(MPI.ERR_COMM, c.Recv, got, 0)
    raises(MPI.ERR_COMM, c.Isend, buf, 0)
    raises(MPI.ERR_COMM, c.Irecv, got, 0)
    raises(MPI.ERR_COMM, c.send, 1, 0)
    raises(MPI.ERR_COMM, c.recv)
    raises(MPI.ERR_COMM, c.Barrier)
    raises(MPI.ERR_COMM, c.Bcast, b)
    raises(MPI.ERR_COMM, c.Allreduce, x, y)
    raises(MPI.ERR_COMM, c.Allgather, x, g)


# Pickling, as mpi4py's: the predefined communicators by name, any other refused.
assert pickle.loads(pickle.dumps(comm)) == comm
assert pickle.loads(pickle.dumps(MPI.COMM_SELF)) == MPI.COMM_SELF
assert pickle.loads(pickle.dumps(MPI.COMM_NULL)) == MPI.COMM_NULL
d = comm.Dup()
try:
    pickle.dumps(d)
    raise AssertionError("a communicator of the program's was pickled")
except ValueError:
    pass
d.Free()


# A communicator object the program makes, and a subclass that overrides Send.
class Counting(MPI.Intracomm):
    sends = 0
    bcasts = 0

    def Send(self, buf, dest, tag=0):
        Counting.sends += 1
        return super().Send(buf, dest, tag)

    def Bcast(self, buf, root=0):
        Counting.bcasts += 1
        return super().Bcast(buf, root)


for c in (MPI.Intracomm(comm), Counting(comm)):
    assert c == comm and c.Get_rank() == rank
    c.Send(buf, right, 11)
    c.Recv(got, left, 11)
    assert list(got) == [left, 7]
    b = array.array("i", [rank, rank])
    c.Bcast(b, 0)
    assert list(b) == [0, 0]
assert Counting.sends == 1 and Counting.bcasts == 1

# Error handlers, as scripts set them: ERRORS_RETURN (errors raise MPI.Exception), a
# handler of the program's own invoked by Call_errhandler with the communicator and
# the code, Get_errhandler giving copies that Free makes null; predefined handlers
# pickle by name.
import pickle
d = comm.Dup()
d.Set_errhandler(MPI.ERRORS_RETURN)
got = d.Get_errhandler()
assert got == MPI.ERRORS_RETURN and got is not MPI.ERRORS_RETURN
got.Free()
assert got == MPI.ERRHANDLER_NULL and not got
calls = []
mine = MPI.Comm.Create_errhandler(lambda c, code: calls.append((c, code)))
d.Set_errhandler(mine)
d.Call_errhandler(MPI.ERR_OTHER)
assert len(calls) == 1 and isinstance(calls[0][0], MPI.Comm) and calls[0][1] == MPI.ERR_OTHER, calls
d.Set_errhandler(MPI.ERRORS_RETURN)
d.Call_errhandler(MPI.ERR_OTHER)  # returns: the error is the caller's to handle
assert len(calls) == 1
mine.Free()
try:
    d.Send([bytearray(1), 1, MPI.BYTE], size + 3, 0)
except MPI.Exception as e:
    assert e.Get_error_class() == MPI.ERR_RANK, e
else:
    raise AssertionError("a send to a rank out of range")
assert pickle.loads(pickle.dumps(MPI.ERRORS_RETURN)) is MPI.ERRORS_RETURN
d.Free()
# The predefined communicators cannot be freed (and stay usable).
for predefined in (MPI.COMM_SELF, MPI.COMM_WORLD):
    try:
        predefined.Free()
    except MPI.Exception as e:
        assert e.Get_error_class() in (MPI.ERR_COMM, MPI.ERR_ARG), e
    else:
        raise AssertionError(f"{predefined.Get_name()} was freed")
assert MPI.COMM_SELF.Get_size() == 1 and MPI.COMM_SELF.allreduce(rank) == rank
# Attributes: the predefined TAG_UB, a keyval whose value Dup copies (copy_fn True) and
# one whose delete callback runs when the communicator is freed.
assert comm.Get_attr(MPI.TAG_UB) >= 32767
deleted = []
kcopy = MPI.Comm.Create_keyval(copy_fn=True)
kdel = MPI.Comm.Create_keyval(delete_fn=lambda c, k, v: deleted.append(v))
d = comm.Dup()
d.Set_attr(kcopy, ["shared"])
d.Set_attr(kdel, "bye")
e = d.Dup()
assert e.Get_attr(kcopy) is d.Get_attr(kcopy) and e.Get_attr(kdel) is None
e.Free()
# Windows the program makes on the communicator copy none of its attributes under
# shmpi (Open MPI's MPI_Win_allocate runs their copy callbacks, duplicating the
# communicator inside).
copies = []
kwatch = MPI.Comm.Create_keyval(copy_fn=lambda c, k, v: copies.append(v) or v)
d.Set_attr(kwatch, "watched")
w = MPI.Win.Allocate(8, comm=d)
w.Free()
assert copies == [] or "shmpi" not in MPI.Get_library_version(), copies
d.Delete_attr(kwatch)
MPI.Comm.Free_keyval(kwatch)
d.Free()
assert deleted == ["bye"], deleted
MPI.Comm.Free_keyval(kcopy)
MPI.Comm.Free_keyval(kdel)
# Info: handles whose copies share the pairs, a dict-like interface, Free to null.
info = MPI.Info.Create({"striping_factor": "4"})
info["cb_nodes"] = "2"
alias = MPI.Info(info)
assert alias == info and alias.Get("cb_nodes") == "2" and info.Get_nkeys() == 2
assert info.items() == [("striping_factor", "4"), ("cb_nodes", "2")]
dup = info.Dup()
assert dup != info and dup.items() == info.items()
del info["striping_factor"]
assert "striping_factor" not in info and "striping_factor" in dup
dup.Free()
info.Free()
assert not info and info == MPI.INFO_NULL
try:
    MPI.INFO_NULL["k"] = "v"
except KeyError:
    pass
else:
    raise AssertionError("INFO_NULL took a key")
# Not spawned: the parent is a null intercommunicator.
parent = MPI.Comm.Get_parent()
assert isinstance(parent, MPI.Intercomm) and not parent and parent == MPI.COMM_NULL
# MPI 4 sessions (Open MPI 4.1 has none: mpi4py raises NotImplementedError there): the
# process sets, their groups, and a communicator made from the world's.
try:
    session = MPI.Session.Init()
except NotImplementedError:
    session = None
if session is not None:
    names = [session.Get_nth_pset(i) for i in range(session.Get_num_psets())]
    assert "mpi://WORLD" in names and "mpi://SELF" in names, names
    assert session.Get_pset_info("mpi://WORLD").Get("mpi_size") == str(size)
    g = session.Create_group("mpi://WORLD")
    assert g.Get_size() == size and g.Get_rank() == rank
    w = MPI.Intracomm.Create_from_group(g, "org.shmpi.test")
    assert w.allreduce(1) == size
    w.Free()
    # A communicator of a subgroup, made by its members alone: the odd ranks do not
    # take part (the world group's last rank and rank 0, in that order).
    ends = [size - 1, 0] if size > 1 else [0]
    if rank in ends:
        sub = MPI.Intracomm.Create_from_group(g.Incl(ends), "org.shmpi.sub")
        assert (sub.Get_size(), sub.Get_rank()) == (len(ends), ends.index(rank))
        assert sub.allgather(rank) == ends
        sub.Free()
    g.Free()
    session.Finalize()
    assert not session

# Comm.Create_group (MPI 3): made by the group's members alone; evens and odds at once,
# told apart by their tags, the odds in reverse order.
wg = comm.Get_group()
evens = list(range(0, size, 2))
odds = list(range(1, size, 2))[::-1]
mine, tag = (evens, 5) if rank % 2 == 0 else (odds, 6)
cg = comm.Create_group(wg.Incl(mine), tag)
assert (cg.Get_rank(), cg.Get_size()) == (mine.index(rank), len(mine))
assert cg.allgather(rank) == mine
assert MPI.Comm.Compare(cg, comm) == (MPI.CONGRUENT if len(mine) == size else MPI.UNEQUAL)
cg.Free()
wg.Free()

comm.Barrier()
print(f"OK {rank}")
