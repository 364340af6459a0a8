"""Requests beyond point-to-point and collectives: generalized requests
(``MPI.Grequest``) and partitioned communication."""

import pytest

from conftest import check_ok


@pytest.mark.parametrize("n", [1, 3])
def test_generalized_request_completes_by_program_and_runs_callbacks(mpirun, n):
    check_ok(mpirun(n, "grequest.py"), n)


@pytest.mark.parametrize("n", [1, 3, 5])
def test_partitioned_send_arrives_once_every_partition_is_ready(mpirun, n):
    check_ok(mpirun(n, "partitioned.py"), n)
