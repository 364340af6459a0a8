"""Errors: MPI error classes, pickling failures, unusable buffers."""

import pytest
from conftest import check_ok


@pytest.mark.parametrize("n", [1, 2, 3])
def test_errors_are_mpi_exceptions_and_leave_messages_queued(mpirun, n):
    check_ok(mpirun(n, "errors.py"), n)


@pytest.mark.parametrize("n", [1, 3])
def test_receive_into_unusable_buffer_with_holes_fails_before_matching(mpirun, n):
    check_ok(mpirun(n, "unusable_recv_buffers.py"), n)


@pytest.mark.parametrize("n", [1, 3])
def test_reduction_op_not_defined_on_datatype_is_err_op(mpirun, n):
    check_ok(mpirun(n, "reduction_ops.py"), n)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_init_calls_check_rank_tag_root_and_specs_raise_mpi4py_errors(mpirun, n):
    check_ok(mpirun(n, "init_errors.py"), n)


@pytest.mark.parametrize("n", [1, 3])
def test_null_and_predefined_handles_raise_mpi4py_error_classes(mpirun, n):
    # Also user error classes and codes, and MPI.Exception's comparisons.
    check_ok(mpirun(n, "null_handles.py"), n)
