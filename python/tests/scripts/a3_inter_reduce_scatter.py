# Reduce_scatter_block and Reduce_scatter on an intercommunicator (MPI 4.1 §6.10):
# each group gets the reduction of the other group's send buffers, scattered in its
# group. Two groups: ranks [0, h) and [h, size). Runs under the real mpi4py too.
from mpi4py import MPI
import numpy as np
comm = MPI.COMM_WORLD; rank, size = comm.Get_rank(), comm.Get_size()
h = size // 2
color = 0 if rank < h else 1
local = comm.Split(color, rank)
ic = local.Create_intercomm(0, comm, h if color == 0 else 0, tag=7)
me, n = ic.Get_rank(), ic.Get_size()
remote = list(range(h, size)) if color == 0 else list(range(h))

if h == size - h:  # Reduce_scatter_block: equal groups, count 2 per rank
    sb = np.arange(2 * n, dtype="i") + 100 * rank
    rb = np.full(2, -1, dtype="i")
    ic.Reduce_scatter_block(sb, rb, op=MPI.SUM)
    want = sum(np.arange(2 * n, dtype="i") + 100 * r for r in remote)[2 * me: 2 * me + 2]
    assert rb.tolist() == want.tolist(), (rank, rb, want)
    rb = np.full(2, -1.0)
    ic.Reduce_scatter_block(sb.astype("d"), rb, op=MPI.MAX)
    want = (np.arange(2 * n) + 100 * max(remote))[2 * me: 2 * me + 2]
    assert rb.tolist() == want.tolist(), (rank, rb, want)

# Reduce_scatter: both groups' totals are 6 elements, cut by each group's counts.
total = 6
counts = [total // n + (1 if i < total % n else 0) for i in range(n)]
sb = np.arange(total, dtype="d") * (rank + 1)
rb = np.full(counts[me], -1.0)
ic.Reduce_scatter(sb, rb, recvcounts=counts, op=MPI.SUM)
off = sum(counts[:me])
want = sum(np.arange(total, dtype="d") * (r + 1) for r in remote)[off: off + counts[me]]
assert rb.tolist() == want.tolist(), (rank, rb, want)
ic.Free(); local.Free()
print(f"OK {rank}", flush=True)
