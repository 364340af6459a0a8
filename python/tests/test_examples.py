"""The seed lecture's programs (python/examples/) and mpi4py's own demos
(demo/helloworld.py, demo/compute-pi/cpi-cco.py from the mpi4py 4.1.2 source that
scripts/mpi4py_suite.sh caches) run unchanged under ``python -m shmpi``."""

import pathlib
import re
import subprocess
import sys

import pytest
from conftest import ROOT, WATCHDOG_S, _env

EXAMPLES = ROOT / "python" / "examples"
DEMO = ROOT / "target" / "mpi4py-sdist" / "mpi4py-4.1.2" / "demo"


def launch(shmrun, n, path, stdin=None):
    try:
        return subprocess.run(
            [shmrun, "-n", str(n), "--timeout", str(WATCHDOG_S - 5), sys.executable, "-m", "shmpi", str(path)],
            input=stdin, capture_output=True, text=True, timeout=WATCHDOG_S, env=_env(),
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"watchdog: {path} still running after {WATCHDOG_S} s: {e.stderr}")


def ok(p):
    assert p.returncode == 0, f"exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p.stdout


@pytest.mark.parametrize("n", [1, 2, 4])
def test_lecture_hello(shmrun, n):
    out = ok(launch(shmrun, n, EXAMPLES / "hello.py"))
    assert sorted(re.findall(r"Hello from rank (\d+) of (\d+)", out)) == [(str(r), str(n)) for r in range(n)]


@pytest.mark.parametrize("n", [1, 3])
def test_lecture_rank_branching(shmrun, n):
    out = ok(launch(shmrun, n, EXAMPLES / "ranks.py"))
    assert out.count("I am the controller of") == 1 and out.count("I am a worker") == n - 1


@pytest.mark.parametrize("n", [2, 5])
def test_lecture_dict_with_tag_11(shmrun, n):
    assert "rank 1 received {'a': 7, 'b': 3.14}" in ok(launch(shmrun, n, EXAMPLES / "send_dict.py"))


@pytest.mark.parametrize("n", [2, 5])
def test_lecture_numpy_array_with_tag_13(shmrun, n):
    assert "rank 1 received [0. 1. 2.] ... 99.0" in ok(launch(shmrun, n, EXAMPLES / "send_array.py"))


@pytest.mark.parametrize("n", [2, 4])
def test_loan_frames(shmrun, n):
    out = ok(launch(shmrun, n, EXAMPLES / "loan_frames.py"))
    assert f"120 frames of 640x480 handed to {n - 1} consumers" in out
    counts = sorted(int(c) for c in re.findall(r"consumer \d+: (\d+) frames checked", out))
    assert sum(counts) == 120 and len(counts) == n - 1, out


def need_demo(rel):
    path = DEMO / rel
    if not path.exists():
        pytest.skip(f"{path} missing: scripts/mpi4py_suite.sh downloads mpi4py's source")
    return path


@pytest.mark.parametrize("n", [1, 2, 5])
def test_mpi4py_demo_helloworld(shmrun, n):
    out = ok(launch(shmrun, n, need_demo("helloworld.py")))
    got = sorted(int(r) for r, s in re.findall(r"Hello, World! I am process (\d+) of (\d+) on ", out) if int(s) == n)
    assert got == list(range(n)), out


@pytest.mark.parametrize("n", [1, 3, 4])
def test_mpi4py_demo_compute_pi(shmrun, n):
    # Rank 0 reads interval counts from stdin until 0.
    out = ok(launch(shmrun, n, need_demo("compute-pi/cpi-cco.py"), stdin="1000\n100000\n0\n"))
    errors = [float(e) for e in re.findall(r"pi is approximately 3\.\d+, error is (\S+)", out)]
    assert len(errors) == 2 and errors[0] < 1e-6 and errors[1] < 1e-10, out
