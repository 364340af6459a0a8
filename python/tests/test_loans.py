"""Zero-copy loans from Python (``shmpi.loans``) through the real launcher:
python/tests/scripts/loans.py, which also runs under the real mpi4py, copying
(scripts/mpi_python_mpi4py.sh)."""

import pytest

from conftest import check_ok


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_loans(mpirun, n):
    check_ok(mpirun(n, "loans.py"), n)
