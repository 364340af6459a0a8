# Generalized requests (MPI 4.1 sec. 13.2, mpi4py's MPI.Grequest): an operation the
# program runs itself (here in a thread) and completes with Complete; waited on and
# tested with the other requests. Uses mpi4py's API only.
import threading
import time

from mpi4py import MPI
import numpy as np

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
right, left = (rank + 1) % size, (rank - 1) % size
log = []


def query(status, name):
    log.append(("query", name))
    status.Set_source(rank)
    status.Set_tag(99)
    status.Set_elements(MPI.BYTE, 5)


def free(name):
    log.append(("free", name))


def cancel(completed, name):
    log.append(("cancel", name, completed))


# -- a worker thread completes it; Wait returns then, with query_fn's status --
result = []
greq = MPI.Grequest.Start(query, free, cancel, args=("work",))
assert not greq.Test()


def work():
    time.sleep(0.05)
    result.append(sum(range(1000)))
    greq.Complete()


t = threading.Thread(target=work)
t.start()
st = MPI.Status()
greq.Wait(st)
t.join()
assert result == [499500]
assert (st.Get_source(), st.Get_tag(), st.Get_count(MPI.BYTE)) == (rank, 99, 5), st
assert not st.Is_cancelled()
assert log == [("query", "work"), ("free", "work")], log
assert not greq  # REQUEST_NULL once waited on

# -- Waitall over it and a real receive; lowercase waitall returns complete()'s object --
log.clear()
g = MPI.Grequest.Start(query, free, None, kwargs={"name": "mixed"})
comm.Isend(np.full(3, rank, "i"), right, 1).Wait()
buf = np.zeros(3, "i")
rr = comm.Irecv(buf, left, 1)
threading.Timer(0.02, lambda: g.complete({"answer": 42})).start()
objs = MPI.Request.waitall([g, rr])
assert objs[0] == {"answer": 42}, objs
assert buf.tolist() == [left] * 3
assert log == [("query", "mixed"), ("free", "mixed")], log

# -- Waitany picks whichever completes --
a = MPI.Grequest.Start()
b = MPI.Grequest.Start()
b.Complete()
i = MPI.Request.Waitany([a, b])
assert i == 1, i
a.Complete()
assert MPI.Request.Waitany([a, b]) == 0

# -- Free before Complete: free_fn runs at Complete (MPI's rule), once --
log.clear()
g = MPI.Grequest.Start(query, free, cancel, args=("early",))
keep = MPI.Grequest(g)
g.Free()
assert log == [], log
keep.Complete()
assert log == [("free", "early")], log

# -- Cancel calls cancel_fn with whether it completed --
log.clear()
g = MPI.Grequest.Start(query, free, cancel, args=("c",))
g.Cancel()
g.Complete()
g.Cancel()
g.Wait()
assert log == [("cancel", "c", False), ("cancel", "c", True), ("query", "c"), ("free", "c")], log

# -- a callback's error: MPI.Exception of its class, ERR_OTHER for any other --
def bad_query(status):
    raise MPI.Exception(MPI.ERR_BUFFER)


g = MPI.Grequest.Start(bad_query)
g.Complete()
try:
    g.Wait()
except MPI.Exception as e:
    assert e.Get_error_class() == MPI.ERR_BUFFER
else:
    raise AssertionError("query_fn's error was lost")
if g:
    g.Free()
g = MPI.Grequest.Start(None, lambda: 1 / 0)
g.Complete()
try:
    g.Wait()
except MPI.Exception as e:
    assert e.Get_error_class() == MPI.ERR_OTHER
else:
    raise AssertionError("free_fn's error was lost")
if g:
    g.Free()
comm.Barrier()
print(f"OK {rank}", flush=True)
