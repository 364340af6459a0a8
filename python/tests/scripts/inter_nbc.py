# Non-blocking and persistent collectives on an intercommunicator (MPI 4.1 sec. 6.12,
# 6.13, with the intercommunicator meaning of sec. 6.2.2): each group gets the other
# group's contributions. Two groups: ranks [0, h) and [h, size), h = size // 2 (with
# 3 and 5 ranks the groups differ in size). Every expected value is MPI's, and the
# script uses mpi4py's API only.
from mpi4py import MPI
import numpy as np

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
h = size // 2
color = 0 if rank < h else 1
local = comm.Split(color, rank)
ic = local.Create_intercomm(0, comm, h if color == 0 else 0, tag=7)
me, n, r = ic.Get_rank(), ic.Get_size(), ic.Get_remote_size()
remote = list(range(h, size)) if color == 0 else list(range(h))


def raises(cls, f):
    try:
        f()
    except cls:
        return
    raise AssertionError(f"{f} did not raise {cls.__name__}")


# -- reduce-scatter: without recvcounts, mpi4py's TypeError (it infers them on an
#    intracommunicator only), before any message moves --
sb, rb = np.zeros(n, "d"), np.zeros(1, "d")
raises(TypeError, lambda: ic.Reduce_scatter(sb, rb))
raises(TypeError, lambda: ic.Ireduce_scatter(sb, rb))
raises(TypeError, lambda: ic.Reduce_scatter_init(sb, rb))

# -- Ireduce_scatter: the reduction of the other group's send buffers, counts[i]
#    elements of it to rank i of this group; both groups' totals are 7 --
total = 7
counts = [total // n + (1 if i < total % n else 0) for i in range(n)]
off = sum(counts[:me])
sb = np.arange(total, dtype="d") * (rank + 1)
rb = np.full(counts[me], -1.0)
# The call returns without waiting for the other group: the other group's rank 0
# starts its part only after a message that the low group's rank 0 sends after its
# call (a call that waited for the other group would never return).
if color == 1 and me == 0:
    assert ic.recv(source=0, tag=5) == ("ping", 0)
req = ic.Ireduce_scatter(sb, rb, counts, MPI.SUM)
if color == 0 and me == 0:
    ic.send(("ping", rank), dest=0, tag=5)
req.Wait()
want = sum(np.arange(total, dtype="d") * (x + 1) for x in remote)[off:off + counts[me]]
assert rb.tolist() == want.tolist(), (rank, rb, want)

# -- Ireduce_scatter_block: send buffers of n * count elements (n: this group's
#    size), count = total // n; the totals agree: 2 * h * (size - h) --
total = 2 * h * (size - h)
cnt = total // n
sb = (np.arange(total) + 1000 * rank).astype("i")
rb = np.full(cnt, -1, "i")
ic.Ireduce_scatter_block(sb, rb, MPI.MAX).Wait()
want = (np.arange(total) + 1000 * max(remote))[me * cnt:(me + 1) * cnt]
assert rb.tolist() == want.tolist(), (rank, rb, want)
# The blocking form gives the same.
rb2 = np.full(cnt, -1, "i")
ic.Reduce_scatter_block(sb, rb2, MPI.MAX)
assert rb2.tolist() == rb.tolist()

# -- a user-defined op is applied in the other group's rank order --
def digits(a, b, dt):
    x = np.frombuffer(a, "i")
    y = np.frombuffer(b, "i")
    y[:] = x * 10 + y


op = MPI.Op.Create(digits, commute=False)
sb = np.full(n * r, rank + 1, "i")  # both groups' totals: n * r
rb = np.full(r, -1, "i")
ic.Ireduce_scatter(sb, rb, [r] * n, op).Wait()
acc = 0
for x in remote:
    acc = acc * 10 + x + 1
assert rb.tolist() == [acc] * r, (rank, rb, acc)
op.Free()

# -- persistent forms: made once, each Start reads the send buffer then --
total = 5
counts = [total // n + (1 if i < total % n else 0) for i in range(n)]
off = sum(counts[:me])
sb = np.zeros(total, "d")
rb = np.full(counts[me], -1.0)
p = ic.Reduce_scatter_init(sb, rb, counts, MPI.SUM)
total_b = 2 * h * (size - h)
cnt = total_b // n
sbb = np.zeros(total_b, "l")
rbb = np.zeros(cnt, "l")
pb = ic.Reduce_scatter_block_init(sbb, rbb, MPI.SUM)
for it in range(3):
    sb[:] = np.arange(total) + 100 * it + rank
    sbb[:] = np.arange(total_b) * (it + 1) + rank
    MPI.Prequest.Startall([p, pb])
    MPI.Request.Waitall([p, pb])
    want = sum(np.arange(total) + 100 * it + x for x in remote)[off:off + counts[me]]
    assert rb.tolist() == want.tolist(), (rank, it, rb, want)
    want = sum(np.arange(total_b) * (it + 1) + x for x in remote)[me * cnt:(me + 1) * cnt]
    assert rbb.tolist() == want.tolist(), (rank, it, rbb, want)
p.Free()
pb.Free()

# -- the other non-blocking collectives: rooted ones from rank 0 of group 1 --
root = MPI.ROOT if (color == 1 and me == 0) else (MPI.PROC_NULL if color == 1 else 0)
buf = np.arange(4, dtype="d") if root == MPI.ROOT else np.full(4, -1.0)
ic.Ibcast(buf, root=root).Wait()
if color == 0:
    assert buf.tolist() == [0.0, 1.0, 2.0, 3.0]

rbuf = np.full(1, -1.0)
req = ic.Ireduce(np.array([rank + 1.0]), rbuf if root == MPI.ROOT else None, MPI.SUM, root=root)
req.Wait()
if root == MPI.ROOT:
    assert rbuf[0] == sum(x + 1 for x in remote), rbuf

g = np.full(r, -1, "i")
ic.Igather(np.array([rank], "i"), g if root == MPI.ROOT else None, root=root).Wait()
if root == MPI.ROOT:
    assert g.tolist() == remote, g

s = np.full(1, -1, "i")
ic.Iscatter(np.array(remote, "i") * 2 if root == MPI.ROOT else None, s, root=root).Wait()
if color == 0:
    assert s[0] == 2 * rank, s

a = np.full(r, -1, "i")
ic.Iallgather(np.array([rank], "i"), a).Wait()
assert a.tolist() == remote, a

x = np.full(r, -1, "i")
ic.Ialltoall(np.array([100 * rank + j for j in range(r)], "i"), x).Wait()
assert x.tolist() == [100 * q + me for q in remote], x

ar = np.full(2, -1.0)
ic.Iallreduce(np.array([rank, 1.0]), ar, MPI.SUM).Wait()
assert ar.tolist() == [float(sum(remote)), float(r)], ar

# -- two outstanding collectives on the intercommunicator, completed in reverse --
x1, x2 = np.full(r, -1, "i"), np.full(r, -1, "i")
q1 = ic.Iallgather(np.array([rank], "i"), x1)
q2 = ic.Iallgather(np.array([-rank], "i"), x2)
q2.Wait()
q1.Wait()
assert x1.tolist() == remote and x2.tolist() == [-q for q in remote], (x1, x2)

# -- persistent Bcast and Allreduce --
pbuf = np.zeros(3, "d")
pb = ic.Bcast_init(pbuf, root=root)
pin, pout = np.zeros(1), np.zeros(1)
pa = ic.Allreduce_init(pin, pout, MPI.MAX)
for it in range(2):
    if root == MPI.ROOT:
        pbuf[:] = it + 1
    pin[0] = rank * (it + 1)
    pb.Start()
    pa.Start()
    MPI.Request.Waitall([pb, pa])
    if color == 0:
        assert pbuf.tolist() == [it + 1.0] * 3, pbuf
    assert pout[0] == max(remote) * (it + 1), pout
pb.Free()
pa.Free()

# -- scans are not defined on an intercommunicator --
for f in (lambda: ic.Iscan(np.zeros(1), np.zeros(1)), lambda: ic.Iexscan(np.zeros(1), np.zeros(1))):
    try:
        f()
    except MPI.Exception as e:
        assert e.Get_error_class() == MPI.ERR_COMM, e
    else:
        raise AssertionError("scan on an intercommunicator did not raise")

ic.Barrier()
ic.Free()
local.Free()
print(f"OK {rank}", flush=True)
