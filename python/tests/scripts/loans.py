"""Zero-copy loans from Python (shmpi.loans), at any number of ranks: a ring of
loans, loans received with ANY_SOURCE, a stream of loans larger in all than the
pool (its memory must come back as views are released), and the rules (no send
while an export is alive, nothing lost on a wrong rank or tag, a loan spent once
sent, views read-only, a message that is not a loan left queued). Under the real
mpi4py (scripts/mpi_python_mpi4py.sh) the same calls copy, and the rules that are
shmpi's alone are skipped."""

import numpy as np
from mpi4py import MPI

from shmpi import loans

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
shm = loans._raw(comm) is not None
# shmpi's own loans under shmpi's MPI, the copying fallback under another MPI's.
assert shm == MPI.__name__.startswith("shmpi"), MPI.__name__


def pattern(src, n, salt=0):
    return (np.arange(n, dtype=np.int64) * 7 + src * 1000 + salt).astype(np.int64)


# 1. A ring: each rank loans a buffer, fills it in place and sends it to the next.
n = 4096
buf = loans.loan(comm, n * 8)
a = np.frombuffer(buf, dtype=np.int64)
a[:] = pattern(rank, n)
del a
loans.send_loan(comm, buf, (rank + 1) % size, 5)
st = MPI.Status()
view = loans.recv_loan(comm, (rank - 1) % size, 5, st)
assert len(view) == n * 8
assert (st.Get_source(), st.Get_tag(), st.Get_count(MPI.BYTE)) == ((rank - 1) % size, 5, n * 8)
got = np.frombuffer(view, dtype=np.int64)
assert not got.flags.writeable
assert np.array_equal(got, pattern((rank - 1) % size, n))
del got
if shm:
    view.release()
    assert not view.valid

# 2. ANY_SOURCE: rank 0 receives one loan from every other rank, any order.
comm.Barrier()
if rank == 0:
    seen = set()
    for _ in range(size - 1):
        st = MPI.Status()
        v = loans.recv_loan(comm, MPI.ANY_SOURCE, 9, st)
        src = st.Get_source()
        assert st.Get_tag() == 9 and st.Get_count(MPI.BYTE) == 800
        assert np.array_equal(np.frombuffer(v, dtype=np.int64), pattern(src, 100, 1))
        seen.add(src)
    assert seen == set(range(1, size)), seen
else:
    b = loans.loan(comm, 800)
    memoryview(b).cast("q")[:] = memoryview(pattern(rank, 100, 1)).cast("B").cast("q")
    loans.send_loan(comm, b, 0, 9)

# 3. A stream of 1 MiB loans, 300 MiB in all, more than any rank's pool: the memory
#    comes back to the sender as the receiver releases each view.
comm.Barrier()
if size >= 2 and rank in (0, 1):
    if rank == 1:
        for i in range(300):
            b = loans.loan(comm, 1 << 20)
            memoryview(b)[:8] = i.to_bytes(8, "little")
            loans.send_loan(comm, b, 0, 11)
    else:
        for i in range(300):
            v = loans.recv_loan(comm, 1, 11)
            with memoryview(v) as m:
                assert int.from_bytes(m[:8], "little") == i
            if shm:
                with v:
                    pass

# 4. The rules, which only shmpi's loans have.
comm.Barrier()
if shm:
    me = comm.Get_rank()
    b = loans.loan(comm, 64)
    m = memoryview(b)
    m[:5] = b"hello"
    try:
        loans.send_loan(comm, b, me, 3)
        raise AssertionError("a loan was sent while a memoryview of it was alive")
    except BufferError:
        pass
    m.release()
    for dest, tag, cls in ((size, 3, MPI.ERR_RANK), (-7, 3, MPI.ERR_RANK), (me, -2, MPI.ERR_TAG)):
        try:
            loans.send_loan(comm, b, dest, tag)
            raise AssertionError(f"send_loan to rank {dest} tag {tag} succeeded")
        except MPI.Exception as e:
            assert e.Get_error_class() == cls, (dest, tag, e)
    # Nothing lost: the loan is still this rank's, with what it holds.
    assert b.valid and bytes(memoryview(b)[:5]) == b"hello"
    loans.send_loan(comm, b, me, 3)
    assert not b.valid
    for spent in (lambda: memoryview(b), lambda: loans.send_loan(comm, b, me, 3)):
        try:
            spent()
            raise AssertionError("a sent loan was usable")
        except ValueError:
            pass
    v = loans.recv_loan(comm, me, 3)
    assert bytes(memoryview(v)[:5]) == b"hello" and memoryview(v).readonly
    try:
        memoryview(v).cast("B")[0:1] = b"x"
        raise AssertionError("a received loan was writable")
    except TypeError:
        pass
    v.release()
    # A loan sent to PROC_NULL is given back.
    loans.send_loan(comm, loans.loan(comm, 16), MPI.PROC_NULL, 0)
    # A message that is not a loan stays queued for the receive that fits it.
    comm.send({"not": "a loan"}, me, 4)
    try:
        loans.recv_loan(comm, me, 4)
        raise AssertionError("recv_loan took a message that is not a loan")
    except MPI.Exception:
        pass
    assert comm.recv(source=me, tag=4) == {"not": "a loan"}
    # A loan larger than the pool is an error, not a wait.
    try:
        loans.loan(comm, 1 << 40)
        raise AssertionError("a loan larger than the pool was granted")
    except MPI.Exception:
        pass
    for bad in (-1, 1.5, "8"):
        try:
            loans.loan(comm, bad)
            raise AssertionError(f"loan({bad!r}) was granted")
        except (TypeError, ValueError):
            pass
    # A loan released unsent goes back to the pool; with a `with` block too.
    with loans.loan(comm, 1 << 20) as b2:
        memoryview(b2)[0] = 1
    assert not b2.valid

comm.Barrier()
print(f"OK {rank}", flush=True)
