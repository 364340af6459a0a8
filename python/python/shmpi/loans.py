"""Zero-copy messages: buffers loaned from the sender's pool in shared memory.

A rank asks for a buffer in its own pool in shmpi's segment, fills it, and sends it;
the matched receiver gets a read-only view of the same memory, and releasing the
view gives it back to the sender's pool. No byte of the payload is copied, so a
loaned message costs the same at any size::

    import numpy as np
    from mpi4py import MPI            # shmpi's, under `shmrun ... python -m shmpi`
    from shmpi import loans

    comm = MPI.COMM_WORLD
    if comm.rank == 0:
        buf = loans.loan(comm, 480 * 640 * 4)
        frame = np.frombuffer(buf, dtype=np.float32)
        frame[:] = 0.5                  # written in the segment
        del frame                       # no export may outlive the send
        loans.send_loan(comm, buf, dest=1, tag=7)
    elif comm.rank == 1:
        view = loans.recv_loan(comm, source=0, tag=7)
        with view:                      # gives the memory back at the end
            frame = np.frombuffer(view, dtype=np.float32)   # read-only, no copy
            print(frame.sum())
            del frame

The rules are those of shmpi's Rust loans: a loan is never visible before it is
sent and never writable after (``send_loan`` raises ``BufferError`` while a
memoryview or array made from the loan is alive, and the loan is spent once sent);
matching, ``ANY_SOURCE``/``ANY_TAG`` and the order of messages are those of every
other message; the pool is bounded and ``loan`` waits while it is full of loans this
rank sent that their receivers still hold. A view gives the memory back when
``release()`` is called (refused while an export of it is alive), at the end of a
``with`` block, or when the object goes.

The same program runs on a cluster under the real mpi4py: given a communicator that
is not shmpi's, ``loan`` returns a ``bytearray``, ``send_loan`` sends it with
``comm.Isend`` (completed at a later ``send_loan`` or at exit: like shmpi's, it
never waits for its receiver) and ``recv_loan`` receives into a new buffer and
returns a read-only ``memoryview`` of it (copies, as shmpi's own MPI backend makes
them).
"""

import sys

try:
    from . import _shmpi
except ImportError:  # this package's Python half alone, beside another MPI's mpi4py
    _shmpi = None

# The names the calls' common case tests and calls, bound once: a loan's round trip
# is three calls, and each lookup or helper call here costs a tenth of a microsecond.
_RawComm = _shmpi.RawComm if _shmpi is not None else None
_Loan = _shmpi.Loan if _shmpi is not None else None
_native_loan = _shmpi.loan if _shmpi is not None else None
_native_send = _shmpi.send_loan if _shmpi is not None else None
_native_recv = _shmpi.recv_loan if _shmpi is not None else None

__all__ = ["loan", "send_loan", "recv_loan", "Loan", "LoanView"]


def __getattr__(name):
    if name in ("Loan", "LoanView") and _shmpi is not None:
        return getattr(_shmpi, name)
    raise AttributeError(f"module 'shmpi.loans' has no attribute {name!r}")


def _raw(comm):
    """shmpi's native communicator behind `comm`, or None for another MPI's."""
    raw = getattr(comm, "_raw", None)
    if _shmpi is not None and type(raw) is _shmpi.RawComm:
        return raw
    MPI = sys.modules.get("shmpi.MPI")
    if MPI is not None and isinstance(comm, MPI.Comm):
        # shmpi's COMM_NULL.
        raise MPI.Exception(MPI.ERR_COMM, "loans: the communicator is null")
    return None


def loan(comm, nbytes):
    """A writable buffer of `nbytes` bytes in this rank's loan pool, to fill (through
    the buffer protocol: ``memoryview``, ``np.frombuffer``) and send with
    :func:`send_loan`. Waits while the pool is full of loans this rank sent that their
    receivers still hold; raises ``MPI.Exception`` when waiting cannot help (the loan
    is larger than the pool, or the pool is full of loans not sent)."""
    raw = getattr(comm, "_raw", None)
    if type(raw) is _RawComm and type(nbytes) is int and nbytes >= 0:
        return _native_loan(raw, nbytes)
    nbytes = _count(nbytes)
    raw = _raw(comm)
    if raw is None:
        return bytearray(nbytes)
    return _shmpi.loan(raw, nbytes)


def send_loan(comm, buf, dest, tag=0):
    """Sends the loan `buf` (from :func:`loan`) to `dest` with `tag` without copying
    it: the matched :func:`recv_loan` reads the same memory. The loan is spent: it can
    be neither written nor sent again. Raises ``BufferError`` while a buffer export of
    it is alive, and ``MPI.Exception`` for a wrong rank or tag (the loan is kept)."""
    raw = getattr(comm, "_raw", None)
    if type(raw) is _RawComm and type(buf) is _Loan:
        return _native_send(raw, buf, dest, tag)
    raw = _raw(comm)
    if raw is None:
        _isend(comm, buf, dest, tag)
        return None
    if type(buf) is not _shmpi.Loan:
        raise TypeError(
            f"send_loan: expected a loan from shmpi.loans.loan, got {type(buf).__name__}"
        )
    return _shmpi.send_loan(raw, buf, dest, tag)


def recv_loan(comm, source=-1, tag=-1, status=None):
    """Receives a loan from `source` with `tag` (``ANY_SOURCE``/``ANY_TAG`` by
    default): a read-only view of the sender's memory (a :class:`LoanView`, whose
    ``len`` is the loan's bytes; its memory goes back to the sender when it is
    released). Fills `status` if given, as ``comm.recv`` does. A message that is not
    a loan raises ``MPI.Exception`` and stays to be received."""
    raw = getattr(comm, "_raw", None)
    if type(raw) is _RawComm:
        view, st = _native_recv(raw, source, tag)
        if status is not None:
            status._set(st)
        return view
    raw = _raw(comm)
    if raw is None:
        from mpi4py import MPI

        st = MPI.Status()
        comm.Probe(source, tag, st)
        data = bytearray(st.Get_count(MPI.BYTE))
        comm.Recv([data, MPI.BYTE], st.Get_source(), st.Get_tag(), status)
        return memoryview(data).toreadonly()
    view, st = _shmpi.recv_loan(raw, source, tag)
    if status is not None:
        status._set(st)
    return view


#: Another MPI's sends of loans (request, buffer) not known to be complete.
_pending = []
_armed = False


def _isend(comm, buf, dest, tag):
    """send_loan under another MPI: a non-blocking send, as shmpi's never waits for
    its receiver (a blocking `Send` of a large loan would, and a ring of them would
    hang); the buffer is kept until the send completes, checked at each later send
    and waited for at exit (before mpi4py finalizes)."""
    from mpi4py import MPI

    global _armed
    if not _armed:
        import atexit

        atexit.register(_complete)
        _armed = True
    _pending[:] = [(r, b) for r, b in _pending if not r.Test()]
    _pending.append((comm.Isend([buf, MPI.BYTE], dest, tag), buf))


def _complete():
    from mpi4py import MPI

    if _pending and MPI.Is_initialized() and not MPI.Is_finalized():
        MPI.Request.Waitall([r for r, _ in _pending])
    _pending.clear()


def _count(nbytes):
    if type(nbytes) is int and nbytes >= 0:
        return nbytes
    try:
        n = int(nbytes)
    except (TypeError, ValueError):
        raise TypeError(f"loan: nbytes must be an integer, got {type(nbytes).__name__}") from None
    if n < 0 or n != nbytes:
        raise ValueError(f"loan: nbytes must be a non-negative integer, got {nbytes!r}")
    return n
