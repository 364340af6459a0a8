"""Errors: MPI error classes, pickling failures, unusable buffers."""

import pytest
from conftest import check_ok


@pytest.mark.parametrize("n", [1, 2, 3])
def test_errors_are_mpi_exceptions_and_leave_messages_queued(mpirun, n):
    check_ok(mpirun(n, "errors.py"), n)
