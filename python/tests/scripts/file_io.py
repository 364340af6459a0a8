# Parallel I/O (MPI 4.1 §14) as mpi4py users write it: every rank writes its slab of
# one file at explicit offsets (collectively), reads its neighbour's back, appends
# through the shared file pointer and in rank order, through a view that skips a
# header; a file opened read-only refuses writes; a missing file fails to open at
# every rank. Runs under the real mpi4py too.
import os
import tempfile

from mpi4py import MPI
import numpy as np

comm = MPI.COMM_WORLD; rank, size = comm.Get_rank(), comm.Get_size()
path = comm.bcast(tempfile.mkdtemp(prefix="shmpi-io-") if rank == 0 else None)
name = os.path.join(path, "data.bin")
n = 4
fh = MPI.File.Open(comm, name, MPI.MODE_CREATE | MPI.MODE_RDWR)
# Slabs at explicit offsets.
fh.Write_at_all(rank * n * 8, np.arange(n, dtype="d") + 100 * rank)
fh.Sync()
comm.Barrier()
got = np.zeros(n)
other = (rank + 1) % size
st = MPI.Status()
fh.Read_at(other * n * 8, got, st)
assert list(got) == [100 * other + k for k in range(n)], got
assert st.Get_count(MPI.DOUBLE) == n, st.Get_count(MPI.DOUBLE)
assert fh.Get_size() == size * n * 8
# A view after a 16-byte header, in doubles; each rank's own file pointer.
fh.Set_view(16, MPI.DOUBLE, MPI.DOUBLE)
fh.Seek(rank * n)
fh.Write(np.full(n, float(rank)))
assert fh.Get_position() == n * (rank + 1)
fh.Sync()
comm.Barrier()
fh.Seek(other * n)
fh.Read(got)
assert list(got) == [float(other)] * n, got
# The shared file pointer: every rank appends n values; the blocks do not overlap.
fh.Seek_shared(size * n)
fh.Write_shared(np.full(n, rank + 0.5))
fh.Sync()
comm.Barrier()
every = np.zeros(size * n)
fh.Read_at(size * n, every)
blocks = sorted(every.reshape(size, n)[:, 0])
assert blocks == [r + 0.5 for r in range(size)], every
assert all((b == b[0]).all() for b in every.reshape(size, n))
# In rank order through the shared pointer (collective).
fh.Seek_shared(2 * size * n)
fh.Write_ordered(np.full(n, rank + 0.25))
fh.Sync()
comm.Barrier()
fh.Read_at(2 * size * n, every)
assert list(every) == [r + 0.25 for r in range(size) for _ in range(n)], every
fh.Close()
# Read-only: reads work, writes are refused.
ro = MPI.File.Open(comm, name, MPI.MODE_RDONLY)
head = np.zeros(1)
ro.Read_at(0, head)
try:
    ro.Write_at(0, head)
except MPI.Exception:
    pass
else:
    raise AssertionError("a write through a read-only file")
ro.Close()
comm.Barrier()
if rank == 0:
    MPI.File.Delete(name)
comm.Barrier()
try:
    MPI.File.Open(comm, name, MPI.MODE_RDONLY)
except MPI.Exception:
    pass
else:
    raise AssertionError("opened a file that is not there")
comm.Barrier()
if rank == 0:
    os.rmdir(path)
print(f"OK {rank}")
