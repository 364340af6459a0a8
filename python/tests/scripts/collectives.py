# Collectives, lowercase and uppercase, checked against serial references at any N.
import functools
import operator

import numpy as np
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
last = size - 1


def contrib(r):
    return {"rank": r, "sq": r * r}


# ---- lowercase (pickled objects) ----
for root in {0, last}:
    obj = comm.bcast({"root": root, "data": [1, 2, 3]} if rank == root else None, root=root)
    assert obj == {"root": root, "data": [1, 2, 3]}

    parts = comm.scatter([("part", i) for i in range(size)] if rank == root else None, root=root)
    assert parts == ("part", rank)

    g = comm.gather(contrib(rank), root=root)
    assert g == ([contrib(r) for r in range(size)] if rank == root else None)

    s = comm.reduce(rank + 1, op=MPI.SUM, root=root)
    assert s == (size * (size + 1) // 2 if rank == root else None)

assert comm.allgather(contrib(rank)) == [contrib(r) for r in range(size)]
assert comm.alltoall([(rank, j) for j in range(size)]) == [(j, rank) for j in range(size)]

vals = [(r * 7) % 5 - 2 for r in range(size)]
mine = vals[rank]
assert comm.allreduce(mine) == sum(vals)
assert comm.allreduce(mine, op=MPI.MAX) == max(vals)
assert comm.allreduce(mine, op=MPI.MIN) == min(vals)
assert comm.allreduce(mine + 3, op=MPI.PROD) == functools.reduce(operator.mul, [v + 3 for v in vals])
assert comm.allreduce(rank == 0, op=MPI.LOR) is True
assert comm.allreduce(rank + 1, op=MPI.BOR) == functools.reduce(operator.or_, range(1, size + 1))
assert comm.allreduce((mine, rank), op=MPI.MAXLOC) == (max(vals), vals.index(max(vals)))
assert comm.allreduce((mine, rank), op=MPI.MINLOC) == (min(vals), vals.index(min(vals)))
# Rank order, for an op that is not commutative: string concatenation.
assert comm.allreduce(str(rank)) == "".join(str(r) for r in range(size))
assert comm.scan(str(rank)) == "".join(str(r) for r in range(rank + 1))
assert comm.exscan(str(rank)) == (None if rank == 0 else "".join(str(r) for r in range(rank)))
assert comm.allreduce([rank], op=MPI.SUM) == list(range(size))
arr = comm.allreduce(np.arange(4) * rank)
assert (arr == np.arange(4) * sum(range(size))).all()
user = MPI.Op.Create(lambda a, b, dt: a * 10 + b, commute=False)
assert comm.allreduce(rank + 1, op=user) == int("".join(str(r + 1) for r in range(size))) if size < 10 else True
comm.barrier()

# ---- uppercase (buffers) ----
for root in {0, last}:
    buf = np.arange(8, dtype="d") if rank == root else np.zeros(8)
    comm.Bcast(buf, root=root)
    assert (buf == np.arange(8)).all()

    send = np.arange(size * 3, dtype="i") if rank == root else None
    recv = np.empty(3, dtype="i")
    comm.Scatter(send, recv, root=root)
    assert (recv == np.arange(rank * 3, rank * 3 + 3)).all()

    send = np.full(2, rank, dtype="q")
    recv = np.empty(2 * size, dtype="q") if rank == root else None
    comm.Gather(send, recv, root=root)
    if rank == root:
        assert (recv == np.repeat(np.arange(size), 2)).all()

    send = np.array([rank + 1.0, 2.0 * rank])
    recv = np.zeros(2) if rank == root else None
    comm.Reduce(send, recv, op=MPI.SUM, root=root)
    if rank == root:
        assert (recv == [size * (size + 1) / 2, size * (size - 1)]).all()

    # Gatherv / Scatterv: rank r contributes r + 1 elements.
    counts = [r + 1 for r in range(size)]
    displs = [sum(counts[:r]) for r in range(size)]
    send = np.full(rank + 1, rank, dtype="i")
    recv = np.empty(sum(counts), dtype="i") if rank == root else None
    comm.Gatherv(send, [recv, counts, displs, MPI.INT] if rank == root else None, root=root)
    if rank == root:
        assert (recv == np.repeat(np.arange(size), counts)).all()
    back = np.empty(rank + 1, dtype="i")
    comm.Scatterv([recv, counts, displs, MPI.INT] if rank == root else None, back, root=root)
    assert (back == rank).all()

recv = np.empty(size, dtype="i")
comm.Allgather(np.array([rank * 2], dtype="i"), recv)
assert (recv == np.arange(size) * 2).all()

counts = [r + 1 for r in range(size)]
recv = np.empty(sum(counts), dtype="d")
comm.Allgatherv(np.full(rank + 1, float(rank)), [recv, counts])
assert (recv == np.repeat(np.arange(size), counts)).all()

send = np.array([rank * 100 + j for j in range(size)], dtype="i")
recv = np.empty(size, dtype="i")
comm.Alltoall(send, recv)
assert (recv == np.array([j * 100 + rank for j in range(size)])).all()

for dtype, op, ref in [
    ("d", MPI.SUM, lambda xs: sum(xs)),
    ("f", MPI.MAX, max),
    ("i", MPI.MIN, min),
    ("q", MPI.PROD, lambda xs: functools.reduce(operator.mul, xs)),
    ("i", MPI.BAND, lambda xs: functools.reduce(operator.and_, xs)),
    ("B", MPI.BXOR, lambda xs: functools.reduce(operator.xor, xs)),
    ("H", MPI.LOR, lambda xs: int(any(xs))),
    ("b", MPI.LAND, lambda xs: int(all(xs))),
]:
    xs = [(r * 3) % 7 + 1 for r in range(size)]
    send = np.full(5, xs[rank], dtype=dtype)
    recv = np.zeros(5, dtype=dtype)
    comm.Allreduce(send, recv, op=op)
    assert (recv == np.array(ref(xs), dtype=dtype)).all(), (dtype, op, recv, ref(xs))
    comm.Scan(send, recv, op=op)
    assert (recv == np.array(ref(xs[: rank + 1]), dtype=dtype)).all(), (dtype, op, recv)
    if rank > 0:
        recv[:] = 0
        comm.Exscan(send, recv, op=op)
        assert (recv == np.array(ref(xs[:rank]), dtype=dtype)).all(), (dtype, op, recv)
    else:
        comm.Exscan(send, recv, op=op)

# IN_PLACE.
buf = np.full(6, rank + 1, dtype="q")
comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
assert (buf == size * (size + 1) // 2).all()
big = np.full(100_000, float(rank))
comm.Allreduce(MPI.IN_PLACE, [big, MPI.DOUBLE], op=MPI.MAX)
assert (big == last).all()
buf = np.full(3, rank + 1.0)
if rank == 0:
    comm.Reduce(MPI.IN_PLACE, buf, op=MPI.SUM, root=0)
    assert (buf == size * (size + 1) / 2).all()
else:
    comm.Reduce(buf, None, op=MPI.SUM, root=0)
g = np.full(size, -1, dtype="i")
g[rank] = rank * 5
comm.Allgather(MPI.IN_PLACE, g)
assert (g == np.arange(size) * 5).all()

# None as the root's send buffer is IN_PLACE, as in mpi4py.
g = np.full(size * 2, -1, dtype="i")
if rank == 0:
    g[0:2] = 0
comm.Gather(None if rank == 0 else np.full(2, rank, dtype="i"), g if rank == 0 else None, root=0)
if rank == 0:
    assert (g == np.repeat(np.arange(size), 2)).all(), g

# v-specs: an int count is every rank's, an int displacement a stride.
stride = 3
recv = np.full(size * stride, -1, dtype="i")
comm.Allgatherv([np.full(2, rank, dtype="i"), 2, MPI.INT], [recv, (2, stride), MPI.INT])
assert all((recv[r * stride : r * stride + 2] == r).all() and recv[r * stride + 2] == -1 for r in range(size))

# Types shmpi does not reduce itself (long double, complex) are folded in Python.
ld = np.full(3, rank + 1, dtype=np.longdouble)
out = np.zeros(3, dtype=np.longdouble)
comm.Allreduce(ld, out, op=MPI.SUM)
assert (out == size * (size + 1) // 2).all()
cz = np.full(2, complex(rank, 1))
out = np.zeros(2, dtype=complex)
comm.Allreduce(cz, out, op=MPI.SUM)
assert (out == complex(sum(range(size)), size)).all()

# Emulated reductions: MAXLOC on pairs, user ops on buffers.
pairs = np.zeros(2, dtype=[("v", "f8"), ("i", "i4"), ("pad", "i4")])
pairs["v"] = [rank % 2, -rank]
pairs["i"] = rank
out = np.zeros_like(pairs)
comm.Allreduce([pairs, MPI.DOUBLE_INT], [out, MPI.DOUBLE_INT], op=MPI.MAXLOC)
assert out["v"][0] == (1 if size > 1 else 0) and out["i"][0] == (1 if size > 1 else 0)
assert out["v"][1] == 0 and out["i"][1] == 0


def add_then_double(inbuf, inoutbuf, datatype):
    a = np.frombuffer(inbuf, dtype="i")
    b = np.frombuffer(inoutbuf, dtype="i")
    b[:] = a + b


myop = MPI.Op.Create(add_then_double, commute=True)
recv = np.zeros(4, dtype="i")
comm.Allreduce(np.full(4, rank, dtype="i"), recv, op=myop)
assert (recv == sum(range(size))).all()
myop.Free()

# Communicators.
dup = comm.Dup()
assert dup.Get_size() == size and dup != comm
assert dup.allreduce(1) == size
half = comm.Split(color=rank % 2, key=-rank)
assert half.Get_size() == (size + 1 - rank % 2) // 2
assert half.allgather(rank) == sorted([r for r in range(size) if r % 2 == rank % 2], reverse=True)
none = comm.Split(color=MPI.UNDEFINED if rank == 0 else 1)
assert (none == MPI.COMM_NULL) == (rank == 0)
half.Free()
dup.Free()
assert dup == MPI.COMM_NULL
assert MPI.COMM_SELF.Get_size() == 1 and MPI.COMM_SELF.allreduce(rank) == rank

comm.Barrier()
print(f"OK {rank}")
