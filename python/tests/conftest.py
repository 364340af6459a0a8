"""Runs test scripts through the real launcher, each with a watchdog.

The launcher is ``$SHMPI_SHMRUN`` if set (CI sets it to the release build), else
``target/debug/shmrun``, built once per session with cargo.
"""

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPTS = pathlib.Path(__file__).resolve().parent / "scripts"
WATCHDOG_S = 60


@pytest.fixture(scope="session")
def shmrun():
    path = os.environ.get("SHMPI_SHMRUN")
    if path:
        return os.path.abspath(path)
    subprocess.run(
        ["cargo", "build", "--quiet", "--bin", "shmrun"],
        cwd=ROOT,
        check=True,
        timeout=900,
    )
    return str(ROOT / "target" / "debug" / "shmrun")


def _env():
    env = dict(os.environ)
    # A test run from inside a job must not attach to it.
    for k in ("SHMPI_FD", "SHMPI_RANK", "SHMPI_SIZE"):
        env.pop(k, None)
    return env


def run(cmd, timeout=WATCHDOG_S):
    """Runs a command with a watchdog; a hang fails the test instead of the run."""
    try:
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=_env(), cwd=SCRIPTS
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"watchdog: {cmd} still running after {timeout} s\n"
                    f"stdout: {e.stdout}\nstderr: {e.stderr}")


@pytest.fixture
def mpirun(shmrun):
    """``mpirun(n, "script.py", *args)``: the script on n ranks under ``python -m
    shmpi``, as a user runs it."""

    def go(n, script, *args, timeout=WATCHDOG_S):
        return run(
            [shmrun, "-n", str(n), sys.executable, "-m", "shmpi", str(SCRIPTS / script), *args],
            timeout,
        )

    return go


def check_ok(p, n):
    """Every rank printed its OK line and the job exited 0."""
    assert p.returncode == 0, f"exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    # Ranks share the pipe, so one rank's line may be split by another's.
    oks = sorted(int(r) for r in re.findall(r"OK (\d+)", p.stdout))
    assert oks == list(range(n)), p.stdout + p.stderr
