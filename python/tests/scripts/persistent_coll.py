# Persistent collectives (MPI 4.1 §6.13) as mpi4py users write them: made once with
# their buffers, started many times (each start reads the send buffers then), waited,
# tested, started together with Startall, and freed; runs under the real mpi4py too.
from mpi4py import MPI
import array
comm = MPI.COMM_WORLD; rank, size = comm.Get_rank(), comm.Get_size()
mine = array.array("i", [0, 0])
total = array.array("i", [0, 0])
ar = comm.Allreduce_init(mine, total, op=MPI.SUM)
buf = array.array("d", [0.0] * 3)
bc = comm.Bcast_init(buf, root=size - 1)
for it in range(4):
    mine[0], mine[1] = rank + it, 1
    if rank == size - 1:
        buf[0] = buf[1] = buf[2] = it + 0.5
    ar.Start()
    bc.Start()
    if it % 2:
        MPI.Request.Waitall([ar, bc])
    else:
        while not ar.Test():
            pass
        bc.Wait()
    assert list(total) == [size * (size - 1) // 2 + size * it, size], (it, total)
    assert list(buf) == [it + 0.5] * 3, (it, buf)
# Several at once through Startall: a gatherv at rank 0, a scan, a reduce-scatter
# whose counts were gathered at the init, a barrier.
cnt = [j % 3 for j in range(size)]
dsp = [sum(cnt[:j]) + j for j in range(size)]
gv = array.array("h", [-1] * (sum(cnt) + size))
part = array.array("h", [rank] * cnt[rank])
sc_in, sc_out = array.array("l", [rank + 1]), array.array("l", [0])
rs_in = array.array("q", range(sum(j + 1 for j in range(size))))
rs_out = array.array("q", [0] * (rank + 1))
reqs = [
    comm.Gatherv_init(part, [gv, (cnt, dsp), MPI.SHORT] if rank == 0 else None, root=0),
    comm.Scan_init(sc_in, sc_out, op=MPI.SUM),
    comm.Reduce_scatter_init(rs_in, rs_out),
    comm.Barrier_init(),
]
for it in range(3):
    sc_in[0] = rank + 1 + it
    MPI.Prequest.Startall(reqs)
    MPI.Request.Waitall(reqs)
    if rank == 0:
        want = array.array("h", [-1] * len(gv))
        for j in range(size):
            want[dsp[j] : dsp[j] + cnt[j]] = array.array("h", [j] * cnt[j])
        assert gv == want, (gv, want)
    assert sc_out[0] == (rank + 1) * (rank + 2) // 2 + (rank + 1) * it, (it, sc_out)
    start = rank * (rank + 1) // 2
    assert list(rs_out) == [size * k for k in range(start, start + rank + 1)], rs_out
for r in reqs + [ar, bc]:
    r.Free()
    assert not r, "a freed persistent request is null"
# A persistent reduction with a user-defined op (not commutative): rank order.
def last(inbuf, inoutbuf, datatype):
    pass  # inoutbuf = inbuf op inoutbuf = inoutbuf: the highest rank's value wins


LAST = MPI.Op.Create(last, commute=False)
x, y = array.array("i", [rank * 7]), array.array("i", [-1])
red = comm.Reduce_init(x, y if rank == 0 else None, op=LAST, root=0)
for it in range(2):
    red.Start()
    red.Wait()
    if rank == 0:
        assert y[0] == (size - 1) * 7, y
red.Free()
LAST.Free()
# A bad buffer spec fails at the init, before any start (as MPI's init calls check).
try:
    comm.Allreduce_init(array.array("i", [1]), array.array("d", [0.0]))
except ValueError:
    pass
else:
    raise AssertionError("Allreduce_init took buffers of different types")
print(f"OK {rank}")
