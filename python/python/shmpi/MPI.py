"""mpi4py's ``MPI`` module over shmpi.

Names, signatures, defaults and error classes follow mpi4py 4.1, so a script written
for mpi4py runs here unchanged (``shmrun -n 4 python -m shmpi script.py``) and on a
cluster under the real mpi4py.

- Lowercase methods (``send``, ``bcast``, ``allreduce`` ...) move Python objects as
  ``MPI.pickle.dumps(obj)`` in untyped byte messages: a pickle sent with
  ``Isend([buf, "B"])`` is received by ``recv``, and an empty message is ``None``.
  Reductions of objects apply the op in rank order (``SUM`` is ``+``, ``MAX`` is
  ``max`` ...).
- Uppercase methods (``Send``, ``Bcast``, ``Allreduce`` ...) take buffers (anything
  with the buffer protocol: NumPy arrays, ``bytearray``, ``array.array``) as
  ``buf``, ``[buf, datatype]``, ``[buf, count, datatype]`` or ``[buf, (count,
  displ), datatype]``, and copy straight between the buffer and shared memory.
- Errors are :class:`Exception` with an MPI error class (``ERR_TRUNCATE`` ...).

MPI is initialized when this module is imported and finalized at interpreter exit.
"""

import array as _array
import atexit as _atexit
import builtins as _builtins
import itertools as _itertools
import operator as _operator
import os as _os
import pickle as _pickle
import socket as _socket
import struct as _struct
import sys as _sys
import threading as _threading
import time as _time
import zlib as _zlib
import warnings as _warnings
import weakref as _weakref

from . import _shmpi as _lib


def _mv(buf):
    """``memoryview(buf)``; an array that offers DLPack instead of a buffer (a PyTorch
    or JAX tensor on the CPU) through a view of its memory, as mpi4py takes it."""
    try:
        return memoryview(buf)
    except TypeError:
        if not hasattr(buf, "__dlpack__"):
            raise
    return memoryview(_lib.dlpack_view(buf))


def _flat(buf, writable=False):
    """A flat view of a buffer's bytes in memory order (C or Fortran order), exported
    as every call exports it: a buffer that is not contiguous, or read-only where
    ``writable`` is asked, raises the exporter's error here, before a message moves."""
    return memoryview(_lib.byte_view(buf, writable))


def _bytes_of(buf):
    """A flat view of the bytes of a C-contiguous buffer (of an empty one of any
    shape, which ``memoryview.cast`` refuses)."""
    m = _mv(buf)
    if m.nbytes == 0:
        return memoryview(_NOTHING)
    return m.cast("B")


# ---- constants -------------------------------------------------------------------

ANY_SOURCE = _lib.ANY_SOURCE
ANY_TAG = _lib.ANY_TAG
PROC_NULL = _lib.PROC_NULL
UNDEFINED = _lib.UNDEFINED
ROOT = -4
TAG_UB = _lib.TAG_UB

THREAD_SINGLE = 0
THREAD_FUNNELED = 1
THREAD_SERIALIZED = 2
THREAD_MULTIPLE = 3

IDENT = 0
CONGRUENT = 1
SIMILAR = 2
UNEQUAL = 3

GRAPH = 1
CART = 2
DIST_GRAPH = 3

KEYVAL_INVALID = -1
MAX_PROCESSOR_NAME = 256
MAX_ERROR_STRING = 512
VERSION = 3
SUBVERSION = 1

# Error classes (the values MPICH uses).
SUCCESS = 0
ERR_BUFFER = 1
ERR_COUNT = 2
ERR_TYPE = 3
ERR_TAG = 4
ERR_COMM = 5
ERR_RANK = 6
ERR_ROOT = 7
ERR_GROUP = 8
ERR_OP = 9
ERR_TOPOLOGY = 10
ERR_DIMS = 11
ERR_ARG = 12
ERR_UNKNOWN = 13
ERR_TRUNCATE = 14
ERR_OTHER = 15
ERR_INTERN = 16
ERR_IN_STATUS = 17
ERR_PENDING = 18
ERR_REQUEST = 19
ERR_UNSUPPORTED_OPERATION = 44
ERR_WIN = 45
ERR_BASE = 46
ERR_LOCKTYPE = 47
ERR_RMA_CONFLICT = 49
ERR_RMA_SYNC = 50
ERR_SIZE = 51
ERR_DISP = 52
ERR_ASSERT = 53
ERR_RMA_RANGE = 55
ERR_RMA_ATTACH = 56
ERR_RMA_SHARED = 57
ERR_RMA_FLAVOR = 58
ERR_SESSION = 75
ERR_INFO = 28
ERR_BAD_FILE = 22
ERR_CONVERSION = 23
ERR_DUP_DATAREP = 24
ERR_FILE_IN_USE = 26
ERR_NAME = 33
ERR_NO_MEM = 34
ERR_NOT_SAME = 35
ERR_NO_SPACE = 36
ERR_PORT = 38
ERR_QUOTA = 39
ERR_SERVICE = 41
ERR_SPAWN = 42
ERR_UNSUPPORTED_DATAREP = 43
ERR_VALUE_TOO_LARGE = 77
ERR_INFO_KEY = 29
ERR_INFO_VALUE = 30
ERR_INFO_NOKEY = 31
MAX_INFO_KEY = 255
MAX_INFO_VAL = 1024
ERR_PROC_ABORTED = 76
ERR_LASTCODE = 0x3FFFFFFF
# Classes MPICH 4.0 does not define: ERR_LASTCODE, as mpi4py gives them then.
ERR_ABI = ERR_ERRHANDLER = ERR_LASTCODE
ERR_PROC_FAILED = ERR_PROC_FAILED_PENDING = ERR_REVOKED = ERR_LASTCODE
MAX_DATAREP_STRING = 128
MAX_LIBRARY_VERSION_STRING = 8192
MAX_OBJECT_NAME = 128
MAX_PORT_NAME = 256
MAX_PSET_NAME_LEN = 256
MAX_STRINGTAG_LEN = 256
# Indices into `Status.py2f()`, shmpi's status fields (there is no Fortran MPI here).
F_SOURCE, F_TAG, F_ERROR, F_STATUS_SIZE = 0, 1, 2, 4

_ERROR_STRINGS = {
    SUCCESS: "No MPI error",
    ERR_BUFFER: "Invalid buffer pointer",
    ERR_COUNT: "Invalid count",
    ERR_TYPE: "Invalid datatype",
    ERR_TAG: "Invalid tag",
    ERR_COMM: "Invalid communicator",
    ERR_RANK: "Invalid rank",
    ERR_ROOT: "Invalid root",
    ERR_GROUP: "Invalid group",
    ERR_OP: "Invalid MPI_Op",
    ERR_ARG: "Invalid argument",
    ERR_UNKNOWN: "Unknown error",
    ERR_TRUNCATE: "Message truncated",
    ERR_OTHER: "Other MPI error",
    ERR_INTERN: "Internal MPI error",
    ERR_REQUEST: "Invalid MPI_Request",
    ERR_UNSUPPORTED_OPERATION: "Unsupported operation",
    ERR_WIN: "Invalid window",
    ERR_LOCKTYPE: "Invalid lock type",
    ERR_RMA_SYNC: "Wrong synchronization of RMA calls",
    ERR_SIZE: "Invalid size",
    ERR_DISP: "Invalid displacement",
    ERR_RMA_RANGE: "Target memory is not part of the window",
    ERR_SESSION: "Invalid session",
    ERR_PROC_ABORTED: "Operation failed because a peer process has aborted",
}


class _Sentinel(int):
    """``IN_PLACE`` and ``BOTTOM``: special buffer addresses."""

    def __new__(cls, value, name):
        self = int.__new__(cls, value)
        self._name = name
        return self

    def __repr__(self):
        return self._name


IN_PLACE = _Sentinel(-1, "IN_PLACE")
BOTTOM = _Sentinel(0, "BOTTOM")
BUFFER_AUTOMATIC = _Sentinel(-2, "BUFFER_AUTOMATIC")


# ---- errors ------------------------------------------------------------------------


class Exception(RuntimeError):  # noqa: A001 - mpi4py's name
    """An MPI error (``MPI.Exception``), with its error class."""

    def __init__(self, ierr=SUCCESS, msg=None):
        self.ob_mpi = int(ierr)
        if self.ob_mpi < SUCCESS:
            self.ob_mpi = ERR_UNKNOWN  # as mpi4py's
        self._msg = msg
        RuntimeError.__init__(self, self.ob_mpi)

    def __eq__(self, other):
        return self.ob_mpi == other  # an int, or another Exception (reflected)

    # Ordered as their codes, with each other and with ints (mpi4py's).
    def __lt__(self, other):
        return self.ob_mpi < other

    def __le__(self, other):
        return self.ob_mpi <= other

    def __gt__(self, other):
        return self.ob_mpi > other

    def __ge__(self, other):
        return self.ob_mpi >= other

    def __ne__(self, other):
        r = self.__eq__(other)
        return r if r is NotImplemented else not r

    def __hash__(self):
        return hash(self.ob_mpi)

    def __int__(self):
        return self.ob_mpi

    def __bool__(self):
        return self.ob_mpi != SUCCESS

    def __repr__(self):
        return f"MPI.Exception({self.ob_mpi})"

    def __str__(self):
        return self._msg if self._msg is not None else self.Get_error_string()

    def Get_error_code(self):
        return self.ob_mpi

    def Get_error_class(self):
        return _USER_CODES.get(self.ob_mpi, self.ob_mpi)

    def Get_error_string(self):
        return Get_error_string(self.ob_mpi)

    error_code = property(Get_error_code)
    error_class = property(Get_error_class)
    error_string = property(Get_error_string)


_lib.set_exception_class(Exception)


BSEND_OVERHEAD = 0
_attached = None
# The buffers attached to communicators (Comm.Attach_buffer), by native communicator.
_BUFFERS = {}


def Attach_buffer(buf):
    """Buffered sends need no buffer in shmpi (every send is buffered in shared
    memory); the buffer is kept only to be given back."""
    global _attached
    _attached = buf


def Detach_buffer():
    global _attached
    buf, _attached = _attached, None
    return buf


class _Memory(bytearray):
    """What ``Alloc_mem`` returns: bytes that, like mpi4py's ``MPI.buffer``, take one
    byte value into a whole slice (``mem[:] = 0``)."""

    __slots__ = ()

    def __setitem__(self, key, value):
        if isinstance(key, slice) and _is_index(value):
            value = bytes((_operator.index(value),)) * len(range(*key.indices(len(self))))
        bytearray.__setitem__(self, key, value)

    @property
    def format(self):
        return "B"

    @property
    def nbytes(self):
        return len(self)

    @property
    def address(self):
        return Get_address(self) if len(self) else 0


def Alloc_mem(size, info=None):
    """Memory for a window's buffer (``MPI_Alloc_mem``): ordinary bytes here."""
    size = _operator.index(size)
    if size < 0:
        raise Exception(ERR_SIZE, f"Alloc_mem of {size} bytes")
    return _Memory(size)


def Free_mem(mem):
    pass


# User error classes and codes (MPI 4.1 sec. 9.5): {code: its class} (a class maps to
# itself), their strings, and the last value given (``LASTUSEDCODE``).
_USER_CODES = {}
_USER_STRINGS = {}
_LAST_USED = [ERR_LASTCODE]


def Get_error_class(errorcode):
    return _USER_CODES.get(errorcode, errorcode)


def Get_error_string(errorcode):
    if errorcode in _USER_CODES:
        return _USER_STRINGS.get(errorcode, "")
    return _ERROR_STRINGS.get(errorcode, f"MPI error class {errorcode}")


def _new_code(cls=None):
    _LAST_USED[0] += 1
    code = _LAST_USED[0]
    _USER_CODES[code] = code if cls is None else cls
    return code


def Add_error_class():
    """A new error class (``MPI_Add_error_class``), past ``ERR_LASTCODE``; it becomes
    the ``LASTUSEDCODE`` attribute. Local to the process that adds it (MPI makes the
    calls local; a program adds the same ones on every rank)."""
    return _new_code()


def Add_error_code(errorclass):
    """A new error code of ``errorclass``, a predefined or added class."""
    errorclass = _operator.index(errorclass)
    if not (0 <= errorclass <= ERR_LASTCODE or _USER_CODES.get(errorclass) == errorclass):
        raise Exception(ERR_ARG, f"Add_error_code: {errorclass} is not an error class")
    return _new_code(errorclass)


def _user_code(call, code):
    code = _operator.index(code)
    if code not in _USER_CODES:
        raise Exception(ERR_ARG, f"{call}: {code} is not an error class or code added by the program")
    return code


def Add_error_string(errorcode, string):
    code = _user_code("Add_error_string", errorcode)
    string = str(string)
    if len(string) >= MAX_ERROR_STRING:
        raise Exception(ERR_ARG, f"Add_error_string: a string of {len(string)} characters (at most {MAX_ERROR_STRING - 1})")
    _USER_STRINGS[code] = string


def Remove_error_string(errorcode):
    _USER_STRINGS.pop(_user_code("Remove_error_string", errorcode), None)


def Remove_error_code(errorcode):
    """Removes an added code (MPI 4.1): not a class, and not while it has a string."""
    code = _user_code("Remove_error_code", errorcode)
    if _USER_CODES[code] == code:
        raise Exception(ERR_ARG, f"Remove_error_code: {code} is an error class (Remove_error_class)")
    if code in _USER_STRINGS:
        raise Exception(ERR_ARG, f"Remove_error_code: {code} still has a string (Remove_error_string first)")
    del _USER_CODES[code]


def Remove_error_class(errorclass):
    """Removes an added class: not while it has codes or a string."""
    cls = _user_code("Remove_error_class", errorclass)
    if _USER_CODES[cls] != cls:
        raise Exception(ERR_ARG, f"Remove_error_class: {cls} is an error code (Remove_error_code)")
    if any(c != cls and k == cls for c, k in _USER_CODES.items()):
        raise Exception(ERR_ARG, f"Remove_error_class: {cls} still has error codes (Remove_error_code first)")
    if cls in _USER_STRINGS:
        raise Exception(ERR_ARG, f"Remove_error_class: {cls} still has a string (Remove_error_string first)")
    del _USER_CODES[cls]


def Flush_buffer():
    """``MPI_Buffer_flush``: the buffered sends are already in shared memory."""


def Iflush_buffer():
    return Request._new(_Done(), False)


# ---- environment -------------------------------------------------------------------


def Wtime():
    """Seconds on a clock shared by every rank (``MPI_Wtime``)."""
    return _lib.wtime()


def Wtick():
    """The resolution of :func:`Wtime` in seconds."""
    return 1e-9


def Pcontrol(level):
    """``MPI_Pcontrol``: profiling control, which shmpi has none of (a no-op)."""
    _operator.index(level)


def Get_processor_name():
    return _socket.gethostname()


def Get_version():
    return (VERSION, SUBVERSION)


def Get_library_version():
    from . import __version__

    return f"shmpi {__version__} (shared memory, one machine)"


def get_vendor():
    """The MPI implementation's name and version (mpi4py's ``MPI.get_vendor``)."""
    from . import __version__

    return ("shmpi", tuple(int(x) for x in __version__.split(".")[:3]))


def Is_initialized():
    return _lib.is_initialized()


def Is_finalized():
    return _lib.is_finalized()


def Init():
    """Already done at import, as in mpi4py."""


def Init_thread(required=THREAD_MULTIPLE):
    return Query_thread()


def Query_thread():
    """shmpi is used from one thread per process (``MPI_THREAD_FUNNELED``)."""
    return THREAD_FUNNELED


def Is_thread_main():
    import threading

    return threading.current_thread() is threading.main_thread()


def Finalize():
    """Leaves the job: queued sends are delivered first (``MPI_Finalize``)."""
    _flush()
    _lib.finalize()


def _flush():
    for f in (_sys.stdout, _sys.stderr):
        try:
            f.flush()
        except _builtins.Exception:
            pass


def _abort(code):
    _flush()
    _lib.abort(int(code))


# ---- pickle ------------------------------------------------------------------------


class Pickle:
    """How lowercase methods serialize objects (``MPI.pickle``)."""

    def __setattr__(self, name, value):
        # `_std` says whether this is the default pickling (the standard library's
        # functions, protocol 5), which the native lowercase methods then call
        # directly; kept true to every attribute a program sets, and told to them.
        object.__setattr__(self, name, value)
        if name != "_std":
            d = self.__dict__
            std = (
                d.get("_dumps") is _pickle.dumps
                and d.get("_loads") is _pickle.loads
                and d.get("PROTOCOL") == 5
                and type(self).dumps is Pickle.dumps
                and type(self).loads is Pickle.loads
            )
            object.__setattr__(self, "_std", std)
            _lib.pickle_changed(self, std)

    def __init__(self, dumps=None, loads=None, protocol=None):
        if protocol is None:
            protocol = 5 if dumps is None else None
        self._dumps = dumps if dumps is not None else _pickle.dumps
        self._loads = loads if loads is not None else _pickle.loads
        self.PROTOCOL = protocol
        self.THRESHOLD = 1024 * 256

    def dumps(self, obj):
        if self.PROTOCOL is None:
            return self._dumps(obj)
        return self._dumps(obj, self.PROTOCOL)

    def loads(self, data):
        return self._loads(data)

    def dumps_oob(self, obj):
        """The pickle of ``obj`` (protocol 5 at least) and its buffers of
        ``THRESHOLD`` bytes or more, out of band, as mpi4py's ``Pickle.dumps_oob``."""
        protocol = _pickle.DEFAULT_PROTOCOL if self.PROTOCOL is None else self.PROTOCOL
        buffers, threshold = [], self.THRESHOLD

        def buffer_callback(ob):
            # The bytes of the buffer, flat (a `PickleBuffer`'s `raw`): their count is
            # what travels ahead of them.
            try:
                m = ob.raw()
            except BufferError:
                return True  # not contiguous: in band
            if m.nbytes >= threshold:
                buffers.append(m)
                return False
            return True

        return self._dumps(obj, max(protocol, 5), buffer_callback=buffer_callback), buffers

    def loads_oob(self, data, buffers):
        return self._loads(data, buffers=buffers)


# As in mpi4py, the lowercase methods use the object made here (`_PICKLE`), whatever
# `MPI.pickle` is later rebound to; a program changes its settings instead.
_PICKLE = pickle = Pickle()


def _dumps(obj):
    if _PICKLE._std:
        # `pickle.dumps(obj, 5)`, natively for small builtin objects.
        return _lib.dumps(obj)
    return _PICKLE.dumps(obj)


def _loads(data):
    if not data:
        return None
    if _PICKLE._std:
        return _lib.loads(data)
    return _PICKLE.loads(data)


# ---- datatypes ---------------------------------------------------------------------


class Datatype:
    """An MPI datatype: its size and, for the numeric ones, a struct code."""

    __slots__ = ("_name", "_size", "_code", "_fmt", "_blocks", "_extent", "_elem", "_sig")

    def __init__(self, datatype=None, *, _name="MPI_DATATYPE_NULL", _size=0, _code=None, _fmt=None):
        blocks, extent, elem, sig = None, _size, None, None
        if isinstance(datatype, Datatype):
            _name, _size, _code, _fmt = datatype._name, datatype._size, datatype._code, datatype._fmt
            blocks, extent, elem, sig = datatype._blocks, datatype._extent, datatype._elem, datatype._sig
        self._name = _name
        self._size = _size
        self._code = _code  # the element type of native reductions, or None
        self._fmt = _fmt  # struct format of one element, for emulated reductions
        # A derived type with holes: its (byte offset, byte length) blocks and its
        # extent; None for a contiguous type, whose extent is its size.
        self._blocks = blocks
        self._extent = extent
        # The datatype a contiguous type repeats (``Create_contiguous``, nested too),
        # which its reductions apply to, as Open MPI's do; None for any other type.
        self._elem = elem
        # The type signature as the byte sizes of its basic elements, in order (what
        # ``Get_elements`` counts); None for a basic type, one element of its size.
        self._sig = sig

    def _signature(self):
        if self._sig is not None:
            return self._sig
        return (self._size,) if self._size else ()

    def __repr__(self):
        return f"<{type(self).__name__}: {self._name}>"

    def __eq__(self, other):
        if not isinstance(other, Datatype):
            return NotImplemented
        return (self._name, self._size) == (other._name, other._size)

    def __hash__(self):
        return hash((self._name, self._size))

    def __bool__(self):
        return self._name != "MPI_DATATYPE_NULL"

    def Get_size(self):
        return self._size

    size = property(Get_size)

    @property
    def is_predefined(self):
        """Whether this is one of MPI's named datatypes (not made by a constructor)."""
        return self._name.startswith("MPI_") and "[" not in self._name

    def Get_extent(self):
        return (0, self._extent)

    extent = property(lambda self: self._extent)
    lb = property(lambda self: 0)
    ub = property(lambda self: self._extent)

    def Get_true_extent(self):
        """``(true_lb, true_extent)``: the span of the bytes the type holds."""
        layout = [(o, n) for o, n in self._layout() if n]
        if not layout:
            return (0, 0)
        lo = min(o for o, _ in layout)
        return (lo, max(o + n for o, n in layout) - lo)

    true_lb = property(lambda self: self.Get_true_extent()[0])
    true_ub = property(lambda self: sum(self.Get_true_extent()))
    true_extent = property(lambda self: self.Get_true_extent()[1])

    def _derived(self, blocks, name, extent=None, sig=None):
        """A type of the given (byte offset, byte length) blocks, ``extent`` bytes long
        (by default up to the end of its last block). One block from offset 0 over the
        whole extent is a contiguous type (no ``_blocks``), which every call moves."""
        size = sum(n for _, n in blocks)
        if extent is None:
            extent = max((o + n for o, n in blocks), default=0)
        t = Datatype(_name=name, _size=size)
        if sig is None and self is not None and self._size:
            # Whole elements of this type: its signature, once per element.
            sig = self._signature() * (size // self._size)
        t._sig = tuple(sig) if sig is not None else None
        merged = []
        for o, n in blocks:
            if merged and merged[-1][0] + merged[-1][1] == o:
                merged[-1] = (merged[-1][0], merged[-1][1] + n)
            elif n:
                merged.append((o, n))
        if not (len(merged) == 1 and merged[0] == (0, extent)):
            t._blocks = tuple(blocks)
        t._extent = extent
        return t

    def _layout(self):
        return self._blocks if self._blocks is not None else ((0, self._size),)

    def _check_new(self, call, counts=(), lengths=()):
        """MPI's checks of a type constructor: ``ERR_TYPE`` for ``DATATYPE_NULL``,
        ``ERR_COUNT`` for a negative count, ``ERR_ARG`` for a negative block length."""
        self._not_null(call)
        for c in counts:
            if _operator.index(c) < 0:
                raise Exception(ERR_COUNT, f"{call}: negative count {c}")
        for n in lengths:
            if _operator.index(n) < 0:
                raise Exception(ERR_ARG, f"{call}: negative block length {n}")

    def Create_indexed_block(self, blocklength, displacements):
        """Blocks of ``blocklength`` elements at element ``displacements``."""
        self._check_new("Create_indexed_block", lengths=(blocklength,))
        ext = self._extent
        blocks = [
            (d * ext + o, n)
            for d in displacements
            for k in range(blocklength)
            for o, n in ((k * ext + o2, n2) for o2, n2 in self._layout())
        ]
        return self._derived(blocks, f"indexed_block({blocklength}, {self._name})")

    def Create_indexed(self, blocklengths, displacements):
        blocklengths = list(blocklengths)
        self._check_new("Create_indexed", lengths=blocklengths)
        ext = self._extent
        blocks = [
            (d * ext + k * ext + o, n)
            for bl, d in zip(blocklengths, displacements)
            for k in range(bl)
            for o, n in self._layout()
        ]
        return self._derived(blocks, f"indexed({self._name})")

    def Create_resized(self, lb, extent):
        """This type with its elements ``extent`` bytes apart (``MPI_Type_create_resized``;
        a lower bound of 0 and a positive extent only, else ``NotImplementedError``)."""
        if lb != 0 or extent <= 0:
            raise NotImplementedError("Create_resized with a lower bound other than 0 or an extent <= 0")
        return self._derived(self._layout(), f"resized({self._name}, {lb}, {extent})", extent)

    def Create_vector(self, count, blocklength, stride):
        self._check_new("Create_vector", (count,), (blocklength,))
        return self.Create_indexed([blocklength] * count, [i * stride for i in range(count)])

    def Create_hindexed(self, blocklengths, displacements):
        """Blocks of ``blocklengths[i]`` elements at byte ``displacements[i]``
        (``MPI_Type_create_hindexed``)."""
        blocklengths = list(blocklengths)
        self._check_new("Create_hindexed", lengths=blocklengths)
        ext = self._extent
        blocks = [
            (d + k * ext + o, n)
            for bl, d in zip(blocklengths, displacements)
            for k in range(_operator.index(bl))
            for o, n in self._layout()
        ]
        return self._derived(blocks, f"hindexed({self._name})")

    def Create_hindexed_block(self, blocklength, displacements):
        displacements = list(displacements)
        return self.Create_hindexed([blocklength] * len(displacements), displacements)

    def Create_hvector(self, count, blocklength, stride):
        """``count`` blocks of ``blocklength`` elements, ``stride`` bytes apart
        (``MPI_Type_create_hvector``)."""
        self._check_new("Create_hvector", (count,), (blocklength,))
        return self.Create_hindexed([blocklength] * count, [i * stride for i in range(count)])

    def Create_subarray(self, sizes, subsizes, starts, order=None):
        """The elements of a block ``subsizes`` at ``starts`` of an array of ``sizes``
        (``MPI_Type_create_subarray``), in C (row-major, ``ORDER_C``, the default) or
        Fortran order; its extent is the whole array's."""
        sizes, subsizes, starts = (list(map(_operator.index, x)) for x in (sizes, subsizes, starts))
        order = ORDER_C if order is None else order
        if not len(sizes) == len(subsizes) == len(starts) or not sizes:
            raise Exception(ERR_ARG, "Create_subarray: sizes, subsizes and starts differ in length")
        if any(not (0 < b <= a and 0 <= c <= a - b) for a, b, c in zip(sizes, subsizes, starts)):
            raise Exception(ERR_ARG, "Create_subarray: a block outside its array")
        if order not in (ORDER_C, ORDER_FORTRAN):
            raise Exception(ERR_ARG, f"Create_subarray: unknown order {order}")
        if order == ORDER_FORTRAN:
            sizes, subsizes, starts = sizes[::-1], subsizes[::-1], starts[::-1]
        # Row-major: one run of subsizes[-1] elements per index of the other dimensions.
        displs = [0]
        for a, b, c in zip(sizes, subsizes, starts):
            displs = [d * a + c + i for d in displs for i in range(b)]
        run = subsizes[-1]
        firsts = displs[::run]
        total = 1
        for a in sizes:
            total *= a
        t = self.Create_indexed([run] * len(firsts), firsts)
        return self._derived(t._layout(), f"subarray({self._name})", total * self._extent)

    @classmethod
    def Create_struct(cls, blocklengths, displacements, datatypes):
        """Blocks of ``datatypes[i]`` at byte ``displacements[i]``."""
        blocks = [
            (d + k * t._extent + o, n)
            for bl, d, t in zip(blocklengths, displacements, datatypes)
            for k in range(bl)
            for o, n in t._layout()
        ]
        sig = [s for bl, t in zip(blocklengths, datatypes) for _ in range(bl) for s in t._signature()]
        return Datatype._derived(None, blocks, "struct", sig=sig)

    def _pack(self, m, count):
        """The bytes of ``count`` elements of this type in ``m`` (a flat byte view,
        :func:`_derived_spec`'s), packed."""
        ext = self._extent
        return b"".join(bytes(m[i * ext + o : i * ext + o + n]) for i in range(count) for o, n in self._layout())

    def _unpack(self, m, count, data):
        """Puts ``count`` packed elements of ``data`` in place in ``m`` (a writable
        flat byte view, :func:`_derived_spec`'s)."""
        ext, at = self._extent, 0
        for i in range(count):
            for o, n in self._layout():
                m[i * ext + o : i * ext + o + n] = data[at : at + n]
                at += n

    def Get_name(self):
        return self._name

    def Set_name(self, name):
        self._name = name

    name = property(Get_name, Set_name)

    def _not_null(self, call):
        if self._name == "MPI_DATATYPE_NULL":
            raise Exception(ERR_TYPE, f"{call}: invalid datatype MPI.DATATYPE_NULL")

    def Commit(self):
        self._not_null("Commit")
        return self

    def Free(self):
        self._not_null("Free")
        if id(self) in _PREDEFINED_IDS:
            raise Exception(ERR_TYPE, f"Free: {self._name} is a predefined datatype")
        _attrs_free(self, _dt_key)

    def Dup(self):
        self._not_null("Dup")
        t = Datatype(self)
        _attrs_copy(self, t, _dt_key)
        return t

    Create_dup = Dup

    def Pack_size(self, count, comm):
        """The bytes ``Pack`` takes for ``count`` elements (``MPI_Pack_size``):
        their data, packed without holes."""
        comm._r.size()  # COMM_NULL or a freed communicator raises here
        return _operator.index(count) * self._size

    def Pack(self, inbuf, outbuf, position, comm):
        """Packs the elements of this type in ``inbuf`` (as many whole elements as
        its bytes hold) into ``outbuf`` at byte ``position``; returns the position
        after them (``MPI_Pack``)."""
        comm._r.size()
        m = _flat(inbuf)
        count = len(m) // self._extent if self._extent else 0
        data = self._pack(m, count)
        out = _flat(outbuf, True)
        position = _operator.index(position)
        if position < 0 or position + len(data) > len(out):
            raise Exception(ERR_TRUNCATE, f"Pack: {len(data)} bytes at {position} do not fit in {len(out)}")
        out[position : position + len(data)] = data
        return position + len(data)

    def Unpack(self, inbuf, position, outbuf, comm):
        """Unpacks, from ``inbuf`` at byte ``position``, as many elements of this
        type as ``outbuf`` holds whole, into ``outbuf``; returns the position after
        them (``MPI_Unpack``)."""
        comm._r.size()
        m = _flat(inbuf)
        out = _flat(outbuf, True)
        count = len(out) // self._extent if self._extent else 0
        position = _operator.index(position)
        n = count * self._size
        if position < 0 or position + n > len(m):
            raise Exception(ERR_TRUNCATE, f"Unpack: {n} bytes at {position} past the {len(m)} of the input")
        self._unpack(out, count, bytes(m[position : position + n]))
        return position + n

    def Create_contiguous(self, count):
        self._check_new("Create_contiguous", (count,))
        if self._blocks is not None:
            return self.Create_indexed([count], [0])
        t = Datatype(
            _name=f"contiguous({count}, {self._name})",
            _size=self._size * count,
            _fmt=(self._fmt * count) if self._fmt else None,
        )
        t._elem = self._elem if self._elem is not None else self
        t._sig = self._signature() * count
        return t

    @property
    def typechar(self):
        return self._code or ""

    def tocode(self):
        return self._code

    @classmethod
    def fromcode(cls, code):
        """The predefined datatype of a type code such as ``"i"`` or ``"f8"``
        (``ValueError`` for any other), as mpi4py's ``Datatype.fromcode``."""
        dt = _TYPECODES.get(code.lstrip("@=<>!|")) if isinstance(code, str) else None
        if dt is None:
            raise ValueError(f"cannot map code {code!r} to MPI datatype")
        return dt


def _dt(name, size, code=None, fmt=None):
    return Datatype(_name="MPI_" + name, _size=size, _code=code, _fmt=fmt or code)


ORDER_C = 0
ORDER_FORTRAN = ORDER_F = 1

DATATYPE_NULL = Datatype()
BYTE = _dt("BYTE", 1, "B")
PACKED = _dt("PACKED", 1, "B")
AINT = _dt("AINT", 8, "q")
OFFSET = _dt("OFFSET", 8, "q")
COUNT = _dt("COUNT", 8, "q")
CHAR = _dt("CHAR", 1, "b")
WCHAR = _dt("WCHAR", 4, "i")
SIGNED_CHAR = _dt("SIGNED_CHAR", 1, "b")
SHORT = _dt("SHORT", 2, "h")
INT = _dt("INT", 4, "i")
LONG = _dt("LONG", 8, "q")
LONG_LONG = _dt("LONG_LONG", 8, "q")
UNSIGNED_CHAR = _dt("UNSIGNED_CHAR", 1, "B")
UNSIGNED_SHORT = _dt("UNSIGNED_SHORT", 2, "H")
UNSIGNED = _dt("UNSIGNED", 4, "I")
UNSIGNED_LONG = _dt("UNSIGNED_LONG", 8, "Q")
UNSIGNED_LONG_LONG = _dt("UNSIGNED_LONG_LONG", 8, "Q")
FLOAT = _dt("FLOAT", 4, "f")
DOUBLE = _dt("DOUBLE", 8, "d")
LONG_DOUBLE = _dt("LONG_DOUBLE", 16)
C_BOOL = _dt("C_BOOL", 1, "?")
INT8_T = _dt("INT8_T", 1, "b")
INT16_T = _dt("INT16_T", 2, "h")
INT32_T = _dt("INT32_T", 4, "i")
INT64_T = _dt("INT64_T", 8, "q")
UINT8_T = _dt("UINT8_T", 1, "B")
UINT16_T = _dt("UINT16_T", 2, "H")
UINT32_T = _dt("UINT32_T", 4, "I")
UINT64_T = _dt("UINT64_T", 8, "Q")
C_COMPLEX = _dt("C_COMPLEX", 8, None, "ff")
C_FLOAT_COMPLEX = C_COMPLEX
C_DOUBLE_COMPLEX = _dt("C_DOUBLE_COMPLEX", 16, None, "dd")
C_LONG_DOUBLE_COMPLEX = _dt("C_LONG_DOUBLE_COMPLEX", 32)
CXX_BOOL = _dt("CXX_BOOL", 1, "?")
CXX_FLOAT_COMPLEX = C_FLOAT_COMPLEX
CXX_DOUBLE_COMPLEX = C_DOUBLE_COMPLEX
SHORT_INT = _dt("SHORT_INT", 8, None, "hxxi")
TWOINT = _dt("2INT", 8, None, "ii")
INT_INT = TWOINT
LONG_INT = _dt("LONG_INT", 16, None, "qi4x")
FLOAT_INT = _dt("FLOAT_INT", 8, None, "fi")
DOUBLE_INT = _dt("DOUBLE_INT", 16, None, "di4x")
LONG_DOUBLE_INT = _dt("LONG_DOUBLE_INT", 32)
SIGNED_SHORT = SHORT
SIGNED_INT = INT
SIGNED_LONG = LONG
SIGNED_LONG_LONG = LONG_LONG
BOOL = C_BOOL
UNSIGNED_INT = UNSIGNED
CHARACTER = _dt("CHARACTER", 1, "b")
LOGICAL = _dt("LOGICAL", 4, "i")
INTEGER = _dt("INTEGER", 4, "i")
REAL = _dt("REAL", 4, "f")
DOUBLE_PRECISION = _dt("DOUBLE_PRECISION", 8, "d")
COMPLEX = _dt("COMPLEX", 8, None, "ff")
DOUBLE_COMPLEX = _dt("DOUBLE_COMPLEX", 16, None, "dd")
REAL4 = FLOAT
REAL8 = DOUBLE
INTEGER1 = INT8_T
INTEGER2 = INT16_T
INTEGER4 = INT32_T
INTEGER8 = INT64_T

# Buffer formats (struct and NumPy type codes) to datatypes, as mpi4py's typedict.
_TYPECODES = {
    "c": CHAR,
    "b": SIGNED_CHAR,
    "B": UNSIGNED_CHAR,
    "?": C_BOOL,
    "h": SHORT,
    "H": UNSIGNED_SHORT,
    "i": INT,
    "I": UNSIGNED,
    "l": LONG,
    "L": UNSIGNED_LONG,
    "q": LONG_LONG,
    "Q": UNSIGNED_LONG_LONG,
    "n": LONG,
    "N": UNSIGNED_LONG,
    "f": FLOAT,
    "d": DOUBLE,
    "g": LONG_DOUBLE,
    "Zf": C_FLOAT_COMPLEX,
    "Zd": C_DOUBLE_COMPLEX,
    "Zg": C_LONG_DOUBLE_COMPLEX,
    "F": C_FLOAT_COMPLEX,
    "D": C_DOUBLE_COMPLEX,
    "G": C_LONG_DOUBLE_COMPLEX,
    "i1": INT8_T,
    "i2": INT16_T,
    "i4": INT32_T,
    "i8": INT64_T,
    "u1": UINT8_T,
    "u2": UINT16_T,
    "u4": UINT32_T,
    "u8": UINT64_T,
    "f4": FLOAT,
    "f8": DOUBLE,
    "c8": C_FLOAT_COMPLEX,
    "c16": C_DOUBLE_COMPLEX,
    "b1": C_BOOL,
}
_typedict = {k: v for k, v in _TYPECODES.items() if len(k) == 1}
_typedict_c = {"F": C_FLOAT_COMPLEX, "D": C_DOUBLE_COMPLEX, "G": C_LONG_DOUBLE_COMPLEX}
_typedict_f = {}


def _datatype(x):
    """A datatype argument: a :class:`Datatype` or a type code such as ``"d"``."""
    if isinstance(x, Datatype):
        return x
    if isinstance(x, str):
        dt = _TYPECODES.get(x.lstrip("@=<>!|"))
        if dt is not None:
            return dt
        # As mpi4py, whose type codes are keys of a dictionary.
        raise KeyError(f"message: cannot map type code {x!r} to an MPI datatype")
    raise TypeError(f"message: expecting a datatype or a type code, got {x!r}")


def _contiguous(dt):
    """``dt``, unless it has holes: those travel packed in ``Bcast`` only, and any other
    call raises here rather than move the wrong bytes."""
    if dt._blocks is not None:
        raise NotImplementedError(
            f"message: datatype {dt._name} has holes; shmpi's Python package moves such types in Bcast only"
        )
    return dt


def _format_datatype(fmt, itemsize=1):
    """The datatype of a buffer's format (``memoryview.format``), else one of
    ``itemsize`` opaque bytes."""
    dt = _TYPECODES.get(fmt.lstrip("@=<>!|"))
    if dt is not None and dt._size == itemsize:
        return dt
    if itemsize == 1:
        return BYTE
    return Datatype(_name=f"MPI_BYTE[{itemsize}]", _size=itemsize)


# ---- buffer specs ------------------------------------------------------------------


def _infer(buf):
    """The datatype and byte length of a whole buffer."""
    m = _mv(buf)
    return _format_datatype(m.format, m.itemsize), m.nbytes


# The buffer of an empty message spec (``None``, ``[None, 0, dt]``): writable, so an
# empty receive can use it, and never written, having no bytes.
_NOTHING = bytearray()


def _msg(spec):
    """A point-to-point message spec as (buffer, bytes or None for all, datatype or
    None when not given and not needed)."""
    if spec is None:
        return _NOTHING, 0, BYTE
    if type(spec) is list or type(spec) is tuple:
        n = len(spec)
        if n == 3:
            # The common [buf, count, datatype] first, with no further parsing.
            buf, count, dt = spec
            if type(count) is int and count >= 0 and type(dt) is Datatype and dt._blocks is None and buf is not None:
                return buf, count * dt._size, dt
        buf = spec[0]
        given = buf is not None
        if buf is None or buf is BOTTOM:
            buf = _NOTHING
        if n == 1:
            return buf, None, None
        if n == 2:
            x = spec[1]
            if isinstance(x, (Datatype, str)):
                return buf, None, _whole(buf, _contiguous(_datatype(x)))
            count, displ, dt = x, 0, None
        elif n == 3:
            count, displ, dt = spec[1], 0, spec[2]
        elif n == 4:
            count, displ, dt = spec[1], spec[2], spec[3]
        else:
            raise ValueError(f"message: expecting 1 to 4 items, got {n}")
        if type(count) is tuple or type(count) is list:
            count, displ = count
        if dt is None:
            dt, _ = _infer(buf)
        else:
            dt = _contiguous(_datatype(dt))
        # mpi4py's checks (``message_simple``).
        if displ is None:
            displ = 0
        displ = _operator.index(displ)
        if displ < 0:
            raise ValueError(f"message: negative displacement {displ}")
        if count is not None:
            count = _operator.index(count)
            if count < 0:
                raise ValueError(f"message: negative count {count}")
            if count > 0 and not given:
                raise ValueError(f"message: buffer is None but count is {count}")
        if displ:
            _, total = _infer(buf)
            if dt._size <= 0:
                raise ValueError("message: cannot handle displacement, datatype is null")
            if displ * dt._size > total:
                raise ValueError(
                    f"message: displacement {displ} out of bounds, number of datatype entries {total // dt._size}"
                )
        if count is None:
            if displ:
                count = (total - displ * dt._size) // dt._size
            else:
                return buf, None, _whole(buf, dt)
        nbytes = count * dt._size
        if displ:
            off = displ * dt._size
            buf = _mv(buf).cast("B")[off : off + nbytes]
        return buf, nbytes, dt
    return spec, None, None


def _is_null_type(dt):
    return type(dt) is Datatype and dt._name == "MPI_DATATYPE_NULL"


def _p2p(spec, peer, recv=False):
    """`_msg` for a point-to-point call with `peer`: as in mpi4py (``message_simple``),
    a bare ``None`` is a message only to or from ``PROC_NULL``; ``[None, 0, dt]`` is an
    empty one anywhere. A datatype with holes travels packed: a send's spec becomes the
    packed bytes, a receive's a buffer of that size and, third, the :class:`_Unpack`
    that puts what arrived in place."""
    if spec is None and peer != PROC_NULL:
        raise TypeError("message: expecting buffer or list/tuple")
    # A receive's buffer is exported writable now: one it cannot write must fail
    # before the message is matched, which then stays queued.
    d = _derived_spec(spec, recv)
    if d is None:
        out = _msg(spec)
        if (type(spec) is list or type(spec) is tuple) and _is_null_type(out[2]):
            raise Exception(ERR_TYPE, "message: the datatype is MPI.DATATYPE_NULL, which is not a datatype to move")
        return out
    buf, count, dt = d
    if not recv:
        packed = dt._pack(buf, count)
        return packed, len(packed), BYTE
    tmp = bytearray(dt._size * count)
    return tmp, len(tmp), _Unpack(buf, dt, tmp)


class _Unpack:
    """Puts the packed bytes of a receive with a datatype with holes into the caller's
    buffer, as many whole elements as arrived (called with the received length)."""

    __slots__ = ("buf", "dt", "tmp")

    def __init__(self, buf, dt, tmp):
        self.buf, self.dt, self.tmp = buf, dt, tmp

    def __call__(self, nbytes):
        self.dt._unpack(self.buf, nbytes // self.dt._size if self.dt._size else 0, self.tmp)


def _derived_spec(spec, writable=False):
    """``(view, count, datatype)`` when a spec names a datatype with holes, in any of
    the forms ``[buf, dt]``, ``[buf, count, dt]``, ``[buf, (count, displ), dt]`` and
    ``[buf, count, displ, dt]`` (displacement in extents), the view the buffer's bytes
    from the displacement on (:func:`_flat`, writable if asked); ``None`` otherwise. A
    count to infer, or elements past the buffer's end, are mpi4py's ``ValueError``; a
    buffer that is not contiguous, or read-only where ``writable`` is asked, the
    exporter's error, as for a buffer without a datatype."""
    if not (type(spec) is list or type(spec) is tuple) or len(spec) < 2:
        return None
    dt = spec[-1]
    if not isinstance(dt, Datatype) or dt._blocks is None:
        return None
    n = len(spec)
    buf, count, displ = spec[0], None, 0
    if n == 3:
        count = spec[1]
        if type(count) is tuple or type(count) is list:
            count, displ = count
    elif n == 4:
        count, displ = spec[1], spec[2]
    elif n != 2:
        raise ValueError("message: expecting 2 to 4 items")
    if buf is None or buf is BOTTOM:
        buf = _NOTHING
    m = _flat(buf, writable)
    ext = dt._extent
    total = m.nbytes
    displ = _operator.index(displ or 0)
    if displ < 0:
        raise ValueError(f"message: negative displacement {displ}")
    if count is None:
        if (total - displ * ext) % ext:
            raise ValueError(
                f"message: cannot infer count, buffer length {total} is not a multiple of datatype extent {ext}"
            )
        count = (total - displ * ext) // ext
    count = _operator.index(count)
    if count < 0:
        raise ValueError(f"message: negative count {count}")
    end = (displ + count - 1) * ext + max(o + k for o, k in dt._blocks) if count else 0
    if end > total:
        raise ValueError(f"message: buffer of {total} bytes is too small for {count} elements of {dt._name}")
    if displ:
        m = m[displ * ext :]
    return m, count, dt


def _msg_w(spec, size):
    """An ``Alltoallw`` spec ``[buf, datatypes]``, ``[buf, (counts, displs),
    datatypes]`` or ``[buf, counts, displs, datatypes]`` as (buffer, byte counts, byte
    displacements); without counts and displacements, one element at byte 0 for
    every rank, as in mpi4py."""
    n = len(spec)
    if n == 2:
        buf, types = spec
        counts = displs = None
    elif n == 3:
        buf, (counts, displs), types = spec
    elif n == 4:
        buf, counts, displs, types = spec
    else:
        raise ValueError("message: expecting 2 to 4 items")
    if buf is BOTTOM:
        if counts is None:
            raise ValueError("message: BOTTOM requires counts")
        if displs is None:
            raise ValueError("message: BOTTOM requires displs")
        raise NotImplementedError("Alltoallw with MPI.BOTTOM addresses")
    if buf is None:
        buf = _NOTHING
    if counts is None and displs is None:
        counts, displs = [1] * size, [0] * size
    counts = [_operator.index(c) for c in counts]
    displs = [_operator.index(d) for d in displs]
    if isinstance(types, Datatype):
        types = [types] * size
    types = list(types)
    if not len(counts) == len(displs) == len(types) == size:
        raise ValueError(f"message: expecting {size} counts, displacements and datatypes")
    if any(t._blocks is not None for t in types):
        raise NotImplementedError("Alltoallw with datatypes that have holes")
    return buf, [c * t._size for c, t in zip(counts, types)], displs


def Get_address(location):
    """The address of a buffer's memory (``MPI_Get_address``)."""
    import ctypes

    return ctypes.addressof(ctypes.c_char.from_buffer(_mv(location).cast("B")))


def Aint_add(base, disp):
    return base + disp


def Aint_diff(addr1, addr2):
    return addr1 - addr2


def _whole(buf, dt):
    """``dt``, after mpi4py's check that the buffer holds whole elements of it."""
    total = _mv(buf).nbytes
    if total and not dt._size:
        raise ValueError("message: cannot infer count, datatype is null")
    if dt._size and total % dt._size:
        raise ValueError(f"message: buffer length {total} is not a multiple of datatype extent {dt._size}")
    return dt


def _msg_typed(spec):
    """Like :func:`_msg`, with the datatype and the byte length always known."""
    buf, nb, dt = _msg(spec)
    if dt is None or nb is None:
        fdt, total = _infer(buf)
        if dt is None:
            dt = fdt
        if nb is None:
            nb = total - total % dt._size if dt._size else total
    return buf, nb, dt


def _msg_blocks(spec, nblocks):
    """A spec of a buffer of ``nblocks`` blocks (the root's in Scatter and Gather,
    both in Alltoall, the receive in Allgather), as (buffer, bytes of all blocks,
    datatype): an explicit count is per block, as MPI's sendcount/recvcount and
    mpi4py have it; without one, the whole buffer."""
    if (type(spec) is list or type(spec) is tuple) and len(spec) == 3 and type(spec[1]) is int:
        buf, nb, dt = _msg(spec)
        return buf, nb * nblocks, dt
    buf, nb, dt = _msg_typed(spec)
    count = nb // dt._size if dt._size else 0
    if nblocks and count % nblocks:
        # mpi4py's ``message_simple``.
        raise ValueError(
            f"message: cannot infer count, number of entries {count} is not a multiple of required number of blocks {nblocks}"
        )
    return buf, nb, dt


def _block_mismatch(call, sblk, sdt, rblk, rdt):
    """The error of a block collective whose blocks on this rank hold different bytes
    to send and to receive (``None`` if they agree): MPI requires the type signatures
    of a block's send and receive count and datatype to be equal, and moving either
    would put wrong data, or data past the receive count, in the receive buffer."""
    if sblk == rblk:
        return None

    def count(nb, dt):
        return f"{nb // dt._size if dt._size else 0} x {dt._name} ({nb} bytes)"

    return Exception(
        ERR_TRUNCATE if sblk > rblk else ERR_COUNT,
        f"{call}: this rank's blocks are {count(sblk, sdt)} to send but {count(rblk, rdt)} to "
        "receive; a block's send count and datatype must match its receive count and "
        "datatype (the same bytes)",
    )


def _ok(args):
    """A block collective's arguments (:meth:`Comm._scatter_args` ...) but their last,
    the mismatch error, which the non-blocking and persistent forms raise at once."""
    if args[-1] is not None:
        raise args[-1]
    return args[:-1]


def _run_block(fn, args, *rest):
    """Runs a blocking block collective on ``args`` (:meth:`Comm._scatter_args` ...).
    With this rank's blocks mismatched the call is still made, with the lengths as
    given: shmpi then fails it on every rank (its length check), where raising
    before it would leave the other ranks waiting; this rank raises the error that
    names the datatypes."""
    *args, bad = args
    if bad is None:
        return fn(*args, *rest)
    try:
        fn(*args, *rest)
    except Exception:
        pass
    raise bad


def _msg_v(spec, size):
    """A v-collective spec as (buffer, bytes, byte counts, byte displacements,
    datatype), with mpi4py's rules: ``buf``, ``[buf, counts]``, ``[buf, datatype]``,
    ``[buf, (counts, displs)]``, ``[buf, counts, datatype]``, ``[buf, (counts,
    displs), datatype]`` or ``[buf, counts, displs, datatype]``; an int count is every
    rank's, an int displacement a stride, and no counts split the buffer evenly."""
    counts = displs = dt = None
    if type(spec) is list or type(spec) is tuple:
        n = len(spec)
        if n == 2:
            buf, counts = spec
            if isinstance(counts, (Datatype, str)):
                counts, dt = None, counts
            elif type(counts) is tuple:
                counts, displs = counts
        elif n == 3:
            buf, counts, dt = spec
            if type(counts) is tuple:
                counts, displs = counts
        elif n == 4:
            buf, counts, displs, dt = spec
        else:
            raise ValueError("message: expecting 2 to 4 items")
    else:
        buf = spec
    if buf is None or buf is BOTTOM:
        buf = _NOTHING
    fdt, total = _infer(buf)
    dt = fdt if dt is None else _datatype(dt)
    sz = dt._size
    if counts is None:
        # mpi4py's checks (``message_vector``).
        if total > 0 and sz == 0:
            raise ValueError("message: cannot infer count, datatype is null")
        if total > 0 and total % sz:
            raise ValueError(
                f"message: cannot infer count, buffer length {total} is not a multiple of datatype extent {sz}"
            )
        csize = total // sz if sz else 0
        counts = [csize // size + (csize % size > i) for i in range(size)]
    elif _is_index(counts):
        counts = [_operator.index(counts)] * size
    else:
        counts = [_operator.index(c) for c in counts]
    if displs is None:
        displs, acc = [], 0
        for c in counts:
            displs.append(acc)
            acc += c
    elif _is_index(displs):
        displs = [_operator.index(displs) * i for i in range(size)]
    else:
        displs = [_operator.index(d) for d in displs]
    return buf, total, [c * sz for c in counts], [d * sz for d in displs], dt


def _check_match(sdt, snb, rdt, rnb):
    """A reduction's send and receive buffers must name the same datatype and count
    (mpi4py's ``ValueError``; MPI's would be undefined)."""
    if sdt != rdt:
        raise ValueError(f"message: mismatch in send and receive MPI datatypes ({sdt._name}, {rdt._name})")
    if snb != rnb:
        sz = sdt._size or 1
        raise ValueError(f"message: mismatch in send count {snb // sz} and receive count {rnb // sz}")


def _is_index(x):
    """Whether a count or displacement is one integer (``int``, a NumPy integer or a
    0-d integer array), not a sequence of them; a float is neither (``TypeError``
    where it is used, as in mpi4py)."""
    try:
        _operator.index(x)
    except TypeError:
        return False
    return True


# ---- ops ---------------------------------------------------------------------------


def _op_max(x, y):
    return y if y > x else x


def _op_min(x, y):
    return y if y < x else x


def _op_lxor(x, y):
    return (x and not y) or (y and not x)


def _op_maxloc(x, y):
    (u, i), (v, j) = x, y
    if u > v:
        return (u, i)
    if v > u:
        return (v, j)
    return (u, i if i < j else j)


def _op_minloc(x, y):
    (u, i), (v, j) = x, y
    if u < v:
        return (u, i)
    if v < u:
        return (v, j)
    return (u, i if i < j else j)


class Op:
    """A reduction operation (``MPI.Op``): a built-in one or ``Op.Create(fn)``."""

    __slots__ = ("_name", "_fn", "_code", "_user", "_commute", "_tok")

    def __init__(self, op=None, *, _name="MPI_OP_NULL", _fn=None, _code=None, _user=False, _commute=True):
        # What a handle names, shared by its copies: they compare equal (mpi4py
        # compares handles), two ops made apart do not.
        tok = object()
        if isinstance(op, Op):
            _name, _fn, _code, _user, _commute, tok = op._name, op._fn, op._code, op._user, op._commute, op._tok
        self._tok = tok
        self._name = _name
        self._fn = _fn
        self._code = _code  # shmpi's built-in op, for numeric buffers
        self._user = _user
        self._commute = _commute

    def __repr__(self):
        return f"<{type(self).__name__}: {self._name}>"

    def __bool__(self):
        return self._fn is not None

    # Copies of a handle compare equal (mpi4py compares handles); null and freed ops
    # equal each other.
    def __eq__(self, other):
        if not isinstance(other, Op):
            return NotImplemented
        if self._fn is None or other._fn is None:
            return self._fn is None and other._fn is None
        return self._tok is other._tok

    def __ne__(self, other):
        r = self.__eq__(other)
        return r if r is NotImplemented else not r

    def __hash__(self):
        return hash(id(self._tok))

    def __reduce__(self):
        # mpi4py's rules: a predefined op by name (the same object back), a copy of
        # one as a new copy, a user op as ``Op.Create`` of its function (a new op).
        for name in _OP_NAMES:
            if globals()[name] is self:
                return name
        if not self._user:
            for name in _OP_NAMES:
                if globals()[name] == self:
                    return (Op, (globals()[name],))
        return (Op.Create, (self._fn, self._commute))

    def __call__(self, x, y):
        """Applies the op to two Python objects, as lowercase reductions do."""
        if self._fn is None:
            # mpi4py's error for calling OP_NULL (its test_op checks the class).
            raise ValueError(f"cannot call {self._name}: it is not an operation (a freed or null op)")
        if self._user:
            return self._fn(x, y, None)
        return self._fn(x, y)

    @classmethod
    def Create(cls, function, commute=False):
        """A user op: ``function(invec, inoutvec, datatype)`` stores ``invec op
        inoutvec`` into ``inoutvec`` for buffers; for objects its result is used."""
        return cls(_name="user-defined", _fn=function, _user=True, _commute=bool(commute))

    def Free(self):
        if not self._user:
            raise Exception(ERR_OP, f"Free: {self._name} is a predefined or null op")
        if self._fn is None:
            raise Exception(ERR_OP, "Free: the op is already freed")
        self._fn = None

    def Is_commutative(self):
        return self._commute

    is_commutative = property(Is_commutative)

    def Is_predefined(self):
        return not self._user

    is_predefined = property(Is_predefined)

    def Reduce_local(self, inbuf, inoutbuf):
        """``inoutbuf = inbuf op inoutbuf`` elementwise."""
        _check_op(self)
        ib, inb, dt = _msg_typed(inbuf)
        ob, onb, _ = _msg_typed(inoutbuf)
        if inb != onb:
            raise ValueError(f"Reduce_local: buffers of {inb} and {onb} bytes")
        # After the lengths, as mpi4py checks them before MPI sees the op.
        dt = _reduction_type(dt)
        _check_op_type(self, dt)
        out = _fold_bytes(self, dt, [bytes(_mv(ib).cast("B")[:inb]), bytes(_mv(ob).cast("B")[:onb])])
        _mv(ob).cast("B")[:onb] = out


def _op(name, fn, code=None):
    return Op(_name="MPI_" + name, _fn=fn, _code=code)


OP_NULL = Op()
# Codes in shmpi._shmpi's order.
SUM = _op("SUM", lambda x, y: x + y, 0)
PROD = _op("PROD", lambda x, y: x * y, 1)
MAX = _op("MAX", _op_max, 2)
MIN = _op("MIN", _op_min, 3)
LAND = _op("LAND", lambda x, y: x and y, 4)
LOR = _op("LOR", lambda x, y: x or y, 5)
LXOR = _op("LXOR", _op_lxor, 6)
BAND = _op("BAND", lambda x, y: x & y, 7)
BOR = _op("BOR", lambda x, y: x | y, 8)
BXOR = _op("BXOR", lambda x, y: x ^ y, 9)
MAXLOC = _op("MAXLOC", _op_maxloc)
MINLOC = _op("MINLOC", _op_minloc)
REPLACE = _op("REPLACE", lambda x, y: y)
NO_OP = _op("NO_OP", lambda x, y: x)
_OP_NAMES = ("OP_NULL", "MAX", "MIN", "SUM", "PROD", "LAND", "BAND", "LOR", "BOR", "LXOR",
             "BXOR", "MAXLOC", "MINLOC", "REPLACE", "NO_OP")


def _fold_objects(op, items):
    """``items[0] op items[1] op ...``, left to right (rank order)."""
    it = iter(items)
    acc = next(it)
    for x in it:
        acc = op(acc, x)
    return acc


def _fold_bytes(op, dt, blocks):
    """Reduces byte blocks of ``dt`` elements in rank order, in Python: for user ops
    and for built-in ops shmpi does not apply natively (``MAXLOC`` on pairs ...)."""
    if op._user:
        # mpi4py hands a user function MPI.buffer objects (bytes that take any buffer
        # of their length into a slice: ``b[:] = array("i", ...)``), not memoryviews.
        acc = _op_buffer(blocks[0])
        for b in blocks[1:]:
            inout = _op_buffer(b)
            op._fn(acc, inout, dt)
            acc = inout
        return bytes(acc)
    pair = op is MAXLOC or op is MINLOC
    npt = None if pair else _numpy_type(dt)
    if npt is not None:
        # NumPy knows every numeric type (long double, complex) and has no padding.
        import numpy

        acc = list(numpy.frombuffer(blocks[0], dtype=npt))
        for b in blocks[1:]:
            acc = [op._fn(x, y) for x, y in zip(acc, numpy.frombuffer(b, dtype=npt))]
        return numpy.array(acc, dtype=npt).tobytes()
    fmt = dt._fmt
    if not fmt or (not pair and len(fmt) > 1):
        if npt is None and "numpy" not in _sys.modules:
            raise NotImplementedError(f"reductions of {dt.name} need NumPy")
        # A buffer whose format names no MPI datatype (NumPy's float16) is opaque
        # bytes, MPI_BYTE[itemsize], as in mpi4py without an MPI that has float16.
        raise Exception(
            ERR_OP,
            f"{op._name} is not defined on {dt.name}: shmpi reduces numeric MPI datatypes only "
            "(a buffer whose format has none, such as NumPy's float16, is opaque bytes)",
        )
    st = _struct.Struct("=" + fmt)

    def elems(b):
        vals = st.iter_unpack(b)
        return [v if pair else v[0] for v in vals]

    acc = elems(blocks[0])
    for b in blocks[1:]:
        acc = [op._fn(x, y) for x, y in zip(acc, elems(b))]
    return b"".join(st.pack(*(a if isinstance(a, tuple) else (a,))) for a in acc)


def _op_buffer(data):
    """An ``MPI.buffer`` holding a copy of ``data``, for a user op's arguments."""
    b = buffer.allocate(len(data))
    b[:] = data
    return b


# NumPy type codes of the numeric datatypes, for reductions folded in Python.
_NUMPY_TYPES = {"ff": "c8", "dd": "c16"}


def _numpy_type(dt):
    """The NumPy dtype of a numeric datatype, if NumPy is installed."""
    if "numpy" not in _sys.modules:
        try:
            import numpy  # noqa: F401
        except ImportError:
            return None
    if dt is LONG_DOUBLE:
        return "g"
    if dt is C_LONG_DOUBLE_COMPLEX:
        return "G"
    if dt._code is not None:
        return dt._code
    return _NUMPY_TYPES.get(dt._fmt)


def _check_op(op):
    """mpi4py's error for a reduction's ``op`` that is not an :class:`Op`; MPI's
    ``ERR_OP`` for ``OP_NULL`` (or a freed op)."""
    if not isinstance(op, Op):
        raise TypeError(f"Argument 'op' has incorrect type (expected mpi4py.MPI.Op, got {type(op).__name__})")
    if op._fn is None:
        raise Exception(ERR_OP, f"{op._name} is not an operation (a freed or null op)")


# The datatypes of MAXLOC and MINLOC (MPI 4.1 sec. 6.9.4), and the complex ones.
_PAIR_TYPES = frozenset(("MPI_SHORT_INT", "MPI_2INT", "MPI_LONG_INT", "MPI_FLOAT_INT", "MPI_DOUBLE_INT", "MPI_LONG_DOUBLE_INT"))
_COMPLEX_TYPES = frozenset(("MPI_C_COMPLEX", "MPI_C_DOUBLE_COMPLEX", "MPI_C_LONG_DOUBLE_COMPLEX", "MPI_COMPLEX", "MPI_DOUBLE_COMPLEX"))


def _op_defined(op, dt):
    """Whether a built-in op is defined on a datatype that shmpi does not reduce
    natively, by MPI 4.1 sec. 6.9.2's table: MAXLOC and MINLOC on pair types only,
    SUM and PROD on numbers, complex ones included, the others on no complex, pair or
    unnamed type (MAX and MIN on real numbers, the logical and bitwise ops on
    integers, which shmpi reduces natively)."""
    if op is MAXLOC or op is MINLOC:
        return dt._name in _PAIR_TYPES
    if dt._name in _PAIR_TYPES:
        return op is REPLACE or op is NO_OP
    if dt._name in _COMPLEX_TYPES:
        return op._code is None or op._code <= 1  # SUM, PROD (and REPLACE, NO_OP)
    if dt is LONG_DOUBLE:
        return op._code is None or op._code <= 3  # SUM, PROD, MAX, MIN
    return True


def _check_op_type(op, dt):
    """MPI's ``ERR_OP`` for a built-in op not defined on ``dt``, as shmpi's native
    reductions raise it (``BAND`` on ``MPI.DOUBLE``)."""
    if not op._user and not _op_defined(op, dt):
        raise Exception(ERR_OP, f"{op._name} is not defined on {dt._name} (MPI 4.1 sec. 6.9.2)")


def _native(op, dt):
    """Whether shmpi reduces ``dt`` with ``op`` itself; otherwise the op is checked
    against ``dt`` (:func:`_check_op_type`) here, before any data moves."""
    if op._code is not None and dt._code is not None:
        return True
    _check_op_type(op, dt)
    return False


def _reduction_type(dt):
    """The datatype a reduction of ``dt`` applies its op to: the one a contiguous
    type repeats, so that its elements are reduced as that type's."""
    return dt if dt._elem is None else dt._elem


# ---- status ------------------------------------------------------------------------


class Status:
    """What a receive learned about its message (``MPI.Status``). Its fields live in
    an array of C ints, as ``MPI_Status`` does, which :meth:`tomemory` exposes."""

    __slots__ = ("_a", "_len")

    def __init__(self, status=None):
        if status is None:
            self._a = _array.array("i", (ANY_SOURCE, ANY_TAG, SUCCESS, 0))
            self._len = 0
        elif isinstance(status, Status):
            self._a = _array.array("i", status._a)
            self._len = status._len
        else:
            raise TypeError(f"Status() argument must be a Status, not {type(status).__name__}")

    def __repr__(self):
        return f"<Status source={self.source} tag={self.tag} count={self._len}>"

    def __eq__(self, other):
        if not isinstance(other, Status):
            return NotImplemented
        return self._a == other._a and self._len == other._len

    __hash__ = None

    def __reduce__(self):
        return (_new_status, (tuple(self._a), self._len))

    def _set(self, st):
        a = self._a
        a[0], a[1], a[2] = st[0], st[1], SUCCESS
        a[3] = st[3] if len(st) > 3 else 0
        self._len = st[2]

    def Get_source(self):
        return self._a[0]

    def Set_source(self, source):
        self._a[0] = source

    def Get_tag(self):
        return self._a[1]

    def Set_tag(self, tag):
        self._a[1] = tag

    def Get_error(self):
        return self._a[2]

    def Set_error(self, error):
        self._a[2] = error

    source = property(Get_source, Set_source)
    tag = property(Get_tag, Set_tag)
    error = property(Get_error, Set_error)

    def Get_count(self, datatype=BYTE):
        """The number of ``datatype`` elements received, or ``UNDEFINED``."""
        size = _status_type("Get_count", datatype)._size
        if size == 0:
            return 0
        if self._len % size:
            return UNDEFINED
        return self._len // size

    def Get_elements(self, datatype):
        """The number of basic elements received (MPI 4.1 §5.1.11), also when that
        is not a whole number of ``datatype``: ``UNDEFINED`` only for a part of a
        basic element."""
        dt = _status_type("Get_elements", datatype)
        size, sig = dt._size, dt._signature()
        if size == 0:
            return 0
        whole, rest = divmod(self._len, size)
        n = whole * len(sig)
        for s in sig:
            if rest < s:
                break
            rest -= s
            n += 1
        return UNDEFINED if rest else n

    def Set_elements(self, datatype, count):
        """Sets the status to ``count`` basic elements of ``datatype``."""
        dt = _status_type("Set_elements", datatype)
        sig = dt._signature()
        if not sig:
            self._len = 0
            return
        whole, rest = divmod(count, len(sig))
        self._len = whole * dt._size + sum(sig[:rest])

    def Is_cancelled(self):
        return bool(self._a[3])

    def Set_cancelled(self, flag):
        self._a[3] = 1 if flag else 0

    def _set_count(self, n):
        self._len = int(n)

    count = property(lambda self: self._len, _set_count)
    cancelled = property(Is_cancelled, Set_cancelled)

    def tomemory(self):
        """The status's fields (source, tag, error, cancelled) as writable C ints."""
        return _mv(self._a)

    def py2f(self):
        return list(self._a)

    @classmethod
    def f2py(cls, arg):
        s = cls()
        s._a[: len(arg)] = _array.array("i", arg)
        return s


def _status_type(call, datatype):
    dt = _datatype(datatype)
    if dt._name == "MPI_DATATYPE_NULL":
        raise Exception(ERR_TYPE, f"{call}: invalid datatype MPI.DATATYPE_NULL")
    return dt


def _new_status(fields, length):
    s = Status()
    s._a = _array.array("i", fields)
    s._len = length
    return s


def _fill(status, st):
    if status is not None and st is not None:
        status._set(st)


_NULL_ST = (PROC_NULL, ANY_TAG, 0)
_EMPTY_ST = (ANY_SOURCE, ANY_TAG, 0)


# ---- handles -----------------------------------------------------------------------

_next_handle = _itertools.count(1).__next__
_handles = _weakref.WeakValueDictionary()


def _handle_methods(cls):
    """mpi4py's handle conversions (``handle``, ``fromhandle``; no Fortran or C
    integers: ``toint`` and ``py2f`` are -1)."""

    def handle(self):
        if not self:
            return 0
        if not self._id:
            _register(self)  # a request's handle is made when first asked for
        return self._id

    def fromhandle(klass, h):
        obj = _handles.get(h) if h else None
        new = klass()
        if obj is not None:
            klass.__init__(new, obj)
        return new

    cls.handle = property(handle)
    cls.fromhandle = classmethod(fromhandle)
    cls.toint = lambda self: -1
    cls.py2f = lambda self: -1
    cls.fromint = classmethod(lambda klass, i: klass())
    cls.f2py = classmethod(lambda klass, i: klass())
    return cls


def _register(obj):
    obj._id = _next_handle()
    _handles[obj._id] = obj
    return obj


def _reduce_handle(obj, null_name):
    """Pickling a handle: the predefined ones by name, a copy of one as a new copy;
    a live operation cannot travel (mpi4py's ``ValueError``)."""
    for name in _CONSTANTS:
        if globals().get(name) is obj:
            return name
    for name in ("COMM_WORLD", "COMM_SELF"):
        # A copy of a predefined communicator (``Intracomm(COMM_WORLD)``): a new copy.
        if isinstance(obj, Comm) and obj and obj == globals().get(name):
            return (type(obj), (globals()[name],))
    if not obj:
        return (type(obj), ())
    if isinstance(obj, Message) and obj._noproc:
        return (type(obj), (MESSAGE_NO_PROC,))
    raise ValueError(f"cannot serialize {type(obj).__name__} instance")


_CONSTANTS = (
    "REQUEST_NULL", "MESSAGE_NULL", "MESSAGE_NO_PROC", "GROUP_NULL", "GROUP_EMPTY",
    "COMM_NULL", "COMM_WORLD", "COMM_SELF",
)


# ---- error handlers ----------------------------------------------------------------


class Errhandler:
    """An error handler (``MPI.Errhandler``). Errors that shmpi's calls detect are
    always raised as ``MPI.Exception`` (mpi4py's default, ``ERRORS_RETURN``), whatever
    handler is set; the handler set on a communicator or window is what
    ``Get_errhandler`` returns and what ``Call_errhandler`` invokes: ``ERRORS_RETURN``
    does nothing, ``ERRORS_ARE_FATAL`` and ``ERRORS_ABORT`` abort the job, a handler
    made by ``Create_errhandler`` is called with the object and the error code."""

    __slots__ = ("_kind", "_fn", "__weakref__")

    def __init__(self, errhandler=None):
        if errhandler is None:
            self._kind, self._fn = None, None
        elif isinstance(errhandler, Errhandler):
            self._kind, self._fn = errhandler._kind, errhandler._fn
        else:
            raise TypeError(f"expecting an Errhandler, got {type(errhandler).__name__}")

    @classmethod
    def _make(cls, kind, fn=None):
        e = cls.__new__(cls)
        e._kind, e._fn = kind, fn
        return e

    def __bool__(self):
        return self._kind is not None

    def __eq__(self, other):
        if not isinstance(other, Errhandler):
            return NotImplemented
        return self._kind == other._kind and self._fn is other._fn

    def __ne__(self, other):
        r = self.__eq__(other)
        return r if r is NotImplemented else not r

    __hash__ = None

    def __reduce__(self):
        for name in ("ERRHANDLER_NULL", "ERRORS_RETURN", "ERRORS_ARE_FATAL", "ERRORS_ABORT"):
            if globals().get(name) is self:
                return name
        if self._kind is None:
            return (Errhandler, ())
        if self._kind != "user":
            return (Errhandler, (_PREDEFINED_ERRH[self._kind],))
        raise ValueError("cannot serialize Errhandler instance")

    def Free(self):
        if any(globals().get(n) is self for n in ("ERRORS_RETURN", "ERRORS_ARE_FATAL", "ERRORS_ABORT")):
            raise Exception(ERR_ARG, "a predefined error handler cannot be freed")
        if self._kind is None:
            raise Exception(ERR_ARG, "Free: invalid error handler MPI.ERRHANDLER_NULL")
        self._kind, self._fn = None, None

    # No C or Fortran integer handles, as for the other handles.
    def toint(self):
        return -1

    def py2f(self):
        return -1

    @classmethod
    def fromint(cls, i):
        return cls()

    @classmethod
    def f2py(cls, i):
        return cls()

    def _call(self, obj, errorcode):
        kind = self._kind
        if kind == "user":
            self._fn(obj, errorcode)
        elif kind in ("fatal", "abort") and errorcode != SUCCESS:
            _sys.stderr.write(f"shmpi: error {errorcode} ({Get_error_string(errorcode)}) with {kind} error handler\n")
            COMM_WORLD.Abort(errorcode)


ERRHANDLER_NULL = Errhandler()
ERRORS_RETURN = Errhandler._make("return")
ERRORS_ARE_FATAL = Errhandler._make("fatal")
ERRORS_ABORT = Errhandler._make("abort")
_PREDEFINED_ERRH = {"return": ERRORS_RETURN, "fatal": ERRORS_ARE_FATAL, "abort": ERRORS_ABORT}
# The handler set on each communicator and window (by its native object, shared by
# every Python handle of it).
_ERRHANDLERS = {}


def _group_info_methods(cls, check):
    """``Get_group`` (``group``, ``group_size``, ``group_rank``) and ``Get_info``/
    ``Set_info`` (``info``: hints, which shmpi uses none of) for handles over a
    communicator ``self._comm``, valid while ``check(self)`` does not raise."""

    def get_group(self):
        check(self)
        return self._comm.Get_group()

    def group_size(self):
        check(self)
        return self._comm.Get_size()

    def group_rank(self):
        check(self)
        return self._comm.Get_rank()

    def set_info(self, info):
        check(self)
        if info is not None and not isinstance(info, Info):
            raise TypeError(f"Set_info: expecting an MPI.Info, got {type(info).__name__}")

    def get_info(self):
        check(self)
        return Info._new()

    cls.Get_group = get_group
    cls.group = property(get_group)
    cls.group_size = property(group_size)
    cls.group_rank = property(group_rank)
    cls.Set_info = set_info
    cls.Get_info = get_info
    cls.info = property(get_info, set_info)
    return cls


def _errhandler_methods(cls, native):
    """``Get_errhandler``, ``Set_errhandler``, ``Call_errhandler`` and
    ``Create_errhandler`` for handles whose native object ``native(self)`` names."""

    def get_errhandler(self):
        return Errhandler(_ERRHANDLERS.get(native(self), ERRORS_RETURN))

    def set_errhandler(self, errhandler):
        if not isinstance(errhandler, Errhandler):
            raise TypeError(f"expecting an Errhandler, got {type(errhandler).__name__}")
        if not errhandler:
            raise Exception(ERR_ARG, "ERRHANDLER_NULL cannot be set")
        _ERRHANDLERS[native(self)] = Errhandler(errhandler)

    def call_errhandler(self, errorcode):
        _ERRHANDLERS.get(native(self), ERRORS_RETURN)._call(self, _operator.index(errorcode))

    def create_errhandler(klass, errhandler_fn):
        if not callable(errhandler_fn):
            raise TypeError("expecting a callable error handler function")
        return Errhandler._make("user", errhandler_fn)

    cls.Get_errhandler = get_errhandler
    cls.Set_errhandler = set_errhandler
    cls.Call_errhandler = call_errhandler
    cls.Create_errhandler = classmethod(create_errhandler)
    cls.errhandler = property(get_errhandler, set_errhandler)
    return cls


# ---- attributes ----------------------------------------------------------------------

# The predefined attributes of communicators (their keyvals; TAG_UB is also the bound).
HOST, IO, WTIME_IS_GLOBAL, UNIVERSE_SIZE, APPNUM, LASTUSEDCODE = -11, -12, -13, -14, -15, -16
ERR_KEYVAL = 48
_next_keyval = _itertools.count(1000).__next__
# keyval -> (copy_fn, delete_fn), while the keyval lives.
_KEYVALS = {}
# The attributes of each communicator and window, by its native object:
# {keyval: (value, copy_fn, delete_fn)} (a freed keyval's callbacks stay with its
# attributes, as MPI keeps them).
_ATTRS = {}
_MISSING = object()


def _callback(what, fn, *args):
    """Calls an attribute callback; its exception is printed and becomes MPI's
    ``ERR_OTHER``, as mpi4py reports it."""
    try:
        return fn(*args)
    except BaseException:
        import traceback

        traceback.print_exc()
        raise Exception(ERR_OTHER, f"the attribute {what} callback raised") from None


def _attrs_copy(src, dst, native):
    """The attributes ``Dup`` carries from ``src`` to ``dst``: a copy callback of
    ``True`` copies the value, a function returns the copy (``NotImplemented``: none),
    none or ``False`` copies nothing."""
    got = {}
    for k, (v, cfn, dfn) in list(_ATTRS.get(native(src), {}).items()):
        if cfn is None or cfn is False:
            continue
        new = v if cfn is True else _callback("copy", cfn, src, k, v)
        if new is not NotImplemented:
            got[k] = (new, cfn, dfn)
    if got:
        _ATTRS[native(dst)] = got


def _attrs_free(obj, native):
    """Deletes every attribute of ``obj`` (it is being freed)."""
    attrs = _ATTRS.pop(native(obj), {})
    for k, (v, _, dfn) in attrs.items():
        if dfn is not None:
            _callback("delete", dfn, obj, k, v)


def _attr_methods(cls, native, predefined):
    """``Create_keyval``, ``Free_keyval``, ``Set_attr``, ``Get_attr`` and
    ``Delete_attr`` for handles whose native object ``native(self)`` names;
    ``predefined(self, keyval)`` gives the predefined attributes (or ``_MISSING``)."""

    def create_keyval(klass, copy_fn=None, delete_fn=None, nopython=False):
        k = _next_keyval()
        _KEYVALS[k] = (copy_fn, delete_fn)
        return k

    def free_keyval(klass, keyval):
        if _KEYVALS.pop(keyval, None) is None:
            raise Exception(ERR_KEYVAL, f"Free_keyval: {keyval} is not a keyval")
        return KEYVAL_INVALID

    def set_attr(self, keyval, attrval):
        fns = _KEYVALS.get(keyval)
        if fns is None:
            raise Exception(ERR_KEYVAL, f"Set_attr: {keyval} is not a keyval")
        attrs = _ATTRS.setdefault(native(self), {})
        old = attrs.pop(keyval, None)
        if old is not None and old[2] is not None:
            _callback("delete", old[2], self, keyval, old[0])
        attrs[keyval] = (attrval, fns[0], fns[1])

    def get_attr(self, keyval):
        v = predefined(self, keyval)
        if v is not _MISSING:
            return v
        got = _ATTRS.get(native(self), {}).get(keyval)
        if got is None and keyval not in _KEYVALS:
            raise Exception(ERR_KEYVAL, f"Get_attr: {keyval} is not a keyval")
        return None if got is None else got[0]

    def delete_attr(self, keyval):
        attrs = _ATTRS.get(native(self), {})
        if keyval not in attrs:
            if keyval not in _KEYVALS:
                raise Exception(ERR_KEYVAL, f"Delete_attr: {keyval} is not a keyval")
            return
        v, _, dfn = attrs.pop(keyval)
        if dfn is not None:
            _callback("delete", dfn, self, keyval, v)

    cls.Create_keyval = classmethod(create_keyval)
    cls.Free_keyval = classmethod(free_keyval)
    cls.Set_attr = set_attr
    cls.Get_attr = get_attr
    cls.Delete_attr = delete_attr
    return cls


# ---- requests ----------------------------------------------------------------------


class _Done:
    """The operation of a request that completed as it started (on ``PROC_NULL``,
    ``Isendrecv``, a matched message's ``Irecv``); the request stays active until it
    is waited on or tested, as in MPI."""

    __slots__ = ("data", "st")

    def __init__(self, data=None, st=None):
        self.data, self.st = data, st

    def test(self):
        return True

    def wait(self):
        return self.data, self.st

    def cancel(self):
        return False

    def free(self):
        pass

    def is_null(self):
        return False


class _Then:
    """A native operation and a step in Python that completes it once the operation
    has (a non-blocking reduction with a user-defined op, or of a type shmpi does not
    reduce itself, folds the contributions the native part gathered; an ``Ibcast`` of a
    type with holes unpacks what it received). The step runs once, in the wait or test
    that completes the request."""

    __slots__ = ("raw", "then")

    def __init__(self, raw, then):
        self.raw, self.then = raw, then

    def test(self):
        return self.raw.test()

    def wait(self):
        out = self.raw.wait()
        then, self.then = self.then, None
        if then is not None:
            then()
        return out

    def cancel(self):
        raise Exception(ERR_REQUEST, "Cancel of a non-blocking collective's request (erroneous in MPI)")

    def free(self):
        # As MPI's Request_free: the operation completes, its result is not made.
        self.then = None
        self.raw.free()

    def is_null(self):
        return self.raw.is_null()


def _native_raw(raw):
    """The native request of an operation (for the native waits over many)."""
    return raw.raw if type(raw) is _Then else raw


class Request(_lib.RequestBase):
    """A non-blocking operation (``MPI.Request``). It becomes ``REQUEST_NULL`` once
    waited on, tested complete, freed or cancelled. Its fields (``_raw``, ``_obj``,
    ``_keep``, ``_id``) are the native base class's, which ``Waitall`` and the native
    ``Isend``/``Irecv`` read and write directly."""

    __slots__ = ()

    def __init__(self, request=None):
        if isinstance(request, Request):
            if request and not request._id:
                _register(request)  # copies of a live request must compare equal
            self._raw, self._obj, self._keep = request._raw, request._obj, request._keep
            self._id = request._id
        elif request is None:
            self._raw, self._obj, self._keep, self._id = None, False, None, 0
        else:
            raise TypeError(f"expecting a Request, got {type(request).__name__}")

    @classmethod
    def _new(cls, raw, obj, keep=None):
        # No handle yet: registering every request in the handle table cost more than
        # the rest of an Isend; `handle` and copies make one when asked.
        r = cls.__new__(cls)
        r._raw, r._obj, r._keep, r._id = raw, obj, keep, 0
        return r

    def __bool__(self):
        raw = self._raw
        return raw is not None and not raw.is_null()

    def __eq__(self, other):
        # Handles compare by identity of the operation; null ones have id 0.
        if not isinstance(other, Request):
            return NotImplemented
        if self._id or other._id:
            return self._id == other._id
        # Neither has a handle: the same operation? (Sends done as they started share
        # one `_SENT`: each is only itself.)
        raw = self._raw
        return self is other or (raw is other._raw and raw is not _SENT)

    def __ne__(self, other):
        r = self.__eq__(other)
        return r if r is NotImplemented else not r

    __hash__ = None  # as mpi4py's: requests compare by value, so they do not hash

    def __reduce__(self):
        return _reduce_handle(self, "REQUEST_NULL")

    def _collect(self, status):
        raw = self._raw
        if raw is None:
            _fill(status, _EMPTY_ST)
            return None
        data, st = raw.wait()
        keep = self._keep
        self._raw = None
        self._keep = None
        self._id = 0
        _fill(status, _EMPTY_ST if st is None else st)
        if self._obj:
            if data is None and keep is not None and st is not None:
                data = _mv(keep)[: st[2]]
            return _loads(data)
        return None

    def Wait(self, status=None):
        self._collect(status)
        return True

    def wait(self, status=None):
        return self._collect(status)

    def Test(self, status=None):
        if self._raw is None or self._raw.test():
            self._collect(status)
            return True
        return False

    def test(self, status=None):
        if self._raw is None or self._raw.test():
            return True, self._collect(status)
        return False, None

    def _peek(self, status):
        """Whether the operation is complete, without completing the request
        (``MPI_Request_get_status``)."""
        raw = self._raw
        if raw is None:
            _fill(status, _EMPTY_ST)
            return True
        if not raw.test():
            return False
        if type(raw) is not _Done:
            self._raw = raw = _Done(*raw.wait())
        _fill(status, _EMPTY_ST if raw.st is None else raw.st)
        return True

    def Get_status(self, status=None):
        return self._peek(status)

    def get_status(self, status=None):
        return self._peek(status)

    def Cancel(self):
        if not self:
            raise Exception(ERR_REQUEST, "Cancel: invalid request MPI.REQUEST_NULL")
        if self._raw is not None:
            if self._raw.cancel():
                self._raw = _Done(None, (ANY_SOURCE, ANY_TAG, 0, 1))

    def cancel(self):
        self.Cancel()

    def Free(self):
        if not self:
            raise Exception(ERR_REQUEST, "Free: invalid request MPI.REQUEST_NULL")
        if self._raw is not None:
            self._raw.free()
        self._raw = None
        self._id = 0

    def free(self):
        if self:
            self.Free()

    # -- many requests --

    @classmethod
    def Waitall(cls, requests, statuses=None):
        if statuses is None:
            _lib.wait_all(requests)  # `_waitall`'s loop, in one native call
        else:
            _waitall(requests, statuses)
        return True

    @classmethod
    def waitall(cls, requests, statuses=None):
        return _waitall(requests, statuses)

    @classmethod
    def Waitany(cls, requests, status=None):
        return _waitany(requests, status)[0]

    @classmethod
    def waitany(cls, requests, status=None):
        return _waitany(requests, status)

    @classmethod
    def Waitsome(cls, requests, statuses=None):
        return _some(requests, statuses, True)[0]

    @classmethod
    def waitsome(cls, requests, statuses=None):
        return _some(requests, statuses, True)

    @classmethod
    def Testsome(cls, requests, statuses=None):
        return _some(requests, statuses, False)[0]

    @classmethod
    def testsome(cls, requests, statuses=None):
        return _some(requests, statuses, False)

    @classmethod
    def Testall(cls, requests, statuses=None):
        if all(r._raw is None or r._raw.test() for r in requests):
            _waitall(requests, statuses)
            return True
        return False

    @classmethod
    def testall(cls, requests, statuses=None):
        if all(r._raw is None or r._raw.test() for r in requests):
            return True, _waitall(requests, statuses)
        return False, None

    @classmethod
    def Testany(cls, requests, status=None):
        i, flag, _ = cls.testany(requests, status)
        return i, flag

    @classmethod
    def testany(cls, requests, status=None):
        active = False
        for i, r in enumerate(requests):
            if r._raw is not None:
                active = True
                if r._raw.test():
                    return i, True, r._collect(status)
        if not active:
            _fill(status, _EMPTY_ST)
            return UNDEFINED, True, None
        return UNDEFINED, False, None

    @classmethod
    def Get_status_all(cls, requests, statuses=None):
        flags = [r._peek(None) for r in requests]
        if all(flags) and statuses is not None:
            for i, r in enumerate(requests):
                st = _status_at(statuses, i)
                if st is not None:
                    r._peek(st)
        return all(flags)

    get_status_all = Get_status_all

    @classmethod
    def Get_status_any(cls, requests, status=None):
        active = False
        for i, r in enumerate(requests):
            if r:
                active = True
                if r._peek(status):
                    return i, True
        if not active:
            _fill(status, _EMPTY_ST)
            return UNDEFINED, True
        return UNDEFINED, False

    get_status_any = Get_status_any

    @classmethod
    def Get_status_some(cls, requests, statuses=None):
        if not any(requests):
            return None
        done = [i for i, r in enumerate(requests) if r and r._peek(None)]
        if statuses is not None:
            for k, i in enumerate(done):
                if k < len(statuses):
                    requests[i]._peek(statuses[k])
        return done

    get_status_some = Get_status_some


_handle_methods(Request)


class Prequest(Request):
    """A persistent request (``Send_init``, ``Recv_init``): each ``Start`` begins
    the operation again; it stays usable until ``Free``."""

    __slots__ = ("_start", "_active")

    def __init__(self, request=None):
        Request.__init__(self, request)
        if request is not None and not isinstance(request, Prequest):
            raise TypeError(f"expecting a Prequest, got {type(request).__name__}")
        self._start = getattr(request, "_start", None)
        self._active = getattr(request, "_active", False)

    @classmethod
    def _persistent(cls, start):
        r = cls.__new__(cls)
        r._raw, r._obj, r._keep = None, False, None
        r._start, r._active = start, False
        return _register(r)

    def __bool__(self):
        return self._start is not None

    def Start(self):
        if self._start is None:
            raise Exception(ERR_REQUEST, "Start: a freed or null persistent request")
        if self._active:
            raise Exception(ERR_REQUEST, "Start: the persistent request is still active")
        r = self._start()
        self._raw, self._keep, self._active = r._raw, r._keep, True

    start = Start

    def _collect(self, status):
        self._active = False
        ident = self._id
        try:
            return Request._collect(self, status)
        finally:
            self._id = ident

    def Test(self, status=None):
        if not self._active:
            _fill(status, _EMPTY_ST)
            return True
        return Request.Test(self, status)

    def Free(self):
        Request.Free(self)
        self._start = None
        self._active = False

    @classmethod
    def Startall(cls, requests):
        for r in requests:
            r.Start()

    startall = Startall

    # -- partitioned communication (MPI 4.1 sec. 4) --

    def _part(self, call):
        raw = self._raw
        if type(raw) is not _Part:
            raise Exception(ERR_REQUEST, f"{call}: not an active partitioned request (Psend_init, Precv_init, then Start)")
        return raw

    def Pready(self, partition):
        self._part("Pready").pready(partition)

    def Pready_range(self, partition_low, partition_high):
        op = self._part("Pready_range")
        for i in range(_operator.index(partition_low), _operator.index(partition_high) + 1):
            op.pready(i)

    def Pready_list(self, partitions):
        op = self._part("Pready_list")
        for i in partitions:
            op.pready(i)

    def Parrived(self, partition):
        if self._raw is None and self._start is not None:
            return True  # an inactive request: everything it received has arrived
        return self._part("Parrived").parrived(partition)


class _Part:
    """The operation of a started partitioned send or receive (``Psend_init``,
    ``Precv_init``): the whole buffer travels as one message, sent when the last
    partition is marked ready (``Pready``, in the thread that uses MPI), so every
    partition of a receive arrives at once (``Parrived``); MPI lets partitions move at
    any granularity."""

    __slots__ = ("parts", "ready", "make", "inner")

    def __init__(self, parts, make, send):
        self.parts, self.make = parts, make
        self.ready = set() if send else None
        self.inner = make() if not send or parts == 0 else None

    def _index(self, call, i):
        i = _operator.index(i)
        if not 0 <= i < self.parts:
            raise Exception(ERR_ARG, f"{call}: partition {i} of {self.parts} (valid: 0 to {self.parts - 1})")
        return i

    def pready(self, i):
        if self.ready is None:
            raise Exception(ERR_REQUEST, "Pready: the request is a partitioned receive")
        i = self._index("Pready", i)
        if i in self.ready:
            raise Exception(ERR_REQUEST, f"Pready: partition {i} is already ready")
        self.ready.add(i)
        if len(self.ready) == self.parts:
            self.inner = self.make()

    def parrived(self, i):
        if self.ready is not None:
            raise Exception(ERR_REQUEST, "Parrived: the request is a partitioned send")
        self._index("Parrived", i)
        return self.test()

    def test(self):
        inner = self.inner
        return inner is not None and (inner._raw is None or inner._raw.test())

    def wait(self):
        inner = self.inner
        if inner is None:
            raise Exception(
                ERR_REQUEST,
                f"Wait of a partitioned send with {self.parts - len(self.ready)} of {self.parts} "
                "partitions not ready (Pready): it could never complete",
            )
        raw = inner._raw
        return raw.wait() if raw is not None else (None, None)

    def cancel(self):
        return False

    def free(self):
        if self.inner is not None and self.inner._raw is not None:
            self.inner._raw.free()

    def is_null(self):
        return False


class _Greq:
    """The operation of a generalized request (MPI 4.1 sec. 13.2): complete once the
    program calls ``Complete``. Completing it in a wait or test calls ``query_fn(status,
    *args, **kwargs)`` to fill the status, then ``free_fn(*args, **kwargs)``; a free
    before ``Complete`` defers ``free_fn`` to it; ``Cancel`` calls ``cancel_fn(completed,
    *args, **kwargs)``. A callback's exception is printed and raised as ``MPI.Exception``
    of its class (``ERR_OTHER`` for one that is not an ``MPI.Exception``), as in
    mpi4py."""

    __slots__ = ("query_fn", "free_fn", "cancel_fn", "args", "kwargs", "done", "obj", "state")

    def __init__(self, query_fn, free_fn, cancel_fn, args, kwargs):
        self.query_fn, self.free_fn, self.cancel_fn = query_fn, free_fn, cancel_fn
        self.args = tuple(args) if args is not None else ()
        self.kwargs = dict(kwargs) if kwargs is not None else {}
        self.done, self.obj = False, None
        self.state = "live"  # "freed": free_fn due at Complete; "gone": free_fn ran

    def _call(self, fn, *args):
        try:
            fn(*args, *self.args, **self.kwargs)
        except Exception as e:
            import traceback

            traceback.print_exc()
            raise Exception(e.Get_error_class(), str(e)) from None
        except BaseException:
            import traceback

            traceback.print_exc()
            raise Exception(ERR_OTHER, "a generalized request's callback raised") from None

    def complete(self):
        self.done = True
        if self.state == "freed":
            self._free()

    def _free(self):
        self.state = "gone"
        if self.free_fn is not None:
            self._call(self.free_fn)

    def test(self):
        return self.done

    def wait(self):
        while not self.done:
            _time.sleep(0)  # another thread of the program calls Complete
        st = Status()
        if self.query_fn is not None:
            self._call(self.query_fn, st)
            if self.cancel_fn is None:
                st.Set_cancelled(False)
        if self.state != "gone":
            self._free()
        return None, (st.Get_source(), st.Get_tag(), st._len, int(st.Is_cancelled()))

    def cancel(self):
        if self.cancel_fn is not None:
            self._call(self.cancel_fn, self.done)
        return False  # the status says whether it was cancelled (query_fn sets it)

    def free(self):
        if self.state == "live":
            self.state = "freed"
            if self.done:
                self._free()

    def is_null(self):
        return False


class Grequest(Request):
    """A generalized request (``MPI.Grequest``): an operation the program carries out
    itself and completes with ``Complete``, waited on and tested as any request."""

    __slots__ = ("_greq",)

    def __init__(self, request=None):
        if request is not None and not isinstance(request, Grequest):
            raise TypeError(f"expecting a Grequest, got {type(request).__name__}")
        Request.__init__(self, request)
        self._greq = getattr(request, "_greq", None)

    @classmethod
    def Start(cls, query_fn=None, free_fn=None, cancel_fn=None, args=None, kwargs=None):
        op = _Greq(query_fn, free_fn, cancel_fn, args, kwargs)
        r = cls._new(op, False)
        r._greq = op
        return r

    def Complete(self):
        """Marks the operation complete (its original handle's, even after the
        request was freed, as MPI's ``MPI_Grequest_complete``)."""
        op = self._greq
        if op is None:
            raise Exception(ERR_REQUEST, "Complete: not a started generalized request")
        if op.done:
            raise Exception(ERR_REQUEST, "Complete: the generalized request is already complete")
        op.complete()

    def complete(self, obj=None):
        """``Complete``, with the object that ``wait`` and ``test`` return."""
        if self._greq is not None:
            self._greq.obj = obj
        self.Complete()

    def _collect(self, status):
        raw = self._raw
        Request._collect(self, status)
        return raw.obj if type(raw) is _Greq else None


REQUEST_NULL = Request()


def _status_at(statuses, i):
    """The status to fill for request ``i``: a list grows to hold it, a tuple is
    filled as far as it goes."""
    if statuses is None:
        return None
    if i < len(statuses):
        return statuses[i]
    if type(statuses) is list:
        while len(statuses) <= i:
            statuses.append(Status())
        return statuses[i]
    return None


# The operation of every send that completed as it started (the native Isend's).
_SENT = _Done()


def _waitall(requests, statuses):
    out = []
    errors = None
    for i, r in enumerate(requests):
        st = _status_at(statuses, i)
        try:
            out.append(r._collect(st) if isinstance(r, Request) else None)
        except _builtins.Exception as e:
            errors = errors or e
            out.append(None)
    if type(statuses) is list and len(statuses) > len(requests):
        del statuses[len(requests) :]
    if errors is not None:
        raise errors
    return out


def _waitany(requests, status):
    raws = []
    idx = []
    for i, r in enumerate(requests):
        # Null requests and inactive persistent ones are skipped, as MPI says.
        raw = r._raw
        if raw is not None:
            if type(raw) is _Done:
                return i, r._collect(status)
            raws.append(_native_raw(raw))
            idx.append(i)
    if not raws:
        _fill(status, _EMPTY_ST)
        return UNDEFINED, None
    k = _wait_any(raws)
    i = idx[k]
    return i, requests[i]._collect(status)


def _wait_any(raws):
    """The index of a completed operation among ``raws``: natively, or, when one is
    made of several (``_Many``) or a generalized request's, by testing each in turn."""
    if not any(type(x) is _Many or type(x) is _Greq or type(x) is _Part for x in raws):
        return _lib.wait_any(raws)
    while True:
        for k, x in enumerate(raws):
            if x.test():
                return k
        _os.sched_yield()


def _some(requests, statuses, block):
    """Waitsome/Testsome: (indices, objects) of the requests completed now, or
    (None, None) when none is active."""
    if not any(r._raw is not None for r in requests):
        return None, None
    if block:
        # Wait for one without collecting it, then collect every completed one in order.
        raws = [_native_raw(r._raw) for r in requests if r._raw is not None and type(r._raw) is not _Done]
        if raws and len(raws) == sum(r._raw is not None for r in requests):
            _wait_any(raws)
    idxs = [i for i, r in enumerate(requests) if r._raw is not None and r._raw.test()]
    objs = [requests[i]._collect(_status_at(statuses, k)) for k, i in enumerate(idxs)]
    return idxs, objs


# ---- matched messages --------------------------------------------------------------


class Message:
    """A message taken out of matching by a matched probe (``MPI.Message``): only
    its own ``Recv``/``recv`` receives it."""

    __slots__ = ("_raw", "_noproc", "_id", "__weakref__")

    def __init__(self, message=None):
        if isinstance(message, Message):
            self._raw, self._noproc, self._id = message._raw, message._noproc, message._id
        elif message is None:
            self._raw, self._noproc, self._id = None, False, 0
        else:
            raise TypeError(f"expecting a Message, got {type(message).__name__}")

    @classmethod
    def _new(cls, raw, noproc=False):
        m = cls.__new__(cls)
        m._raw, m._noproc = raw, noproc
        return _register(m)

    def __bool__(self):
        return self._noproc or (self._raw is not None and not self._raw.is_null())

    def __eq__(self, other):
        if not isinstance(other, Message):
            return NotImplemented
        if not self or not other:
            return not self and not other
        if self._noproc or other._noproc:
            return self._noproc and other._noproc
        return self._id == other._id

    def __ne__(self, other):
        r = self.__eq__(other)
        return r if r is NotImplemented else not r

    __hash__ = object.__hash__

    def __reduce__(self):
        return _reduce_handle(self, "MESSAGE_NULL")

    def _spent(self):
        # The predefined MESSAGE_NO_PROC stays itself; every other message is null
        # once received.
        if self is not MESSAGE_NO_PROC:
            self._raw, self._noproc = None, False

    def _check(self):
        if not self:
            raise Exception(ERR_ARG, "receive of MPI.MESSAGE_NULL: the message was received already")

    @classmethod
    def Probe(cls, comm, source=ANY_SOURCE, tag=ANY_TAG, status=None):
        return comm.Mprobe(source, tag, status)

    @classmethod
    def Iprobe(cls, comm, source=ANY_SOURCE, tag=ANY_TAG, status=None):
        return comm.Improbe(source, tag, status)

    probe = Probe
    iprobe = Iprobe

    def Recv(self, buf, status=None):
        self._check()
        if self._noproc:
            self._spent()
            _fill(status, _NULL_ST)
            return None
        # A matched message comes from a rank, never from PROC_NULL (that is `_noproc`).
        b, nb, unpack = _p2p(buf, ANY_SOURCE, True)
        st = self._raw.recv_into(b, nb)
        self._spent()
        if isinstance(unpack, _Unpack):
            unpack(st[2])
        _fill(status, st)

    def Irecv(self, buf):
        st = Status()
        self.Recv(buf, st)
        return Request._new(_Done(None, (st.source, st.tag, st._len)), False)

    def recv(self, status=None):
        self._check()
        if self._noproc:
            self._spent()
            _fill(status, _NULL_ST)
            return None
        data, st = self._raw.recv_bytes()
        _fill(status, st)
        self._spent()
        return _loads(data)

    def irecv(self):
        self._check()
        if self._noproc:
            self._spent()
            return Request._new(_Done(None, _NULL_ST), True)
        data, st = self._raw.recv_bytes()
        self._spent()
        return Request._new(_Done(data, st), True)


_handle_methods(Message)
MESSAGE_NULL = Message()
MESSAGE_NO_PROC = Message._new(None, True)


def _message(comm, got, status):
    if got is None:
        return None
    raw, st = got
    _fill(status, st)
    if raw.is_no_proc():
        return Message(MESSAGE_NO_PROC)
    return Message._new(raw)


def _in_place(buf):
    """Whether a collective's buffer means ``MPI.IN_PLACE`` (``None`` does too, as in
    mpi4py)."""
    return buf is IN_PLACE or buf is None


# ---- communicators -----------------------------------------------------------------


class Comm(_lib.CommBase):
    """A communicator (``MPI.Comm``). Its communicator is ``_raw`` (``None`` for
    ``COMM_NULL``), a field of the native base class, whose methods ``Send``, ``Recv``,
    ``send``, ``recv``, ``Barrier``, ``Bcast``, ``Allgather``, ``Alltoall``,
    ``Allreduce`` and ``Reduce`` run the common cases in one native call and hand the
    rest to the methods below with a leading underscore."""

    __slots__ = ("_name", "__weakref__")

    def __init__(self, comm=None):
        if isinstance(comm, Comm):
            self._raw, self._name = comm._raw, comm._name
        elif comm is None:
            self._raw, self._name = None, "MPI_COMM_NULL"
        else:
            raise TypeError(f"expecting a communicator, got {type(comm).__name__}")

    @classmethod
    def _wrap(cls, raw, name=""):
        c = cls.__new__(cls)
        c._raw, c._name = raw, name
        return c

    def __bool__(self):
        return self._raw is not None

    def __eq__(self, other):
        if not isinstance(other, Comm):
            return NotImplemented
        if self._raw is None or other._raw is None:
            return self._raw is None and other._raw is None
        return self._raw.key() == other._raw.key()

    def __hash__(self):
        return hash(None if self._raw is None else self._raw.key())

    def __reduce__(self):
        return _reduce_handle(self, "COMM_NULL")

    def __repr__(self):
        return f"<{type(self).__name__}: {self._name or hex(id(self))}>"

    @property
    def _r(self):
        raw = self._raw
        if raw is None:
            raise Exception(ERR_COMM, "invalid communicator: MPI.COMM_NULL")
        return raw

    # -- basics --

    def Get_rank(self):
        return self._r.rank()

    def Get_size(self):
        return self._r.size()

    rank = property(Get_rank)
    size = property(Get_size)

    def Get_name(self):
        return self._name

    def Set_name(self, name):
        self._name = name

    name = property(Get_name, Set_name)

    def Is_inter(self):
        self._r  # COMM_NULL raises ERR_COMM
        return False

    def Is_intra(self):
        self._r
        return True

    is_inter = property(Is_inter)
    is_intra = property(Is_intra)

    def Get_topology(self):
        self._r
        return UNDEFINED

    topology = property(Get_topology)
    is_topo = property(lambda self: False)

    def toint(self):
        return -1  # no C or Fortran handle, as for the other handles

    def py2f(self):
        return -1

    def Get_group(self):
        """The communicator's group (``MPI_Comm_group``): local, no communication."""
        return Group._make(tuple(self._r.world_ranks()))

    group = property(Get_group)

    def Create(self, group):
        """A communicator of ``group``'s members, in the group's order
        (``MPI_Comm_create``): collective over this communicator; ``COMM_NULL`` at the
        other ranks. ``group`` must be a subgroup of this communicator's."""
        members = group._members()
        mine = set(self._r.world_ranks())
        if any(w not in mine for w in members):
            raise Exception(ERR_GROUP, "Create: the group is not a subgroup of the communicator's")
        me = self._r.world_ranks()[self.Get_rank()]
        key = members.index(me) if me in members else 0
        return self.Split(0 if me in members else UNDEFINED, key)

    def Create_group(self, group, tag=0):
        """A communicator of ``group``'s members, in the group's order, made by them
        alone (``MPI_Comm_create_group``): the other ranks take no part. Calls for
        different groups at once are told apart by ``tag``."""
        return Intracomm._wrap(self._r.create_group(list(group._members()), _operator.index(tag)))

    def Compare(self, comm):
        a, b = self._r.world_ranks(), comm._r.world_ranks()  # COMM_NULL: ERR_COMM
        if self == comm:
            return IDENT
        if a == b:
            return CONGRUENT
        if sorted(a) == sorted(b):
            return SIMILAR
        return UNEQUAL

    def Dup(self, info=None):
        c = type(self)._wrap(self._r.dup())
        _attrs_copy(self, c, lambda x: x._r)
        return c

    def Idup(self, info=None):
        raise NotImplementedError(
            "Idup: shmpi makes a communicator in a blocking collective step; use Dup"
        )

    def Idup_with_info(self, info):
        return self.Idup(info)

    @classmethod
    def Get_parent(cls):
        """The communicator to the spawning job (``MPI_Comm_get_parent``):
        a null intercommunicator, shmpi's ranks are never spawned."""
        return Intercomm()

    # Buffered sends need no buffer in shmpi (every send is buffered in shared memory):
    # a communicator's attached buffer is kept only to be given back, as the job's is.
    def Attach_buffer(self, buf):
        _BUFFERS[self._r] = buf

    def Detach_buffer(self):
        return _BUFFERS.pop(self._r, None)

    def Flush_buffer(self):
        self._r

    def Iflush_buffer(self):
        self._r
        return Request._new(_Done(), False)

    def Dup_with_info(self, info):
        """``Dup`` with hints; shmpi uses none, so the hints are not carried over."""
        return self.Dup(info)

    def Clone(self):
        return self.Dup()

    def Set_info(self, info):
        """Hints for this communicator (``MPI_Comm_set_info``): shmpi uses none, so it
        keeps no state; ``Get_info`` returns an empty ``Info`` as MPI allows (only the
        hints an implementation uses are returned)."""
        _ = self._r  # COMM_NULL and a freed communicator raise ERR_COMM here
        if info is not None and not isinstance(info, Info):
            raise TypeError(f"Set_info: expecting an MPI.Info, got {type(info).__name__}")

    def Get_info(self):
        _ = self._r
        return Info._new()

    info = property(Get_info, Set_info)

    def Split(self, color=0, key=0):
        raw = self._r.split(UNDEFINED if color == UNDEFINED else _operator.index(color), _operator.index(key))
        if raw is None:
            return Intracomm()
        return Intracomm._wrap(raw)

    def Split_type(self, split_type, key=0, info=None):
        """Every rank of a shmpi job shares memory, so ``COMM_TYPE_SHARED`` keeps
        them all together."""
        return self.Split(UNDEFINED if split_type == UNDEFINED else 0, key)

    def Free(self):
        raw = self._r
        if raw.key() == 0:
            raise Exception(ERR_COMM, "MPI.COMM_WORLD cannot be freed")
        if raw is COMM_SELF._raw:
            raise Exception(ERR_COMM, "MPI.COMM_SELF cannot be freed")
        _attrs_free(self, lambda x: x._r)
        raw.free()
        _ERRHANDLERS.pop(raw, None)
        nbr = _NBR_COMMS.pop(raw, None)
        if nbr is not None:
            nbr.Free()
        ctx = _COMMCTX.pop(raw, None)
        if ctx is not None:
            ctx[0].Free()
        _COMM_LOCKS.pop(raw, None)
        self._raw = None

    def Disconnect(self):
        """``MPI_Comm_disconnect``: ``Free`` once the communicator's pending
        communication has completed (MPI 4.1 sec. 11.10.4); shmpi's sends complete as
        they return, so it frees at once. The handle becomes ``COMM_NULL``."""
        self.Free()

    def Abort(self, errorcode=0):
        _flush()
        self._r.abort(int(errorcode))

    def _Barrier(self):
        self._r.barrier()

    barrier = _lib.CommBase.Barrier

    # -- point to point, objects --

    def _send(self, obj, dest, tag=0):
        raw = self._r
        data = _dumps(obj)
        if dest == PROC_NULL:
            return None
        raw.send(data, None, dest, tag)

    def ssend(self, obj, dest, tag=0):
        data = _dumps(obj)
        if dest == PROC_NULL:
            return None
        self._r.send(data, None, dest, tag, True)

    bsend = _lib.CommBase.send

    def _recv(self, buf=None, source=ANY_SOURCE, tag=ANY_TAG, status=None):
        raw = self._r
        if buf is not None:
            # stacklevel 2: the program's line (the native `recv` has no frame).
            _warnings.warn("the 'buf' argument is deprecated", UserWarning, stacklevel=2)
        if source == PROC_NULL:
            _fill(status, _NULL_ST)
            return None
        data, st = raw.recv_bytes(source, tag)
        if status is not None:
            status._set(st)
        return _loads(data)

    def _isend(self, obj, dest, tag=0):  # `CommBase.isend` (native) does the rest
        data = _dumps(obj)
        if dest == PROC_NULL:
            return Request._new(_Done(), False)
        return Request._new(self._r.isend(data, None, dest, tag), False)

    def issend(self, obj, dest, tag=0):
        data = _dumps(obj)
        if dest == PROC_NULL:
            return Request._new(_Done(), False)
        return Request._new(self._r.isend(data, None, dest, tag, True), False)

    ibsend = _lib.CommBase.isend

    def irecv(self, buf=None, source=ANY_SOURCE, tag=ANY_TAG):
        """As mpi4py: the pickle is received into ``buf``, into a new buffer of
        ``buf`` bytes when it is an int, or of ``mpi4py.rc.irecv_bufsz`` bytes when it
        is ``None``; a longer pickle is an ``ERR_TRUNCATE`` error."""
        if source == PROC_NULL:
            return Request._new(_Done(None, _NULL_ST), True)
        if buf is None:
            from . import rc

            buf = bytearray(rc.irecv_bufsz)
        elif isinstance(buf, int):
            buf = bytearray(buf)
        return Request._new(self._r.irecv_into(buf, None, source, tag), True, buf)

    def sendrecv(self, sendobj, dest, sendtag=0, recvbuf=None, source=ANY_SOURCE, recvtag=ANY_TAG, status=None):
        self.send(sendobj, dest, sendtag)
        return self.recv(recvbuf, source, recvtag, status)

    def probe(self, source=ANY_SOURCE, tag=ANY_TAG, status=None):
        return self.Probe(source, tag, status)

    def iprobe(self, source=ANY_SOURCE, tag=ANY_TAG, status=None):
        return self.Iprobe(source, tag, status)

    # -- point to point, buffers --

    def _Send(self, buf, dest, tag=0):
        # The extension reads the spec (`p2p_spec`): a plain buffer or mpi4py's
        # [buf, count, datatype] without a Python call, any other form through `_p2p`.
        if dest == PROC_NULL:
            _p2p(buf, dest)
            return None
        self._r.send(buf, None, dest, tag)

    def Ssend(self, buf, dest, tag=0):
        if dest == PROC_NULL:
            _p2p(buf, dest)
            return None
        self._r.send(buf, None, dest, tag, True)

    Bsend = _lib.CommBase.Send
    Rsend = _lib.CommBase.Send

    def _Recv(self, buf, source=ANY_SOURCE, tag=ANY_TAG, status=None):
        if source == PROC_NULL:
            _p2p(buf, source, True)
            _fill(status, _NULL_ST)
            return None
        st = self._r.recv_into(buf, None, source, tag)
        if status is not None:
            status._set(st)

    # `Isend` and `Irecv` are `CommBase`'s (native) for a communicator and a peer that
    # is not PROC_NULL; these are the rest.
    def _Isend(self, buf, dest, tag=0):
        if dest == PROC_NULL:
            _p2p(buf, dest)
            return Request._new(_Done(), False)
        return Request._new(self._r.isend(buf, None, dest, tag), False)

    def Issend(self, buf, dest, tag=0):
        if dest == PROC_NULL:
            _p2p(buf, dest)
            return Request._new(_Done(), False)
        return Request._new(self._r.isend(buf, None, dest, tag, True), False)

    Ibsend = _lib.CommBase.Isend
    Irsend = _lib.CommBase.Isend

    def _Irecv(self, buf, source=ANY_SOURCE, tag=ANY_TAG):
        if source == PROC_NULL:
            _p2p(buf, source, True)
            return Request._new(_Done(None, _NULL_ST), False)
        return Request._new(self._r.irecv_into(buf, None, source, tag), False, buf)

    def Sendrecv(self, sendbuf, dest, sendtag=0, recvbuf=None, source=ANY_SOURCE, recvtag=ANY_TAG, status=None):
        sb, snb, _ = _p2p(sendbuf, dest)
        rb, rnb, unpack = _p2p(recvbuf, source, True)
        if dest == PROC_NULL:
            st = status if status is not None else Status()
            self.Recv([rb, rnb, BYTE] if rnb is not None else rb, source, recvtag, st)
            if isinstance(unpack, _Unpack):
                unpack(st._len)
            return None
        if source == PROC_NULL:
            self._r.send(sb, snb, dest, sendtag)
            _fill(status, _NULL_ST)
            return None
        st = self._r.sendrecv_into(sb, snb, dest, sendtag, rb, rnb, source, recvtag)
        if isinstance(unpack, _Unpack):
            unpack(st[2])
        _fill(status, st)

    def _check_peer(self, call, peer, tag, recv):
        """MPI's checks of a point-to-point call's rank and tag, for the init calls,
        which make no message (the other calls get them from shmpi's own checks):
        ``ERR_RANK`` for a rank outside the (remote) group, ``ERR_TAG`` for a negative
        tag or one past ``TAG_UB`` (``ANY_SOURCE``/``ANY_TAG`` only to receive)."""
        peer, tag = _operator.index(peer), _operator.index(tag)
        n = self.Get_remote_size() if self.Is_inter() else self.Get_size()
        if not (0 <= peer < n or peer == PROC_NULL or (recv and peer == ANY_SOURCE)):
            raise Exception(ERR_RANK, f"{call}: invalid rank {peer}: valid ranks on this communicator are 0 to {n - 1}")
        if not (0 <= tag <= TAG_UB or (recv and tag == ANY_TAG)):
            raise Exception(ERR_TAG, f"{call}: invalid tag {tag}: valid tags are 0 to {TAG_UB}")

    def Send_init(self, buf, dest, tag=0):
        self._check_peer("Send_init", dest, tag, False)
        _p2p(buf, dest)
        return Prequest._persistent(lambda: self.Isend(buf, dest, tag))

    Bsend_init = Send_init
    Rsend_init = Send_init

    def Ssend_init(self, buf, dest, tag=0):
        """Each start is an ``Issend``: complete once the receive has matched it."""
        self._check_peer("Ssend_init", dest, tag, False)
        _p2p(buf, dest)
        return Prequest._persistent(lambda: self.Issend(buf, dest, tag))

    def Recv_init(self, buf, source=ANY_SOURCE, tag=ANY_TAG):
        self._check_peer("Recv_init", source, tag, True)
        _p2p(buf, source, True)
        return Prequest._persistent(lambda: self.Irecv(buf, source, tag))

    def _partitioned(self, call, buf, partitions, peer, tag, recv):
        partitions = _operator.index(partitions)
        if partitions < 0:
            raise Exception(ERR_ARG, f"{call}: negative number of partitions {partitions}")
        self._check_peer(call, peer, tag, recv)
        if peer != PROC_NULL:
            # mpi4py's message_simple with one block per partition: an explicit count
            # is per partition, else the buffer splits evenly.
            b, nb, dt = _msg_blocks(buf, partitions)
            buf = [b, nb // dt._size if dt._size else 0, _contiguous(dt)]
        if recv:
            _p2p(buf, peer, True)
            make = lambda: self.Irecv(buf, peer, tag)  # noqa: E731
        else:
            make = lambda: self.Isend(buf, peer, tag)  # noqa: E731
        return Prequest._persistent(lambda: Request._new(_Part(partitions, make, not recv), False))

    def Psend_init(self, buf, partitions, dest, tag=0, info=None):
        """A partitioned send (MPI 4.1 sec. 4.2): each ``Start`` begins it, and the
        message goes once ``Pready`` has marked every partition."""
        return self._partitioned("Psend_init", buf, partitions, dest, tag, False)

    def Precv_init(self, buf, partitions, source=ANY_SOURCE, tag=ANY_TAG, info=None):
        """A partitioned receive: each ``Start`` posts it; ``Parrived`` says whether a
        partition has arrived."""
        return self._partitioned("Precv_init", buf, partitions, source, tag, True)

    def Isendrecv(self, sendbuf, dest, sendtag=0, recvbuf=None, source=ANY_SOURCE, recvtag=ANY_TAG):
        """Done at once (shmpi's sends never wait for receives, so this cannot
        deadlock); the request is complete."""
        st = Status()
        self.Sendrecv(sendbuf, dest, sendtag, recvbuf, source, recvtag, st)
        return Request._new(_Done(None, (st.source, st.tag, st._len)), False)

    def Isendrecv_replace(self, buf, dest, sendtag=0, source=ANY_SOURCE, recvtag=ANY_TAG):
        st = Status()
        self.Sendrecv_replace(buf, dest, sendtag, source, recvtag, st)
        return Request._new(_Done(None, (st.source, st.tag, st._len)), False)

    def Sendrecv_replace(self, buf, dest, sendtag=0, source=ANY_SOURCE, recvtag=ANY_TAG, status=None):
        b, nb, _ = _msg(buf)
        data = bytes(_mv(b).cast("B")[: nb if nb is not None else None])
        self.Sendrecv(data, dest, sendtag, [b, len(data), BYTE], source, recvtag, status)

    def Probe(self, source=ANY_SOURCE, tag=ANY_TAG, status=None):
        if source == PROC_NULL:
            _fill(status, _NULL_ST)
            return True
        _fill(status, self._r.probe(source, tag))
        return True

    def Iprobe(self, source=ANY_SOURCE, tag=ANY_TAG, status=None):
        if source == PROC_NULL:
            _fill(status, _NULL_ST)
            return True
        st = self._r.iprobe(source, tag)
        if st is None:
            return False
        _fill(status, st)
        return True

    # -- matched probes --

    def Mprobe(self, source=ANY_SOURCE, tag=ANY_TAG, status=None):
        if source == PROC_NULL:
            _fill(status, _NULL_ST)
            return Message(MESSAGE_NO_PROC)
        return _message(self, self._r.mprobe(source, tag), status)

    def Improbe(self, source=ANY_SOURCE, tag=ANY_TAG, status=None):
        if source == PROC_NULL:
            _fill(status, _NULL_ST)
            return Message(MESSAGE_NO_PROC)
        return _message(self, self._r.improbe(source, tag), status)

    mprobe = Mprobe
    improbe = Improbe

    # -- collectives, objects --

    def _bcast(self, obj, root=0):
        raw = self._r
        data = _dumps(obj) if raw.rank() == root else None
        return _loads(raw.bcast_obj(data, root))

    def _scatter(self, sendobj, root=0):
        raw = self._r
        data = None
        if raw.rank() == root:
            if sendobj is None:
                sendobj = [None] * raw.size()
            data = [_dumps(x) for x in sendobj]
            if len(data) != raw.size():
                raise ValueError(f"expecting {raw.size()} items, got {len(data)}")
        return _loads(raw.scatter_obj(data, root))

    def _gather(self, sendobj, root=0):
        got = self._r.gather_obj(_dumps(sendobj), root)
        return None if got is None else [_loads(b) for b in got]

    def _allgather(self, sendobj):
        return [_loads(b) for b in self._r.allgather_obj(_dumps(sendobj))]

    def _alltoall(self, sendobj):
        raw = self._r
        if sendobj is None:
            sendobj = [None] * raw.size()
        return [_loads(b) for b in raw.alltoall_obj([_dumps(x) for x in sendobj])]

    def _reduce_obj(self, sendobj, op=SUM, root=0):
        items = self.gather(sendobj, root)
        return None if items is None else _fold_objects(op, items)

    def _allreduce(self, sendobj, op=SUM):
        return _fold_objects(op, self.allgather(sendobj))

    def _scan(self, sendobj, op=SUM):
        items = self.allgather(sendobj)
        return _fold_objects(op, items[: self._r.rank() + 1])

    def _exscan(self, sendobj, op=SUM):
        items = self.allgather(sendobj)
        me = self._r.rank()
        return None if me == 0 else _fold_objects(op, items[:me])

    # -- collectives, buffers --

    def _Bcast(self, buf, root=0):
        # The native `Bcast` has found a spec form other than a plain buffer or
        # [buf, count, datatype] (`bcast_spec`, as the other collectives' `*_spec`),
        # or COMM_NULL (`self._r` raises).
        raw = self._r
        d = _derived_spec(buf, raw.rank() != root)
        if d is not None:
            # A type with holes travels packed.
            b, count, dt = d
            packed = bytearray(dt._pack(b, count) if raw.rank() == root else dt._size * count)
            raw.bcast_into(packed, None, root)
            if raw.rank() != root:
                dt._unpack(b, count, packed)
            return
        b, nb, _ = _msg(buf)
        self._r.bcast_into(b, nb, root)

    def _alltoallw_args(self, sendbuf, recvbuf):
        n = self._r.size()
        rb, rcounts, rdispls = _msg_w(recvbuf, n)
        if _in_place(sendbuf):
            return bytes(_mv(rb).cast("B")), rcounts, rdispls, rb, rcounts, rdispls
        sb, scounts, sdispls = _msg_w(sendbuf, n)
        return sb, scounts, sdispls, rb, rcounts, rdispls

    def Alltoallw(self, sendbuf, recvbuf):
        """Blocks of ``counts[i]`` elements of ``datatypes[i]`` at byte
        ``displs[i]``, as MPI's ``Alltoallw``; contiguous datatypes only (a type with
        holes or ``MPI.BOTTOM`` addresses: ``NotImplementedError``)."""
        sb, sc, sd, rb, rc, rd = self._alltoallw_args(sendbuf, recvbuf)
        self._r.alltoallv_into(sb, None, sc, sd, rb, None, rc, rd)

    def Ialltoallw(self, sendbuf, recvbuf):
        """``Alltoallw``, non-blocking; contiguous datatypes only, as there."""
        sb, sc, sd, rb, rc, rd = self._alltoallw_args(sendbuf, recvbuf)
        return Request._new(self._r.ialltoallv(sb, None, sc, sd, rb, None, rc, rd), False, rb)

    def _scatter_args(self, sendbuf, recvbuf, root):
        """A scatter's send buffer and bytes (the root's; ``None`` elsewhere), receive
        buffer and bytes (a scratch block for the root's ``IN_PLACE``), and the error
        of the root's send and receive blocks if they differ (:func:`_block_mismatch`)."""
        raw = self._r
        n = raw.size()
        if recvbuf is IN_PLACE or (recvbuf is None and raw.rank() == root):
            if raw.rank() != root:
                raise Exception(ERR_BUFFER, "Scatter: MPI.IN_PLACE is for the root only")
            sb, snb, _ = _msg_blocks(sendbuf, n)
            blk = snb // n
            return sb, blk * n, bytearray(blk), blk, None
        rb, rnb, rdt = _msg_typed(recvbuf)
        if raw.rank() == root:
            # The root's explicit count is per rank (MPI's sendcount): its blocks are
            # cut at it, never at the receive count.
            sb, snb, sdt = _msg_blocks(sendbuf, n)
            return sb, snb, rb, rnb, _block_mismatch("Scatter", snb // n if n else 0, sdt, rnb, rdt)
        return None, None, rb, rnb, None

    def Scatter(self, sendbuf, recvbuf, root=0):
        _run_block(self._r.scatter_into, self._scatter_args(sendbuf, recvbuf, root), root)

    def Iscatter(self, sendbuf, recvbuf, root=0):
        sb, snb, rb, rnb = _ok(self._scatter_args(sendbuf, recvbuf, root))
        return Request._new(self._r.iscatter(sb, snb, rb, rnb, root), False, rb)

    def _gather_args(self, sendbuf, recvbuf, root):
        """A gather's send buffer and bytes (this rank's block of the root's receive
        buffer for ``IN_PLACE``), receive buffer and bytes (the root's; ``None``
        elsewhere), and the error of the root's blocks if they differ
        (:func:`_block_mismatch`)."""
        raw = self._r
        n, me = raw.size(), raw.rank()
        if me == root:
            # The root's explicit count is per rank (MPI's recvcount): rank i's block
            # goes at i * recvcount, so it must be the block each rank sends.
            rb, rnb, rdt = _msg_blocks(recvbuf, n)
            blk = rnb // n if n else 0
            if _in_place(sendbuf):
                sb, snb = bytes(_mv(rb).cast("B")[me * blk : (me + 1) * blk]), blk
                return sb, snb, rb, rnb, None
            sb, snb, sdt = _msg_typed(sendbuf)
            return sb, snb, rb, rnb, _block_mismatch("Gather", snb, sdt, blk, rdt)
        sb, snb, _ = _msg(sendbuf)
        return sb, snb, None, None, None

    def Gather(self, sendbuf, recvbuf, root=0):
        _run_block(self._r.gather_into, self._gather_args(sendbuf, recvbuf, root), root)

    def Igather(self, sendbuf, recvbuf, root=0):
        sb, snb, rb, rnb = _ok(self._gather_args(sendbuf, recvbuf, root))
        return Request._new(self._r.igather(sb, snb, rb, rnb, root), False, rb)

    def _allgather_args(self, sendbuf, recvbuf):
        """An allgather's send buffer and bytes, receive buffer and bytes (this
        rank's block of it for ``IN_PLACE``), and the error of this rank's blocks if
        they differ (:func:`_block_mismatch`)."""
        raw = self._r
        n, me = raw.size(), raw.rank()
        # An explicit receive count is per rank: rank i's block goes at i * recvcount.
        rb, rnb, rdt = _msg_blocks(recvbuf, n)
        blk = rnb // n if n else 0
        if _in_place(sendbuf):
            sb, snb = bytes(_mv(rb).cast("B")[me * blk : (me + 1) * blk]), blk
            return sb, snb, rb, rnb, None
        sb, snb, sdt = _msg_typed(sendbuf)
        return sb, snb, rb, rnb, _block_mismatch("Allgather", snb, sdt, blk, rdt)

    def _Allgather(self, sendbuf, recvbuf):
        _run_block(self._r.allgather_into, self._allgather_args(sendbuf, recvbuf))

    def _alltoall_args(self, sendbuf, recvbuf):
        """An all-to-all's send buffer and bytes (a copy of the receive buffer for
        ``IN_PLACE``), receive buffer and bytes, and the error of this rank's blocks
        if they differ (:func:`_block_mismatch`)."""
        n = self._r.size()
        rb, rnb, rdt = _msg_blocks(recvbuf, n)
        if _in_place(sendbuf):
            sb, snb = bytes(_mv(rb).cast("B")[:rnb]), rnb
            return sb, snb, rb, rnb, None
        sb, snb, sdt = _msg_blocks(sendbuf, n)
        bad = _block_mismatch("Alltoall", snb // n if n else 0, sdt, rnb // n if n else 0, rdt)
        return sb, snb, rb, rnb, bad

    def _Alltoall(self, sendbuf, recvbuf):
        _run_block(self._r.alltoall_into, self._alltoall_args(sendbuf, recvbuf))

    def Ialltoall(self, sendbuf, recvbuf):
        sb, snb, rb, rnb = _ok(self._alltoall_args(sendbuf, recvbuf))
        return Request._new(self._r.ialltoall(sb, snb, rb, rnb), False, rb)

    def _gatherv_args(self, sendbuf, recvbuf, root):
        """A gatherv's send buffer and bytes (a copy of this rank's block of the root's
        receive buffer for ``IN_PLACE``), and the root's receive buffer, byte counts
        and byte displacements (``None, [], []`` elsewhere)."""
        raw = self._r
        n, me = raw.size(), raw.rank()
        if me != root:
            sb, snb, _ = _msg_typed(sendbuf)
            return sb, snb, None, [], []
        rb, _, counts, displs, _ = _msg_v(recvbuf, n)
        if _in_place(sendbuf):
            sb = bytes(_mv(rb).cast("B")[displs[me] : displs[me] + counts[me]])
            snb = len(sb)
        else:
            sb, snb, _ = _msg_typed(sendbuf)
        return sb, snb, rb, counts, displs

    def Gatherv(self, sendbuf, recvbuf, root=0):
        sb, snb, rb, counts, displs = self._gatherv_args(sendbuf, recvbuf, root)
        self._r.gatherv_into(sb, snb, rb, None, counts, displs, root)

    def Igatherv(self, sendbuf, recvbuf, root=0):
        sb, snb, rb, counts, displs = self._gatherv_args(sendbuf, recvbuf, root)
        return Request._new(self._r.igatherv(sb, snb, rb, None, counts, displs, root), False, rb)

    def _scatterv_args(self, sendbuf, recvbuf, root):
        """A scatterv's send buffer, byte counts and displacements (the root's; ``None,
        [], []`` elsewhere), receive buffer and bytes (a scratch block for the root's
        ``IN_PLACE``)."""
        raw = self._r
        n, me = raw.size(), raw.rank()
        if me != root:
            rb, rnb, _ = _msg_typed(recvbuf)
            return None, [], [], rb, rnb
        sb, _, counts, displs, _ = _msg_v(sendbuf, n)
        if _in_place(recvbuf):
            rb = bytearray(counts[me])
        else:
            rb, _, _ = _msg(recvbuf)
        return sb, counts, displs, rb, counts[me]

    def Scatterv(self, sendbuf, recvbuf, root=0):
        sb, counts, displs, rb, rnb = self._scatterv_args(sendbuf, recvbuf, root)
        self._r.scatterv_into(sb, None, counts, displs, rb, rnb, root)

    def Iscatterv(self, sendbuf, recvbuf, root=0):
        sb, counts, displs, rb, rnb = self._scatterv_args(sendbuf, recvbuf, root)
        return Request._new(self._r.iscatterv(sb, None, counts, displs, rb, rnb, root), False, rb)

    def _allgatherv_args(self, sendbuf, recvbuf):
        """An allgatherv's send buffer and bytes (a copy of this rank's block for
        ``IN_PLACE``), receive buffer, byte counts and byte displacements."""
        raw = self._r
        n, me = raw.size(), raw.rank()
        rb, _, counts, displs, _ = _msg_v(recvbuf, n)
        if _in_place(sendbuf):
            sb = bytes(_mv(rb).cast("B")[displs[me] : displs[me] + counts[me]])
            snb = len(sb)
        else:
            sb, snb, _ = _msg_typed(sendbuf)
        return sb, snb, rb, counts, displs

    def Allgatherv(self, sendbuf, recvbuf):
        sb, snb, rb, counts, displs = self._allgatherv_args(sendbuf, recvbuf)
        self._r.allgatherv_into(sb, snb, rb, None, counts, displs)

    def Iallgatherv(self, sendbuf, recvbuf):
        sb, snb, rb, counts, displs = self._allgatherv_args(sendbuf, recvbuf)
        return Request._new(self._r.iallgatherv(sb, snb, rb, None, counts, displs), False, rb)

    def _alltoallv_args(self, sendbuf, recvbuf):
        """An all-to-all-v's send buffer, byte counts and displacements (a copy of the
        receive buffer's for ``IN_PLACE``), then the receive buffer's."""
        n = self._r.size()
        rb, _, rcounts, rdispls, _ = _msg_v(recvbuf, n)
        if _in_place(sendbuf):
            return bytes(_mv(rb).cast("B")), rcounts, rdispls, rb, rcounts, rdispls
        sb, _, scounts, sdispls, _ = _msg_v(sendbuf, n)
        return sb, scounts, sdispls, rb, rcounts, rdispls

    def Alltoallv(self, sendbuf, recvbuf):
        sb, sc, sd, rb, rc, rd = self._alltoallv_args(sendbuf, recvbuf)
        self._r.alltoallv_into(sb, None, sc, sd, rb, None, rc, rd)

    def Ialltoallv(self, sendbuf, recvbuf):
        sb, sc, sd, rb, rc, rd = self._alltoallv_args(sendbuf, recvbuf)
        return Request._new(self._r.ialltoallv(sb, None, sc, sd, rb, None, rc, rd), False, rb)

    def _reduce_args(self, which, sendbuf, recvbuf, root):
        """A reduction's buffers: whether this rank receives, the receive buffer and
        its bytes, the send buffer (``None`` for ``IN_PLACE``), its bytes and type."""
        has_recv = which != "reduce" or self._r.rank() == root
        rb, rnb, rdt = _msg_typed(recvbuf) if has_recv else (None, None, None)
        if _in_place(sendbuf):
            if not has_recv:
                raise Exception(ERR_BUFFER, "MPI.IN_PLACE is for the root of a Reduce only")
            return has_recv, rb, rnb, None, rnb, _reduction_type(rdt)
        sb, snb, dt = _msg_typed(sendbuf)
        if has_recv:
            _check_match(dt, snb, rdt, rnb)
        return has_recv, rb, rnb, sb, snb, _reduction_type(dt)

    def _reduce(self, which, sendbuf, recvbuf, op, root):
        _check_op(op)
        raw = self._r
        me = raw.rank()
        has_recv, rb, rnb, sb, snb, dt = self._reduce_args(which, sendbuf, recvbuf, root)
        if _native(op, dt):
            if sb is None and which != "allreduce":
                sb = bytes(_mv(rb).cast("B")[:rnb])
            raw.reduce_into(which, sb, snb, rb, snb if has_recv else None, op._code, dt._code, root)
            return
        # Emulated: every contribution is gathered, then folded in rank order in Python.
        mine = bytes(_mv(rb if sb is None else sb).cast("B")[:snb])
        if which == "reduce":
            blocks = raw.gather_obj(mine, root)
        else:
            blocks = raw.allgather_obj(mine)
            if which == "scan":
                blocks = blocks[: me + 1]
            elif which == "exscan":
                blocks = blocks[:me]
        if has_recv and blocks:
            _mv(rb).cast("B")[:snb] = _fold_bytes(op, dt, blocks)

    def _Reduce(self, sendbuf, recvbuf, op=SUM, root=0):
        self._reduce("reduce", sendbuf, recvbuf, op, root)

    # -- non-blocking collectives (shmpi's ibarrier ... iallgather_into) --

    def Ibarrier(self):
        return Request._new(self._r.ibarrier(), False)

    def Ibcast(self, buf, root=0):
        raw = self._r
        here = raw.rank() == root
        d = _derived_spec(buf, not here)
        if d is not None:
            # A type with holes travels packed, as in Bcast; the other ranks unpack
            # when the request completes.
            b, count, dt = d
            packed = bytearray(dt._pack(b, count) if here else dt._size * count)
            r = raw.ibcast(packed, None, root)
            if not here:
                r = _Then(r, lambda: dt._unpack(b, count, packed))
            return Request._new(r, False, (b, packed))
        b, nb, _ = _msg(buf)
        return Request._new(self._r.ibcast(b, nb, root), False, b)

    def Iallgather(self, sendbuf, recvbuf):
        sb, snb, rb, rnb = _ok(self._allgather_args(sendbuf, recvbuf))
        return Request._new(self._r.iallgather(sb, snb, rb, rnb), False, rb)

    def _ireduce(self, which, sendbuf, recvbuf, op, root):
        _check_op(op)
        has_recv, rb, rnb, sb, snb, dt = self._reduce_args(which, sendbuf, recvbuf, root)
        if sb is None:
            sb = bytes(_mv(rb).cast("B")[:rnb])
        if _native(op, dt):
            r = self._r.ireduce(which, sb, snb, rb, snb if has_recv else None, op._code, dt._code, root)
            return Request._new(r, False, rb)
        # Emulated, as the blocking reductions are: every contribution is gathered
        # natively, then folded in rank order in Python when the request completes.
        raw = self._r
        n, me = raw.size(), raw.rank()
        blocks = bytearray(snb * n if has_recv else 0)
        if which == "reduce":
            r = raw.igather(sb, snb, blocks if has_recv else None, len(blocks) or None, root)
        else:
            r = raw.iallgather(sb, snb, blocks, len(blocks))
        upto = {"scan": me + 1, "exscan": me}.get(which, n)

        def fold():
            if has_recv and upto:
                parts = [blocks[i * snb : (i + 1) * snb] for i in range(upto)]
                _mv(rb).cast("B")[:snb] = _fold_bytes(op, dt, parts)

        return Request._new(_Then(r, fold), False, (rb, sb, blocks))

    def Ireduce(self, sendbuf, recvbuf, op=SUM, root=0):
        return self._ireduce("reduce", sendbuf, recvbuf, op, root)

    def Iallreduce(self, sendbuf, recvbuf, op=SUM):
        return self._ireduce("allreduce", sendbuf, recvbuf, op, 0)

    def Iscan(self, sendbuf, recvbuf, op=SUM):
        return self._ireduce("scan", sendbuf, recvbuf, op, 0)

    def Iexscan(self, sendbuf, recvbuf, op=SUM):
        return self._ireduce("exscan", sendbuf, recvbuf, op, 0)

    def _Allreduce(self, sendbuf, recvbuf, op=SUM):
        self._reduce("allreduce", sendbuf, recvbuf, op, 0)

    def Scan(self, sendbuf, recvbuf, op=SUM):
        self._reduce("scan", sendbuf, recvbuf, op, 0)

    def Exscan(self, sendbuf, recvbuf, op=SUM):
        self._reduce("exscan", sendbuf, recvbuf, op, 0)

    def _reduce_scatter_block_args(self, sendbuf, recvbuf):
        """A reduce-scatter-block's send buffer and bytes (the receive buffer's blocks
        for ``IN_PLACE``), receive buffer and block bytes, and datatype."""
        n = self._r.size()
        rb, rnb, dt = _msg_typed(recvbuf)
        if _in_place(sendbuf):
            # In place, the receive buffer holds every rank's block; this rank's
            # result goes to its start.
            rnb = rnb // n // dt._size * dt._size if dt._size else 0
            return rb, rnb * n, rb, rnb, dt
        rdt = dt
        sb, snb, dt = _msg_typed(sendbuf)
        if dt != rdt:
            raise ValueError(f"message: mismatch in send and receive MPI datatypes ({dt._name}, {rdt._name})")
        return sb, rnb * n, rb, rnb, dt

    def Reduce_scatter_block(self, sendbuf, recvbuf, op=SUM):
        me = self._r.rank()
        sb, snb, rb, rnb, dt = self._reduce_scatter_block_args(sendbuf, recvbuf)
        whole = bytearray(_mv(sb).cast("B")[:snb])
        self.Allreduce(IN_PLACE, [whole, len(whole) // dt._size, dt], op)
        _mv(rb).cast("B")[:rnb] = whole[me * rnb : (me + 1) * rnb]

    def Ireduce_scatter_block(self, sendbuf, recvbuf, op=SUM):
        n = self._r.size()
        sb, snb, rb, rnb, dt = self._reduce_scatter_block_args(sendbuf, recvbuf)
        return self._ireduce_scatter(sb, snb, rb, rnb, [rnb // (dt._size or 1)] * n, op, dt)

    def _reduce_scatter_args(self, sendbuf, recvbuf, recvcounts):
        """A reduce-scatter's send buffer and bytes (the receive buffer for
        ``IN_PLACE``), receive buffer and this rank's bytes, counts and datatype, with
        mpi4py's checks; no counts are every rank's receive count (gathered)."""
        raw = self._r
        n, me = raw.size(), raw.rank()
        rb, rnb, dt = _msg_typed(recvbuf)
        if _in_place(sendbuf):
            sb, snb = rb, None
        else:
            rdt = dt
            sb, snb, dt = _msg_typed(sendbuf)
            if dt != rdt:
                raise ValueError(f"message: mismatch in send and receive MPI datatypes ({dt._name}, {rdt._name})")
        if recvcounts is None:
            recvcounts = raw.allgather_obj(_dumps(rnb // dt._size))
            recvcounts = [_loads(c) for c in recvcounts]
        recvcounts = [_operator.index(c) for c in recvcounts]
        if len(recvcounts) != n:
            raise ValueError(f"message: expecting {n} receive counts, got {len(recvcounts)}")
        # mpi4py's checks (``for_reduce_scatter``).
        sz, want = dt._size or 1, sum(recvcounts)
        if snb is not None and snb // sz != want:
            raise ValueError(f"message: mismatch in send count {snb // sz} and sum(counts) {want}")
        if snb is not None and rnb // sz != recvcounts[me]:
            raise ValueError(f"message: mismatch in receive count {rnb // sz} and counts[{me}] {recvcounts[me]}")
        if snb is None and rnb // sz != want:
            raise ValueError(f"message: mismatch in receive count {rnb // sz} and sum(counts) {want}")
        return sb, want * dt._size, rb, recvcounts[me] * dt._size, recvcounts, dt

    def Reduce_scatter(self, sendbuf, recvbuf, recvcounts=None, op=SUM):
        """Reduces, then scatters blocks of ``recvcounts[i]`` elements to rank ``i``
        (an allreduce of the whole, then this rank's block)."""
        me = self._r.rank()
        sb, total, rb, mine, counts, dt = self._reduce_scatter_args(sendbuf, recvbuf, recvcounts)
        whole = bytearray(_mv(sb).cast("B")[:total])
        self.Allreduce(IN_PLACE, [whole, len(whole) // dt._size, dt], op)
        off = sum(counts[:me]) * dt._size
        _mv(rb).cast("B")[:mine] = whole[off : off + mine]

    def Ireduce_scatter(self, sendbuf, recvbuf, recvcounts=None, op=SUM):
        """As mpi4py's: with no ``recvcounts``, the receive counts are first gathered
        (a blocking step, as mpi4py makes it)."""
        sb, total, rb, mine, counts, dt = self._reduce_scatter_args(sendbuf, recvbuf, recvcounts)
        return self._ireduce_scatter(sb, total, rb, mine, counts, op, dt)

    def _ireduce_scatter(self, sb, snb, rb, rnb, counts, op, dt):
        _check_op(op)
        if sb is rb:
            sb = bytes(_mv(rb).cast("B")[:snb])
        raw = self._r
        if _native(op, dt):
            r = raw.ireduce_scatter(sb, snb, rb, rnb, counts, op._code, dt._code)
            return Request._new(r, False, rb)
        # Emulated: every rank's whole send gathered natively, folded in rank order in
        # Python when the request completes, this rank's block kept.
        n, me = raw.size(), raw.rank()
        blocks = bytearray(snb * n)
        r = raw.iallgather(sb, snb, blocks, len(blocks))
        off = sum(counts[:me]) * dt._size

        def fold():
            whole = _fold_bytes(op, dt, [blocks[i * snb : (i + 1) * snb] for i in range(n)])
            _mv(rb).cast("B")[:rnb] = whole[off : off + rnb]

        return Request._new(_Then(r, fold), False, (rb, sb, blocks))

    # -- persistent collectives (MPI 4.1 §6.13) --
    # Each is made once, collectively, with its buffers and arguments, which are checked
    # then, as MPI's init calls check them; every Start begins the non-blocking
    # collective with them (reading the send buffers then), in the same order on every
    # rank, as MPI requires of the starts.

    def Barrier_init(self, info=None):
        self._r.size()  # COMM_NULL raises here
        return Prequest._persistent(lambda: self.Ibarrier())

    def Bcast_init(self, buf, root=0, info=None):
        _check_root(self, "Bcast_init", root)
        if _derived_spec(buf) is None:
            _msg(buf)
        return Prequest._persistent(lambda: self.Ibcast(buf, root))

    def Gather_init(self, sendbuf, recvbuf, root=0, info=None):
        _check_root(self, "Gather_init", root)
        _ok(self._gather_args(sendbuf, recvbuf, root))
        return Prequest._persistent(lambda: self.Igather(sendbuf, recvbuf, root))

    def Gatherv_init(self, sendbuf, recvbuf, root=0, info=None):
        _check_root(self, "Gatherv_init", root)
        self._gatherv_args(sendbuf, recvbuf, root)
        return Prequest._persistent(lambda: self.Igatherv(sendbuf, recvbuf, root))

    def Scatter_init(self, sendbuf, recvbuf, root=0, info=None):
        _check_root(self, "Scatter_init", root)
        _ok(self._scatter_args(sendbuf, recvbuf, root))
        return Prequest._persistent(lambda: self.Iscatter(sendbuf, recvbuf, root))

    def Scatterv_init(self, sendbuf, recvbuf, root=0, info=None):
        _check_root(self, "Scatterv_init", root)
        self._scatterv_args(sendbuf, recvbuf, root)
        return Prequest._persistent(lambda: self.Iscatterv(sendbuf, recvbuf, root))

    def Allgather_init(self, sendbuf, recvbuf, info=None):
        _ok(self._allgather_args(sendbuf, recvbuf))
        return Prequest._persistent(lambda: self.Iallgather(sendbuf, recvbuf))

    def Allgatherv_init(self, sendbuf, recvbuf, info=None):
        self._allgatherv_args(sendbuf, recvbuf)
        return Prequest._persistent(lambda: self.Iallgatherv(sendbuf, recvbuf))

    def Alltoall_init(self, sendbuf, recvbuf, info=None):
        _ok(self._alltoall_args(sendbuf, recvbuf))
        return Prequest._persistent(lambda: self.Ialltoall(sendbuf, recvbuf))

    def Alltoallv_init(self, sendbuf, recvbuf, info=None):
        self._alltoallv_args(sendbuf, recvbuf)
        return Prequest._persistent(lambda: self.Ialltoallv(sendbuf, recvbuf))

    def Alltoallw_init(self, sendbuf, recvbuf, info=None):
        self._alltoallw_args(sendbuf, recvbuf)
        return Prequest._persistent(lambda: self.Ialltoallw(sendbuf, recvbuf))

    def _reduce_init(self, which, sendbuf, recvbuf, op, root):
        _check_op(op)
        self._reduce_args(which, sendbuf, recvbuf, root)
        return Prequest._persistent(lambda: self._ireduce(which, sendbuf, recvbuf, op, root))

    def Reduce_init(self, sendbuf, recvbuf, op=SUM, root=0, info=None):
        _check_root(self, "Reduce_init", root)
        return self._reduce_init("reduce", sendbuf, recvbuf, op, root)

    def Allreduce_init(self, sendbuf, recvbuf, op=SUM, info=None):
        return self._reduce_init("allreduce", sendbuf, recvbuf, op, 0)

    def Scan_init(self, sendbuf, recvbuf, op=SUM, info=None):
        return self._reduce_init("scan", sendbuf, recvbuf, op, 0)

    def Exscan_init(self, sendbuf, recvbuf, op=SUM, info=None):
        return self._reduce_init("exscan", sendbuf, recvbuf, op, 0)

    def Reduce_scatter_block_init(self, sendbuf, recvbuf, op=SUM, info=None):
        _check_op(op)
        self._reduce_scatter_block_args(sendbuf, recvbuf)
        return Prequest._persistent(lambda: self.Ireduce_scatter_block(sendbuf, recvbuf, op))

    def Reduce_scatter_init(self, sendbuf, recvbuf, recvcounts=None, op=SUM, info=None):
        _check_op(op)
        # Without counts, they are gathered once, here (the init is collective), not at
        # every start.
        recvcounts = self._reduce_scatter_args(sendbuf, recvbuf, recvcounts)[4]
        return Prequest._persistent(lambda: self.Ireduce_scatter(sendbuf, recvbuf, recvcounts, op))

_errhandler_methods(Comm, lambda c: c._r)


def _check_root(comm, call, root):
    """MPI's ``ERR_ROOT`` for a root outside an intracommunicator, for the persistent
    collectives' init calls (the others get it from shmpi's own check)."""
    root = _operator.index(root)
    n = comm.Get_size()
    if not 0 <= root < n:
        raise Exception(ERR_ROOT, f"{call}: invalid root {root}: valid roots on this communicator are 0 to {n - 1}")


def _comm_attr(comm, keyval):
    comm._r  # COMM_NULL raises ERR_COMM
    return {
        TAG_UB: TAG_UB,
        HOST: PROC_NULL,
        IO: ANY_SOURCE,
        WTIME_IS_GLOBAL: True,
        UNIVERSE_SIZE: COMM_WORLD.Get_size(),
        APPNUM: 0,
        LASTUSEDCODE: _LAST_USED[0],
    }.get(keyval, _MISSING)


_attr_methods(Comm, lambda c: c._r, _comm_attr)


def _dt_key(t):
    # Datatypes compare by what they are; attributes belong to each handle.
    return ("datatype", id(t))


_attr_methods(Datatype, _dt_key, lambda t, k: _MISSING)


class Intracomm(Comm):
    """A communicator of one group (``MPI.Intracomm``)."""

    __slots__ = ()

    def __init__(self, comm=None):
        if isinstance(comm, Intercomm):
            raise TypeError("Intracomm: the communicator is an intercommunicator")
        super().__init__(comm)

    def Create_cart(self, dims, periods=None, reorder=False):
        """A Cartesian grid of ``prod(dims)`` ranks (``MPI_Cart_create``): ranks
        keep their order (shmpi never reorders), row-major coordinates; ranks beyond
        the grid get ``COMM_NULL``. Collective."""
        dims = [int(d) for d in dims]
        if periods is None:
            periods = [False] * len(dims)
        elif isinstance(periods, bool):
            periods = [periods] * len(dims)
        periods = [bool(p) for p in periods]
        if len(periods) != len(dims):
            raise ValueError("Create_cart: dims and periods differ in length")
        if any(d <= 0 for d in dims):
            raise Exception(ERR_DIMS, f"Create_cart: dimensions must be positive, got {dims}")
        total = 1
        for d in dims:
            total *= d
        me = self.Get_rank()
        if total > self.Get_size():
            raise Exception(
                ERR_DIMS, f"Create_cart: a grid of {total} ranks in a communicator of {self.Get_size()}"
            )
        raw = self._r.split(0 if me < total else UNDEFINED, me)
        if raw is None:
            return COMM_NULL
        return Cartcomm._grid(raw, dims, periods)


    def Create_graph(self, index, edges, reorder=False):
        """A graph of ``len(index)`` nodes (``MPI_Graph_create``): node ``i``'s
        neighbours are ``edges[index[i-1]:index[i]]``; mpi4py's form with a leading 0
        is taken too. Ranks keep their order; ranks beyond the graph get
        ``COMM_NULL``. Collective."""
        index = [_operator.index(i) for i in index]
        edges = [_operator.index(e) for e in edges]
        if index and index[0] == 0 and index[-1] == len(edges) and len(index) > 1:
            index = index[1:]
        nnodes, size = len(index), self.Get_size()
        if nnodes > size:
            raise Exception(ERR_ARG, f"Create_graph: {nnodes} nodes in a communicator of {size}")
        if any(b < a for a, b in zip([0] + index, index)) or (index and index[-1] != len(edges)):
            raise Exception(ERR_ARG, "Create_graph: index must be the cumulative degrees, ending at len(edges)")
        if any(not 0 <= e < nnodes for e in edges):
            raise Exception(ERR_ARG, f"Create_graph: an edge to a node outside 0..{nnodes - 1}")
        me = self.Get_rank()
        raw = self._r.split(0 if me < nnodes else UNDEFINED, me)
        if raw is None:
            return COMM_NULL
        c = Graphcomm._wrap(raw)
        c._index, c._edges = index, edges
        return c

    def Graph_map(self, index, edges):
        """This rank's rank in a graph of ``index``/``edges`` (``MPI_Graph_map``):
        its own (shmpi never reorders), or ``UNDEFINED`` beyond the graph."""
        index = list(index)
        if index and index[0] == 0 and index[-1] == len(edges) and len(index) > 1:
            index = index[1:]
        me = self.Get_rank()
        return me if me < len(index) else UNDEFINED

    def Create_dist_graph_adjacent(self, sources, destinations, sourceweights=None,
                                   destweights=None, info=None, reorder=False):
        """A distributed graph from each rank's own in- and out-neighbours
        (``MPI_Dist_graph_create_adjacent``). Collective; ranks keep their order."""
        sources = [] if sources is None else [_operator.index(r) for r in sources]
        destinations = [] if destinations is None else [_operator.index(r) for r in destinations]
        sw = _weights(sourceweights, len(sources))
        dw = _weights(destweights, len(destinations))
        n = self.Get_size()
        if any(not 0 <= r < n for r in sources + destinations):
            raise Exception(ERR_RANK, "Create_dist_graph_adjacent: a neighbour outside the communicator")
        weighted = sw is not None or dw is not None
        return Distgraphcomm._make(self._r.dup(), sources, destinations,
                                   (sw or [], dw or []) if weighted else None)

    def Create_dist_graph(self, sources, degrees, destinations, weights=None, info=None,
                          reorder=False):
        """A distributed graph from edges any rank may name (``MPI_Dist_graph_create``):
        ``sources[i]`` has edges to the next ``degrees[i]`` of ``destinations``. The
        edges are gathered, so every rank learns its in- and out-neighbours, in the
        order the edges were given (by the rank that gave them, then its order).
        Collective."""
        sources = [_operator.index(r) for r in sources]
        degrees = [_operator.index(d) for d in degrees]
        destinations = [_operator.index(r) for r in destinations]
        if len(degrees) != len(sources) or sum(degrees) != len(destinations) or any(d < 0 for d in degrees):
            raise ValueError("Create_dist_graph: degrees must give each source's number of destinations")
        w = _weights(weights, len(destinations))
        n = self.Get_size()
        if any(not 0 <= r < n for r in sources + destinations):
            raise Exception(ERR_RANK, "Create_dist_graph: a node outside the communicator")
        mine, k = [], 0
        for s_, d in zip(sources, degrees):
            for j in range(d):
                mine.append((s_, destinations[k], w[k] if w else 1))
                k += 1
        every = self._r.allgather_obj(_dumps((mine, w is not None)))
        edges, weighted = [], False
        for b in every:
            e, wt = _loads(b)
            edges.extend(e)
            weighted = weighted or wt
        me = self.Get_rank()
        ins = [(s_, wt) for s_, d, wt in edges if d == me]
        outs = [(d, wt) for s_, d, wt in edges if s_ == me]
        return Distgraphcomm._make(
            self._r.dup(), [s_ for s_, _ in ins], [d for d, _ in outs],
            ([wt for _, wt in ins], [wt for _, wt in outs]) if weighted else None)

    def Cart_map(self, dims, periods=None):
        """This rank's rank in a grid of ``dims`` (``MPI_Cart_map``): its own, as
        shmpi never reorders, or ``UNDEFINED`` beyond the grid."""
        total = 1
        for d in dims:
            total *= int(d)
        me = self.Get_rank()
        return me if me < total else UNDEFINED


class Intercomm(Comm):
    """An intercommunicator (``MPI.Intercomm``): two disjoint groups, each member's
    point-to-point calls naming the ranks of the other group (shmpi's
    ``Communicator::intercomm_create``). Its collectives have MPI's meaning for
    intercommunicators (a rooted one's root passes ``ROOT``, the rest of its group
    ``PROC_NULL``, the other group the root's rank; the others give each group the
    other group's contributions). They run over a private intracommunicator of both
    groups and one of the local group, made with the intercommunicator."""

    __slots__ = ()

    def __init__(self, comm=None):
        if comm is not None and not isinstance(comm, Intercomm):
            raise TypeError("Intercomm: the communicator is not an intercommunicator")
        super().__init__(comm)

    def Is_inter(self):
        self._r  # a null intercommunicator raises ERR_COMM
        return True

    def Is_intra(self):
        self._r
        return False

    is_inter = property(Is_inter)
    is_intra = property(Is_intra)

    def Get_remote_size(self):
        return self._r.remote_size()

    remote_size = property(Get_remote_size)

    def Get_remote_group(self):
        """The remote group (``MPI_Comm_remote_group``): local, no communication."""
        return Group._make(tuple(self._r.remote_world_ranks()))

    remote_group = property(Get_remote_group)

    def Merge(self, high=False):
        """An intracommunicator of both groups (``MPI_Intercomm_merge``): the group
        passing ``high=False`` first; when both pass the same, the group whose leader
        has the lower rank in ``COMM_WORLD``. Collective over both groups."""
        return Intracomm._wrap(self._r.merge(bool(high)))

    def Compare(self, comm):
        if self == comm:
            return IDENT
        if not isinstance(comm, Intercomm):
            return UNEQUAL
        worst = IDENT
        for a, b in ((self._r.world_ranks(), comm._r.world_ranks()),
                     (self._r.remote_world_ranks(), comm._r.remote_world_ranks())):
            if a == b:
                r = CONGRUENT
            elif sorted(a) == sorted(b):
                r = SIMILAR
            else:
                return UNEQUAL
            worst = max(worst, r)
        return worst

    def Split(self, color=0, key=0):
        """``MPI_Comm_split`` of an intercommunicator: the members of each color in
        both groups, ordered by ``key`` then rank in each group, as a new
        intercommunicator; ``COMM_NULL`` for ``UNDEFINED`` or a color the other group
        does not have. Collective over both groups."""
        color = UNDEFINED if color == UNDEFINED else _operator.index(color)
        key = _operator.index(key)
        if color != UNDEFINED and color < 0:
            raise Exception(ERR_ARG, f"Split: the color must be non-negative or UNDEFINED, not {color}")
        bridge, _, first = self._parts()
        side = 0 if first else 1
        every = bridge.allgather((color, key, side, self.Get_rank()))
        # The bridge ranks each side in local order, so a split by (key, bridge rank)
        # orders by key then local rank, as MPI says.
        new_local = bridge.Split(UNDEFINED if color == UNDEFINED else 2 * color + side, key)
        if color == UNDEFINED:
            return Intercomm()
        theirs = sorted((k, r, i) for i, (c, k, sd, r) in enumerate(every)
                        if c == color and sd != side)
        if not theirs:
            new_local.Free()
            return Intercomm()
        leader = theirs[0][2]
        try:
            return new_local.Create_intercomm(0, bridge, leader, _SPLIT_TAG)
        finally:
            new_local.Free()

    def Split_type(self, split_type, key=0, info=None):
        """Every rank of a shmpi job shares memory: ``COMM_TYPE_SHARED`` keeps both
        groups whole."""
        return self.Split(UNDEFINED if split_type == UNDEFINED else 0, key)

    def Dup(self, info=None):
        c = Comm.Dup(self, info)
        c._parts()
        return c

    def Free(self):
        raw = self._r
        parts = _INTER_PARTS.pop(raw, None)
        if parts is not None:
            parts[0].Free()
            parts[1].Free()
        Comm.Free(self)

    # -- the private communicators of the collectives --

    def _parts(self):
        """(bridge, local, first): an intracommunicator of both groups, one of the
        local group, and whether the local group comes first in the bridge. Made with
        the intercommunicator (``Create_intercomm``, ``Dup``, ``Split``: collective over
        both groups, as they are), so that a non-blocking collective never waits for
        them; kept per handle."""
        raw = self._r
        parts = _INTER_PARTS.get(raw)
        if parts is None:
            bridge = Intracomm._wrap(raw.merge(False))
            first = bridge.Get_rank() == self.Get_rank()
            local = Intracomm._wrap(bridge._r.split(0 if first else 1, bridge.Get_rank()))
            parts = _INTER_PARTS[raw] = (bridge, local, first)
        return parts

    def _remote(self, first):
        """The bridge rank of remote rank ``j``."""
        off = self.Get_size() if first else 0
        return lambda j: off + j

    def _role(self, root):
        """``"root"``, ``"idle"`` (the root's group) or ``"leaf"`` (the other
        group), after checking ``root``."""
        if root == ROOT:
            return "root"
        if root == PROC_NULL:
            return "idle"
        root = _operator.index(root)
        if not 0 <= root < self.Get_remote_size():
            raise Exception(
                ERR_ROOT,
                f"invalid root {root}: an intercommunicator's root is ROOT, PROC_NULL or a "
                f"rank of the remote group (0..{self.Get_remote_size() - 1})",
            )
        return "leaf"

    # -- collectives, objects --

    def Barrier(self):
        self._parts()[0].Barrier()

    barrier = Barrier

    def Ibarrier(self):
        return self._parts()[0].Ibarrier()

    def bcast(self, obj, root=0):
        role = self._role(root)
        bridge, _, first = self._parts()
        rb = self._remote(first)
        if role == "root":
            for j in range(self.Get_remote_size()):
                bridge.send(obj, rb(j), _COLL_TAG)
        elif role == "leaf":
            return bridge.recv(None, rb(root), _COLL_TAG)
        return None

    def gather(self, sendobj, root=0):
        role = self._role(root)
        bridge, _, first = self._parts()
        rb = self._remote(first)
        if role == "root":
            return [bridge.recv(None, rb(j), _COLL_TAG) for j in range(self.Get_remote_size())]
        if role == "leaf":
            bridge.send(sendobj, rb(root), _COLL_TAG)
        return None

    def scatter(self, sendobj, root=0):
        role = self._role(root)
        bridge, _, first = self._parts()
        rb = self._remote(first)
        if role == "root":
            n = self.Get_remote_size()
            items = [None] * n if sendobj is None else list(sendobj)
            if len(items) != n:
                raise ValueError(f"expecting {n} items, got {len(items)}")
            for j, x in enumerate(items):
                bridge.send(x, rb(j), _COLL_TAG)
        elif role == "leaf":
            return bridge.recv(None, rb(root), _COLL_TAG)
        return None

    def allgather(self, sendobj):
        bridge, _, first = self._parts()
        every = bridge.allgather(sendobj)
        n, r = self.Get_size(), self.Get_remote_size()
        return every[n:] if first else every[:r]

    def alltoall(self, sendobj):
        bridge, _, first = self._parts()
        n, r = self.Get_size(), self.Get_remote_size()
        items = [None] * r if sendobj is None else list(sendobj)
        if len(items) != r:
            raise ValueError(f"expecting {r} items, got {len(items)}")
        out = [None] * n + items if first else items + [None] * n
        got = bridge.alltoall(out)
        return got[n:] if first else got[:r]

    def reduce(self, sendobj, op=SUM, root=0):
        role = self._role(root)
        bridge, local, first = self._parts()
        rb = self._remote(first)
        if role == "root":
            return bridge.recv(None, rb(0), _COLL_TAG)
        if role == "leaf":
            value = local.reduce(sendobj, op, 0)
            if local.Get_rank() == 0:
                bridge.send(value, rb(root), _COLL_TAG)
        return None

    def allreduce(self, sendobj, op=SUM):
        return _fold_objects(op, self.allgather(sendobj))

    def scan(self, sendobj, op=SUM):
        raise Exception(ERR_COMM, "scan is not defined on an intercommunicator")

    def exscan(self, sendobj, op=SUM):
        raise Exception(ERR_COMM, "exscan is not defined on an intercommunicator")

    def Scan(self, sendbuf, recvbuf, op=SUM):
        raise Exception(ERR_COMM, "Scan is not defined on an intercommunicator")

    def Exscan(self, sendbuf, recvbuf, op=SUM):
        raise Exception(ERR_COMM, "Exscan is not defined on an intercommunicator")

    # -- collectives, buffers --

    @staticmethod
    def _pieces(spec, n, v=False):
        """A buffer of one block per remote rank (``v``: a v-spec's blocks; a list of
        ``[buf, (counts, displs), types]`` ... for ``Alltoallw``, ``v="w"``) as ``n``
        point-to-point specs of bytes."""
        if v == "w":
            buf, counts, displs = _msg_w(spec, n)
        elif v:
            buf, _, counts, displs, dt = _msg_v(spec, n)
        else:
            buf, nb, dt = _msg_blocks(spec, n)
            per = nb // n if n else 0
            counts, displs = [per] * n, [j * per for j in range(n)]
        if v != "w" and dt is not None and dt._blocks is not None:
            raise NotImplementedError("intercommunicator collectives of datatypes with holes")
        view = _bytes_of(buf)
        return [[view[d:d + c], BYTE] for c, d in zip(counts, displs)]

    def _swap(self, sends, recvs):
        """Point-to-point on the bridge, ``(spec, remote rank)`` each: every send
        started, then every receive, so that two groups sending to each other never
        wait on each other."""
        bridge, _, first = self._parts()
        rb = self._remote(first)
        reqs = [bridge.Isend(spec, rb(j), _COLL_TAG) for spec, j in sends]
        for spec, j in recvs:
            bridge.Recv(spec, rb(j), _COLL_TAG)
        Request.Waitall(reqs)

    def _to_root(self, root, sendbuf, pieces):
        """A gather: the other group's buffers into the root's ``pieces()``."""
        role = self._role(root)
        if role == "root":
            self._swap([], list(zip(pieces(), range(self.Get_remote_size()))))
        elif role == "leaf":
            self._swap([(sendbuf, root)], [])

    def _from_root(self, root, recvbuf, pieces):
        """A scatter: the root's ``pieces()`` into the other group's buffers."""
        role = self._role(root)
        if role == "root":
            self._swap(list(zip(pieces(), range(self.Get_remote_size()))), [])
        elif role == "leaf":
            self._swap([], [(recvbuf, root)])

    def _exchange(self, sends, recvs):
        n = self.Get_remote_size()
        self._swap(list(zip(sends, range(n))), list(zip(recvs, range(n))))

    def Bcast(self, buf, root=0):
        self._from_root(root, buf, lambda: [buf] * self.Get_remote_size())

    def Gather(self, sendbuf, recvbuf, root=0):
        self._to_root(root, sendbuf, lambda: self._pieces(recvbuf, self.Get_remote_size()))

    def Gatherv(self, sendbuf, recvbuf, root=0):
        self._to_root(root, sendbuf, lambda: self._pieces(recvbuf, self.Get_remote_size(), True))

    def Scatter(self, sendbuf, recvbuf, root=0):
        self._from_root(root, recvbuf, lambda: self._pieces(sendbuf, self.Get_remote_size()))

    def Scatterv(self, sendbuf, recvbuf, root=0):
        self._from_root(root, recvbuf, lambda: self._pieces(sendbuf, self.Get_remote_size(), True))

    def Allgather(self, sendbuf, recvbuf):
        n = self.Get_remote_size()
        self._exchange([sendbuf] * n, self._pieces(recvbuf, n))

    def Allgatherv(self, sendbuf, recvbuf):
        n = self.Get_remote_size()
        self._exchange([sendbuf] * n, self._pieces(recvbuf, n, True))

    def Alltoall(self, sendbuf, recvbuf):
        n = self.Get_remote_size()
        self._exchange(self._pieces(sendbuf, n), self._pieces(recvbuf, n))

    def Alltoallv(self, sendbuf, recvbuf):
        n = self.Get_remote_size()
        self._exchange(self._pieces(sendbuf, n, True), self._pieces(recvbuf, n, True))

    def Alltoallw(self, sendbuf, recvbuf):
        n = self.Get_remote_size()
        self._exchange(self._pieces(sendbuf, n, "w"), self._pieces(recvbuf, n, "w"))

    def Reduce(self, sendbuf, recvbuf, op=SUM, root=0):
        role = self._role(root)
        _, local, _ = self._parts()
        if role == "root":
            self._swap([], [(recvbuf, 0)])
        elif role == "leaf":
            sbuf, nb, dt = _msg_typed(sendbuf)
            tmp = bytearray(nb)
            spec = [tmp, nb // dt._size if dt._size else 0, dt]
            local.Reduce(sendbuf, spec, op, 0)
            if local.Get_rank() == 0:
                self._swap([(spec, root)], [])

    def Allreduce(self, sendbuf, recvbuf, op=SUM):
        """Each group gets the reduction of the other group's buffers: each group
        reduces at its leader, the leaders swap, each broadcasts in its group."""
        _, local, _ = self._parts()
        if sendbuf is IN_PLACE:
            raise Exception(ERR_ARG, "Allreduce: IN_PLACE is not valid on an intercommunicator")
        sbuf, nb, dt = _msg_typed(sendbuf)
        tmp = bytearray(nb)
        spec = [tmp, nb // dt._size if dt._size else 0, dt]
        local.Reduce(sendbuf, spec, op, 0)
        if local.Get_rank() == 0:
            self._swap([(spec, 0)], [(recvbuf, 0)])
        local.Bcast(recvbuf, 0)

    def _reduce_scatter_inter(self, call, sendbuf, recvbuf, counts, op):
        """A reduce-scatter with MPI's intercommunicator meaning: each group reduces
        its send buffers at its leader, the leaders swap the results, and each leader
        scatters the other group's result in its group, ``counts[i]`` elements to
        local rank ``i`` (no counts: ``TypeError``, as in mpi4py, which infers them on
        an intracommunicator only)."""
        if _in_place(sendbuf):
            raise Exception(ERR_ARG, f"{call}: IN_PLACE is not valid on an intercommunicator")
        _, local, _ = self._parts()
        n, me = local.Get_size(), local.Get_rank()
        rb, rnb, rdt = _msg_typed(recvbuf)
        sb, snb, dt = _msg_typed(sendbuf)
        if dt != rdt:
            raise ValueError(f"message: mismatch in send and receive MPI datatypes ({dt._name}, {rdt._name})")
        sz = dt._size or 1
        counts = _inter_counts(call, counts)
        if len(counts) != n:
            raise ValueError(f"message: expecting {n} receive counts, got {len(counts)}")
        want = sum(counts)
        if snb // sz != want:
            raise ValueError(f"message: mismatch in send count {snb // sz} and sum(counts) {want}")
        if rnb // sz != counts[me]:
            raise ValueError(f"message: mismatch in receive count {rnb // sz} and counts[{me}] {counts[me]}")
        total = want * dt._size
        mine = bytearray(_mv(sb).cast("B")[:total])
        part, whole = bytearray(total), bytearray(total)
        local.Reduce([mine, want, dt], [part, want, dt], op, 0)
        if me == 0:
            # Both groups' totals must agree (MPI's rule); a longer one truncates.
            self._swap([([part, want, dt], 0)], [([whole, want, dt], 0)])
        displs = [sum(counts[:i]) for i in range(n)]
        out = bytearray(counts[me] * dt._size)
        local.Scatterv([whole, (counts, displs), dt], [out, counts[me], dt], 0)
        _mv(rb).cast("B")[: len(out)] = out

    def Reduce_scatter_block(self, sendbuf, recvbuf, op=SUM):
        """The reduction of the other group's send buffers (``size * count``
        elements each), in blocks of ``count`` elements, one per rank of this group."""
        if _in_place(sendbuf):
            raise Exception(ERR_ARG, "Reduce_scatter_block: IN_PLACE is not valid on an intercommunicator")
        _, rnb, dt = _msg_typed(recvbuf)
        count = rnb // dt._size if dt._size else 0
        self._reduce_scatter_inter("Reduce_scatter_block", sendbuf, recvbuf, [count] * self.Get_size(), op)

    def Reduce_scatter(self, sendbuf, recvbuf, recvcounts=None, op=SUM):
        """The reduction of the other group's send buffers, ``recvcounts[i]``
        elements of it to rank ``i`` of this group."""
        self._reduce_scatter_inter("Reduce_scatter", sendbuf, recvbuf, recvcounts, op)

    # -- non-blocking and persistent collectives (MPI 4.1 sec. 6.12, 6.13) --
    # Each is its point-to-point messages on the bridge, every one started by the call
    # itself: it then progresses while this rank is in any other call and needs no
    # later step of this rank for the other ranks to complete (a reduction gets each
    # remote rank's buffer and folds them, in rank order, in the wait or test that
    # completes it). They are started in call order, which MPI makes the same on every
    # rank, so the messages of two outstanding collectives never mix; their tag is not
    # the blocking collectives'. A persistent one checks its arguments when made and
    # plans its messages again at each Start.

    def _start(self, plan):
        """Starts ``plan``'s ``(sends, recvs, then)``: ``(spec, remote rank)`` each."""
        sends, recvs, then = plan
        bridge, _, first = self._parts()
        rb = self._remote(first)
        reqs = [bridge.Isend(spec, rb(j), _NBC_TAG) for spec, j in sends]
        reqs += [bridge.Irecv(spec, rb(j), _NBC_TAG) for spec, j in recvs]
        return Request._new(_Many(reqs, then), False)

    def _persist(self, plan):
        plan()  # the arguments are checked now, as MPI's init calls check them
        self._parts()
        return Prequest._persistent(lambda: self._start(plan()))

    def _plan_from_root(self, root, recvbuf, pieces):
        role = self._role(root)
        if role == "root":
            return list(zip(pieces(), range(self.Get_remote_size()))), [], None
        if role == "leaf":
            return [], [(recvbuf, root)], None
        return [], [], None

    def _plan_to_root(self, root, sendbuf, pieces):
        role = self._role(root)
        if role == "root":
            return [], list(zip(pieces(), range(self.Get_remote_size()))), None
        if role == "leaf":
            return [(sendbuf, root)], [], None
        return [], [], None

    def _plan_exchange(self, sends, recvs):
        n = self.Get_remote_size()
        return list(zip(sends, range(n))), list(zip(recvs, range(n))), None

    def _plan_bcast(self, buf, root):
        return self._plan_from_root(root, buf, lambda: [buf] * self.Get_remote_size())

    def _plan_gather(self, sendbuf, recvbuf, root, v=False):
        return self._plan_to_root(root, sendbuf, lambda: self._pieces(recvbuf, self.Get_remote_size(), v))

    def _plan_scatter(self, sendbuf, recvbuf, root, v=False):
        return self._plan_from_root(root, recvbuf, lambda: self._pieces(sendbuf, self.Get_remote_size(), v))

    def _plan_allgather(self, sendbuf, recvbuf, v=False):
        n = self.Get_remote_size()
        return self._plan_exchange([sendbuf] * n, self._pieces(recvbuf, n, v))

    def _plan_alltoall(self, sendbuf, recvbuf, v=False):
        n = self.Get_remote_size()
        return self._plan_exchange(self._pieces(sendbuf, n, v), self._pieces(recvbuf, n, v))

    @staticmethod
    def _reduction_buf(call, spec, writable=False):
        """(flat bytes, datatype) of a reduction's buffer."""
        if _in_place(spec):
            raise Exception(ERR_ARG, f"{call}: IN_PLACE is not valid on an intercommunicator")
        buf, nb, dt = _msg_typed(spec)
        if dt._blocks is not None:
            raise NotImplementedError("intercommunicator reductions of datatypes with holes")
        view = _flat(buf, writable) if nb else memoryview(_NOTHING)
        if len(view) < nb:
            raise ValueError(f"message: {call}'s count of {nb} bytes is past the end of a buffer of {len(view)}")
        return view[:nb], dt

    def _plan_fold(self, sends, nrecv, nbytes, dt, op, done):
        """A reduction's plan: ``sends``, then one block of ``nbytes`` from each of
        the ``nrecv`` first remote ranks, folded in rank order and handed to
        ``done``. A block shorter than ``nbytes`` is ``ERR_COUNT`` (a longer one is
        the receive's ``ERR_TRUNCATE``)."""
        blocks = [bytearray(nbytes) for _ in range(nrecv)]

        def then(statuses):
            for st in statuses[len(sends):]:
                got = st.Get_count(BYTE)
                if got != nbytes:
                    raise Exception(
                        ERR_COUNT,
                        f"a remote rank's contribution is {got} bytes, this rank expects "
                        f"{nbytes}: both groups' counts must agree",
                    )
            done(_fold_inter(op, dt, blocks))

        return sends, [([b, BYTE], j) for j, b in enumerate(blocks)], then

    def _plan_reduce(self, sendbuf, recvbuf, op, root):
        _check_op(op)
        role = self._role(root)
        if role == "root":
            out, dt = self._reduction_buf("Ireduce", recvbuf, True)
            _check_op_type(op, _reduction_type(dt))

            def done(whole):
                out[:] = whole

            return self._plan_fold([], self.Get_remote_size(), len(out), dt, op, done)
        if role == "leaf":
            mine, _ = self._reduction_buf("Ireduce", sendbuf)
            return [([mine, BYTE], root)], [], None
        return [], [], None

    def _plan_allreduce(self, sendbuf, recvbuf, op):
        _check_op(op)
        mine, dt = self._reduction_buf("Iallreduce", sendbuf)
        out, rdt = self._reduction_buf("Iallreduce", recvbuf, True)
        if dt != rdt or len(mine) != len(out):
            raise ValueError(
                f"message: mismatch in send and receive ({len(mine)} bytes of {dt._name}, "
                f"{len(out)} bytes of {rdt._name})"
            )
        _check_op_type(op, _reduction_type(dt))
        n = self.Get_remote_size()

        def done(whole):
            out[:] = whole

        return self._plan_fold([([mine, BYTE], j) for j in range(n)], n, len(out), dt, op, done)

    def _plan_reduce_scatter(self, call, sendbuf, recvbuf, counts, op):
        """Each rank sends its whole send buffer to every remote rank, each remote
        rank folds the part its counts give it (the remote group's counts are not
        known here, and asking for them would need a step after the call)."""
        _check_op(op)
        mine, dt = self._reduction_buf(call, sendbuf)
        out, rdt = self._reduction_buf(call, recvbuf, True)
        if dt != rdt:
            raise ValueError(f"message: mismatch in send and receive MPI datatypes ({dt._name}, {rdt._name})")
        _check_op_type(op, _reduction_type(dt))
        n, me, sz = self.Get_size(), self.Get_rank(), dt._size or 1
        if len(counts) != n:
            raise ValueError(f"message: expecting {n} receive counts, got {len(counts)}")
        want = sum(counts)
        if len(mine) // sz != want:
            raise ValueError(f"message: mismatch in send count {len(mine) // sz} and sum(counts) {want}")
        if len(out) // sz != counts[me]:
            raise ValueError(f"message: mismatch in receive count {len(out) // sz} and counts[{me}] {counts[me]}")
        r = self.Get_remote_size()
        off, nb = sum(counts[:me]) * dt._size, counts[me] * dt._size
        blocks = [bytearray(len(mine)) for _ in range(r)]

        def then(statuses):
            for st in statuses[r:]:
                got = st.Get_count(BYTE)
                if got != len(mine):
                    raise Exception(
                        ERR_COUNT,
                        f"{call}: the other group's send count is {got // sz}, this group's "
                        f"{want}: both groups' totals must agree",
                    )
            out[:] = _fold_inter(op, dt, [b[off:off + nb] for b in blocks])

        sends = [([mine, BYTE], j) for j in range(r)]
        return sends, [([b, BYTE], j) for j, b in enumerate(blocks)], then

    def _plan_reduce_scatter_block(self, sendbuf, recvbuf, op):
        """Remote rank ``i`` gets block ``i`` of each send buffer (``size * count``
        elements, ``size`` this group's), ``count`` its own receive count."""
        _check_op(op)
        mine, dt = self._reduction_buf("Ireduce_scatter_block", sendbuf)
        out, rdt = self._reduction_buf("Ireduce_scatter_block", recvbuf, True)
        if dt != rdt:
            raise ValueError(f"message: mismatch in send and receive MPI datatypes ({dt._name}, {rdt._name})")
        _check_op_type(op, _reduction_type(dt))
        n, r, sz = self.Get_size(), self.Get_remote_size(), dt._size or 1
        if len(mine) != n * len(out):
            raise ValueError(
                f"message: mismatch in send count {len(mine) // sz} and {n} x receive count "
                f"{len(out) // sz}"
            )
        if len(mine) // sz % r:
            raise ValueError(
                f"message: send count {len(mine) // sz} does not split into {r} blocks, one "
                "per rank of the other group (both groups' totals must agree)"
            )
        blk = len(mine) // r

        def done(whole):
            out[:] = whole

        sends = [([mine[j * blk:(j + 1) * blk], BYTE], j) for j in range(r)]
        return self._plan_fold(sends, r, len(out), dt, op, done)

    def Ibcast(self, buf, root=0):
        return self._start(self._plan_bcast(buf, root))

    def Igather(self, sendbuf, recvbuf, root=0):
        return self._start(self._plan_gather(sendbuf, recvbuf, root))

    def Igatherv(self, sendbuf, recvbuf, root=0):
        return self._start(self._plan_gather(sendbuf, recvbuf, root, True))

    def Iscatter(self, sendbuf, recvbuf, root=0):
        return self._start(self._plan_scatter(sendbuf, recvbuf, root))

    def Iscatterv(self, sendbuf, recvbuf, root=0):
        return self._start(self._plan_scatter(sendbuf, recvbuf, root, True))

    def Iallgather(self, sendbuf, recvbuf):
        return self._start(self._plan_allgather(sendbuf, recvbuf))

    def Iallgatherv(self, sendbuf, recvbuf):
        return self._start(self._plan_allgather(sendbuf, recvbuf, True))

    def Ialltoall(self, sendbuf, recvbuf):
        return self._start(self._plan_alltoall(sendbuf, recvbuf))

    def Ialltoallv(self, sendbuf, recvbuf):
        return self._start(self._plan_alltoall(sendbuf, recvbuf, True))

    def Ialltoallw(self, sendbuf, recvbuf):
        return self._start(self._plan_alltoall(sendbuf, recvbuf, "w"))

    def Ireduce(self, sendbuf, recvbuf, op=SUM, root=0):
        return self._start(self._plan_reduce(sendbuf, recvbuf, op, root))

    def Iallreduce(self, sendbuf, recvbuf, op=SUM):
        return self._start(self._plan_allreduce(sendbuf, recvbuf, op))

    def Ireduce_scatter_block(self, sendbuf, recvbuf, op=SUM):
        return self._start(self._plan_reduce_scatter_block(sendbuf, recvbuf, op))

    def Ireduce_scatter(self, sendbuf, recvbuf, recvcounts=None, op=SUM):
        counts = _inter_counts("Ireduce_scatter", recvcounts)
        return self._start(self._plan_reduce_scatter("Ireduce_scatter", sendbuf, recvbuf, counts, op))

    def Iscan(self, sendbuf, recvbuf, op=SUM):
        raise Exception(ERR_COMM, "Iscan is not defined on an intercommunicator")

    def Iexscan(self, sendbuf, recvbuf, op=SUM):
        raise Exception(ERR_COMM, "Iexscan is not defined on an intercommunicator")

    def Barrier_init(self, info=None):
        bridge = self._parts()[0]
        return Prequest._persistent(lambda: bridge.Ibarrier())

    def Bcast_init(self, buf, root=0, info=None):
        return self._persist(lambda: self._plan_bcast(buf, root))

    def Gather_init(self, sendbuf, recvbuf, root=0, info=None):
        return self._persist(lambda: self._plan_gather(sendbuf, recvbuf, root))

    def Gatherv_init(self, sendbuf, recvbuf, root=0, info=None):
        return self._persist(lambda: self._plan_gather(sendbuf, recvbuf, root, True))

    def Scatter_init(self, sendbuf, recvbuf, root=0, info=None):
        return self._persist(lambda: self._plan_scatter(sendbuf, recvbuf, root))

    def Scatterv_init(self, sendbuf, recvbuf, root=0, info=None):
        return self._persist(lambda: self._plan_scatter(sendbuf, recvbuf, root, True))

    def Allgather_init(self, sendbuf, recvbuf, info=None):
        return self._persist(lambda: self._plan_allgather(sendbuf, recvbuf))

    def Allgatherv_init(self, sendbuf, recvbuf, info=None):
        return self._persist(lambda: self._plan_allgather(sendbuf, recvbuf, True))

    def Alltoall_init(self, sendbuf, recvbuf, info=None):
        return self._persist(lambda: self._plan_alltoall(sendbuf, recvbuf))

    def Alltoallv_init(self, sendbuf, recvbuf, info=None):
        return self._persist(lambda: self._plan_alltoall(sendbuf, recvbuf, True))

    def Alltoallw_init(self, sendbuf, recvbuf, info=None):
        return self._persist(lambda: self._plan_alltoall(sendbuf, recvbuf, "w"))

    def Reduce_init(self, sendbuf, recvbuf, op=SUM, root=0, info=None):
        return self._persist(lambda: self._plan_reduce(sendbuf, recvbuf, op, root))

    def Allreduce_init(self, sendbuf, recvbuf, op=SUM, info=None):
        return self._persist(lambda: self._plan_allreduce(sendbuf, recvbuf, op))

    def Reduce_scatter_block_init(self, sendbuf, recvbuf, op=SUM, info=None):
        return self._persist(lambda: self._plan_reduce_scatter_block(sendbuf, recvbuf, op))

    def Reduce_scatter_init(self, sendbuf, recvbuf, recvcounts=None, op=SUM, info=None):
        counts = _inter_counts("Reduce_scatter_init", recvcounts)
        return self._persist(lambda: self._plan_reduce_scatter("Reduce_scatter_init", sendbuf, recvbuf, counts, op))

    def Scan_init(self, sendbuf, recvbuf, op=SUM, info=None):
        raise Exception(ERR_COMM, "Scan_init is not defined on an intercommunicator")

    def Exscan_init(self, sendbuf, recvbuf, op=SUM, info=None):
        raise Exception(ERR_COMM, "Exscan_init is not defined on an intercommunicator")


#: Tags of the intercommunicator collectives' messages on their private bridge.
_COLL_TAG = 1
_SPLIT_TAG = 2
_NBC_TAG = 3


def _inter_counts(call, counts):
    """An intercommunicator reduce-scatter's ``recvcounts``: mpi4py gathers missing
    counts on an intracommunicator only (on an intercommunicator an allgather would
    bring the other group's), and takes ``len(None)``'s ``TypeError`` here."""
    if counts is None:
        raise TypeError(
            f"{call}: an intercommunicator needs recvcounts (mpi4py infers them on an "
            "intracommunicator only): object of type 'NoneType' has no len()"
        )
    return [_operator.index(c) for c in counts]


# NumPy's ufuncs of the built-in ops whose result has the operands' type, for the
# intercommunicator reductions folded in Python (the others fold element by element).
_UFUNCS = {"MPI_SUM": "add", "MPI_PROD": "multiply", "MPI_MAX": "maximum",
           "MPI_MIN": "minimum", "MPI_BAND": "bitwise_and", "MPI_BOR": "bitwise_or",
           "MPI_BXOR": "bitwise_xor"}


def _fold_inter(op, dt, blocks):
    """``blocks[0] op blocks[1] op ...`` (rank order) of byte blocks of ``dt``."""
    if len(blocks) == 1:
        return bytes(blocks[0])
    if not op._user:
        rdt = _reduction_type(dt)
        npt = _numpy_type(rdt) if op._name in _UFUNCS and rdt._code is not None else None
        if npt is not None:
            import numpy

            f = getattr(numpy, _UFUNCS[op._name])
            acc = numpy.frombuffer(blocks[0], dtype=npt).copy()
            for b in blocks[1:]:
                f(acc, numpy.frombuffer(b, dtype=npt), out=acc)
            return acc.tobytes()
        dt = rdt
    return _fold_bytes(op, dt, blocks)
#: An intercommunicator's private communicators, by its native handle.
_INTER_PARTS = {}


def _create_intercomm(self, local_leader, peer_comm, remote_leader, tag=0):
    """An intercommunicator of this group and the group of ``remote_leader``, a rank
    of ``peer_comm`` (``MPI_Intercomm_create``). Collective over both groups."""
    ic = Intercomm._wrap(self._r.intercomm_create(
        _operator.index(local_leader), peer_comm._r, _operator.index(remote_leader),
        _operator.index(tag)))
    ic._parts()
    return ic


def _create_from_groups(cls, local_group, local_leader, remote_group, remote_leader,
                        stringtag="org.mpi4py", info=None, errhandler=None):
    """``MPI_Intercomm_create_from_groups`` (MPI 4.1 sec. 7.6.2): an intercommunicator
    of two disjoint groups of the job's processes, made by their members alone. Each
    group makes its own communicator (``Create_from_group``), the two leaders one of
    the two of them, and ``Create_intercomm`` joins the groups over it; the string tag
    and the leaders' ranks keep concurrent calls apart."""
    lm, rm = local_group._members(), remote_group._members()
    ll, rl = _operator.index(local_leader), _operator.index(remote_leader)
    me = COMM_WORLD.Get_rank()
    if me not in lm:
        raise Exception(ERR_GROUP, "Create_from_groups: this rank is not in the local group")
    if set(lm) & set(rm):
        raise Exception(ERR_GROUP, "Create_from_groups: the local and remote groups share a process")
    if not 0 <= ll < len(lm):
        raise Exception(ERR_RANK, f"Create_from_groups: local leader {ll} of a group of {len(lm)}")
    if not 0 <= rl < len(rm):
        raise Exception(ERR_RANK, f"Create_from_groups: remote leader {rl} of a group of {len(rm)}")
    mine, theirs = lm[ll], rm[rl]
    local = _create_from_group(Intracomm, local_group, f"{stringtag}\0group\0{mine}\0{theirs}")
    peer = COMM_WORLD
    try:
        if me == mine:
            pair = tuple(sorted((mine, theirs)))
            peer = _create_from_group(Intracomm, Group._make(pair), f"{stringtag}\0leaders\0{pair}")
        # Only the leaders use the peer communicator (theirs is private, so tag 0).
        ic = _create_intercomm(local, ll, peer, 0 if me != mine else pair.index(theirs), 0)
    finally:
        local.Free()
        if peer is not COMM_WORLD:
            peer.Free()
    if errhandler is not None:
        ic.Set_errhandler(errhandler)
    return ic


Intercomm.Create_from_groups = classmethod(_create_from_groups)
Intracomm.Create_intercomm = _create_intercomm


class Topocomm(Intracomm):
    """A communicator with a topology (``MPI.Topocomm``), and the neighbourhood
    collectives over its edges: point-to-point messages on a private duplicate of
    the communicator, each edge under a tag of its own so that two edges between the
    same ranks never mix."""

    __slots__ = ()

    def __init__(self, comm=None):
        if type(self) is Topocomm:
            raise TypeError("Topocomm is abstract: use Cartcomm, Graphcomm or Distgraphcomm")
        super().__init__(comm)

    is_topo = property(lambda self: True)

    # -- the edges --

    def _in_out(self):
        """(in-neighbours, out-neighbours), ``PROC_NULL`` where a grid has none."""
        return self.inedges, self.outedges

    # Each topology defines ``inedges`` and ``outedges``; the rest follow.
    def _edges(self):
        raise NotImplementedError("a topology defines its edges")

    inedges = property(_edges)
    outedges = property(_edges)
    indegree = property(lambda self: len(self.inedges))
    outdegree = property(lambda self: len(self.outedges))
    inoutedges = property(lambda self: (self.inedges, self.outedges))
    degrees = property(lambda self: (self.indegree, self.outdegree))

    def _edge_tags(self):
        """(tag of each out-edge's message, tag each in-edge's receive expects): the
        k-th edge between the same two ranks carries tag k."""
        ins, outs = self._in_out()

        def nth(xs):
            seen, out = {}, []
            for x in xs:
                out.append(seen.get(x, 0))
                seen[x] = out[-1] + 1
            return out

        return nth(outs), nth(ins)

    def _nbr(self):
        c = _NBR_COMMS.get(self._r)
        if c is None:
            c = _NBR_COMMS[self._r] = _private_dup(self)
        return c

    def _exchange(self, sends, recvs):
        """Starts the messages of one neighbourhood collective: ``sends`` (buffer spec
        per out-edge), ``recvs`` (writable spec per in-edge); returns the requests."""
        ins, outs = self._in_out()
        stags, rtags = self._edge_tags()
        c = self._nbr()
        reqs = []
        for spec, src, tag in zip(recvs, ins, rtags):
            if src != PROC_NULL:
                reqs.append(c.Irecv(spec, src, tag))
        for spec, dst, tag in zip(sends, outs, stags):
            if dst != PROC_NULL:
                reqs.append(c.Isend(spec, dst, tag))
        return reqs

    def _blocks(self, spec, n):
        """A buffer of ``n`` equal blocks (a count is per block, as MPI's) as ``n``
        byte views."""
        b, nb, _ = _msg_blocks(spec, n)
        m = _mv(b).cast("B")
        blk = nb // n if n else 0
        return [m[j * blk : (j + 1) * blk] for j in range(n)]

    def _vblocks(self, spec, n):
        b, _, counts, displs, _ = _msg_v(spec, n)
        m = _mv(b).cast("B")
        return [m[d : d + c] for c, d in zip(counts, displs)]

    def _wblocks(self, spec, n):
        b, counts, displs = _msg_w(spec, n)
        m = _mv(b).cast("B")
        return [m[d : d + c] for c, d in zip(counts, displs)]

    def _start(self, sendbuf, recvbuf, send_blocks, recv_blocks):
        """Starts one neighbourhood collective: ``send_blocks(self, spec, n)`` splits
        the send buffer for the out-edges (``None``: the whole of it on every one, the
        allgathers), ``recv_blocks`` the receive buffer for the in-edges."""
        ins, outs = self._in_out()
        if send_blocks is None:
            sb, snb, _ = _msg_typed(sendbuf)
            sends = [bytes(_mv(sb).cast("B")[:snb])] * len(outs)
        else:
            sends = [bytes(x) for x in send_blocks(self, sendbuf, len(outs))]
        return self._exchange(sends, recv_blocks(self, recvbuf, len(ins)))

    # -- objects --

    def neighbor_allgather(self, sendobj):
        """Every in-neighbour's object, in the order of the in-edges (``None`` for a
        ``PROC_NULL`` neighbour)."""
        ins, outs = self._in_out()
        return self._objects([sendobj] * len(outs))

    def neighbor_alltoall(self, sendobj):
        """Object ``j`` of ``sendobj`` to out-neighbour ``j``; the in-neighbours'
        objects for this rank, in the order of the in-edges."""
        ins, outs = self._in_out()
        sendobj = [None] * len(outs) if sendobj is None else list(sendobj)
        if len(sendobj) != len(outs):
            raise ValueError(f"expecting {len(outs)} items, got {len(sendobj)}")
        return self._objects(sendobj)

    def _objects(self, objs):
        ins, outs = self._in_out()
        stags, rtags = self._edge_tags()
        c = self._nbr()
        sends = [c.isend(x, dst, tag) for x, dst, tag in zip(objs, outs, stags) if dst != PROC_NULL]
        got = [None if src == PROC_NULL else c.recv(None, src, tag) for src, tag in zip(ins, rtags)]
        Request.waitall(sends)
        return got


def _private_dup(comm):
    """A duplicate of ``comm`` for the library's own messages: without the program's
    attributes (``Dup`` would run their copy callbacks). Collective."""
    return (Intercomm if isinstance(comm, Intercomm) else Intracomm)._wrap(comm._r.dup())


# ---- mpi4py's internal helpers, which its pure-Python modules use (shmpi.util) -------

_COMM_LOCKS = {}
_LOCKS_LOCK = _threading.Lock()
#: Per communicator: [private duplicate, next tag, local communicator, low group].
_COMMCTX = {}


def _comm_lock_table(comm):
    """The table of ``comm``'s locks by key (mpi4py's ``MPI._comm_lock_table``)."""
    with _LOCKS_LOCK:
        return _COMM_LOCKS.setdefault(comm._r, {})


def _comm_lock(comm, key=None):
    """``comm``'s lock for ``key``, made at the first call (mpi4py's ``MPI._comm_lock``):
    what mpi4py's modules hold around a communicator's calls from several threads."""
    table = _comm_lock_table(comm)
    with _LOCKS_LOCK:
        lock = table.get(key)
        if lock is None:
            lock = table[key] = _threading.Lock()
        return lock


def _next_tag(ctx):
    tag = ctx[1]
    ctx[1] = 0 if tag + 1 >= TAG_UB else tag + 1
    return tag


def _commctx_intra(comm):
    """(a private duplicate of ``comm``, a tag of its own for this call) (mpi4py's
    ``MPI._commctx_intra``): the duplicate is made at the first call, collectively,
    and kept until ``comm`` is freed; the tags count up."""
    with _comm_lock(comm, "@commctx_intra"):
        ctx = _COMMCTX.get(comm._r)
        if ctx is None:
            ctx = _COMMCTX[comm._r] = [_private_dup(comm), 0, None, None]
        return ctx[0], _next_tag(ctx)


def _commctx_inter(comm):
    """(a private duplicate, a tag, the local group's communicator, whether this is the
    low group) of intercommunicator ``comm`` (mpi4py's ``MPI._commctx_inter``): the
    low group is the smaller one, or the first in the merge of both when they are of
    a size."""
    with _comm_lock(comm, "@commctx_inter"):
        ctx = _COMMCTX.get(comm._r)
        if ctx is None:
            bridge, local, first = comm._parts()
            n, r = comm.Get_size(), comm.Get_remote_size()
            low = n < r or (n == r and first)
            ctx = _COMMCTX[comm._r] = [_private_dup(comm), 0, local, low]
        return ctx[0], _next_tag(ctx), ctx[2], ctx[3]


def _neighbor_forms(cls):
    """``Neighbor_X``, ``Ineighbor_X`` and ``Neighbor_X_init`` of every neighbourhood
    collective X, each one ``_start`` with its way of splitting the buffers."""
    forms = {
        "allgather": (None, cls._blocks),
        "allgatherv": (None, cls._vblocks),
        "alltoall": (cls._blocks, cls._blocks),
        "alltoallv": (cls._vblocks, cls._vblocks),
        "alltoallw": (cls._wblocks, cls._wblocks),
    }
    for name, (sf, rf) in forms.items():

        def started(self, sendbuf, recvbuf, sf=sf, rf=rf):
            return Request._new(_Many(self._start(sendbuf, recvbuf, sf, rf)), False)

        def blocking(self, sendbuf, recvbuf, sf=sf, rf=rf):
            _waitall(self._start(sendbuf, recvbuf, sf, rf), None)

        def persistent(self, sendbuf, recvbuf, info=None, started=started):
            return Prequest._persistent(lambda: started(self, sendbuf, recvbuf))

        setattr(cls, f"Neighbor_{name}", blocking)
        setattr(cls, f"Ineighbor_{name}", started)
        setattr(cls, f"Neighbor_{name}_init", persistent)
    return cls


_neighbor_forms(Topocomm)


class _Many:
    """The operation of a request made of several (a non-blocking neighbourhood or
    intercommunicator collective's messages): complete when all are. ``then``, if
    given, runs once with their statuses in the wait or test that completes it (a
    reduction folds what it received)."""

    __slots__ = ("reqs", "then")

    def __init__(self, reqs, then=None):
        self.reqs, self.then = reqs, then

    def test(self):
        return all(r._raw is None or r._raw.test() for r in self.reqs)

    def wait(self):
        then, self.then = self.then, None
        if then is None:
            _waitall(self.reqs, None)
        else:
            statuses = [Status() for _ in self.reqs]
            _waitall(self.reqs, statuses)
            then(statuses)
        return None, None

    def cancel(self):
        raise Exception(ERR_REQUEST, "Cancel of a non-blocking collective's request (erroneous in MPI)")

    def free(self):
        # As MPI's Request_free: the operation completes, its result is not made.
        self.then = None

    def is_null(self):
        return False


# The private communicator of each topology's neighbourhood collectives.
_NBR_COMMS = {}


def _weights(w, n):
    """Edge weights as mpi4py takes them: ``None``/``UNWEIGHTED`` for none,
    ``WEIGHTS_EMPTY`` for no edges, else one integer per edge."""
    if w is None or w is UNWEIGHTED:
        return None
    if w is WEIGHTS_EMPTY:
        if n:
            raise ValueError(f"WEIGHTS_EMPTY for {n} edges")
        return []
    w = [_operator.index(x) for x in w]
    if len(w) != n:
        raise ValueError(f"expecting {n} weights, got {len(w)}")
    return w


UNWEIGHTED = _Sentinel(-3, "UNWEIGHTED")
WEIGHTS_EMPTY = _Sentinel(-4, "WEIGHTS_EMPTY")


class Graphcomm(Topocomm):
    """A communicator on a graph (``MPI.Graphcomm``, ``Create_graph``)."""

    __slots__ = ("_index", "_edges")

    def __init__(self, comm=None):
        Intracomm.__init__(self, comm)
        if isinstance(comm, Graphcomm):
            self._index, self._edges = comm._index, comm._edges
        elif self._raw is not None:
            raise TypeError("Graphcomm: the communicator has no graph topology")
        else:
            self._index, self._edges = [], []

    def Get_topology(self):
        return GRAPH

    topology = property(Get_topology)

    def Dup(self, info=None):
        c = Graphcomm._wrap(self._r.dup())
        c._index, c._edges = self._index, self._edges
        _attrs_copy(self, c, lambda x: x._r)
        return c

    def Get_dims(self):
        return (len(self._index), len(self._edges))

    dims = property(Get_dims)
    nnodes = property(lambda self: len(self._index))
    nedges = property(lambda self: len(self._edges))

    def Get_topo(self):
        return (list(self._index), list(self._edges))

    topo = property(Get_topo)
    index = property(lambda self: list(self._index))
    edges = property(lambda self: list(self._edges))

    def Get_neighbors_count(self, rank):
        rank = _operator.index(rank)
        if not 0 <= rank < len(self._index):
            raise Exception(ERR_RANK, f"Get_neighbors_count: rank {rank} of a graph of {len(self._index)}")
        return self._index[rank] - (self._index[rank - 1] if rank else 0)

    def Get_neighbors(self, rank):
        rank = _operator.index(rank)
        n = self.Get_neighbors_count(rank)
        start = self._index[rank - 1] if rank else 0
        return list(self._edges[start : start + n])

    nneighbors = property(lambda self: self.Get_neighbors_count(self.Get_rank()))
    neighbors = property(lambda self: self.Get_neighbors(self.Get_rank()))
    indegree = property(lambda self: self.nneighbors)
    outdegree = indegree
    inedges = property(lambda self: self.neighbors)
    outedges = inedges
    inoutedges = property(lambda self: (self.neighbors, self.neighbors))


class Distgraphcomm(Topocomm):
    """A communicator on a distributed graph (``MPI.Distgraphcomm``,
    ``Create_dist_graph_adjacent``, ``Create_dist_graph``)."""

    __slots__ = ("_sources", "_dests", "_weights")

    def __init__(self, comm=None):
        Intracomm.__init__(self, comm)
        if isinstance(comm, Distgraphcomm):
            self._sources, self._dests, self._weights = comm._sources, comm._dests, comm._weights
        elif self._raw is not None:
            raise TypeError("Distgraphcomm: the communicator has no distributed graph topology")
        else:
            self._sources, self._dests, self._weights = [], [], None

    @classmethod
    def _make(cls, raw, sources, dests, weights):
        c = cls._wrap(raw)
        c._sources, c._dests, c._weights = list(sources), list(dests), weights
        return c

    def Get_topology(self):
        return DIST_GRAPH

    topology = property(Get_topology)

    def Dup(self, info=None):
        c = Distgraphcomm._make(self._r.dup(), self._sources, self._dests, self._weights)
        _attrs_copy(self, c, lambda x: x._r)
        return c

    def Get_dist_neighbors_count(self):
        return (len(self._sources), len(self._dests), self._weights is not None)

    def Get_dist_neighbors(self):
        w = None if self._weights is None else (list(self._weights[0]), list(self._weights[1]))
        return (list(self._sources), list(self._dests), w)

    indegree = property(lambda self: len(self._sources))
    outdegree = property(lambda self: len(self._dests))
    inedges = property(lambda self: list(self._sources))
    outedges = property(lambda self: list(self._dests))
    inoutedges = property(lambda self: (list(self._sources), list(self._dests)))


class Cartcomm(Topocomm):
    """A communicator on a Cartesian grid (``MPI.Cartcomm``); coordinates are
    row-major, the last dimension varies fastest, as in MPI."""

    __slots__ = ("_dims", "_periods")

    def __init__(self, comm=None):
        super().__init__(comm)
        if isinstance(comm, Cartcomm):
            self._dims, self._periods = comm._dims, comm._periods
        elif self._raw is not None:
            raise TypeError("Cartcomm: the communicator has no Cartesian topology")
        else:
            self._dims, self._periods = [], []

    @classmethod
    def _grid(cls, raw, dims, periods):
        c = cls._wrap(raw)
        c._dims, c._periods = list(dims), list(periods)
        return c

    def Get_topology(self):
        return CART

    topology = property(Get_topology)
    is_topo = property(lambda self: True)

    def _neighbors(self):
        # MPI's order: per dimension, the rank one step down, then one step up.
        out = []
        for i in range(len(self._dims)):
            out.extend(self.Shift(i, 1))
        return out

    def _edge_tags(self):
        # Edge 2d is the step down along dimension d, 2d + 1 the step up: what a rank
        # sends up arrives at its upper neighbour's "down" edge, so a receive on edge
        # e expects the tag of edge e ^ 1 (two edges to one rank, as in a periodic
        # dimension of 2, never mix).
        n = 2 * len(self._dims)
        return list(range(n)), [e ^ 1 for e in range(n)]

    indegree = property(lambda self: 2 * len(self._dims))
    outdegree = indegree
    inedges = property(_neighbors)
    outedges = inedges
    inoutedges = property(lambda self: (self._neighbors(), self._neighbors()))

    def Dup(self, info=None):
        c = Cartcomm._grid(self._r.dup(), self._dims, self._periods)
        _attrs_copy(self, c, lambda x: x._r)
        return c

    def Get_dim(self):
        return len(self._dims)

    ndim = property(Get_dim)
    dim = property(Get_dim)

    def Get_topo(self):
        return (list(self._dims), list(self._periods), self.Get_coords(self.Get_rank()))

    topo = property(Get_topo)
    dims = property(lambda self: list(self._dims))
    periods = property(lambda self: list(self._periods))
    coords = property(lambda self: self.Get_coords(self.Get_rank()))

    def Get_coords(self, rank):
        """The coordinates of ``rank`` (``MPI_Cart_coords``)."""
        rank = int(rank)
        if not 0 <= rank < self.Get_size():
            raise Exception(ERR_RANK, f"Get_coords: rank {rank} of a grid of {self.Get_size()}")
        out = []
        for d in reversed(self._dims):
            out.append(rank % d)
            rank //= d
        return out[::-1]

    def Get_cart_rank(self, coords):
        """The rank at ``coords`` (``MPI_Cart_rank``); periodic dimensions wrap."""
        coords = [int(c) for c in coords]
        if len(coords) != len(self._dims):
            raise Exception(ERR_ARG, f"Get_cart_rank: {len(coords)} coordinates for {len(self._dims)} dimensions")
        rank = 0
        for c, d, p in zip(coords, self._dims, self._periods):
            if p:
                c %= d
            elif not 0 <= c < d:
                raise Exception(ERR_RANK, f"Get_cart_rank: coordinate {c} outside 0..{d - 1}")
            rank = rank * d + c
        return rank

    def Shift(self, direction, disp):
        """``(source, dest)`` of a shift by ``disp`` along ``direction``
        (``MPI_Cart_shift``); ``PROC_NULL`` off a non-periodic edge."""
        direction, disp = int(direction), int(disp)
        if not 0 <= direction < len(self._dims):
            raise Exception(ERR_DIMS, f"Shift: direction {direction} of {len(self._dims)} dimensions")
        me = self.Get_coords(self.Get_rank())

        def at(offset):
            c = list(me)
            c[direction] += offset
            d = self._dims[direction]
            if not self._periods[direction] and not 0 <= c[direction] < d:
                return PROC_NULL
            return self.Get_cart_rank(c)

        return at(-disp), at(disp)

    def Sub(self, remain_dims):
        """The sub-grids that keep the dimensions ``remain_dims`` marks
        (``MPI_Cart_sub``); collective."""
        keep = [bool(k) for k in remain_dims]
        if len(keep) != len(self._dims):
            raise Exception(ERR_ARG, "Sub: remain_dims must have one entry per dimension")
        me = self.Get_coords(self.Get_rank())
        color = key = 0
        for c, d, k in zip(me, self._dims, keep):
            if k:
                key = key * d + c
            else:
                color = color * d + c
        raw = self._r.split(color, key)
        dims = [d for d, k in zip(self._dims, keep) if k]
        periods = [p for p, k in zip(self._periods, keep) if k]
        return Cartcomm._grid(raw, dims, periods)


def Compute_dims(nnodes, dims):
    """A balanced grid of ``nnodes`` ranks (``MPI_Dims_create``): ``dims`` is the
    number of dimensions or a list whose nonzero entries are kept."""
    if isinstance(dims, int):
        dims = [0] * dims
    return _lib.dims_create(int(nnodes), [int(d) for d in dims])


class Group:
    """A group of processes (``MPI.Group``): the world ranks of its members, in
    order. Made by ``Comm.Get_group`` and the set operations; local."""

    __slots__ = ("_ranks", "_h", "__weakref__")

    def __init__(self, group=None):
        if isinstance(group, Group):
            self._ranks, self._h = group._ranks, group._h
        else:
            self._ranks, self._h = None, None

    @classmethod
    def _make(cls, ranks):
        g = cls.__new__(cls)
        g._ranks, g._h = tuple(ranks), object()
        return g

    def _members(self):
        if self._ranks is None:
            raise Exception(ERR_GROUP, "invalid group: MPI.GROUP_NULL")
        return self._ranks

    def __bool__(self):
        return self._ranks is not None

    def __eq__(self, other):
        if not isinstance(other, Group):
            return NotImplemented
        return self._h is other._h

    def __ne__(self, other):
        r = self.__eq__(other)
        return r if r is NotImplemented else not r

    __hash__ = object.__hash__

    def __reduce__(self):
        if self is not GROUP_EMPTY and self == GROUP_EMPTY:
            return (Group, (GROUP_EMPTY,))  # a copy of a predefined handle
        return _reduce_handle(self, "GROUP_NULL")

    def Get_size(self):
        return len(self._members())

    def Get_rank(self):
        me = COMM_WORLD.Get_rank()
        members = self._members()
        return members.index(me) if me in members else UNDEFINED

    size = property(Get_size)
    rank = property(Get_rank)

    def Dup(self):
        return Group._make(self._members())

    def Free(self):
        if self is GROUP_EMPTY:
            raise Exception(ERR_GROUP, "MPI.GROUP_EMPTY cannot be freed")
        self._members()
        self._ranks, self._h = None, None

    def _check(self, ranks, what):
        n = len(self._members())
        for r in ranks:
            if not 0 <= r < n:
                raise Exception(ERR_RANK, f"{what}: rank {r} of a group of {n}")

    def Incl(self, ranks):
        ranks = [int(r) for r in ranks]
        self._check(ranks, "Incl")
        if len(set(ranks)) != len(ranks):
            raise Exception(ERR_RANK, "Incl: a rank is listed twice")
        return Group._make(self._ranks[r] for r in ranks)

    def Excl(self, ranks):
        ranks = [int(r) for r in ranks]
        self._check(ranks, "Excl")
        out = set(ranks)
        return Group._make(w for i, w in enumerate(self._ranks) if i not in out)

    @staticmethod
    def _expand(ranges):
        out = []
        for first, last, stride in ranges:
            if stride == 0:
                raise Exception(ERR_ARG, "a range's stride is 0")
            out.extend(range(first, last + (1 if stride > 0 else -1), stride))
        return out

    def Range_incl(self, ranks):
        return self.Incl(self._expand(ranks))

    def Range_excl(self, ranks):
        return self.Excl(self._expand(ranks))

    @classmethod
    def Union(cls, group1, group2):
        a, b = group1._members(), group2._members()
        return Group._make(a + tuple(w for w in b if w not in a))

    @classmethod
    def Intersection(cls, group1, group2):
        a, b = group1._members(), set(group2._members())
        return Group._make(w for w in a if w in b)

    Intersect = Intersection

    @classmethod
    def Difference(cls, group1, group2):
        a, b = group1._members(), set(group2._members())
        return Group._make(w for w in a if w not in b)

    def Translate_ranks(self, ranks=None, group=None):
        """The ranks in ``group`` (default: ``COMM_WORLD``'s) of the members at
        ``ranks`` here (default: all); ``UNDEFINED`` where absent."""
        mine = self._members()
        ranks = list(range(len(mine))) if ranks is None else [int(r) for r in ranks]
        other = COMM_WORLD.Get_group()._ranks if group is None else group._members()
        out = []
        for r in ranks:
            if r == PROC_NULL:
                out.append(PROC_NULL)
                continue
            self._check([r], "Translate_ranks")
            w = mine[r]
            out.append(other.index(w) if w in other else UNDEFINED)
        return out

    def Compare(self, group):
        a, b = self._members(), group._members()
        if a == b:
            return IDENT
        if set(a) == set(b):
            return SIMILAR
        return UNEQUAL


GROUP_NULL = Group()
GROUP_EMPTY = Group._make(())


# ---- one-sided communication (windows) ----------------------------------------------

LOCK_EXCLUSIVE = 234
LOCK_SHARED = 235
MODE_NOCHECK = 1024
MODE_NOSTORE = 2048
MODE_NOPUT = 4096
MODE_NOPRECEDE = 8192
MODE_NOSUCCEED = 16384
WIN_FLAVOR_CREATE = 1
WIN_FLAVOR_ALLOCATE = 2
WIN_FLAVOR_DYNAMIC = 3
WIN_FLAVOR_SHARED = 4
WIN_SEPARATE = 1
WIN_UNIFIED = 2


class Win(_lib.WinBase):
    """A window for one-sided communication (``MPI.Win``): shmpi's windows are shared
    memory, one part per rank that every rank maps (``Allocate`` and
    ``Allocate_shared``), in MPI's unified memory model; every RMA call is complete
    when it returns; ``Create`` reaches each rank's own buffer by cross-memory
    attach. Dynamic windows are not offered (``NotImplementedError``).
    ``memoryview(win)`` is this rank's part, as ``tomemory()``."""

    __slots__ = ("_w", "_comm", "_units", "_flavor", "_name", "_mem", "_ctl", "_epochs", "__weakref__")

    def __init__(self, win=None):
        if isinstance(win, Win):
            self._w, self._comm, self._units, self._flavor = win._w, win._comm, win._units, win._flavor
            self._name, self._mem = win._name, win._mem
            self._ctl, self._epochs = win._ctl, win._epochs
        elif win is None:
            self._w, self._comm, self._units, self._flavor, self._name = None, None, None, None, ""
            self._mem, self._ctl, self._epochs = None, None, None
        else:
            raise TypeError(f"expecting a Win, got {type(win).__name__}")

    def __reduce__(self):
        return _reduce_handle(self, "WIN_NULL")

    def __bool__(self):
        return self._w is not None

    def __eq__(self, other):
        if not isinstance(other, Win):
            return NotImplemented
        return self._w is other._w

    def __ne__(self, other):
        r = self.__eq__(other)
        return r if r is NotImplemented else not r

    __hash__ = None

    @classmethod
    def _allocate(cls, size, disp_unit, comm, flavor):
        size, disp_unit = _operator.index(size), _operator.index(disp_unit)
        if size < 0:
            raise Exception(ERR_SIZE, f"a window part of {size} bytes")
        if disp_unit <= 0:
            raise Exception(ERR_DISP, f"a displacement unit of {disp_unit}")
        comm = COMM_WORLD if comm is None else comm
        w = cls.__new__(cls)
        w._w = _lib.RawWin.allocate_shared(comm._r, size)
        w._comm = comm
        w._units = [_loads(u) for u in comm._r.allgather_obj(_dumps(disp_unit))]
        w._flavor = flavor
        w._name = ""
        w._mem = None
        w._ctl, w._epochs = _private_dup(comm), [None, None]
        return w

    @classmethod
    def Allocate_shared(cls, size, disp_unit=1, info=None, comm=None):
        """``MPI_Win_allocate_shared``: this rank's part of ``size`` bytes,
        zero-filled, reachable by every rank (``Shared_query``). Collective."""
        return cls._allocate(size, disp_unit, COMM_SELF if comm is None else comm, WIN_FLAVOR_SHARED)

    @classmethod
    def Allocate(cls, size, disp_unit=1, info=None, comm=None):
        """``MPI_Win_allocate``: as ``Allocate_shared`` (every window is shared
        memory); ``tomemory()`` is this rank's part. Collective."""
        return cls._allocate(size, disp_unit, COMM_SELF if comm is None else comm, WIN_FLAVOR_ALLOCATE)

    @classmethod
    def Create(cls, memory, disp_unit=1, info=None, comm=None):
        """``MPI_Win_create`` over this rank's ``memory`` (a writable buffer, or
        ``None``/``BOTTOM`` for none): the other ranks reach it by cross-memory attach;
        it stays exported (a NumPy array cannot be resized) until ``Free``. Collective.
        Where cross-memory attach is not usable, an ``MPI.Exception``."""
        disp_unit = _operator.index(disp_unit)
        if disp_unit <= 0:
            raise Exception(ERR_DISP, f"a displacement unit of {disp_unit}")
        comm = COMM_SELF if comm is None else comm
        mem = None if memory is None or memory is BOTTOM else memory
        if mem is not None:
            mem = _mv(mem)
        w = cls.__new__(cls)
        w._w = _lib.RawWin.create(comm._r, mem)
        w._comm = comm
        w._units = [_loads(u) for u in comm._r.allgather_obj(_dumps(disp_unit))]
        w._flavor = WIN_FLAVOR_CREATE
        w._name = ""
        w._mem = mem
        w._ctl, w._epochs = _private_dup(comm), [None, None]
        return w

    @classmethod
    def Create_dynamic(cls, info=None, comm=None):
        raise NotImplementedError("dynamic windows (Win.Create_dynamic)")

    def _raw(self):
        if self._w is None:
            raise Exception(ERR_WIN, "invalid window (WIN_NULL or freed)")
        return self._w

    def Shared_query(self, rank):
        """``(memory, disp_unit)`` of ``rank``'s part: a writable buffer over the
        shared memory (``numpy.frombuffer(memory, dtype)`` is a view of it), mapped for
        as long as it or an array over it lives."""
        w = self._raw()
        if rank == PROC_NULL:
            # MPI 4.1: the part of the lowest rank that has one.
            n = self._comm.Get_size()
            rank = next((r for r in range(n) if w.part_size(r) > 0), 0)
        return w.memory(rank), self._units[rank]

    def tomemory(self):
        """This rank's part: as ``Shared_query(rank)[0]``, or the buffer ``Create``
        was given."""
        w = self._raw()
        if self._flavor == WIN_FLAVOR_CREATE:
            return self._mem.cast("B") if self._mem is not None else memoryview(_NOTHING)
        return w.memory(self._comm.Get_rank())

    def Get_name(self):
        return "MPI_WIN_NULL" if self._w is None else self._name

    def Set_name(self, name):
        self._raw()
        self._name = str(name)

    name = property(Get_name, Set_name)

    @property
    def flavor(self):
        self._raw()
        return self._flavor

    @property
    def model(self):
        self._raw()
        return WIN_UNIFIED

    def _predefined_attr(self, keyval):
        self._raw()
        me = self._comm.Get_rank()
        if keyval == WIN_BASE:
            return self._base()
        if keyval == WIN_SIZE:
            return len(self.tomemory())
        if keyval == WIN_DISP_UNIT:
            return self._units[me]
        if keyval == WIN_CREATE_FLAVOR:
            return self._flavor
        if keyval == WIN_MODEL:
            return WIN_UNIFIED
        return _MISSING

    def _base(self):
        m = self.tomemory()
        return Get_address(m) if len(m) else 0

    @property
    def attrs(self):
        self._raw()
        return (self._base(), len(self.tomemory()), self._units[self._comm.Get_rank()])

    # -- the target of an access --

    def _target(self, origin_bytes, rank, target, origin_type=BYTE):
        """The byte offset and length of an access of ``rank``'s part: ``target`` is
        ``None`` (displacement 0, the origin's size), a displacement, or ``(disp,)``,
        ``(disp, count)``, ``(disp, count, datatype)`` (contiguous types)."""
        if rank == PROC_NULL:
            return None
        self._check_rank(rank)
        disp, nbytes = 0, origin_bytes
        if target is not None:
            if _is_index(target):
                disp = _operator.index(target)
            else:
                t = tuple(target)
                disp = _operator.index(t[0]) if t else 0
                if len(t) >= 2:
                    dt = _datatype(t[2]) if len(t) >= 3 else None
                    if dt is not None and dt._blocks is not None:
                        raise NotImplementedError("RMA with target datatypes that have holes")
                    count = _operator.index(t[1])
                    nbytes = count * (dt if dt is not None else origin_type)._size
        if disp < 0:
            raise Exception(ERR_DISP, f"a negative target displacement {disp}")
        if nbytes != origin_bytes:
            raise Exception(ERR_COUNT, f"a target of {nbytes} bytes for an origin of {origin_bytes}")
        return disp * self._units[rank], nbytes

    def _check_rank(self, rank):
        """A target rank of the window's group (``ERR_RANK`` otherwise, as MPI)."""
        n = self._comm.Get_size()
        if not 0 <= _operator.index(rank) < n:
            raise Exception(ERR_RANK, f"invalid target rank {rank}: the window's ranks are 0..{n - 1} or PROC_NULL")

    @staticmethod
    def _origin(origin):
        if _derived_spec(origin) is not None:
            raise NotImplementedError("RMA with origin datatypes that have holes")
        b, nb, dt = _msg_typed(origin) if origin is not None else (_NOTHING, 0, BYTE)
        return b, nb, dt

    def Put(self, origin, target_rank, target=None):
        w = self._raw()
        b, nb, dt = self._origin(origin)
        t = self._target(nb, target_rank, target, dt)
        if t is not None:
            w.put(b, nb, target_rank, t[0])

    def Get(self, origin, target_rank, target=None):
        w = self._raw()
        b, nb, dt = self._origin(origin)
        t = self._target(nb, target_rank, target, dt)
        if t is not None:
            w.get(b, nb, target_rank, t[0])

    def _rmw(self, origin, result, target_rank, target, op):
        w = self._raw()
        _check_op(op)
        if op._user:
            # MPI 4.1 §12.3.4: accumulates take predefined ops only, as every MPI does.
            raise Exception(ERR_OP, "RMA accumulates take predefined ops only, not a user-defined op")
        if origin is not None and not (op is NO_OP):
            b, nb, dt = self._origin(origin)
        else:
            b, nb, dt = None, None, None
        rb, rnb, rdt = self._origin(result) if result is not None else (None, None, None)
        if nb is None:
            nb, dt = rnb, rdt
        if rb is not None and rnb != nb:
            raise Exception(ERR_COUNT, f"a result of {rnb} bytes for an origin of {nb}")
        t = self._target(nb, target_rank, target, dt or BYTE)
        if t is None:
            return
        if op is NO_OP:
            w.rmw(None, rb, target_rank, t[0], nb, None, None, None)
        elif op is REPLACE:
            w.rmw(b, rb, target_rank, t[0], nb, None, None, lambda old, new: new)
        elif _native(op, dt):
            w.rmw(b, rb, target_rank, t[0], nb, op._code, dt._code, None)
        else:
            w.rmw(b, rb, target_rank, t[0], nb, None, None, lambda old, new: _fold_bytes(op, dt, [old, new]))

    def Accumulate(self, origin, target_rank, target=None, op=SUM):
        self._rmw(origin, None, target_rank, target, op)

    def Get_accumulate(self, origin, result, target_rank, target=None, op=SUM):
        self._rmw(origin, result, target_rank, target, op)

    def _single(self, spec, what, like=None):
        """A buffer of one element (``Fetch_and_op``, ``Compare_and_swap``), as
        mpi4py checks it: ``ValueError`` for another count, or a size other than
        ``like``'s."""
        b, nb, dt = self._origin(spec)
        if nb != dt._size or (like is not None and nb != like):
            raise ValueError(f"message: {what} must be a single element of the origin's datatype")
        return b, nb, dt

    def Fetch_and_op(self, origin, result, target_rank, target_disp=0, op=SUM):
        self._raw()
        _, nb, _ = self._single(origin, "origin")
        self._single(result, "result", nb)
        self._rmw(origin, result, target_rank, target_disp, op)

    def Compare_and_swap(self, origin, compare, result, target_rank, target_disp=0):
        w = self._raw()
        b, nb, _ = self._single(origin, "origin")
        cb, cnb, _ = self._single(compare, "compare", nb)
        rb, rnb, _ = self._single(result, "result", nb)
        t = self._target(nb, target_rank, target_disp)
        if t is not None:
            w.compare_and_swap(b, cb, rb, target_rank, t[0], nb)

    # Request-based forms: the operation is complete when the call returns.
    def Rput(self, origin, target_rank, target=None):
        self.Put(origin, target_rank, target)
        return Request._new(_Done(), False)

    def Rget(self, origin, target_rank, target=None):
        self.Get(origin, target_rank, target)
        return Request._new(_Done(), False)

    def Raccumulate(self, origin, target_rank, target=None, op=SUM):
        self.Accumulate(origin, target_rank, target, op)
        return Request._new(_Done(), False)

    def Rget_accumulate(self, origin, result, target_rank, target=None, op=SUM):
        self.Get_accumulate(origin, result, target_rank, target, op)
        return Request._new(_Done(), False)

    # -- synchronization --

    def Fence(self, assertion=0):
        self._raw().fence()

    # Generalized active target (Post/Start/Complete/Wait): tokens on a private
    # duplicate of the communicator; every RMA call is complete on return, so a
    # token says all of its sender's accesses are done.
    _POSTED, _COMPLETED = 1, 2

    def _ranks_of(self, group):
        ranks = Group.Translate_ranks(group, list(range(group.Get_size())), self._comm.Get_group())
        if UNDEFINED in ranks:
            raise Exception(ERR_GROUP, "a group with ranks outside the window's")
        return ranks

    def _token(self, r, tag, send):
        msg = [_NOTHING, 0, BYTE]
        if send:
            self._ctl.Send(msg, r, tag)
        else:
            self._ctl.Recv(msg, r, tag)

    def Post(self, group, assertion=0):
        """Exposes this rank's part to ``group``'s ranks (``MPI_Win_post``)."""
        self._raw()
        if self._epochs[0] is not None:
            raise Exception(ERR_RMA_SYNC, "Post while an exposure epoch is open")
        ranks = self._ranks_of(group)
        for r in ranks:
            self._token(r, self._POSTED, True)
        self._epochs[0] = set(ranks)

    def Start(self, group, assertion=0):
        """Begins access to ``group``'s ranks (``MPI_Win_start``): waits for each
        to post."""
        self._raw()
        if self._epochs[1] is not None:
            raise Exception(ERR_RMA_SYNC, "Start while an access epoch is open")
        ranks = self._ranks_of(group)
        for r in ranks:
            self._token(r, self._POSTED, False)
        self._epochs[1] = ranks

    def Complete(self):
        """Ends the access epoch of ``Start`` (``MPI_Win_complete``)."""
        self._raw()
        ranks = self._epochs[1]
        if ranks is None:
            raise Exception(ERR_RMA_SYNC, "Complete without Start")
        self._raw().sync()
        for r in ranks:
            self._token(r, self._COMPLETED, True)
        self._epochs[1] = None

    def Wait(self):
        """Ends the exposure epoch of ``Post`` once every rank of its group has
        completed (``MPI_Win_wait``)."""
        self._raw()
        pending = self._epochs[0]
        if pending is None:
            raise Exception(ERR_RMA_SYNC, "Wait without Post")
        for r in sorted(pending):
            self._token(r, self._COMPLETED, False)
        self._epochs[0] = None
        self._raw().sync()

    def Test(self):
        """``Wait`` without blocking (``MPI_Win_test``): whether the exposure epoch
        has ended."""
        self._raw()
        pending = self._epochs[0]
        if pending is None:
            raise Exception(ERR_RMA_SYNC, "Test without Post")
        for r in sorted(pending):
            if self._ctl.Iprobe(r, self._COMPLETED):
                self._token(r, self._COMPLETED, False)
                pending.discard(r)
        if pending:
            return False
        self._epochs[0] = None
        self._raw().sync()
        return True

    def Lock(self, rank, lock_type=LOCK_EXCLUSIVE, assertion=0):
        if lock_type not in (LOCK_EXCLUSIVE, LOCK_SHARED):
            raise Exception(ERR_LOCKTYPE, f"lock type {lock_type}")
        if rank == PROC_NULL:
            return
        self._raw().lock(lock_type == LOCK_EXCLUSIVE, rank)

    def Unlock(self, rank):
        if rank == PROC_NULL:
            return
        self._raw().unlock(rank)

    def Lock_all(self, assertion=0):
        self._raw().lock_all()

    def Unlock_all(self):
        self._raw().unlock_all()

    def Flush(self, rank):
        if rank != PROC_NULL:
            self._raw().flush(rank)

    def Flush_all(self):
        self._raw().flush_all()

    Flush_local = Flush
    Flush_local_all = Flush_all

    def Sync(self):
        self._raw().sync()

    def Free(self):
        """``MPI_Win_free``: collective; memory from ``Shared_query`` or
        ``tomemory`` stays valid while it is referenced."""
        w = self._raw()
        _attrs_free(self, lambda x: x._raw())
        w.free()
        _ERRHANDLERS.pop(w, None)
        self._w = None
        self._mem = None
        self._ctl.Free()
        self._ctl = None


_errhandler_methods(Win, lambda w: w._raw())
_group_info_methods(Win, Win._raw)
_attr_methods(Win, lambda w: w._raw(), Win._predefined_attr)

WIN_NULL = Win()
_CONSTANTS += ("WIN_NULL",)
WIN_BASE, WIN_SIZE, WIN_DISP_UNIT, WIN_CREATE_FLAVOR, WIN_MODEL = 7001, 7002, 7003, 7004, 7005
WIN_FLAVOR = WIN_CREATE_FLAVOR  # mpi4py's alias


# ---- parallel I/O (files) ------------------------------------------------------------

MODE_CREATE = 1
MODE_RDONLY = 2
MODE_WRONLY = 4
MODE_RDWR = 8
MODE_DELETE_ON_CLOSE = 16
MODE_UNIQUE_OPEN = 32
MODE_EXCL = 64
MODE_APPEND = 128
MODE_SEQUENTIAL = 256
SEEK_SET = 600
SEEK_CUR = 602
SEEK_END = 604
DISPLACEMENT_CURRENT = -54278278
DISP_CUR = DISPLACEMENT_CURRENT
ERR_FILE = 27
ERR_AMODE = 21
ERR_NO_SUCH_FILE = 37
ERR_FILE_EXISTS = 25
ERR_ACCESS = 20
ERR_IO = 32
ERR_READ_ONLY = 40


class File:
    """A file opened by the ranks of a communicator (``MPI.File``): MPI-IO on one
    machine's file system. Reads and writes at explicit offsets, through each rank's
    own file pointer or the shared one (a counter in a shared-memory window), in a
    view of a displacement and a contiguous element type; every call completes before
    it returns (the non-blocking and split forms too). Datatypes with holes in views
    or buffers raise ``NotImplementedError``."""

    __slots__ = ("_fd", "_comm", "_path", "_amode", "_disp", "_etype", "_ftype", "_pos",
                 "_shared", "_atomic", "_split", "__weakref__")

    def __init__(self, file=None):
        if isinstance(file, File):
            for k in File.__slots__[:-1]:
                setattr(self, k, getattr(file, k))
        elif file is None:
            self._fd = None
        else:
            raise TypeError(f"expecting a File, got {type(file).__name__}")

    def __bool__(self):
        return self._fd is not None

    def __eq__(self, other):
        if not isinstance(other, File):
            return NotImplemented
        return self._fd == other._fd and (self._fd is None or self._comm == other._comm)

    def __ne__(self, other):
        r = self.__eq__(other)
        return r if r is NotImplemented else not r

    __hash__ = None

    def __reduce__(self):
        if self._fd is None:
            return "FILE_NULL" if self is FILE_NULL else (File, ())
        raise ValueError("cannot serialize File instance")

    def _live(self):
        if self._fd is None:
            raise Exception(ERR_FILE, "invalid file (FILE_NULL or closed)")
        return self._fd

    @classmethod
    def Open(cls, comm, filename, amode=MODE_RDONLY, info=None):
        """``MPI_File_open``: collective over ``comm``; rank 0 creates the file (with
        ``MODE_CREATE``) before the others open it."""
        amode = _operator.index(amode)
        access = [m for m in (MODE_RDONLY, MODE_WRONLY, MODE_RDWR) if amode & m]
        if len(access) != 1 or (amode & MODE_RDONLY and amode & (MODE_CREATE | MODE_EXCL)) or (
            amode & MODE_RDWR and amode & MODE_SEQUENTIAL
        ):
            raise Exception(ERR_AMODE, f"File.Open: an invalid access mode {amode:#x}")
        path = _os.fsdecode(_os.fspath(filename))
        flags = {MODE_RDONLY: _os.O_RDONLY, MODE_WRONLY: _os.O_WRONLY, MODE_RDWR: _os.O_RDWR}[access[0]]
        me = comm.Get_rank()
        err = None
        if me == 0:
            try:
                first = flags | (_os.O_CREAT if amode & MODE_CREATE else 0) | (_os.O_EXCL if amode & MODE_EXCL else 0)
                fd = _os.open(path, first, 0o666)
            except OSError as e:
                err = (e.errno, str(e))
        err = comm.bcast(err, 0)
        if err is None and me != 0:
            try:
                fd = _os.open(path, flags)
            except OSError as e:
                err = (e.errno, str(e))
        errs = [e for e in comm.allgather(err) if e is not None]
        if errs:
            if err is None:
                _os.close(fd)
            import errno as _errno

            code, msg = errs[0]
            cls_ = {_errno.ENOENT: ERR_NO_SUCH_FILE, _errno.EEXIST: ERR_FILE_EXISTS,
                    _errno.EACCES: ERR_ACCESS, _errno.EROFS: ERR_READ_ONLY}.get(code, ERR_IO)
            raise Exception(cls_, f"File.Open: {msg}")
        f = cls.__new__(cls)
        f._fd, f._comm, f._path, f._amode = fd, _private_dup(comm), path, amode
        f._disp, f._etype, f._ftype, f._pos, f._atomic = 0, BYTE, BYTE, 0, False
        f._split = None
        # The shared file pointer, in elements of the view's type, at rank 0.
        f._shared = Win.Allocate_shared(8 if me == 0 else 0, 8, comm=f._comm)
        f._shared.Fence()
        return f

    def Close(self):
        """``MPI_File_close``: collective; with ``MODE_DELETE_ON_CLOSE`` rank 0 then
        removes the file."""
        fd = self._live()
        self._comm.Barrier()
        _os.close(fd)
        self._fd = None
        self._shared.Free()
        if self._amode & MODE_DELETE_ON_CLOSE and self._comm.Get_rank() == 0:
            try:
                _os.remove(self._path)
            except FileNotFoundError:
                pass
        self._comm.Barrier()
        self._comm.Free()

    @classmethod
    def Delete(cls, filename, info=None):
        try:
            _os.remove(_os.fspath(filename))
        except FileNotFoundError as e:
            raise Exception(ERR_NO_SUCH_FILE, f"File.Delete: {e}") from None
        except OSError as e:
            raise Exception(ERR_IO, f"File.Delete: {e}") from None

    # -- the file --

    def Get_size(self):
        return _os.fstat(self._live()).st_size

    def Set_size(self, size):
        """``MPI_File_set_size``: collective."""
        fd = self._live()
        self._comm.Barrier()
        if self._comm.Get_rank() == 0:
            _os.ftruncate(fd, _operator.index(size))
        self._comm.Barrier()

    def Preallocate(self, size):
        """``MPI_File_preallocate``: collective; the file is at least ``size`` bytes."""
        fd = self._live()
        self._comm.Barrier()
        if self._comm.Get_rank() == 0 and _os.fstat(fd).st_size < size:
            _os.ftruncate(fd, _operator.index(size))
        self._comm.Barrier()

    size = property(Get_size)

    def Get_amode(self):
        self._live()
        return self._amode

    amode = property(Get_amode)

    def Sync(self):
        """``MPI_File_sync``: collective; what was written reaches the storage."""
        _os.fsync(self._live())
        self._comm.Barrier()

    def Set_atomicity(self, flag):
        self._live()
        self._atomic = bool(flag)

    def Get_atomicity(self):
        self._live()
        return self._atomic

    atomicity = property(Get_atomicity, Set_atomicity)

    def Get_type_extent(self, datatype):
        return _datatype(datatype).Get_extent()[1]

    # -- the view --

    def Set_view(self, disp=0, etype=None, filetype=None, datarep="native", info=None):
        """``MPI_File_set_view``: collective; contiguous types only. The file
        pointers go back to 0."""
        self._live()
        etype = BYTE if etype is None else _datatype(etype)
        filetype = etype if filetype is None else _datatype(filetype)
        if etype._blocks is not None or filetype._blocks is not None:
            raise NotImplementedError("file views of datatypes with holes")
        if datarep != "native":
            raise NotImplementedError(f"data representation {datarep!r} (only 'native')")
        disp = _operator.index(disp)
        if disp == DISPLACEMENT_CURRENT:
            disp = self._disp + self._pos * self._etype._size
        self._disp, self._etype, self._ftype, self._pos = disp, etype, filetype, 0
        self._comm.Barrier()
        self._set_shared(0)

    def Get_view(self):
        self._live()
        return (self._disp, self._etype, self._ftype, "native")

    def Get_byte_offset(self, offset):
        self._live()
        return self._disp + _operator.index(offset) * self._etype._size

    # -- file pointers --

    def _whence(self, offset, whence, current):
        offset = _operator.index(offset)
        if whence == SEEK_SET:
            pos = offset
        elif whence == SEEK_CUR:
            pos = current + offset
        elif whence == SEEK_END:
            pos = (self.Get_size() - self._disp) // (self._etype._size or 1) + offset
        else:
            raise Exception(ERR_ARG, f"Seek: an invalid whence {whence}")
        if pos < 0:
            raise Exception(ERR_ARG, f"Seek: a position of {pos} before the view's start")
        return pos

    def Seek(self, offset, whence=SEEK_SET):
        self._live()
        self._pos = self._whence(offset, whence, self._pos)

    def Get_position(self):
        self._live()
        return self._pos

    def _shared_ptr(self):
        return self._shared.Shared_query(0)[0]

    def _set_shared(self, pos):
        """Sets the shared pointer (collective: every rank passes the same)."""
        if self._comm.Get_rank() == 0:
            _struct.pack_into("=q", self._shared_ptr(), 0, pos)
        self._shared.Fence()

    def _get_shared(self):
        return _struct.unpack_from("=q", self._shared_ptr(), 0)[0]

    def Seek_shared(self, offset, whence=SEEK_SET):
        """``MPI_File_seek_shared``: collective; every rank passes the same."""
        self._live()
        self._shared.Fence()
        self._set_shared(self._whence(offset, whence, self._get_shared()))

    def Get_position_shared(self):
        self._live()
        return self._get_shared()

    # -- data access --

    def _io(self, write, buf, pos, status):
        """Reads or writes ``buf`` at element ``pos`` of the view; returns the number
        of elements moved."""
        fd = self._live()
        if _derived_spec(buf) is not None:
            raise NotImplementedError("file reads and writes of datatypes with holes")
        b, nb, dt = _msg(buf)
        m = _mv(b).cast("B")
        nb = len(m) if nb is None else nb
        if write and self._amode & MODE_RDONLY:
            raise Exception(ERR_READ_ONLY, "a write to a file opened MODE_RDONLY")
        if not write and self._amode & MODE_WRONLY:
            raise Exception(ERR_ACCESS, "a read of a file opened MODE_WRONLY")
        at = self._disp + pos * self._etype._size
        if write:
            done = 0
            while done < nb:
                done += _os.pwrite(fd, m[done:nb], at + done)
        else:
            done = _os.preadv(fd, [m[:nb]], at) if nb else 0
        if status is not None:
            status._set((ANY_SOURCE, ANY_TAG, done))
        return done // (self._etype._size or 1)

    def Read_at(self, offset, buf, status=None):
        self._io(False, buf, _operator.index(offset), status)

    def Write_at(self, offset, buf, status=None):
        self._io(True, buf, _operator.index(offset), status)

    Read_at_all = Read_at
    Write_at_all = Write_at

    def Read(self, buf, status=None):
        self._pos += self._io(False, buf, self._pos, status)

    def Write(self, buf, status=None):
        self._pos += self._io(True, buf, self._pos, status)

    Read_all = Read
    Write_all = Write

    def _claim(self, buf):
        """Advances the shared pointer by ``buf``'s elements, atomically; returns
        where they start."""
        _, nb, _ = _msg_typed(buf) if buf is not None else (None, 0, None)
        n = nb // (self._etype._size or 1)
        old = _array.array("q", [0])
        self._shared.Fetch_and_op(_array.array("q", [n]), old, 0, 0, SUM)
        return old[0]

    def Read_shared(self, buf, status=None):
        self._live()
        self._io(False, buf, self._claim(buf), status)

    def Write_shared(self, buf, status=None):
        self._live()
        self._io(True, buf, self._claim(buf), status)

    def _ordered(self, write, buf, status):
        """``Read_ordered``/``Write_ordered``: collective; rank order at the shared
        pointer, which then moves past every rank's data."""
        self._live()
        _, nb, _ = _msg_typed(buf)
        n = nb // (self._etype._size or 1)
        self._shared.Fence()
        start = self._get_shared()
        before = self._comm.exscan(n) or 0
        total = self._comm.allreduce(n)
        self._io(write, buf, start + before, status)
        self._shared.Fence()
        self._set_shared(start + total)

    def Read_ordered(self, buf, status=None):
        self._ordered(False, buf, status)

    def Write_ordered(self, buf, status=None):
        self._ordered(True, buf, status)

    # Non-blocking forms: done when they return, their requests complete at once.
    def _started(self, fn, *args):
        st = Status()
        fn(*args, st)
        return Request._new(_Done(None, (st.source, st.tag, st._len)), False)

    def Iread_at(self, offset, buf):
        return self._started(self.Read_at, offset, buf)

    def Iwrite_at(self, offset, buf):
        return self._started(self.Write_at, offset, buf)

    Iread_at_all = Iread_at
    Iwrite_at_all = Iwrite_at

    def Iread(self, buf):
        return self._started(self.Read, buf)

    def Iwrite(self, buf):
        return self._started(self.Write, buf)

    Iread_all = Iread
    Iwrite_all = Iwrite

    def Iread_shared(self, buf):
        return self._started(self.Read_shared, buf)

    def Iwrite_shared(self, buf):
        return self._started(self.Write_shared, buf)

    # Split collectives: the work is done by begin, end hands out the status.
    def _begin(self, fn, *args):
        if self._split is not None:
            raise Exception(ERR_OTHER, "a split collective is already under way on this file")
        st = Status()
        fn(*args, st)
        self._split = st

    def _end(self, status):
        st, self._split = self._split, None
        if st is None:
            raise Exception(ERR_OTHER, "an _end without its _begin")
        if status is not None:
            status._set((st.source, st.tag, st._len))

    def Read_at_all_begin(self, offset, buf):
        self._begin(self.Read_at, offset, buf)

    def Write_at_all_begin(self, offset, buf):
        self._begin(self.Write_at, offset, buf)

    def Read_all_begin(self, buf):
        self._begin(self.Read, buf)

    def Write_all_begin(self, buf):
        self._begin(self.Write, buf)

    def Read_ordered_begin(self, buf):
        self._begin(self.Read_ordered, buf)

    def Write_ordered_begin(self, buf):
        self._begin(self.Write_ordered, buf)

    def Read_at_all_end(self, buf, status=None):
        self._end(status)

    Write_at_all_end = Read_at_all_end
    Read_all_end = Read_at_all_end
    Write_all_end = Read_at_all_end
    Read_ordered_end = Read_at_all_end
    Write_ordered_end = Read_at_all_end


FILE_NULL = File()
# Copies of a file handle share its communicator; FILE_NULL's handler is the default.
_errhandler_methods(File, lambda f: f._comm._r if f._fd is not None else None)
_group_info_methods(File, File._live)


# ---- sessions (MPI 4) ----------------------------------------------------------------


class Session:
    """An MPI 4 session (``MPI.Session``): a view of the job with its process sets,
    ``mpi://WORLD`` (every rank) and ``mpi://SELF`` (this rank), whose groups make
    communicators (``Intracomm.Create_from_group``)."""

    __slots__ = ("_live", "_buffer", "__weakref__")

    _PSETS = ("mpi://WORLD", "mpi://SELF")

    def __init__(self, session=None):
        if isinstance(session, Session):
            self._live, self._buffer = session._live, session._buffer
        elif session is None:
            self._live, self._buffer = None, None
        else:
            raise TypeError(f"expecting a Session, got {type(session).__name__}")

    @classmethod
    def Init(cls, info=None, errhandler=None):
        s = cls.__new__(cls)
        s._live, s._buffer = [True], None  # shared by the copies of this handle
        if errhandler is not None:
            _ERRHANDLERS[id(s._live)] = Errhandler(errhandler)
        return s

    def __bool__(self):
        return self._live is not None and self._live[0]

    def __eq__(self, other):
        if not isinstance(other, Session):
            return NotImplemented
        return (not self and not other) or (self._live is other._live)

    def __ne__(self, other):
        r = self.__eq__(other)
        return r if r is NotImplemented else not r

    __hash__ = None

    def __reduce__(self):
        if not self:
            return "SESSION_NULL" if self is SESSION_NULL else (Session, ())
        raise ValueError("cannot serialize Session instance")

    def _check(self):
        if not self:
            raise Exception(ERR_SESSION, "invalid session (SESSION_NULL or finalized)")

    def Finalize(self):
        self._check()
        self._live[0] = False

    def Get_info(self):
        self._check()
        return Info._new()

    def Get_num_psets(self, info=None):
        self._check()
        return len(self._PSETS)

    def Get_nth_pset(self, n, info=None):
        self._check()
        n = _operator.index(n)
        if not 0 <= n < len(self._PSETS):
            raise Exception(ERR_ARG, f"Get_nth_pset: {n} of {len(self._PSETS)} process sets")
        return self._PSETS[n]

    def _members(self, pset):
        if pset == "mpi://WORLD":
            return COMM_WORLD
        if pset == "mpi://SELF":
            return COMM_SELF
        raise Exception(ERR_ARG, f"unknown process set {pset!r} (shmpi has mpi://WORLD and mpi://SELF)")

    def Get_pset_info(self, pset_name):
        self._check()
        info = Info._new()
        info.Set("mpi_size", str(self._members(pset_name).Get_size()))
        return info

    def Create_group(self, pset_name):
        self._check()
        return self._members(pset_name).Get_group()

    def Attach_buffer(self, buf):
        self._check()
        self._buffer = buf

    def Detach_buffer(self):
        self._check()
        buf, self._buffer = self._buffer, None
        return buf

    def Flush_buffer(self):
        self._check()

    def Iflush_buffer(self):
        self._check()
        return Request._new(_Done(), False)


SESSION_NULL = Session()
def _session_key(s):
    s._check()  # SESSION_NULL or a finalized session: ERR_SESSION
    return id(s._live)


_errhandler_methods(Session, _session_key)


def _create_from_group(cls, group, stringtag="org.mpi4py", info=None, errhandler=None):
    """``MPI_Comm_create_from_group`` (``Intracomm.Create_from_group``): a new
    communicator of the ranks of ``group`` (of ``COMM_WORLD``'s processes, or of a
    session's process set), made by its members alone. Every member passes the same
    tag."""
    members = group._members()
    me = COMM_WORLD.Get_rank()
    if me not in members:
        raise Exception(ERR_GROUP, "Create_from_group: this rank is not in the group")
    # The members alone make it; the string tag tells concurrent calls apart.
    tag = _zlib.crc32(str(stringtag).encode()) & 0x3FFFFFFF
    c = Intracomm._wrap(COMM_WORLD._r.create_group(list(members), tag))
    if errhandler is not None:
        c.Set_errhandler(errhandler)
    return c


Intracomm.Create_from_group = classmethod(_create_from_group)
Group.Create_from_session_pset = classmethod(lambda cls, session, pset_name: session.Create_group(pset_name))


# ---- free(), and MPI.buffer ----------------------------------------------------------

_PREDEFINED = ("COMM_WORLD", "COMM_SELF", "GROUP_EMPTY", "INFO_ENV", "MESSAGE_NO_PROC",
               "ERRORS_RETURN", "ERRORS_ARE_FATAL", "ERRORS_ABORT")


def _safe_free(self):
    """``free()``: ``Free()`` unless the handle is null or predefined (mpi4py's
    ``free``, which never raises for those)."""
    if not self or id(self) in _PREDEFINED_IDS or (isinstance(self, Op) and not self._user):
        return
    for name in _PREDEFINED:
        c = globals().get(name)
        if c is self or (isinstance(self, Comm) and isinstance(c, Comm) and c == self):
            return
    f = getattr(type(self), "Free", None)
    if f is not None:
        f(self)


class buffer(_Memory):
    """mpi4py's ``MPI.buffer`` (``MPI.memory``), as far as shmpi has it: memory that
    ``buffer.allocate(nbytes)`` makes, writable and zeroed, with the byte-valued
    slice assignment of ``Alloc_mem``'s. A view of another object's memory
    (``buffer(obj)``, ``frombuffer``, ``fromaddress``) is ``NotImplementedError``:
    this buffer owns its bytes; ``memoryview(obj)`` is the view."""

    __slots__ = ()

    def __init__(self, *args):
        if args:
            raise NotImplementedError("MPI.buffer of an object: use memoryview(obj)")
        bytearray.__init__(self)

    @classmethod
    def allocate(cls, nbytes, clear=False):
        nbytes = _operator.index(nbytes)
        if nbytes < 0:
            raise ValueError(f"expecting non-negative size, got {nbytes}")
        b = bytearray.__new__(cls)
        bytearray.__init__(b, nbytes)
        return b

    @staticmethod
    def frombuffer(obj, readonly=False):
        raise NotImplementedError("MPI.buffer.frombuffer: use memoryview(obj)")

    @staticmethod
    def fromaddress(address, nbytes, readonly=False):
        raise NotImplementedError("MPI.buffer.fromaddress: shmpi takes no raw addresses")

    @property
    def itemsize(self):
        return 1

    @property
    def readonly(self):
        return False

    @property
    def obj(self):
        return None

    def cast(self, format, shape=None):
        m = memoryview(self)
        return m.cast(format) if shape is None else m.cast(format, shape)

    def toreadonly(self):
        return memoryview(self).toreadonly()

    def release(self):
        pass


memory = buffer


# ---- start-up and exit -------------------------------------------------------------

# What the extension reads from this module (`python/src/registry.rs`), once all of it
# is defined.
_lib.register(_sys.modules[__name__])

COMM_NULL = Intracomm()
COMM_WORLD = Intracomm._wrap(_lib.init(), "MPI_COMM_WORLD")
COMM_SELF = COMM_WORLD.Split(COMM_WORLD.Get_rank(), 0)
COMM_SELF._name = "MPI_COMM_SELF"
COMM_TYPE_SHARED = 1
COMM_TYPE_HW_GUIDED = 2


class Info:
    """``MPI.Info``: key-value hints (``MPI_Info``), which shmpi's calls accept and do
    not need. A handle: copies (``Info(info)``) share the pairs; ``INFO_NULL`` and a
    freed info have none, and changing them is a ``KeyError`` as in mpi4py. Keys keep
    the order they were set in."""

    __slots__ = ("_d", "__weakref__")

    def __init__(self, info=None):
        if info is None:
            self._d = None
        elif isinstance(info, Info):
            self._d = info._d
        else:
            raise TypeError(f"expecting an Info, got {type(info).__name__}")

    @classmethod
    def _new(cls, items=()):
        i = cls.__new__(cls)
        i._d = dict(items)
        return i

    @classmethod
    def Create(cls, items=None):
        """A new info, with ``items`` (a mapping or pairs) if given."""
        if items is None:
            return cls._new()
        if not isinstance(items, dict):
            try:
                items = list(items)
            except TypeError:
                raise TypeError(f"Info.Create: expecting a mapping or pairs, got {type(items).__name__}") from None
        i = cls._new()
        for k, v in dict(items).items():
            i.Set(k, v)
        return i

    @classmethod
    def Create_env(cls, args=None):
        """The info of how this process was started (``MPI_Info_create_env``)."""
        argv = list(_sys.argv) if args is None else ([args] if isinstance(args, str) else list(args))
        i = cls._new()
        if argv:
            i._d["command"] = str(argv[0])
            if len(argv) > 1:
                i._d["argv"] = " ".join(str(a) for a in argv[1:])
        i._d["maxprocs"] = str(COMM_WORLD.Get_size())
        i._d["host"] = _socket.gethostname()
        i._d["wdir"] = _os.getcwd()
        i._d["thread_level"] = "MPI_THREAD_FUNNELED"
        return i

    def __bool__(self):
        return self._d is not None

    def __eq__(self, other):
        if not isinstance(other, Info):
            return NotImplemented
        return self._d is other._d

    def __ne__(self, other):
        r = self.__eq__(other)
        return r if r is NotImplemented else not r

    __hash__ = None

    def __reduce__(self):
        for name in ("INFO_NULL", "INFO_ENV"):
            if globals().get(name) is self:
                return name
        if self and self._d is INFO_ENV._d:
            return (Info, (INFO_ENV,))  # a copy of the predefined handle
        return (Info.Create, (self.items(),)) if self else (Info, ())

    def _live(self):
        if self._d is None:
            raise KeyError("invalid info (INFO_NULL or freed)")
        return self._d

    def _mpi(self, call):
        """The pairs, for a call that is MPI's: on ``INFO_NULL`` or a freed info,
        ``ERR_INFO`` (mpi4py's dict interface raises ``KeyError`` instead)."""
        if self._d is None:
            raise Exception(ERR_INFO, f"{call}: invalid info (INFO_NULL or freed)")
        return self._d

    def Dup(self):
        return Info._new(self._mpi("Dup"))

    def Free(self):
        if self is INFO_NULL or self is INFO_ENV:
            raise Exception(ERR_INFO, "a predefined info cannot be freed")
        self._mpi("Free")
        self._d = None

    def Set(self, key, value):
        key, value = str(key), str(value)
        if not key or len(key) > MAX_INFO_KEY:
            raise Exception(ERR_INFO_KEY, f"an info key of {len(key)} characters")
        if len(value) > MAX_INFO_VAL:
            raise Exception(ERR_INFO_VALUE, f"an info value of {len(value)} characters")
        self._mpi("Set")[key] = value

    def Get(self, key, maxlen=-1):
        return self._mpi("Get").get(str(key))

    def Delete(self, key):
        d = self._mpi("Delete")
        if str(key) not in d:
            raise Exception(ERR_INFO_NOKEY, f"the info has no key {key!r}")
        del d[str(key)]

    def Get_nkeys(self):
        return len(self._mpi("Get_nkeys"))

    def Get_nthkey(self, n):
        keys = list(self._mpi("Get_nthkey"))
        n = _operator.index(n)
        if not 0 <= n < len(keys):
            raise Exception(ERR_ARG, f"Get_nthkey: {n} of {len(keys)} keys")
        return keys[n]

    # -- the dict-like interface --

    def __len__(self):
        return len(self._d or {})

    def __contains__(self, key):
        return key in (self._d or {})

    def __iter__(self):
        return iter(list(self._d or {}))

    def __getitem__(self, key):
        d = self._live()
        if key not in d:
            raise KeyError(key)
        return d[key]

    def __setitem__(self, key, value):
        self._live()
        self.Set(key, value)

    def __delitem__(self, key):
        d = self._live()
        if key not in d:
            raise KeyError(key)
        del d[key]

    def get(self, key, default=None):
        return (self._d or {}).get(key, default)

    def keys(self):
        return list(self._d or {})

    def values(self):
        return list((self._d or {}).values())

    def items(self):
        return list((self._d or {}).items())

    def copy(self):
        return Info._new(self._d) if self else Info()

    def clear(self):
        if self._d is not None:
            self._d.clear()

    def update(self, other=(), **kwds):
        self._live()
        for k, v in dict(other).items():
            self.Set(k, v)
        for k, v in kwds.items():
            self.Set(k, v)

    def pop(self, key, *default):
        if self._d is None or key not in self._d:
            if default:
                return default[0]
            raise KeyError(key)
        return self._d.pop(key)

    def popitem(self):
        d = self._live()
        if not d:
            raise KeyError("popitem(): info is empty")
        return d.popitem()


INFO_NULL = Info()
INFO_ENV = Info.Create_env()


@_atexit.register
def _finalize_at_exit():
    Finalize()


# The predefined datatypes, whose Free is ERR_TYPE (a Dup of one compares equal to it).
_PREDEFINED_IDS = frozenset(id(v) for v in list(globals().values()) if type(v) is Datatype)

# Handle conversions of the other handle classes (mpi4py's ``handle``, ``fromhandle``;
# no C or Fortran integers: ``toint`` and ``py2f`` are -1, as for requests). A handle
# is a number given when first asked for, the same for every copy of a communicator,
# info or session (they share what they name); ``fromhandle`` makes a copy of the
# handle object it was given for, which is kept for that.
_HANDLE_OF = {}
_HANDLE_TO = {}


def _handle_key(obj):
    if isinstance(obj, Comm):
        return ("comm", obj._raw.key())
    if isinstance(obj, Info):
        return ("info", id(obj._d))
    if isinstance(obj, Session):
        return ("session", id(obj._live))
    return ("object", id(obj))  # kept alive in _HANDLE_TO, so the id stays its own


def _object_handle(self):
    if not self:
        return 0
    key = _handle_key(self)
    h = _HANDLE_OF.get(key)
    if h is None:
        h = _HANDLE_OF[key] = _next_handle()
        _HANDLE_TO[h] = self
    return h


def _object_fromhandle(cls, h):
    obj = _HANDLE_TO.get(_operator.index(h)) if h else None
    return cls() if obj is None else cls(obj)


for _cls in (Comm, Group, Datatype, Op, Info, Win, File, Errhandler, Session):
    if "handle" not in _cls.__dict__:
        _cls.handle = property(_object_handle)
        _cls.fromhandle = classmethod(_object_fromhandle)
    for _name, _fn in (("toint", lambda self: -1), ("py2f", lambda self: -1),
                       ("fromint", classmethod(lambda cls, i: cls())),
                       ("f2py", classmethod(lambda cls, i: cls()))):
        if not hasattr(_cls, _name):
            setattr(_cls, _name, _fn)
del _cls, _name, _fn

# Every handle class has mpi4py's `free()` (Info is defined above only now).
for _cls in (Comm, Group, Datatype, Op, Info, Win, File, Errhandler, Session, Message):
    if "free" not in _cls.__dict__:
        _cls.free = _safe_free
del _cls
