"""One-sided communication (``MPI.Win`` on shared-memory windows) through the real
launcher: python/tests/scripts/win.py, which also runs under the real mpi4py
(scripts/mpi_python_mpi4py.sh)."""

import pytest

from conftest import check_ok


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_shared_windows(mpirun, n):
    check_ok(mpirun(n, "win.py"), n)
