# A non-contiguous NumPy array as a message buffer raises BufferError, as in mpi4py.
# Runs under the real mpi4py too.
from mpi4py import MPI
import numpy as np
comm = MPI.COMM_WORLD; rank = comm.Get_rank()
a = np.arange(20.0).reshape(4, 5)[:, 1]
right, left = (rank + 1) % comm.Get_size(), (rank - 1) % comm.Get_size()
for name, f in [("Send", lambda: comm.Send(a, dest=right)),
                ("Recv", lambda: comm.Recv(a, source=left)),
                ("Bcast", lambda: comm.Bcast(a, root=0)),
                ("Allreduce", lambda: comm.Allreduce(a, np.zeros(4))),
                ("Allreduce recv", lambda: comm.Allreduce(np.zeros(4), a))]:
    try:
        f()
    except BufferError:
        pass
    else:
        raise AssertionError(f"{name} of a non-contiguous array did not raise BufferError")
comm.Barrier()
print(f"OK {rank}", flush=True)
