"""Collectives, lowercase and uppercase, against serial references."""

import sys

import pytest
from conftest import SCRIPTS, check_ok, run


@pytest.mark.parametrize("n", [1, 3, 5])
def test_collectives(mpirun, n):
    check_ok(mpirun(n, "collectives.py"), n)


def test_collectives_without_launcher():
    check_ok(run([sys.executable, "-m", "shmpi", str(SCRIPTS / "collectives.py")]), 1)


@pytest.mark.parametrize("n", [1, 2, 5])
def test_explicit_counts_are_per_rank_in_block_collectives(mpirun, n):
    check_ok(mpirun(n, "block_counts.py"), n)


@pytest.mark.parametrize("n", [1, 2, 4, 6])
def test_groups_and_cartesian_grids(mpirun, n):
    check_ok(mpirun(n, "topo_groups.py"), n)


@pytest.mark.parametrize("n", [1, 3, 5])
def test_nonblocking_collectives(mpirun, n):
    check_ok(mpirun(n, "nbc.py"), n)


@pytest.mark.parametrize("n", [1, 2, 5])
def test_persistent_collectives(mpirun, n):
    check_ok(mpirun(n, "persistent_coll.py"), n)


@pytest.mark.parametrize("n", [1, 2, 5])
def test_buffer_collectives_take_every_spec_form(mpirun, n):
    # The extension reads plain buffers, [buf, count, datatype] and IN_PLACE itself;
    # the other forms go through the Python parser: the same results and errors.
    check_ok(mpirun(n, "spec_forms.py"), n)


@pytest.mark.parametrize("n", [1, 3, 5])
def test_block_collectives_place_blocks_of_matching_signatures(mpirun, n):
    check_ok(mpirun(n, "block_signatures.py", "legal"), n)


@pytest.mark.parametrize("n", [1, 3, 5])
def test_block_collectives_with_mismatched_signatures_raise_on_every_rank(mpirun, n):
    check_ok(mpirun(n, "block_signatures.py", "mismatched"), n)


@pytest.mark.parametrize("n", [2, 3])
def test_collective_mismatch_classes_name_the_difference(mpirun, n):
    check_ok(mpirun(n, "block_signatures.py", "classes"), n)


@pytest.mark.parametrize("n", [1, 3])
def test_user_op_function_gets_mpi_buffers_as_in_mpi4py(mpirun, n):
    check_ok(mpirun(n, "user_op_buffers.py"), n)
