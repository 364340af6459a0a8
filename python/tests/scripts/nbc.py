# Non-blocking collectives (MPI 4.1 §6.12) as mpi4py users write them: the results of the
# blocking ones, tested or waited, in place, several pending at once, at every root;
# runs under the real mpi4py too.
from mpi4py import MPI
import array
comm = MPI.COMM_WORLD; rank, size = comm.Get_rank(), comm.Get_size()
r = comm.Ibarrier(); r.Wait()
buf = array.array("d", [rank + 0.5] * 4 if rank == 0 else [0.0] * 4)
comm.Ibcast(buf, root=0).Wait()
assert list(buf) == [0.5] * 4, buf
# Send buffers live until their requests complete (MPI reads them meanwhile).
mine = array.array("i", [rank, 7])
out = array.array("i", [0] * (2 * size))
comm.Iallgather(mine, out).Wait()
assert list(out) == [x for r_ in range(size) for x in (r_, 7)], out
s = array.array("l", [0] * 3)
contrib = array.array("l", [rank + 1] * 3)
req = comm.Iallreduce(contrib, s, op=MPI.SUM)
while not req.Test():
    pass
assert list(s) == [size * (size + 1) // 2] * 3, s
m = array.array("f", [0.0] * 2)
part = array.array("f", [float(rank)] * 2)
comm.Ireduce(part, m if rank == 0 else None, op=MPI.MAX, root=0).Wait()
if rank == 0:
    assert list(m) == [float(size - 1)] * 2, m
x = array.array("i", [rank])
comm.Iallreduce(MPI.IN_PLACE, x, op=MPI.SUM).Wait()
assert x[0] == size * (size - 1) // 2
one, total = array.array("i", [1]), array.array("i", [0])
reqs = [comm.Ibarrier(), comm.Iallreduce(one, total)]
MPI.Request.Waitall(reqs)
assert total[0] == size
# Igather, Iscatter and Ialltoall, at every root, several pending at once, in place too.
last = size - 1
g = array.array("h", [-1] * (2 * size))
sc_src = array.array("q", range(3 * size))
sc = array.array("q", [-1] * 3)
a2a_src = array.array("i", [x for j in range(size) for x in (rank, j)])
a2a = array.array("i", [-1] * (2 * size))
reqs = [
    comm.Igather(array.array("h", [rank, -rank]), g if rank == last else None, root=last),
    comm.Iscatter(sc_src if rank == 0 else None, sc, root=0),
    comm.Ialltoall(a2a_src, a2a),
]
MPI.Request.Waitall(reqs)
if rank == last:
    assert list(g) == [x for r_ in range(size) for x in (r_, -r_)], g
assert list(sc) == [3 * rank, 3 * rank + 1, 3 * rank + 2], sc
assert list(a2a) == [x for i in range(size) for x in (i, rank)], a2a
for root in range(size):
    g = array.array("d", [float(rank)] * size if rank == root else [0.0] * size)
    comm.Igather(MPI.IN_PLACE if rank == root else array.array("d", [float(rank)]), g, root).Wait()
    if rank == root:
        assert list(g) == [float(r_) for r_ in range(size)], g
    src = array.array("b", [r_ * 2 for r_ in range(size)]) if rank == root else None
    mine = array.array("b", [0])
    req = comm.Iscatter([src, MPI.SIGNED_CHAR] if src is not None else None, mine, root)
    while not req.Test():
        pass
    assert mine[0] == 2 * rank, mine
# Iscan and Iexscan: rank order, in place, rank 0 of Iexscan left as it was.
sc = array.array("d", [0.0] * 2)
mine_d = array.array("d", [rank + 1.0, 2.0])
comm.Iscan(mine_d, sc).Wait()
assert list(sc) == [(rank + 1) * (rank + 2) / 2, 2.0 * (rank + 1)], sc
ex = array.array("i", [-5])
mine_i = array.array("i", [rank + 2])
comm.Iexscan(mine_i, ex, op=MPI.PROD).Wait()
want = -5
for r_ in range(rank):
    want = (r_ + 2) if r_ == 0 else want * (r_ + 2)
assert ex[0] == want, (ex, want)
mx = array.array("l", [rank % 2])
req = comm.Iscan(MPI.IN_PLACE, mx, MPI.MAX)
while not req.Test():
    pass
assert mx[0] == (1 if rank >= 1 else 0), mx
# Ireduce_scatter_block and Ireduce_scatter: this rank's block of the reduction, in
# place too (the result at the buffer's start).
blk = array.array("i", [-1] * 2)
contrib = array.array("i", [rank + k for k in range(2 * size)])
comm.Ireduce_scatter_block(contrib, blk).Wait()
assert list(blk) == [sum(r_ + 2 * rank + j for r_ in range(size)) for j in range(2)], blk
whole = array.array("d", [float(rank + k) for k in range(size)])
comm.Ireduce_scatter_block(MPI.IN_PLACE, whole, op=MPI.MAX).Wait()
assert whole[0] == float(size - 1 + rank), whole
counts = [r_ + 1 for r_ in range(size)]
mine = array.array("l", [0] * (rank + 1))
src = array.array("l", range(sum(counts)))
req = comm.Ireduce_scatter(src, mine, counts, MPI.SUM)
while not req.Test():
    pass
start = rank * (rank + 1) // 2
assert list(mine) == [size * k for k in range(start, start + rank + 1)], mine
mine = array.array("l", [0] * (rank + 1))
comm.Ireduce_scatter(src, mine).Wait()  # the counts gathered from the receive buffers
assert list(mine) == [size * k for k in range(start, start + rank + 1)], mine
inplace = array.array("i", [rank * 10 + j for j in range(size)])
comm.Ialltoall(MPI.IN_PLACE, inplace).Wait()
assert list(inplace) == [i * 10 + rank for i in range(size)], inplace
# Igatherv, Iscatterv, Iallgatherv, Ialltoallv, Ialltoallw: blocks of rank-dependent
# lengths (some empty) at displacements with gaps, which keep their values; pending at
# once and completed by Waitall; in place too.
cnt = [(2 * j + 1) % 4 for j in range(size)]
dsp = [3 * j + sum(cnt[:j]) for j in range(size)]
span = dsp[-1] + cnt[-1] + 1
whole = array.array("i", [-1] * span)
for j in range(size):
    whole[dsp[j] : dsp[j] + cnt[j]] = array.array("i", [j * 100 + k for k in range(cnt[j])])
mine = array.array("i", [rank * 100 + k for k in range(cnt[rank])])
gv = array.array("i", [-1] * span)
sv = array.array("i", [-9] * cnt[rank])
agv = array.array("i", [-1] * span)
c2 = [(rank + j) % 3 for j in range(size)]  # rank i sends (i + j) % 3 items to j
send = array.array("i", [rank * 1000 + j * 10 + k for j in range(size) for k in range(c2[j])])
rc = [(i + rank) % 3 for i in range(size)]
rd = [2 * i + sum(rc[:i]) for i in range(size)]
a2v = array.array("i", [-1] * (rd[-1] + rc[-1] + 1))
a2w = array.array("i", [-1] * len(a2v))
root = size - 1
reqs = [
    comm.Igatherv(mine, [gv, (cnt, dsp), MPI.INT] if rank == root else None, root),
    comm.Iscatterv([whole, (cnt, dsp), MPI.INT] if rank == root else None, sv, root),
    comm.Iallgatherv(mine, [agv, (cnt, dsp), MPI.INT]),
    comm.Ialltoallv([send, (c2, None), MPI.INT], [a2v, (rc, rd), MPI.INT]),
    comm.Ialltoallw([send, (c2, [4 * sum(c2[:j]) for j in range(size)]), [MPI.INT] * size],
                    [a2w, (rc, [4 * d for d in rd]), [MPI.INT] * size]),
]
MPI.Request.Waitall(reqs)
if rank == root:
    assert gv == whole, (gv, whole)
assert sv == mine, (sv, mine)
assert agv == whole, (agv, whole)
want = array.array("i", [-1] * len(a2v))
for i in range(size):
    want[rd[i] : rd[i] + rc[i]] = array.array("i", [i * 1000 + rank * 10 + k for k in range(rc[i])])
assert a2v == want, (a2v, want)
assert a2w == want, (a2w, want)
agv = array.array("i", [-1] * span)
agv[dsp[rank] : dsp[rank] + cnt[rank]] = mine
comm.Iallgatherv(MPI.IN_PLACE, [agv, (cnt, dsp), MPI.INT]).Wait()
assert agv == whole, agv
# Non-blocking reductions with a user-defined op (not commutative: rank order
# matters) and of types shmpi does not reduce itself (complex): the contributions
# gathered, then folded in rank order by the wait, test, Waitany or Waitall that
# completes the request; Ibcast of a type with holes, unpacked as it completes.
P = 1000003


def affine(inbuf, inoutbuf, datatype):
    # Pairs (a, b) are maps x -> a x + b mod P; inoutbuf = inbuf composed with it.
    i = memoryview(inbuf).cast("B").cast("q")
    o = memoryview(inoutbuf).cast("B").cast("q")
    for k in range(0, len(o), 2):
        a1, b1, a2, b2 = i[k], i[k + 1], o[k], o[k + 1]
        o[k], o[k + 1] = (a1 * a2) % P, (a1 * b2 + b1) % P


def compose(items):
    a, b = items[0]
    for a2, b2 in items[1:]:
        a, b = (a * a2) % P, (a * b2 + b) % P
    return [a, b]


AFF = MPI.Op.Create(affine, commute=False)
maps = [(r_ + 2, 3 * r_ + 1) for r_ in range(size)]
mine = array.array("q", maps[rank] * 2)
ar, rd, scn, exs = (array.array("q", [-1] * 4) for _ in range(4))
reqs = [
    comm.Iallreduce(mine, ar, op=AFF),
    comm.Ireduce(mine, rd if rank == last else None, op=AFF, root=last),
    comm.Iscan(mine, scn, op=AFF),
    comm.Iexscan(mine, exs, op=AFF),
]
done = set()
while len(done) < len(reqs):
    i = MPI.Request.Waitany(reqs)
    assert i not in done and i != MPI.UNDEFINED, (i, done)
    done.add(i)
assert list(ar) == compose(maps) * 2, ar
if rank == last:
    assert list(rd) == compose(maps) * 2, rd
assert list(scn) == compose(maps[: rank + 1]) * 2, scn
assert list(exs) == (compose(maps[:rank]) * 2 if rank else [-1] * 4), exs
blk = array.array("q", [-1] * 2)
whole = array.array("q", [x for j in range(size) for x in maps[(rank + j) % size]])
req = comm.Ireduce_scatter_block(whole, blk, op=AFF)
while not req.Test():
    pass
assert list(blk) == compose([maps[(r_ + rank) % size] for r_ in range(size)]), blk
AFF.Free()
try:
    import numpy
except ImportError:
    numpy = None
if numpy is not None:
    z = numpy.array([complex(rank, 1), complex(1, -rank)])
    zs = numpy.zeros(2, dtype=complex)
    comm.Iallreduce(z, zs, op=MPI.SUM).Wait()
    assert list(zs) == [complex(size * (size - 1) / 2, size), complex(size, -size * (size - 1) / 2)], zs
    comm.Iallreduce(MPI.IN_PLACE, z, op=MPI.PROD).Wait()
    want = numpy.prod([complex(r_, 1) for r_ in range(size)])
    assert abs(z[0] - want) < 1e-9 * max(1, abs(want)), (z, want)
vec = MPI.INT.Create_vector(3, 1, 2).Commit()
holes = array.array("i", [rank * 10 + k if rank == 0 else -1 for k in range(5)])
comm.Ibcast([holes, 1, vec], root=0).Wait()
assert list(holes) == ([0, 1, 2, 3, 4] if rank == 0 else [0, -1, 2, -1, 4]), holes
vec.Free()
print(f"OK {rank}")
