"""Runs test files of mpi4py's own suite on shmpi, minus the cases that
``python/mpi4py-excluded.txt`` lists, and prints one summary line per rank.

Usage (under ``shmrun -n N python -m shmpi``)::

    run_suite.py MPI4PY_TEST_DIR EXCLUDED_FILE test_module [test_module ...]

The exclusion file has one entry a line, ``PATTERN  # reason``: a PATTERN is an
fnmatch pattern over ``module.Class.method`` (passed to mpi4py's ``main.py`` as
``-x``), or ``backend:NAME`` for an array backend of ``test/arrayimpl.py`` that the
buffer tests loop over (removed from ``arrayimpl.ArrayBackends`` before the tests
load). The summary line is ``SUITE rank=R file=F ran=.. failed=.. errors=..
skipped=.. excluded=..``, counted in test methods (a method fails once however many
of its sub-tests fail).
"""

import fnmatch
import os
import sys
import unittest


def read_exclusions(path, modules):
    patterns, backends = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            entry = line.split("#", 1)[0].strip()
            if not entry:
                continue
            if entry.startswith("backend:"):
                backends.append(entry[len("backend:"):].strip())
            elif any(entry.startswith(m + ".") or entry.startswith("*") for m in modules):
                patterns.append(entry if "*" in entry else f"*{entry}*")
    return patterns, backends


def backend_name(cls):
    # The fake-GPU backends inherit the `backend` of their CPU base; name them apart.
    if any(b.__name__ == "BaseFakeGPUArray" for b in cls.__mro__):
        return "fakegpu-" + cls.backend
    return cls.backend


def main():
    testdir, xfile, *modules = sys.argv[1:]
    testdir = os.path.abspath(testdir)
    sys.path.insert(0, testdir)
    patterns, backends = read_exclusions(xfile, modules)

    # As mpi4py's main.py does by default: no CuPy or Numba arrays.
    sys.modules["cupy"] = None
    sys.modules["numba"] = None
    import arrayimpl

    arrayimpl.ArrayBackends[:] = [
        b for b in arrayimpl.ArrayBackends if backend_name(b) not in backends
    ]

    import main as mpi4py_main
    from mpi4py import MPI

    excluded = []

    class Loader(mpi4py_main.TestLoader):
        def getTestCaseNames(self, testCaseClass):
            names = unittest.TestLoader.getTestCaseNames(self, testCaseClass)
            keep = []
            for name in names:
                full = f"{testCaseClass.__module__}.{testCaseClass.__qualname__}.{name}"
                if any(fnmatch.fnmatchcase(full, p) for p in patterns):
                    excluded.append(full)
                else:
                    keep.append(name)
            return keep

    class Program(mpi4py_main.TestProgram):
        def createTests(self, from_discovery=False, Loader_=None):
            mpi4py_main.setup_python(self)
            mpi4py_main.setup_unittest(self)
            self.testLoader = Loader()
            unittest.TestProgram.createTests(self, from_discovery, Loader_)

        def runTests(self):
            try:
                unittest.TestProgram.runTests(self)
            except SystemExit:
                pass
            r = self.result
            failed = {id(t) for t, _ in r.failures if not hasattr(t, "test_case")}
            failed |= {id(t.test_case) for t, _ in r.failures if hasattr(t, "test_case")}
            errored = {id(getattr(t, "test_case", t)) for t, _ in r.errors} - failed
            rank = MPI.COMM_WORLD.Get_rank()
            sys.stdout.flush()
            sys.stderr.flush()
            os.write(
                1,
                (
                    f"SUITE rank={rank} file={'+'.join(modules)} ran={r.testsRun} "
                    f"failed={len(failed)} errors={len(errored)} skipped={len(r.skipped)} "
                    f"excluded={len(set(excluded))}\n"
                ).encode(),
            )
            sys.exit(0 if r.wasSuccessful() else 1)

    sys.argv[:] = [os.path.join(testdir, "main.py"), *modules]
    Program(module=None)


if __name__ == "__main__":
    main()
