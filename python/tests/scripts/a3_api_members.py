# mpi4py API members: Datatype true bounds, Create_dup, Pack/Unpack/Pack_size,
# Group.Intersect, Topocomm degrees and edges, MPI.Pcontrol, MPI.WIN_FLAVOR and the
# RMA error classes. The values are those the real mpi4py gives; runs under it too.
from mpi4py import MPI
import numpy as np
comm = MPI.COMM_WORLD; rank, size = comm.Get_rank(), comm.Get_size()
v = MPI.DOUBLE.Create_vector(3, 2, 4).Commit()
assert (v.true_lb, v.true_ub, v.true_extent) == (0, 80, 80)
r = v.Create_resized(0, 100).Commit()
assert (r.true_lb, r.true_ub, r.true_extent, r.extent) == (0, 80, 80, 100)
assert r.Get_true_extent() == (0, 80)
assert (MPI.INT.true_lb, MPI.INT.true_ub, MPI.INT.true_extent) == (0, 4, 4)
d = v.Create_dup()
assert (d.size, d.extent) == (48, 80)
assert v.Pack_size(1, comm) == 48 and v.Pack_size(3, comm) == 144
assert MPI.INT.Pack_size(5, comm) == 20
out = bytearray(64)
pos = v.Pack(np.arange(10.0), out, 0, comm)
assert pos == 48 and np.frombuffer(out[:48]).tolist() == [0, 1, 4, 5, 8, 9]
pos = MPI.INT.Pack(np.array([7, 8], "i"), out, pos, comm)
assert pos == 56
dst = np.zeros(10)
assert v.Unpack(out, 0, dst, comm) == 48
assert dst.tolist() == [0, 1, 0, 0, 4, 5, 0, 0, 8, 9]
ints = np.zeros(2, "i")
assert MPI.INT.Unpack(out, 48, ints, comm) == 56 and ints.tolist() == [7, 8]
for name, f in [("Pack", lambda: v.Pack(np.arange(10.0), bytearray(10), 0, comm)),
                ("Unpack", lambda: v.Unpack(bytearray(10), 0, dst, comm))]:
    try:
        f()
    except MPI.Exception:
        pass
    else:
        raise AssertionError(f"{name} past the end did not raise")
g = comm.Get_group()
assert MPI.Group.Intersect(g, g).Get_size() == size
cart = comm.Create_cart([size], periods=[True])
assert cart.degrees == (2, 2) and cart.indegree == 2 and cart.outdegree == 2
assert cart.inoutedges == (cart.inedges, cart.outedges)
dg = comm.Create_dist_graph_adjacent([rank], [rank, rank])
assert dg.degrees == (1, 2) and dg.inoutedges == ([rank], [rank, rank])
assert MPI.Pcontrol(1) is None and MPI.Pcontrol(0) is None
assert MPI.WIN_FLAVOR == MPI.WIN_CREATE_FLAVOR
assert len({MPI.ERR_RMA_SYNC, MPI.ERR_RMA_RANGE, MPI.ERR_RMA_ATTACH, MPI.ERR_RMA_SHARED, MPI.ERR_RMA_FLAVOR}) == 5
win = MPI.Win.Allocate(8, comm=comm)
assert win.Get_attr(MPI.WIN_FLAVOR) == MPI.WIN_FLAVOR_ALLOCATE
win.Free()
print(f"OK {rank}", flush=True)
