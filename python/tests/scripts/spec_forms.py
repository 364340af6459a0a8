# Buffer collectives with every spec form a program passes: the extension reads a plain
# buffer, [buf, count, datatype] and IN_PLACE itself (what mpi4py's OSU demos pass),
# the Python parser every other form; both must give MPI's results and errors.
from mpi4py import MPI
import numpy as np

c = MPI.COMM_WORLD
n, me = c.size, c.rank
root = n - 1


def expect(exc, cls, f):
    try:
        f()
    except exc as e:
        if cls is not None:
            assert e.Get_error_class() == cls, (e, e.Get_error_class())
        return
    raise AssertionError(f"no {exc.__name__} from {f}")


# Bcast: plain, counted (fewer than the buffer holds), a tuple, and [buf, datatype].
for form in ("plain", "counted", "tuple", "typed"):
    b = np.arange(6, dtype="i") * (7 if me == root else -1)
    spec = {"plain": b, "counted": [b, 4, MPI.INT], "tuple": (b, 4, MPI.INT),
            "typed": [b, MPI.INT]}[form]
    c.Bcast(spec, root=root)
    want = list(np.arange(6) * 7) if form in ("plain", "typed") else list(np.arange(4) * 7) + (
        [4 * (7 if me == root else -1), 5 * (7 if me == root else -1)])
    assert list(b) == want, (form, b, want)

# Allgather: counts per rank; IN_PLACE takes this rank's block of the receive buffer.
for form in ("plain", "counted", "in_place", "typed"):
    r = np.full(3 * n + 2, -1, "i")
    if form == "plain":
        c.Allgather(np.full(3, me, "i"), r[: 3 * n])
    elif form == "counted":
        c.Allgather([np.full(5, me, "i"), 3, MPI.INT], [r, 3, MPI.INT])
    elif form == "in_place":
        r[3 * me : 3 * me + 3] = me
        c.Allgather(MPI.IN_PLACE, [r, 3, MPI.INT])
    else:
        c.Allgather([np.full(3, me, "i"), MPI.INT], [r[: 3 * n], MPI.INT])
    assert list(r[: 3 * n]) == [i for i in range(n) for _ in range(3)], (form, r)
    assert list(r[3 * n :]) == [-1, -1], (form, r)

# Alltoall: block i to rank i.
for form in ("plain", "counted", "in_place"):
    s = np.array([100 * me + i for i in range(n) for _ in range(2)], "d")
    r = np.zeros(2 * n, "d")
    if form == "plain":
        c.Alltoall(s, r)
    elif form == "counted":
        c.Alltoall([s, 2, MPI.DOUBLE], [r, 2, MPI.DOUBLE])
    else:
        r[:] = s
        c.Alltoall(MPI.IN_PLACE, [r, 2, MPI.DOUBLE])
    assert list(r) == [100 * i + me for i in range(n) for _ in range(2)], (form, r)

# Allreduce and Reduce: built-in ops on named types (read by the extension), a user op
# and buffers whose type comes from their format (the Python path).
total = n * (n - 1) // 2
for form in ("counted", "in_place", "plain", "user_op"):
    s = np.array([me, -me, 2.5], "d")
    r = np.zeros(3, "d")
    if form == "counted":
        c.Allreduce([s, 3, MPI.DOUBLE], [r, 3, MPI.DOUBLE], MPI.SUM)
    elif form == "in_place":
        r[:] = s
        c.Allreduce(MPI.IN_PLACE, [r, 3, MPI.DOUBLE], MPI.SUM)
    elif form == "plain":
        c.Allreduce(s, r, MPI.SUM)
    else:
        def add(a, b, dt):
            x = np.frombuffer(a, "d")
            y = np.frombuffer(b, "d")
            y += x
        op = MPI.Op.Create(add, commute=True)
        c.Allreduce([s, 3, MPI.DOUBLE], [r, 3, MPI.DOUBLE], op)
        op.Free()
    assert list(r) == [total, -total, 2.5 * n], (form, r)
m = np.zeros(2, "q")
c.Allreduce([np.array([me, -me], "q"), 2, MPI.INT64_T], [m, 2, MPI.INT64_T], MPI.MAX)
assert list(m) == [n - 1, 0], m
for form in ("counted", "in_place"):
    s = np.array([me + 1, 2], "i")
    r = np.zeros(2, "i")
    if form == "counted":
        c.Reduce([s, 2, MPI.INT], [r, 2, MPI.INT] if me == root else None, MPI.PROD, root=root)
    elif me == root:
        r[:] = s
        c.Reduce(MPI.IN_PLACE, [r, 2, MPI.INT], MPI.PROD, root=root)
    else:
        c.Reduce([s, 2, MPI.INT], None, MPI.PROD, root=root)
    fact = 1
    for i in range(1, n + 1):
        fact *= i
    if me == root:
        assert list(r) == [fact, 2**n], (form, r)
    else:
        assert list(r) == [0, 0], (form, r)

# Datatypes made, used and dropped one after another (the extension remembers the last
# one it read): each spec moves its own datatype's bytes.
for k in range(6):
    dt = MPI.INT.Create_contiguous(k + 1) if k % 2 else [MPI.DOUBLE, MPI.BYTE, MPI.INT][k // 2]
    if k % 2:
        dt.Commit()
    b = np.full(64, -1, "i")
    if me == root:
        b[:] = np.arange(64)
    c.Bcast([b, 3, dt], root=root)
    moved = 3 * dt.Get_size()
    got = b.view("B")
    want = np.arange(64, dtype="i").view("B")
    assert (got[:moved] == want[:moved]).all(), (k, b)
    assert (got[moved:] == (want[moved:] if me == root else 255)).all(), (k, b)
    if k % 2:
        dt.Free()
    del dt

# One spec list used call after call and changed in between (the extension remembers
# the last count and datatype objects it read): each call moves what the list names now.
vec = MPI.INT.Create_vector(2, 1, 2).Commit()  # ints 0 and 2, extent 3 ints
b = np.zeros(8, "i")
msg = [b, 2, MPI.INT]
# (count, datatype, the bytes moved)
for count, dt, moved in ((2, MPI.INT, range(8)), (5, MPI.INT, range(20)), (5, MPI.INT, range(20)),
                         (5, MPI.SHORT, range(10)), (2, MPI.INT, range(8)),
                         (2, vec, [*range(4), *range(8, 16), *range(20, 24)])):
    msg[1], msg[2] = count, dt
    b[:] = np.arange(8) if me == root else -1
    c.Bcast(msg, root=root)
    want = np.full(32, 255, "B") if me != root else np.arange(8, dtype="i").view("B").copy()
    want[list(moved)] = np.arange(8, dtype="i").view("B")[list(moved)]
    assert (b.view("B") == want).all(), (count, dt, b)
vec.Free()

# A datatype with holes in point-to-point calls: packed on the way, unpacked into the
# receive buffer's elements (MPI's typemaps), in each spec form; Irecv of one is not
# supported and says so. Another collective than Bcast raises rather than move the
# wrong bytes.
holes = MPI.INT.Create_vector(2, 1, 2).Commit()  # ints 0 and 2, extent 3 ints
a = np.arange(9, dtype="i")
got = np.zeros(2, "i")
c.Sendrecv([a, 1, holes], me, 9, [got, 2, MPI.INT], me, 9)
assert list(got) == [0, 2], got
c.Send([a, (2, 1), holes], me, 9)  # elements 1 and 2: ints 3, 5 and 6, 8
got = np.zeros(4, "i")
st = MPI.Status()
c.Recv([got, 4, MPI.INT], me, 9, st)
assert list(got) == [3, 5, 6, 8] and st.Get_count(MPI.INT) == 4, (got, st.Get_count(MPI.INT))
back = np.full(8, -1, "i")
c.Send([np.array([10, 20, 30, 40], "i"), 4, MPI.INT], me, 9)
c.Recv([back, 2, 0, holes], me, 9)
assert list(back) == [10, -1, 20, 30, -1, 40, -1, -1], back
back = np.full(9, -1, "i")  # 3 elements; the message fills the first
c.Sendrecv([np.array([7, 8], "i"), MPI.INT], me, 9, [back, holes], me, 9)
assert list(back) == [7, -1, 8] + [-1] * 6, back
# 4 elements need 12 ints: refused, as a count past a contiguous buffer is (mpi4py 4.1.2
# reads past the buffer here).
expect(ValueError, None, lambda: c.Send([a, 4, holes], me, 9))
expect(ValueError, None, lambda: c.Send([np.arange(7, dtype="i"), holes], me, 9))  # 7 ints: no whole count
expect(NotImplementedError, None, lambda: c.Irecv([np.zeros(4, "i"), 1, holes], me, 9))
expect(NotImplementedError, None, lambda: c.Allgather([a, 1, holes], np.zeros(2 * n, "i")))
holes.Free()
dense = MPI.INT.Create_vector(2, 1, 1).Commit()
assert dense.Get_size() == dense.Get_extent()[1] == 8
c.Send([np.arange(2, dtype="i"), 1, dense], me, 9)
got = np.zeros(2, "i")
c.Recv([got, 2, MPI.INT], me, 9)
assert list(got) == [0, 1], got
dense.Free()

# A buffer exported for a call is released when it returns, also by an error: a
# bytearray can grow again after each.
ba = bytearray(8)
c.Bcast([ba, 8, MPI.BYTE], root=root)
ba.extend(b"..")
expect(ValueError, None, lambda: c.Bcast([ba, 11, MPI.BYTE], root=root))
ba.extend(b"..")
c.Send([ba, 8, MPI.BYTE], me, 5)
ba.extend(b"..")
expect(ValueError, None, lambda: c.Recv([ba, 15, MPI.BYTE], me, 5))
ba.extend(b"..")
c.Recv([ba, 8, MPI.BYTE], me, 5)
ba.extend(b"..")
assert len(ba) == 18, len(ba)

# Errors, raised at every rank before anything moves: a count past the buffer's end, a
# root out of range, a read-only receive buffer; then a collective still works.
b = np.zeros(4, "i")
expect(ValueError, None, lambda: c.Bcast([b, 5, MPI.INT], root=0))
expect(ValueError, None, lambda: c.Allgather(MPI.IN_PLACE, [np.zeros(2 * n, "i"), 3, MPI.INT]))
expect(ValueError, None, lambda: c.Alltoall([np.zeros(n, "i"), 2, MPI.INT], [np.zeros(2 * n, "i"), 2, MPI.INT]))
expect(ValueError, None, lambda: c.Allreduce([b, 5, MPI.INT], [np.zeros(5, "i"), 5, MPI.INT], MPI.SUM))
# A count whose byte length overflows: too big for the buffer, never wrapped to a small one.
expect(ValueError, None, lambda: c.Bcast([b, 2**62, MPI.INT], root=0))
expect(ValueError, None, lambda: c.Allgather([b, 2**61, MPI.INT], [np.zeros(4 * n, "i"), 2**61, MPI.INT]))
expect(ValueError, None, lambda: c.Send([b, 2**62, MPI.INT], me, 3))
expect(MPI.Exception, MPI.ERR_ROOT, lambda: c.Bcast([b, 4, MPI.INT], root=n))
expect(MPI.Exception, MPI.ERR_ROOT, lambda: c.Reduce([b, 4, MPI.INT], [np.zeros(4, "i"), 4, MPI.INT], MPI.SUM, root=-1))
# The root only reads its buffer: read-only bytes are fine there (mpi4py's rule); a
# rank that receives needs a writable one, refused before anything happens (so the
# root need not take part in that check).
got = bytearray(8) if me != 0 else b"rootdata"
c.Bcast([got, 8, MPI.BYTE], root=0)
assert bytes(got) == b"rootdata", got
if me != 0:
    expect(BufferError, None, lambda: c.Bcast([bytes(8), 8, MPI.BYTE], root=0))
expect(TypeError, None, lambda: c.Allreduce([b, 4, MPI.INT], [np.zeros(4, "i"), 4, MPI.INT], "sum"))
# A buffer without a count must split into one block per rank (mpi4py's "cannot infer
# count"), raised where the buffer is given: at every rank for Alltoall and Allgather
# (blocking, non-blocking and persistent), at the root for Gather and Scatter.
if n > 1:
    odd = lambda: np.zeros(2 * n + 1, "i")
    expect(ValueError, None, lambda: c.Alltoall(odd(), odd()))
    expect(ValueError, None, lambda: c.Alltoall(np.zeros(2 * n, "i"), odd()))
    expect(ValueError, None, lambda: c.Allgather(np.zeros(2, "i"), odd()))
    expect(ValueError, None, lambda: c.Ialltoall(odd(), odd()))
    expect(ValueError, None, lambda: c.Iallgather(np.zeros(2, "i"), odd()))
    expect(ValueError, None, lambda: c.Alltoall_init(odd(), odd()))
    if me == 0:
        expect(ValueError, None, lambda: c.Gather(np.zeros(2, "i"), odd(), root=0))
        expect(ValueError, None, lambda: c.Scatter(odd(), np.zeros(2, "i"), root=0))
        expect(ValueError, None, lambda: c.Igather(np.zeros(2, "i"), odd(), root=0))
        expect(ValueError, None, lambda: c.Iscatter(odd(), np.zeros(2, "i"), root=0))
x = np.array([me], "i")
c.Allreduce(MPI.IN_PLACE, [x, 1, MPI.INT], MPI.SUM)
assert x[0] == total, x
print(f"OK {me}")
