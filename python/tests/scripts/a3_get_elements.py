# Status.Get_elements counts basic elements (MPI 4.1 §5.1.11), also when the message
# is not a whole number of the datatype. Runs under the real mpi4py too.
from mpi4py import MPI
import numpy as np
comm = MPI.COMM_WORLD; rank = comm.Get_rank()
if rank == 0:
    comm.Send(np.arange(5, dtype="d"), dest=1)
    comm.Send(np.arange(3, dtype="i"), dest=1)
    comm.Send(np.arange(4, dtype="d"), dest=1)
elif rank == 1:
    pair = MPI.DOUBLE.Create_contiguous(2).Commit()
    st = MPI.Status(); comm.Recv(np.zeros(10), 0, status=st)
    assert st.Get_count(pair) == MPI.UNDEFINED
    assert st.Get_elements(pair) == 5, st.Get_elements(pair)
    assert st.Get_elements(MPI.DOUBLE) == 5
    s = MPI.Datatype.Create_struct([1, 1], [0, 8], [MPI.INT, MPI.DOUBLE]).Commit()
    st = MPI.Status(); comm.Recv(np.zeros(10, "i"), 0, status=st)
    assert st.Get_count(s) == 1  # 12 bytes: one struct's size
    assert st.Get_elements(s) == 2, st.Get_elements(s)
    v = MPI.DOUBLE.Create_vector(3, 1, 2).Commit()  # 3 doubles, holes between
    st = MPI.Status(); comm.Recv(np.zeros(4), 0, status=st)
    assert st.Get_count(v) == MPI.UNDEFINED
    assert st.Get_elements(v) == 4, st.Get_elements(v)
    st = MPI.Status(); st.Set_elements(pair, 3)
    assert st.Get_elements(pair) == 3 and st.Get_elements(MPI.BYTE) == 24
print(f"OK {rank}", flush=True)
