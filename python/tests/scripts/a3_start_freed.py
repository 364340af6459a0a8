# Start/Startall on a freed persistent request: MPI.Exception ERR_REQUEST, as mpi4py
# raises. Runs under the real mpi4py too (Bcast_init where the MPI has it).
from mpi4py import MPI
import numpy as np
comm = MPI.COMM_WORLD; rank = comm.Get_rank()


def err_request(name, f):
    try:
        f()
    except MPI.Exception as e:
        assert e.Get_error_class() == MPI.ERR_REQUEST, (name, e.Get_error_class(), e)
    else:
        raise AssertionError(f"{name} did not raise")


q = comm.Send_init(np.zeros(1), dest=MPI.PROC_NULL); q.Free()
assert q == MPI.REQUEST_NULL
err_request("Start", q.Start)
err_request("Startall", lambda: MPI.Prequest.Startall([q]))
q = comm.Recv_init(np.zeros(1), source=MPI.PROC_NULL); q.Free()
err_request("Recv_init Start", q.Start)
try:
    q = comm.Bcast_init(np.zeros(1), root=0)
except NotImplementedError:
    q = None
if q is not None:
    q.Free()
    err_request("Bcast_init Start", q.Start)
print(f"OK {rank}", flush=True)
