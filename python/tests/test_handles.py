"""Handle conversions and handle equality (mpi4py's ``handle``/``fromhandle``,
``Op`` copies and pickles) through the real launcher."""

import pytest

from conftest import check_ok


@pytest.mark.parametrize("n", [1, 2])
def test_every_handle_class_converts_and_compares_as_mpi4py(mpirun, n):
    check_ok(mpirun(n, "handles.py"), n)
