"""`python -m shmpi` under shmrun and alone: hello, aliasing, failures."""

import subprocess
import sys

import pytest
from conftest import SCRIPTS, WATCHDOG_S, _env, check_ok, run


@pytest.mark.parametrize("n", [1, 2, 4])
def test_hello_prints_every_rank_once(mpirun, n):
    p = mpirun(n, "hello.py")
    check_ok(p, n)
    for r in range(n):
        assert p.stdout.count(f"Hello from rank {r} of {n}") == 1


def test_python_m_shmpi_without_launcher_is_a_world_of_one():
    p = run([sys.executable, "-m", "shmpi", str(SCRIPTS / "hello.py")])
    check_ok(p, 1)
    assert "Hello from rank 0 of 1" in p.stdout


def test_plain_python_script_importing_shmpi_is_a_world_of_one():
    p = run([sys.executable, str(SCRIPTS / "hello_shmpi.py")])
    check_ok(p, 1)


def test_mpi4py_alias_lasts_for_the_run_only():
    code = (
        "import sys, shmpi, mpi4py; from mpi4py import MPI; "
        "assert mpi4py is shmpi and MPI is shmpi.MPI and sys.modules['mpi4py.MPI'] is MPI; "
        "print(f'OK {MPI.COMM_WORLD.rank}')"
    )
    check_ok(run([sys.executable, "-m", "shmpi", "-c", code]), 1)
    p = run([sys.executable, "-c", "import mpi4py"])
    assert p.returncode != 0 and "No module named 'mpi4py'" in p.stderr


def test_dash_c_runs_code_on_every_rank(shmrun):
    code = "from mpi4py import MPI; c = MPI.COMM_WORLD; assert c.allreduce(1) == c.size; print(f'OK {c.rank}')"
    check_ok(run([shmrun, "-n", "3", sys.executable, "-m", "shmpi", "-c", code]), 3)


def test_script_arguments_reach_sys_argv(mpirun):
    p = run([sys.executable, "-m", "shmpi", "-c", "import sys; print('OK', 0, sys.argv[1:])", "a", "b"])
    check_ok(p, 1)
    assert "['a', 'b']" in p.stdout


@pytest.mark.parametrize("n", [1, 3])
def test_uncaught_exception_aborts_the_job_with_one_traceback(mpirun, n):
    p = mpirun(n, "fail_rank.py")
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stderr.count("Traceback (most recent call last)") == 1, p.stderr
    culprit = 1 if n > 1 else 0
    assert f"ValueError: deliberate failure in rank {culprit}" in p.stderr
    assert "not reached" not in p.stderr
    # The traceback shows the script, not the runner.
    assert "__main__.py" not in p.stderr and "runpy" not in p.stderr


@pytest.mark.parametrize("how", ["-c", "-"])
def test_uncaught_exception_in_code_from_c_or_stdin_shows_its_traceback(shmrun, how):
    code = (
        "from mpi4py import MPI\n"
        "if MPI.COMM_WORLD.rank == MPI.COMM_WORLD.size - 1:\n"
        "    raise ValueError('deliberate failure from ' + __name__)\n"
        "MPI.COMM_WORLD.Barrier()\n"
    )
    if how == "-c":
        p = run([shmrun, "-n", "2", sys.executable, "-m", "shmpi", "-c", code])
    else:
        # The launcher gives standard input to rank 0 only, as mpirun does: one rank.
        p = subprocess.run([shmrun, "-n", "1", sys.executable, "-m", "shmpi", "-"], input=code,
                           capture_output=True, text=True, timeout=WATCHDOG_S, cwd=SCRIPTS,
                           env=_env())
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stderr.count("Traceback (most recent call last)") == 1, p.stderr
    assert "ValueError: deliberate failure from __main__" in p.stderr, p.stderr
    assert "NameError" not in p.stderr and "__main__.py" not in p.stderr, p.stderr


def test_sys_exit_code_of_one_rank_is_the_jobs(mpirun):
    p = mpirun(3, "exit_code.py")
    assert p.returncode == 3, p.stdout + p.stderr
    assert "Traceback" not in p.stderr


def test_pending_send_is_delivered_before_exit(mpirun):
    # Rank 0 sends and exits at once; finalization at exit must not lose the message.
    p = mpirun(2, "send_and_exit.py")
    check_ok(p, 2)


def test_tests_of_receives_from_a_rank_that_left_raise_instead_of_spinning(mpirun):
    # A loop of req.test() on a receive only a departed rank could complete ends with
    # the error its wait gives, for pickles and buffers, and from ANY_SOURCE.
    check_ok(mpirun(2, "after_exit.py"), 2)


@pytest.mark.parametrize("n", [2, 3, 5])
def test_deadlock_is_reported_in_the_calls_python_made(mpirun, n):
    p = mpirun(n, "deadlock.py")
    assert p.returncode != 0, p.stdout + p.stderr
    assert "deadlock" in p.stderr, p.stderr
    # The report names what the script called (`comm.recv`), not a Rust method.
    for r in range(n):
        assert f"rank {r} waits in recv(source={(r + 1) % n}, tag=5)" in p.stderr, p.stderr
    assert "recv_vec" not in p.stderr, p.stderr
    # Each rank's one line stays whole when the ranks write at once.
    stopped = [line for line in p.stderr.splitlines() if "stopped:" in line]
    assert len(stopped) == n, p.stderr
    for line in stopped:
        assert line.startswith("shmpi: rank ") and line.count("shmpi:") == 1, p.stderr
