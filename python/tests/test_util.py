"""``mpi4py.util``'s ``pkl5`` and ``sync`` (mpi4py's own modules, shipped in
``shmpi.util``) through the real launcher: python/tests/scripts/util_modules.py, which
also runs under the real mpi4py (scripts/mpi_python_mpi4py.sh)."""

import pytest

from conftest import check_ok


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_pkl5_and_sync(mpirun, n):
    check_ok(mpirun(n, "util_modules.py"), n)
