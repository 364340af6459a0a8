# Cancel of a non-blocking collective's request is erroneous (MPI 4.1 §6.12): mpi4py
# raises MPI.Exception ERR_REQUEST; the collective still completes. Runs under the
# real mpi4py too.
from mpi4py import MPI
import numpy as np
comm = MPI.COMM_WORLD; rank, size = comm.Get_rank(), comm.Get_size()


def err_request(name, f):
    try:
        f()
    except MPI.Exception as e:
        assert e.Get_error_class() == MPI.ERR_REQUEST, (name, e.Get_error_class(), e)
    else:
        raise AssertionError(f"{name} did not raise")


q = comm.Ibarrier()
err_request("Cancel Ibarrier", q.Cancel)
st = MPI.Status(); q.Wait(st)
assert not st.Is_cancelled()
b = np.zeros(1)
q = comm.Iallreduce(np.ones(1), b)
err_request("Cancel Iallreduce", q.Cancel)
q.Wait()
assert b.tolist() == [size], b
b = np.zeros(2, "i")
q = comm.Iallreduce(np.ones(2, "i"), b, op=MPI.Op.Create(lambda x, y, t: None, True) if False else MPI.PROD)
err_request("Cancel Iallreduce PROD", q.Cancel)
q.Wait()
assert b.tolist() == [1, 1], b
print(f"OK {rank}", flush=True)
