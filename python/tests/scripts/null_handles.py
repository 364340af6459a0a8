# Null and predefined handles used where MPI forbids it raise MPI.Exception with the
# class mpi4py (over an MPI library) gives; user error classes and codes (MPI 4.1
# sec. 9.5); MPI.Exception's comparisons. Uses mpi4py's API only.
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank = comm.Get_rank()


def err(classes, f, *args):
    classes = classes if isinstance(classes, (list, tuple)) else [classes]
    try:
        f(*args)
    except MPI.Exception as e:
        assert e.Get_error_class() in classes, (f, e.Get_error_class(), classes, e)
    else:
        raise AssertionError(f"{f} did not raise")


err(MPI.ERR_TYPE, MPI.DATATYPE_NULL.Dup)
err(MPI.ERR_TYPE, MPI.DATATYPE_NULL.Commit)
err(MPI.ERR_TYPE, MPI.DATATYPE_NULL.Free)
for dt in (MPI.INT, MPI.DOUBLE, MPI.BYTE, MPI.DOUBLE_INT):
    err(MPI.ERR_TYPE, dt.Free)
    assert dt != MPI.DATATYPE_NULL and dt.Get_size() > 0
    dt.free()  # mpi4py's free() leaves predefined handles alone
v = MPI.INT.Create_vector(2, 1, 2).Commit()
v.Free()
# Type constructors: a null base type, a negative count or block length.
err(MPI.ERR_TYPE, MPI.DATATYPE_NULL.Create_contiguous, 2)
err(MPI.ERR_COUNT, MPI.INT.Create_contiguous, -1)
err(MPI.ERR_COUNT, MPI.INT.Create_vector, -1, 1, 1)
err(MPI.ERR_COUNT, MPI.INT.Create_hvector, -2, 1, 8)
err([MPI.ERR_ARG, MPI.ERR_COUNT], MPI.INT.Create_vector, 2, -1, 1)
err([MPI.ERR_ARG, MPI.ERR_COUNT], MPI.INT.Create_indexed, [1, -1], [0, 4])
err([MPI.ERR_ARG, MPI.ERR_COUNT], MPI.INT.Create_indexed_block, -1, [0, 4])
err([MPI.ERR_ARG, MPI.ERR_COUNT], MPI.INT.Create_hindexed, [-1], [0])
err(MPI.ERR_TYPE, MPI.Status().Get_count, MPI.DATATYPE_NULL)
err(MPI.ERR_TYPE, MPI.Status().Get_elements, MPI.DATATYPE_NULL)
err(MPI.ERR_TYPE, MPI.Status().Set_elements, MPI.DATATYPE_NULL, 0)
err(MPI.ERR_REQUEST, MPI.REQUEST_NULL.Free)
err(MPI.ERR_REQUEST, MPI.REQUEST_NULL.Cancel)
MPI.REQUEST_NULL.free()
err([MPI.ERR_OP, MPI.ERR_ARG], MPI.OP_NULL.Free)
for op in (MPI.SUM, MPI.MAX, MPI.MAXLOC, MPI.REPLACE):
    err([MPI.ERR_OP, MPI.ERR_ARG], op.Free)
    assert op != MPI.OP_NULL
uop = MPI.Op.Create(lambda a, b, t: None)
uop.Free()
for call in (MPI.INFO_NULL.Dup, MPI.INFO_NULL.Get_nkeys, MPI.INFO_NULL.Free):
    err([MPI.ERR_INFO, MPI.ERR_ARG], call)
err([MPI.ERR_INFO, MPI.ERR_ARG], MPI.INFO_NULL.Get, "k")
err([MPI.ERR_INFO, MPI.ERR_ARG], MPI.INFO_NULL.Set, "k", "v")
err([MPI.ERR_INFO, MPI.ERR_ARG], MPI.INFO_NULL.Delete, "k")
assert len(MPI.INFO_NULL) == 0 and "k" not in MPI.INFO_NULL  # the dict interface
try:
    MPI.INFO_NULL["k"]
except KeyError:
    pass
else:
    raise AssertionError("INFO_NULL['k']")
for name in ("Get_size", "Get_rank", "Is_inter", "Is_intra", "Get_group", "Get_topology", "Disconnect"):
    err(MPI.ERR_COMM, getattr(MPI.COMM_NULL, name))
err(MPI.ERR_COMM, MPI.Comm.Compare, MPI.COMM_NULL, MPI.COMM_NULL)
err(MPI.ERR_COMM, MPI.Comm.Compare, MPI.COMM_WORLD, MPI.COMM_NULL)
err(MPI.ERR_COMM, MPI.Comm.Get_parent().Is_inter)
err(MPI.ERR_SESSION, MPI.SESSION_NULL.Get_errhandler)
err(MPI.ERR_SESSION, MPI.SESSION_NULL.Set_errhandler, MPI.ERRORS_RETURN)
err([MPI.ERR_ERRHANDLER, MPI.ERR_ARG], MPI.ERRHANDLER_NULL.Free)
err([MPI.ERR_ERRHANDLER, MPI.ERR_ARG], MPI.COMM_WORLD.Set_errhandler, MPI.ERRHANDLER_NULL)
# Disconnect frees a communicator (MPI 4.1 sec. 11.10.4): collective, and the handle
# becomes COMM_NULL.
d = comm.Dup()
d.Disconnect()
assert d == MPI.COMM_NULL

# User error classes and codes: past ERR_LASTCODE, LASTUSEDCODE follows them.
c = MPI.Add_error_class()
assert c > MPI.ERR_LASTCODE and comm.Get_attr(MPI.LASTUSEDCODE) == c
assert MPI.Get_error_string(c) == "" and MPI.Get_error_class(c) == c
code = MPI.Add_error_code(c)
assert MPI.Get_error_class(code) == c and comm.Get_attr(MPI.LASTUSEDCODE) == code
MPI.Add_error_string(code, "my library's error")
e = MPI.Exception(code)
assert e.Get_error_code() == code and e.Get_error_class() == c
assert e.Get_error_string() == "my library's error" == str(e)
err(MPI.ERR_ARG, MPI.Add_error_string, MPI.ERR_RANK, "not mine")  # predefined
err(MPI.ERR_ARG, MPI.Add_error_code, c + 1000)  # not a class
err(MPI.ERR_ARG, MPI.Remove_error_class, c)  # it has a code
err(MPI.ERR_ARG, MPI.Remove_error_code, code)  # it has a string
MPI.Remove_error_string(code)
MPI.Remove_error_code(code)
err(MPI.ERR_ARG, MPI.Remove_error_code, code)
MPI.Remove_error_class(c)
err(MPI.ERR_ARG, MPI.Remove_error_class, 0)
# A user code travels like any: raised on one rank, caught with its class on another.
if comm.Get_size() > 1:
    cls2 = MPI.Add_error_class()
    if rank == 0:
        comm.send(MPI.Exception(cls2).Get_error_code(), 1)
    elif rank == 1:
        assert comm.recv(source=0) == cls2
# MPI.Exception compares and hashes as its code (mpi4py's).
s, last = MPI.Exception(MPI.SUCCESS), MPI.Exception(MPI.ERR_LASTCODE)
x = MPI.Exception(MPI.ERR_RANK)
assert s <= x <= last and x > s and s < x and x >= MPI.ERR_RANK and x == MPI.ERR_RANK
assert hash(x) == hash(MPI.ERR_RANK) and not s and x and s == MPI.Exception(0)
assert MPI.Exception(-5) == MPI.ERR_UNKNOWN
MPI.Flush_buffer()
MPI.Iflush_buffer().Wait()
comm.Barrier()
print(f"OK {rank}", flush=True)
