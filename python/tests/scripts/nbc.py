# Non-blocking collectives (MPI 4.1 §6.12) as mpi4py users write them: the results of the
# blocking ones, tested or waited, in place, several pending at once; runs under the real mpi4py too.
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
print(f"OK {rank}")
