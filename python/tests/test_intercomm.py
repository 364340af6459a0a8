"""Intercommunicators (``Intracomm.Create_intercomm``, ``MPI.Intercomm``) through
the real launcher: python/tests/scripts/intercomm.py, which also runs under the real
mpi4py (scripts/mpi_python_mpi4py.sh)."""

import pytest

from conftest import check_ok


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_intercommunicators(mpirun, n):
    check_ok(mpirun(n, "intercomm.py"), n)


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_intercomm_nonblocking_and_persistent_collectives_give_other_groups_data(mpirun, n):
    # Includes Ireduce_scatter, Ireduce_scatter_block and their _init forms, and
    # mpi4py's TypeError for an intercommunicator reduce-scatter without recvcounts.
    check_ok(mpirun(n, "inter_nbc.py"), n)


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_intercomm_create_from_groups_joins_disjoint_groups_without_parent(mpirun, n):
    check_ok(mpirun(n, "inter_from_groups.py"), n)
