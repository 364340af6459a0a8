#!/usr/bin/env bash
# Every test of the project, as the README's quick start gives it and CI runs it:
# the Rust suite, clippy, the loom model checks, and the Python package's tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# 1. Unit, multi-process (through the real launcher) and documentation tests. The
#    trace page's browser test needs headless Chromium (Debian's `chromium`) here.
SHMPI_REQUIRE_BROWSER=1 cargo test

# 2. Lints: clippy clean, warnings are errors.
cargo clippy --all-targets -- -D warnings

# 3. The loom model checks of the ring and the doorbell (their own build).
RUSTFLAGS="--cfg loom" cargo test --lib --target-dir target/loom loom

# 4. The Python package (python/, mpi4py's API over shmpi): built and installed into a
#    virtual environment of its own, its tests run scripts through the release launcher.
#    pytest fails the run on a failure, and on no tests (exit 5).
cargo build --release --bin shmrun
python3 -m venv target/venv-ci
target/venv-ci/bin/pip install --quiet --upgrade pip
target/venv-ci/bin/pip install --quiet maturin numpy pytest
target/venv-ci/bin/pip install --quiet ./python
# 5. mpi4py 4.1.2's own test suite (fetched from PyPI, cached in target/) under shmrun at
#    N = 1, 2, 3 and 5, every run under a watchdog; it also provides mpi4py's demos that
#    the pytest run below starts.
scripts/mpi4py_suite.sh
SHMPI_SHMRUN="$PWD/target/release/shmrun" target/venv-ci/bin/python -m pytest python/tests -q

# 6. The MPI backend (cargo feature `mpi`) under Open MPI and MPICH, and across two
#    network namespaces (needs scripts/install_mpi.sh; see docs/cluster.md); then the
#    Python package's test scripts under the real mpi4py over Open MPI (built from
#    PyPI's source into target/venv-mpi4py), so that they stay portable.
scripts/mpi_test.sh
scripts/mpi_python_mpi4py.sh
