# Win.Unlock without a matching Lock is MPI.Exception ERR_RMA_SYNC, as mpi4py raises.
# Runs under the real mpi4py too.
from mpi4py import MPI
import numpy as np
comm = MPI.COMM_WORLD; rank, size = comm.Get_rank(), comm.Get_size()
buf = np.zeros(2)
win = MPI.Win.Create(buf, disp_unit=8, comm=comm)
try:
    win.Unlock((rank + 1) % size)
except MPI.Exception as e:
    assert e.Get_error_class() == MPI.ERR_RMA_SYNC, (e.Get_error_class(), e)
else:
    raise AssertionError("Unlock without Lock did not raise")
# A matched Lock/Unlock still works afterwards.
win.Lock((rank + 1) % size)
win.Unlock((rank + 1) % size)
comm.Barrier()
win.Free()
print(f"OK {rank}", flush=True)
