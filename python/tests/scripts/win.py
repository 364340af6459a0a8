# One-sided communication on shared-memory windows (MPI 4.1 §12) as mpi4py users write
# it: a NumPy array every rank shares through Allocate_shared and Shared_query, puts
# and gets between fences, accumulates from every rank at once (machine and complex
# types; a user-defined op refused, as MPI does), Fetch_and_op tickets and
# Compare_and_swap between fences, an exclusive lock around a read-modify-write,
# Win.Create over each rank's own array with fences and Post/Start/Complete/Wait, and,
# under shmpi, memory that outlives Free. Runs under the real mpi4py too.
from mpi4py import MPI
import numpy as np
comm = MPI.COMM_WORLD; rank, size = comm.Get_rank(), comm.Get_size()
d = MPI.DOUBLE.Get_size()
# Rank 0 owns 2 * size + 2 doubles; the others own 4 bytes each.
win = MPI.Win.Allocate_shared((2 * size + 2) * d if rank == 0 else 4, d, comm=comm)
buf, unit = win.Shared_query(0)
assert unit == d, unit
shared = np.ndarray(buffer=buf, dtype="d", shape=(2 * size,))
if rank == 0:
    shared[:] = 0.0  # MPI leaves a window's memory uninitialized (shmpi zeroes it)
assert len(win.Shared_query(size - 1)[0]) == (4 if size > 1 else (2 * size + 2) * d)
win.Fence()
shared[rank] = rank + 0.5  # every rank writes its own element directly
win.Fence()
assert list(shared[:size]) == [r + 0.5 for r in range(size)], shared
# Put and Get through the window: rank r puts into element size + r of rank 0's part.
win.Put(np.array([10.0 * rank]), 0, target=size + rank)
win.Fence()
got = np.zeros(size)
win.Get(got, 0, target=(size, size, MPI.DOUBLE))
win.Fence()
assert list(got) == [10.0 * r for r in range(size)], got
# A target of (displacement, count): the count in the origin's datatype (the last two
# elements of rank 0's part).
if rank == 0:
    win.Put(np.array([7.0, 8.0]), 0, target=(2 * size, 2))
win.Fence()
two = np.zeros(2)
win.Get(two, 0, target=(2 * size, 2, MPI.DOUBLE))
win.Fence()
assert list(two) == [7.0, 8.0], two
# Accumulates from every rank at once into element 0: built-in SUM and a user op.
for _ in range(50):
    win.Accumulate(np.array([1.0]), 0, target=0, op=MPI.SUM)
win.Fence()
assert shared[0] == 0.5 + 50 * size, shared[0]


# A user-defined op is refused (MPI allows predefined ops only in accumulates); a type
# with no machine reduction (complex) accumulates with a predefined one.
USER = MPI.Op.Create(lambda a, b, t: None, commute=True)
try:
    win.Accumulate(np.array([2.0]), 0, target=1, op=USER)
except MPI.Exception as e:
    assert e.Get_error_class() == MPI.ERR_OP, e
else:
    raise AssertionError("Accumulate took a user-defined op")
USER.Free()
cw = MPI.Win.Allocate_shared(16 if rank == 0 else 0, 16, comm=comm)
z = np.ndarray(buffer=cw.Shared_query(0)[0], dtype="c16", shape=(1,))
if rank == 0:
    z[0] = 0
cw.Fence()
for _ in range(5):
    cw.Accumulate(np.array([complex(1, rank)]), 0, op=MPI.SUM)
cw.Fence()
assert z[0] == complex(5 * size, 5 * size * (size - 1) / 2), z
cw.Free()
# Fetch_and_op on an int64 in rank 0's part: every ticket is handed out once.
ints = MPI.Win.Allocate_shared(16 if rank == 0 else 0, 8, comm=comm)
cnt = np.ndarray(buffer=ints.Shared_query(0)[0], dtype="q", shape=(2,))
if rank == 0:
    cnt[:] = 0
ints.Fence()
mine = []
one, old = np.array([1], "q"), np.zeros(1, "q")
for _ in range(30):
    ints.Fetch_and_op(one, old, 0, 0, MPI.SUM)
    mine.append(int(old[0]))
everyone = sorted(t for ts in comm.allgather(mine) for t in ts)
assert everyone == list(range(30 * size)), everyone[:10]
# Compare_and_swap: exactly one rank swaps -1 into element 1 from 0.
ints.Fence()
res = np.zeros(1, "q")
ints.Compare_and_swap(np.array([rank + 1], "q"), np.array([0], "q"), res, 0, 1)
ints.Fence()
winners = comm.allgather(int(res[0]) == 0)
assert winners.count(True) == 1 and cnt[1] == winners.index(True) + 1, (winners, cnt)
# An exclusive lock around get-modify-put on rank 0's element 2 * size - 1.
win.Fence()
if rank == 0:
    shared[2 * size - 1] = 0.0
win.Fence()
x = np.zeros(1)
for _ in range(10):
    win.Lock(0, MPI.LOCK_EXCLUSIVE)
    win.Get(x, 0, target=2 * size - 1)
    x += 1
    win.Put(x, 0, target=2 * size - 1)
    win.Unlock(0)
comm.Barrier()
assert shared[2 * size - 1] == 10 * size, shared[2 * size - 1]
# Win.Create over each rank's own NumPy array (the tutorials' form): a ring of puts
# between fences, accumulates from everyone into rank 0's array, then Post/Start/
# Complete/Wait between neighbours.
own = np.full(size + 1, -1, dtype="i")
cw = MPI.Win.Create(own, disp_unit=own.itemsize, comm=comm)
cw.Fence()
cw.Put(np.array([rank], "i"), (rank + 1) % size, target=0)
cw.Accumulate(np.array([rank + 1], "i"), 0, target=size, op=MPI.SUM)
cw.Fence()
assert own[0] == (rank - 1) % size, own
if rank == 0:
    assert own[size] == -1 + size * (size + 1) // 2, own
cw.Fence(MPI.MODE_NOSUCCEED)
left, right = (rank - 1) % size, (rank + 1) % size
wg = cw.Get_group()
to_right, from_left = wg.Incl([right]), wg.Incl([left])
cw.Post(from_left)  # my array is exposed to my left neighbour
cw.Start(to_right)  # I write into my right neighbour's
cw.Put(np.array([100 + rank], "i"), right, target=1)
cw.Complete()
cw.Wait()
assert own[1] == 100 + left, own
for g in (to_right, from_left, wg):
    g.Free()
cw.Free()
# Free is collective; under shmpi the memory stays readable through what still
# refers to it (under other MPIs reading it after Free is an error).
keep = shared.copy()
ints.Free()
win.Free()
assert not win and win == MPI.WIN_NULL
if "shmpi" in MPI.Get_library_version():
    assert (shared == keep).all()
    # shmpi's errors: an access past a part, a freed window.
    w2 = MPI.Win.Allocate(8, 1, comm=comm)
    for bad in (lambda: w2.Put(np.zeros(2), rank), lambda: w2.Get(np.zeros(1), rank, target=1)):
        try:
            bad()
        except MPI.Exception as e:
            assert e.Get_error_class() == MPI.ERR_RMA_RANGE, e
        else:
            raise AssertionError("an access past the part")
    mem = w2.tomemory()
    mem[:] = 7
    assert bytes(mem) == b"\x07" * 8 and mem.format == "B" and len(mem) == 8
    w2.Free()
    assert mem[0] == 7, "the memory outlives Free while referenced"
    try:
        w2.Fence()
    except MPI.Exception as e:
        assert e.Get_error_class() == MPI.ERR_WIN, e
    else:
        raise AssertionError("Fence on a freed window")
print(f"OK {rank}")
