"""Behaviours where shmpi must do what mpi4py (4.1, over Open MPI) does: each script
also runs under the real mpi4py and passes there."""

import pytest

from conftest import check_ok


@pytest.mark.parametrize("n", [2, 4, 5])
def test_intercomm_reduce_scatter_gives_other_groups_reduction(mpirun, n):
    check_ok(mpirun(n, "a3_inter_reduce_scatter.py"), n)


@pytest.mark.parametrize("n", [1, 3])
def test_rma_target_rank_outside_window_is_err_rank(mpirun, n):
    check_ok(mpirun(n, "a3_rma_bad_rank.py"), n)


@pytest.mark.parametrize("n", [1, 3])
def test_win_unlock_without_lock_is_err_rma_sync(mpirun, n):
    check_ok(mpirun(n, "a3_rma_unlock_sync.py"), n)


@pytest.mark.parametrize("n", [1, 2])
def test_start_of_freed_persistent_request_is_err_request(mpirun, n):
    check_ok(mpirun(n, "a3_start_freed.py"), n)


def test_get_elements_counts_basic_elements_of_partial_types(mpirun):
    check_ok(mpirun(2, "a3_get_elements.py"), 2)


@pytest.mark.parametrize("n", [1, 2])
def test_noncontiguous_numpy_buffer_is_buffer_error(mpirun, n):
    check_ok(mpirun(n, "a3_noncontig_buffer.py"), n)


@pytest.mark.parametrize("n", [1, 3])
def test_cancel_of_nonblocking_collective_is_err_request(mpirun, n):
    check_ok(mpirun(n, "a3_nbc_cancel.py"), n)


@pytest.mark.parametrize("n", [1, 2])
def test_mpi4py_api_members(mpirun, n):
    check_ok(mpirun(n, "a3_api_members.py"), n)
