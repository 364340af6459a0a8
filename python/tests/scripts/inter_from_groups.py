# Intercomm.Create_from_groups (MPI 4.1 sec. 7.6.2, mpi4py 4.1): an intercommunicator
# of two disjoint groups made by their members alone, without a parent communicator.
# Uses mpi4py's API only.
from mpi4py import MPI
import numpy as np

world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()
wg = world.Get_group()

if size >= 2:
    # Halves, each group's leader its last member.
    h = size // 2
    low, high = wg.Range_incl([(0, h - 1, 1)]), wg.Range_incl([(h, size - 1, 1)])
    mine, theirs = (low, high) if rank < h else (high, low)
    ic = MPI.Intercomm.Create_from_groups(mine, mine.Get_size() - 1, theirs, theirs.Get_size() - 1,
                                          stringtag="test.halves")
    assert ic.Is_inter() and ic.Get_rank() == mine.Get_rank()
    assert ic.Get_size() == mine.Get_size() and ic.Get_remote_size() == theirs.Get_size()
    assert MPI.Group.Compare(ic.Get_remote_group(), theirs) == MPI.IDENT
    # Point to point names the other group's ranks; a collective gives the other's data.
    me = ic.Get_rank()
    if me < ic.Get_remote_size():
        ic.send(rank, dest=me, tag=3)
    if me < ic.Get_remote_size():
        assert ic.recv(source=me, tag=3) == theirs.Translate_ranks([me], wg)[0]
    got = np.zeros(ic.Get_remote_size(), "i")
    ic.Allgather(np.array([rank], "i"), got)
    assert got.tolist() == list(theirs.Translate_ranks(list(range(theirs.Get_size())), wg))
    ic.Free()

    # Pairs at once (0,1), (2,3) ... under the same string tag, as mpi4py's test does.
    if rank < size - size % 2:
        other = rank ^ 1
        a, b = wg.Incl([rank]), wg.Incl([other])
        pc = MPI.Intercomm.Create_from_groups(a, 0, b, 0)
        assert pc.Get_size() == 1 and pc.Get_remote_size() == 1
        assert pc.sendrecv(rank, 0, source=0) == other
        pc.Free()

# Errors: overlapping groups, a leader outside its group, a rank not in the group.
def err(cls, f):
    try:
        f()
    except MPI.Exception as e:
        assert e.Get_error_class() == cls, (e.Get_error_class(), cls)
    else:
        raise AssertionError("no error")


err(MPI.ERR_GROUP, lambda: MPI.Intercomm.Create_from_groups(wg, 0, wg, 0))
err(MPI.ERR_RANK, lambda: MPI.Intercomm.Create_from_groups(wg.Incl([rank]), 1, MPI.GROUP_EMPTY, 0))
if size > 1:
    err(MPI.ERR_GROUP, lambda: MPI.Intercomm.Create_from_groups(wg.Excl([rank]), 0, wg.Incl([rank]), 0))
world.Barrier()
print(f"OK {rank}", flush=True)
