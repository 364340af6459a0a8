# Derived datatypes as stencil codes use them: a halo exchange of columns of a 2-D
# grid with Create_subarray (C and Fortran order) and Create_hvector types in
# Sendrecv, a subarray broadcast, Create_hindexed elements sent and received.
# Runs under the real mpi4py too.
from mpi4py import MPI
import numpy as np

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
right, left = (rank + 1) % size, (rank - 1) % size
R, C = 6, 8  # 4 x 6 interior and a halo of one

grid = np.full((R, C), -1.0)
grid[1:-1, 1:-1] = rank
last = MPI.DOUBLE.Create_subarray([R, C], [R - 2, 1], [1, C - 2]).Commit()
halo = MPI.DOUBLE.Create_subarray([R, C], [R - 2, 1], [1, 0]).Commit()
assert last.Get_extent() == (0, R * C * 8) and last.Get_size() == (R - 2) * 8
comm.Sendrecv([grid, 1, last], dest=right, sendtag=1, recvbuf=[grid, 1, halo], source=left, recvtag=1)
assert (grid[1:-1, 0] == left).all(), grid
assert (grid[0, :] == -1).all() and (grid[1:-1, 1:-1] == rank).all(), grid

# The same column as a vector of doubles C * 8 bytes apart.
col = MPI.DOUBLE.Create_hvector(R - 2, 1, C * 8).Commit()
grid[1:-1, C - 1] = -1
flat = grid.reshape(-1)  # the column from (1, 1) and into (1, C - 1)
comm.Sendrecv([flat[C + 1:], 1, col], dest=left, sendtag=2,
              recvbuf=[flat[2 * C - 1:], 1, col], source=right, recvtag=2)
assert (grid[1:-1, C - 1] == right).all(), grid

# Fortran order: the same block of a column-major array.
fa = np.asfortranarray(np.arange(R * C, dtype="i").reshape(R, C)) + 1000 * rank
fsub = MPI.INT.Create_subarray([R, C], [2, 3], [1, 2], order=MPI.ORDER_FORTRAN).Commit()
got = np.zeros(6, dtype="i")
comm.Sendrecv([fa.T, 1, fsub], dest=right, sendtag=3, recvbuf=got, source=left, recvtag=3)
want = (np.arange(R * C, dtype="i").reshape(R, C) + 1000 * left)[1:3, 2:5].ravel(order="F")
assert (got == want).all(), (got, want)

# A broadcast of a 3-D block from rank 0 into everybody's array.
cube = np.arange(60.0).reshape(3, 4, 5) if rank == 0 else np.zeros((3, 4, 5))
blk = MPI.DOUBLE.Create_subarray([3, 4, 5], [1, 2, 2], [2, 1, 3]).Commit()
comm.Bcast([cube, 1, blk], root=0)
assert (cube[2, 1:3, 3:5] == np.arange(60.0).reshape(3, 4, 5)[2, 1:3, 3:5]).all(), cube
if rank != 0:
    cube[2, 1:3, 3:5] = 0
    assert (cube == 0).all(), cube

# Elements at byte displacements (Create_hindexed): 2 ints at 0 and 3 at 20.
hx = MPI.INT.Create_hindexed([2, 3], [0, 20]).Commit()
src = np.arange(10, dtype="i") + 100 * rank
dst = np.full(10, -1, dtype="i")
comm.Sendrecv([src, 1, hx], dest=right, sendtag=4, recvbuf=[dst, 1, hx], source=left, recvtag=4)
exp = np.full(10, -1, dtype="i")
exp[[0, 1, 5, 6, 7]] = (np.arange(10, dtype="i") + 100 * left)[[0, 1, 5, 6, 7]]
assert (dst == exp).all(), dst

for t in (last, halo, col, fsub, blk, hx):
    t.Free()
print(f"OK {rank}", flush=True)
