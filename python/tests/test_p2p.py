"""Point to point through the real launcher, and the seed lecture's programs."""

import sys

import pytest
from conftest import SCRIPTS, check_ok, run


@pytest.mark.parametrize("n", [2, 5])
def test_lecture_programs(mpirun, n):
    p = mpirun(n, "lecture.py")
    check_ok(p, n)
    assert "rank 0 of %d is a controller" % n in p.stdout


@pytest.mark.parametrize("n", [1, 2, 5])
def test_point_to_point(mpirun, n):
    check_ok(mpirun(n, "p2p.py"), n)


def test_point_to_point_without_launcher():
    check_ok(run([sys.executable, "-m", "shmpi", str(SCRIPTS / "p2p.py")]), 1)


def test_blocking_receive_releases_the_gil(mpirun):
    check_ok(mpirun(2, "gil.py"), 2)


@pytest.mark.parametrize("n", [2, 3])
def test_synchronous_sends_wait_for_the_receive(mpirun, n):
    check_ok(mpirun(n, "ssend.py"), n)
