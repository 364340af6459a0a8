"""shmpi for Python: mpi4py's API over shmpi's shared memory.

Write ``from mpi4py import MPI`` as usual and run ``shmrun -n 4 python -m shmpi
script.py``: the script runs on one machine, with no system MPI, and unchanged
under the real mpi4py on a cluster. ``from shmpi import MPI`` works too.
"""

from types import SimpleNamespace as _NS

__version__ = "0.1.0"

#: mpi4py's runtime configuration (``mpi4py.rc``); shmpi reads none of it but
#: scripts may set it before importing ``MPI``.
rc = _NS(
    initialize=True,
    threads=True,
    thread_level="multiple",
    finalize=None,
    fast_reduce=True,
    recv_mprobe=True,
    irecv_bufsz=32768,
    errors="exception",
)


def get_include():
    """mpi4py's C include directory: shmpi has no C API."""
    raise RuntimeError("shmpi has no C API (mpi4py.get_include is not available)")


def __getattr__(name):
    # `from shmpi import MPI` and `shmpi.MPI` import the module on first use, as
    # mpi4py initializes MPI when its MPI module is imported.
    if name == "MPI":
        import importlib

        return importlib.import_module("shmpi.MPI")
    raise AttributeError(f"module 'shmpi' has no attribute {name!r}")
