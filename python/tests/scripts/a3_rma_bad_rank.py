# RMA calls with a target rank outside the window's group raise MPI.Exception with
# ERR_RANK, as mpi4py does; PROC_NULL stays a no-op. Runs under the real mpi4py too.
from mpi4py import MPI
import numpy as np
comm = MPI.COMM_WORLD; rank, size = comm.Get_rank(), comm.Get_size()
buf = np.zeros(4)
win = MPI.Win.Create(buf, disp_unit=8, comm=comm)
win.Fence()


def err_rank(name, f):
    try:
        f()
    except MPI.Exception as e:
        assert e.Get_error_class() == MPI.ERR_RANK, (name, e.Get_error_class(), e)
    else:
        raise AssertionError(f"{name} did not raise")


one, res = np.ones(1), np.zeros(1)
for bad in (size, size + 3, -3):
    err_rank(f"Put({bad})", lambda: win.Put(one, bad))
    err_rank(f"Get({bad})", lambda: win.Get(res, bad))
    err_rank(f"Accumulate({bad})", lambda: win.Accumulate(one, bad, op=MPI.SUM))
    err_rank(f"Get_accumulate({bad})", lambda: win.Get_accumulate(one, res, bad, op=MPI.SUM))
    err_rank(f"Fetch_and_op({bad})", lambda: win.Fetch_and_op(one, res, bad))
    err_rank(f"Compare_and_swap({bad})", lambda: win.Compare_and_swap(one, one, res, bad))
    err_rank(f"Rput({bad})", lambda: win.Rput(one, bad))
win.Put(one, MPI.PROC_NULL)
win.Get(res, MPI.PROC_NULL)
win.Fence()
assert buf.tolist() == [0.0] * 4, buf
win.Free()
print(f"OK {rank}", flush=True)
