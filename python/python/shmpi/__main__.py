"""``python -m shmpi script.py [args]``: run an mpi4py script on shmpi.

Like ``python -m mpi4py``: the script runs as ``__main__`` with ``mpi4py`` and
``mpi4py.MPI`` aliased to shmpi's modules (for this run only; no package named
mpi4py is installed), and an exception the script does not catch prints that rank's
traceback and aborts the whole job (``MPI.COMM_WORLD.Abort(1)``), so the other
ranks do not wait forever for it.

Usage::

    shmrun -n 4 python -m shmpi script.py [args]
    shmrun -n 4 python -m shmpi -m module [args]
    shmrun -n 4 python -m shmpi -c "code" [args]
"""

import sys

USAGE = """usage: python -m shmpi [options] <pyfile> [arg] ...
   or: python -m shmpi [options] -m <mod> [arg] ...
   or: python -m shmpi [options] -c <cmd> [arg] ...
   or: python -m shmpi [options] - [arg] ...

options:
  -h, --help   show this help message and exit
  --version    show shmpi's version and exit
"""


def _alias():
    import shmpi
    from shmpi import MPI

    sys.modules["mpi4py"] = shmpi
    sys.modules["mpi4py.MPI"] = MPI
    shmpi.MPI = MPI
    return MPI


def _run(kind, target, args):
    import runpy

    if kind == "path":
        sys.argv[:] = [target, *args]
        runpy.run_path(target, run_name="__main__")
    elif kind == "module":
        sys.argv[:] = [target, *args]
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        import types

        sys.argv[:] = ["-c" if kind == "cmd" else "-", *args]
        code = target if kind == "cmd" else sys.stdin.read()
        # A fresh `__main__`, as `python -c` gives: this module's own globals stay,
        # for `main` to report what the code raised.
        main = types.ModuleType("__main__")
        main.__builtins__ = __builtins__
        sys.modules["__main__"] = main
        exec(compile(code, "<string>" if kind == "cmd" else "<stdin>", "exec"), main.__dict__)


def _aborted_by_peer(exc, MPI):
    """Whether the exception only reports that another rank failed first (its own
    traceback is the one to read)."""
    return isinstance(exc, MPI.Exception) and exc.Get_error_class() == MPI.ERR_PROC_ABORTED


def _wait_to_be_stopped(MPI, exc):
    """Another rank failed first: say so in one line, and let the launcher stop this
    rank, so that the job's exit status is that of the rank that failed (a rank
    exiting now could be reported first)."""
    import os
    import time

    line = f"shmpi: rank {MPI.COMM_WORLD.Get_rank()} stopped: {exc}\n"
    sys.stderr.flush()
    # One write for the whole line: the other ranks report at the same moment, and
    # `print` writes the text and its newline apart, so lines ran into each other.
    os.write(2, line.encode(errors="replace"))
    MPI._flush()
    time.sleep(10)
    os._exit(1)


def main(argv=None):
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, end="", file=sys.stdout if args else sys.stderr)
        return 0 if args else 1
    if args[0] == "--version":
        import shmpi

        print(f"shmpi {shmpi.__version__}")
        return 0
    first = args.pop(0)
    if first == "-c" or first == "-m":
        if not args:
            print(f"python -m shmpi: argument expected for the {first} option", file=sys.stderr)
            return 2
        kind = "cmd" if first == "-c" else "module"
        target = args.pop(0)
    elif first == "-":
        kind, target = "stdin", None
    elif first.startswith("-"):
        print(f"python -m shmpi: unknown option {first}\n{USAGE}", end="", file=sys.stderr)
        return 2
    else:
        import os

        kind, target = "path", first
        # As `python script.py` does: the script's folder first on the path.
        sys.path[0:1] = [os.path.dirname(os.path.abspath(first))]

    MPI = _alias()
    try:
        _run(kind, target, args)
    except SystemExit as e:
        code = e.code
        if code is None or code == 0:
            return 0
        if not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
        MPI._abort(code)
    except KeyboardInterrupt:
        MPI._abort(130)
    except BaseException as e:
        if _aborted_by_peer(e, MPI):
            _wait_to_be_stopped(MPI, e)
        else:
            import traceback

            # The script's frames only, as `python script.py` shows them.
            tb = e.__traceback__
            while tb is not None and (
                tb.tb_frame.f_code.co_filename in (__file__, "<frozen runpy>")
            ):
                tb = tb.tb_next
            traceback.print_exception(type(e), e, tb)
        MPI._abort(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
