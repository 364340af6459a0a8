"""Parallel I/O (``MPI.File``) through the real launcher: python/tests/scripts/file_io.py,
which also runs under the real mpi4py (scripts/mpi_python_mpi4py.sh)."""

import pytest

from conftest import check_ok


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_file_io(mpirun, n):
    check_ok(mpirun(n, "file_io.py"), n)
