"""Derived datatypes as stencil codes use them (``Create_subarray`` in both orders,
``Create_hvector``, ``Create_hindexed``) through the real launcher:
python/tests/scripts/subarray.py, which also runs under the real mpi4py
(scripts/mpi_python_mpi4py.sh)."""

import pytest

from conftest import check_ok


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_subarray_halo_exchange(mpirun, n):
    check_ok(mpirun(n, "subarray.py"), n)
