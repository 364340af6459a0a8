# Intercommunicators (MPI 4.1 §7.6) as mpi4py users write them: the world in two
# halves joined by Create_intercomm; point-to-point naming the other half's ranks;
# every collective with MPI's intercommunicator meaning (a rooted one's root passes
# ROOT, the rest of its half PROC_NULL, the other half the root's rank); Merge, Dup,
# Split; a bad root. Runs under the real mpi4py too. Needs 2 ranks or more.
from mpi4py import MPI
import numpy as np

world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()
low = rank < size // 2
half = world.Split(0 if low else 1, 0)
inter = half.Create_intercomm(0, world, size // 2 if low else 0, tag=7)
me, n, rn = inter.Get_rank(), inter.Get_size(), inter.Get_remote_size()
mine = list(range(size // 2)) if low else list(range(size // 2, size))
theirs = list(range(size // 2, size)) if low else list(range(size // 2))

assert inter.Is_inter() and not inter.Is_intra() and isinstance(inter, MPI.Intercomm)
assert (me, n, rn) == (half.Get_rank(), len(mine), len(theirs))
rg = inter.Get_remote_group()
assert MPI.Group.Translate_ranks(rg, list(range(rn)), world.Get_group()) == theirs
assert rg.Get_rank() == MPI.UNDEFINED

# Point to point: ranks are the other half's.
for j in range(rn):
    inter.send((rank, j), dest=j, tag=me)
for j in range(rn):
    st = MPI.Status()
    got = inter.recv(source=j, tag=MPI.ANY_TAG, status=st)
    assert got == (theirs[j], me) and st.Get_source() == j and st.Get_tag() == j, (got, st.source)
buf = np.full(4, rank, dtype="i")
r = inter.Irecv(out := np.zeros(4, dtype="i"), source=MPI.ANY_SOURCE, tag=3)
if me < rn:
    inter.Send(buf, dest=me, tag=3)
if me < n and me < rn:
    st = MPI.Status()
    r.Wait(st)
    assert st.Get_source() == me and list(out) == [theirs[me]] * 4, (st.Get_source(), out)
else:
    r.Cancel(); r.Wait()
try:
    inter.send(None, dest=rn, tag=0)
    raise AssertionError("a send past the remote group")
except MPI.Exception as e:
    assert e.Get_error_class() == MPI.ERR_RANK, e

# Rooted collectives, each root of each half in turn.
for color in (True, False):
    for root in range(size // 2 if color else size - size // 2):
        if low == color:
            r_arg = MPI.ROOT if me == root else MPI.PROC_NULL
            got = inter.bcast({"from": rank} if me == root else None, root=r_arg)
            assert got is None
            g = inter.gather(None, root=r_arg)
            assert g == (theirs if me == root else None), g
            red = inter.reduce(None, op=MPI.SUM, root=r_arg)
            assert red == (sum(theirs) if me == root else None), red
            a = np.zeros(rn * 2, dtype="d") if me == root else None
            inter.Gather(None, [a, MPI.DOUBLE] if a is not None else None, root=r_arg)
            if me == root:
                assert list(a) == [float(t) for t in theirs for _ in range(2)], a
            s = np.arange(rn * 3, dtype="i") if me == root else None
            inter.Scatter([s, MPI.INT] if s is not None else None, None, root=r_arg)
            b = np.zeros(3, dtype="i") if me == root else None
            inter.Reduce(None, [b, MPI.INT] if b is not None else None, op=MPI.MAX, root=r_arg)
            if me == root:
                assert list(b) == [max(theirs)] * 3, b
        else:
            got = inter.bcast(None, root=root)
            assert got == {"from": theirs[root]}, got
            assert inter.gather(rank, root=root) is None
            assert inter.reduce(rank, op=MPI.SUM, root=root) is None
            inter.Gather(np.full(2, rank, dtype="d"), None, root=root)
            r3 = np.zeros(3, dtype="i")
            inter.Scatter(None, r3, root=root)
            assert list(r3) == [3 * me, 3 * me + 1, 3 * me + 2], r3
            inter.Reduce(np.full(3, rank, dtype="i"), None, op=MPI.MAX, root=root)

# The others: each half gets the other half's.
assert inter.allgather(rank) == theirs
assert inter.allreduce(rank, op=MPI.SUM) == sum(theirs)
assert inter.alltoall([(rank, j) for j in range(rn)]) == [(t, me) for t in theirs]
ag = np.zeros(rn, dtype="i")
inter.Allgather(np.array([rank], dtype="i"), ag)
assert list(ag) == theirs, ag
ar = np.zeros(2, dtype="d")
inter.Allreduce(np.full(2, float(rank)), ar, op=MPI.SUM)
assert list(ar) == [float(sum(theirs))] * 2, ar
cnt = [j + 1 for j in range(rn)]
av = np.zeros(sum(cnt), dtype="i")
inter.Allgatherv(np.full(me + 1, rank, dtype="i"), [av, (cnt, None), MPI.INT])
assert list(av) == [t for j, t in enumerate(theirs) for _ in range(j + 1)], av
inter.Barrier()

# Merge (the half passing high=False first), Dup, Split.
m = inter.Merge(high=not low)
assert (m.Get_rank(), m.Get_size()) == (rank, size)
assert m.allreduce(1) == size
d = inter.Dup()
assert isinstance(d, MPI.Intercomm) and d.Get_remote_size() == rn
assert MPI.Comm.Compare(d, inter) == MPI.CONGRUENT
sp = inter.Split(0, -rank)
assert sp.Get_size() == n and sp.Get_rank() == n - 1 - me, (sp.Get_rank(), me)
for c in (d, sp, m):
    c.Free()

# A bad root.
try:
    inter.bcast(None, root=rn)
    raise AssertionError("a root past the remote group")
except MPI.Exception as e:
    assert e.Get_error_class() == MPI.ERR_ROOT, e

inter.Free()
half.Free()
print(f"OK {rank}", flush=True)
