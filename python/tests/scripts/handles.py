# Handle conversions of every handle class (mpi4py's `handle`, `fromhandle`; `toint`
# and `py2f` are -1 where there is no C or Fortran handle, and then `fromint`/`f2py`
# give a null handle), and copies of an Op comparing equal (mpi4py compares handles).
# Uses mpi4py's API only.
import os
import pickle

from mpi4py import MPI

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
dup = comm.Dup()
objs = [comm, dup, MPI.COMM_SELF, MPI.INT, MPI.DOUBLE.Create_vector(2, 1, 2).Commit(),
        MPI.SUM, MPI.Op.Create(lambda a, b, t: None), MPI.Info.Create(), MPI.INFO_ENV,
        comm.Get_group(), MPI.GROUP_EMPTY, MPI.Session.Init(), MPI.Win.Allocate(8, comm=MPI.COMM_SELF),
        MPI.File.Open(MPI.COMM_SELF, os.devnull, MPI.MODE_RDONLY), MPI.ERRORS_RETURN]
for h in objs:
    cls = type(h)
    assert isinstance(h.handle, int) and h.handle != 0, (cls, h.handle)
    assert cls.fromhandle(h.handle) == h, cls
    assert type(cls.fromhandle(h.handle)) is cls
    assert h.handle == cls(h).handle or isinstance(h, (MPI.Datatype, MPI.Op, MPI.Group, MPI.Win, MPI.File, MPI.Errhandler))
    if h.toint() == -1:
        assert not cls.fromint(-1)
    if h.py2f() == -1:
        assert not cls.f2py(-1)
for null in (MPI.COMM_NULL, MPI.DATATYPE_NULL, MPI.OP_NULL, MPI.INFO_NULL, MPI.GROUP_NULL,
             MPI.SESSION_NULL, MPI.WIN_NULL, MPI.FILE_NULL, MPI.ERRHANDLER_NULL):
    assert null.handle == 0 and type(null).fromhandle(0) == null, type(null)
# Copies of a communicator, info or session name one handle.
assert MPI.Intracomm(comm).handle == comm.handle and MPI.Info(objs[7]).handle == objs[7].handle
# Ops: copies equal, ops made apart (a pickled user op is a new one) do not.
op = objs[6]
assert MPI.Op(op) == op and MPI.Op(MPI.SUM) == MPI.SUM and MPI.SUM != MPI.MAX
other = MPI.Op.Create(lambda a, b, t: None)
assert other != op
assert pickle.loads(pickle.dumps(MPI.SUM)) == MPI.SUM
op.Free()
assert op == MPI.OP_NULL
other.Free()
objs[12].Free()
objs[13].Close()
objs[11].Finalize()
dup.Free()
comm.Barrier()
print(f"OK {rank}", flush=True)
