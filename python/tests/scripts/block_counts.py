# In Scatter, Gather, Allgather and Alltoall an explicit count in [buf, count, datatype]
# is per rank (MPI's sendcount/recvcount), as mpi4py's demo/osu_alltoall.py uses it.
from mpi4py import MPI
import numpy as np
c = MPI.COMM_WORLD; n, me = c.size, c.rank
s = np.full(4 * n, me, "B"); r = np.zeros(4 * n, "B")
c.Alltoall([s, 4, MPI.BYTE], [r, 4, MPI.BYTE])
assert list(r) == [i for i in range(n) for _ in range(4)], r
r2 = np.zeros(8 * n, "B"); r2[me * 2:(me + 1) * 2] = me
c.Allgather(MPI.IN_PLACE, [r2, 2, MPI.BYTE])
assert list(r2[: 2 * n]) == [i for i in range(n) for _ in range(2)], r2
g = np.zeros(3 * n, "i")
c.Gather(np.full(3, me, "i"), [g, 3, MPI.INT], root=0)
if me == 0: assert list(g) == [i for i in range(n) for _ in range(3)], g
x = np.zeros(2, "d")
c.Scatter([np.repeat(np.arange(n, dtype="d"), 2), 2, MPI.DOUBLE] if me == 0 else None, x, root=0)
assert list(x) == [me, me], x
print(f"OK {me}")
