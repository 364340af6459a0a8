# Request.Waitall over every kind of request in one list: buffer sends and receives
# (completed in one native call), a pickle receive, a null request, a non-blocking
# collective and persistent requests (completed by their own Python code); and, as
# MPI's Waitall, every request completes before the first error is raised.
from mpi4py import MPI
import numpy as np

c = MPI.COMM_WORLD
n, me = c.size, c.rank
right, left = (me + 1) % n, (me - 1) % n

s = [np.full(4, me * 10 + k, "i") for k in range(8)]
r = [np.zeros(4, "i") for k in range(8)]
reqs = [c.Irecv(r[k], left, k) for k in range(8)] + [c.Isend(s[k], right, k) for k in range(8)]
reqs.append(c.irecv(source=left, tag=99))
c.send({"from": me}, right, 99)
reqs.append(MPI.REQUEST_NULL)
reqs.append(c.Ibarrier())
pr = np.zeros(2, "d")
ps = np.array([me, -me], "d")
persistent = [c.Recv_init(pr, left, 50), c.Send_init(ps, right, 50)]
MPI.Prequest.Startall(persistent)
reqs += persistent
assert MPI.Request.Waitall(reqs) is True
for k in range(8):
    assert list(r[k]) == [left * 10 + k] * 4, (k, r[k])
assert list(pr) == [left, -left], pr
assert not any(reqs[:-2]), reqs  # every non-persistent request is null now
assert all(persistent), persistent  # persistent ones are inactive, not freed
MPI.Prequest.Startall(persistent)
MPI.Request.Waitall(tuple(persistent))  # any sequence, as mpi4py takes
for p in persistent:
    p.Free()
MPI.Request.Waitall([])

# A receive too small for its message: the other requests of the list still complete,
# then the error is raised.
small = np.zeros(2, "i")
whole = np.zeros(8, "i")
reqs = [c.Irecv(small, left, 5), c.Irecv(whole, left, 6)]
c.Send(np.arange(8, dtype="i"), right, 5)
c.Send(np.arange(8, dtype="i") * 2, right, 6)
try:
    MPI.Request.Waitall(reqs)
except MPI.Exception as e:
    assert e.Get_error_class() == MPI.ERR_TRUNCATE, e
else:
    raise AssertionError("no truncation error")
assert list(whole) == list(range(0, 16, 2)), whole

# With statuses, each status is filled.
r2 = np.zeros(3, "i")
reqs = [c.Irecv(r2, MPI.ANY_SOURCE, 7), c.Isend(np.full(3, me, "i"), right, 7)]
sts = [MPI.Status(), MPI.Status()]
MPI.Request.Waitall(reqs, sts)
assert sts[0].Get_source() == left and sts[0].Get_tag() == 7, (sts[0].source, sts[0].tag)
assert sts[0].Get_count(MPI.INT) == 3
c.Barrier()
print(f"OK {me}")
