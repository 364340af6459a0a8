# Groups and Cartesian grids as mpi4py users write them (MPI 4.1 chapters 7 and 8);
# runs unchanged under the real mpi4py.
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()

# Groups: local set operations on the members, in order.
world = comm.Get_group()
assert (world.Get_size(), world.Get_rank()) == (size, rank)
evens = world.Incl(list(range(0, size, 2)))
odds = world.Excl(list(range(0, size, 2)))
assert evens.Get_size() + odds.Get_size() == size
assert MPI.Group.Compare(MPI.Group.Union(evens, odds), world) in (MPI.IDENT, MPI.SIMILAR)
assert MPI.Group.Intersection(evens, odds).Get_size() == 0
assert MPI.Group.Compare(MPI.Group.Difference(world, odds), evens) == MPI.IDENT
assert evens.Get_rank() == (rank // 2 if rank % 2 == 0 else MPI.UNDEFINED)
assert MPI.Group.Translate_ranks(evens, [0], world) == [0]
assert MPI.Group.Translate_ranks(evens, [MPI.PROC_NULL], world) == [MPI.PROC_NULL]
rev = world.Range_incl([(size - 1, 0, -1)])
assert rev.Translate_ranks([0], world) == [size - 1]
assert MPI.Group.Compare(rev, world) == (MPI.IDENT if size == 1 else MPI.SIMILAR)

# A communicator of a group: collective over comm, COMM_NULL outside the group.
sub = comm.Create(evens)
if rank % 2 == 0:
    assert sub.Get_size() == evens.Get_size() and sub.Get_rank() == rank // 2
    assert sub.allreduce(rank) == sum(range(0, size, 2))
    sub.Free()
else:
    assert sub == MPI.COMM_NULL
for g in (world, evens, odds, rev):
    g.Free()

# A Cartesian grid: dims from Compute_dims, row-major coordinates, shifts with
# PROC_NULL off non-periodic edges, sub-grids.
dims = MPI.Compute_dims(size, [0, 0])
assert dims[0] * dims[1] == size and dims[0] >= dims[1]
cart = comm.Create_cart(dims, periods=[True, False])
assert cart.Get_topology() == MPI.CART and cart.Get_dim() == 2
coords = cart.Get_coords(cart.Get_rank())
assert cart.Get_cart_rank(coords) == cart.Get_rank()
assert coords == [cart.Get_rank() // dims[1], cart.Get_rank() % dims[1]]
up, down = cart.Shift(0, 1)
assert up == cart.Get_cart_rank([(coords[0] - 1) % dims[0], coords[1]])
left, right = cart.Shift(1, 1)
assert left == (MPI.PROC_NULL if coords[1] == 0 else cart.Get_rank() - 1)
assert right == (MPI.PROC_NULL if coords[1] == dims[1] - 1 else cart.Get_rank() + 1)
got = cart.sendrecv(cart.Get_rank(), dest=down, source=up)
assert got == up
row = cart.Sub([False, True])
assert row.Get_size() == dims[1] and row.Get_rank() == coords[1]
assert row.allreduce(coords[0]) == coords[0] * dims[1]
row.Free()
dup = cart.Dup()
assert dup.Get_topology() == MPI.CART and dup.Get_topo() == cart.Get_topo()
dup.Free()
cart.Free()

# A grid smaller than the communicator: the ranks beyond it get COMM_NULL.
if size > 1:
    small = comm.Create_cart([size - 1])
    assert (small == MPI.COMM_NULL) == (rank == size - 1)
    if rank < size - 1:  # (beyond the grid Open MPI 4.1 answers the rank, not UNDEFINED)
        assert comm.Cart_map([size - 1]) == rank
    if small != MPI.COMM_NULL:
        small.Free()

# Graph topologies and neighbourhood collectives (MPI 4.1 §8.5, §8.6): a ring as a
# graph and as a distributed graph, a periodic Cartesian ring (two edges to the same
# rank when it has 2 ranks), halo exchanges with Neighbor_alltoall, Neighbor_allgather,
# their v forms, non-blocking and object forms; each block must come from its edge.
import array
ring_index = [2 * (i + 1) for i in range(size)]
ring_edges = [x for i in range(size) for x in ((i - 1) % size, (i + 1) % size)]
g = comm.Create_graph(ring_index, ring_edges)
assert g.Get_topology() == MPI.GRAPH and g.Get_neighbors(rank) == [(rank - 1) % size, (rank + 1) % size]
d = comm.Create_dist_graph_adjacent([(rank - 1) % size, (rank + 1) % size],
                                    [(rank - 1) % size, (rank + 1) % size])
assert d.Get_dist_neighbors() == ([(rank - 1) % size, (rank + 1) % size],) * 2 + (None,)
c = comm.Create_cart([size], periods=[True])
left, right = (rank - 1) % size, (rank + 1) % size
for topo in (g, d, c):
    # Send "to the left" my rank * 10, "to the right" my rank * 10 + 1: from my left
    # neighbour I get its right block, from my right neighbour its left block. (With
    # 1 or 2 ranks both edges lead to one rank, where graphs match messages in order
    # and MPIs differ for grids: checked with 3 ranks and more.)
    got = array.array("i", [-1, -1])
    topo.Neighbor_alltoall(array.array("i", [rank * 10, rank * 10 + 1]), got)
    if size >= 3:
        assert list(got) == [left * 10 + 1, right * 10], (topo.Get_topology(), list(got))
    both = array.array("i", [-1, -1])
    reqs = [topo.Ineighbor_allgather(array.array("i", [rank]), both), comm.Ibarrier()]
    while MPI.Request.Waitany(reqs) != MPI.UNDEFINED:
        pass
    assert list(both) == [left, right], list(both)
    v = array.array("i", [-1] * 5)
    topo.Neighbor_allgatherv(array.array("i", [rank] * 2), [v, ([2, 2], [0, 3]), MPI.INT])
    assert list(v) == [left, left, -1, right, right], list(v)
    assert topo.neighbor_allgather({"r": rank}) == [{"r": left}, {"r": right}]
    objs = topo.neighbor_alltoall([("to-left", rank), ("to-right", rank)])
    if size >= 3:
        assert objs == [("to-right", left), ("to-left", right)], objs
    topo.Free()
# Create_dist_graph: every rank names the edges it knows; rank r's edge r -> r+1 only.
dg = comm.Create_dist_graph([rank], [1], [(rank + 1) % size])
assert dg.Get_dist_neighbors_count() == (1, 1, False)
assert dg.Get_dist_neighbors()[:2] == ([(rank - 1) % size], [(rank + 1) % size])
x = array.array("d", [0.0])
dg.Neighbor_allgather(array.array("d", [rank + 0.5]), x)
assert x[0] == (rank - 1) % size + 0.5, x
dg.Free()

print(f"OK {rank}")
