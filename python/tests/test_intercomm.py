"""Intercommunicators (``Intracomm.Create_intercomm``, ``MPI.Intercomm``) through
the real launcher: python/tests/scripts/intercomm.py, which also runs under the real
mpi4py (scripts/mpi_python_mpi4py.sh)."""

import pytest

from conftest import check_ok


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_intercommunicators(mpirun, n):
    check_ok(mpirun(n, "intercomm.py"), n)
