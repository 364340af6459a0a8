#!/usr/bin/env bash
# The MPI backend's tests (cargo feature `mpi`), run by scripts/test.sh after the
# shared-memory suite. Needs scripts/install_mpi.sh. Builds go to target/mpi (Open MPI)
# and target/mpich (MPICH), so the default build in target/ stays as it is.
#
# 1. Open MPI (mpirun, the network path forced: ob1 over TCP on the loopback) at 2, 3
#    and 4 ranks: point-to-point, requests, collectives, dup/split, the examples and
#    benchmark programs, bad input; and a few shared-memory tests with the feature on.
# 2. MPICH (mpiexec.mpich, Hydra): point-to-point and collectives.
# 3. Two "nodes": two network namespaces joined by a veth pair (scripts/netns_two_nodes.sh),
#    when this runs as root with `ip netns` available.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

echo "== MPI backend: Open MPI =="
export MPICC=mpicc.openmpi SHMPI_TEST_MPIRUN=mpirun.openmpi
CARGO_TARGET_DIR=target/mpi timeout 3600 cargo build --features mpi --examples
CARGO_TARGET_DIR=target/mpi cargo clippy --features mpi --all-targets -- -D warnings
CARGO_TARGET_DIR=target/mpi timeout 1800 cargo test --features mpi \
    --test mpi_p2p --test mpi_collectives --test mpi_examples --test mpi_bad_input
# The shared segment with the feature built in: the dispatch lines change nothing.
CARGO_TARGET_DIR=target/mpi timeout 1800 cargo test --features mpi --test p2p --test requests

echo "== MPI backend: MPICH =="
# 2 ranks: MPICH's default build busy-polls, so oversubscribed runs crawl.
export MPICC=mpicc.mpich SHMPI_TEST_MPIRUN=mpiexec.mpich SHMPI_TEST_MPI=mpich SHMPI_TEST_NS=2
CARGO_TARGET_DIR=target/mpich timeout 1800 cargo test --features mpi \
    --test mpi_p2p --test mpi_collectives

if [ "$(id -u)" -eq 0 ] && unshare --net true 2>/dev/null && [ -z "${SHMPI_SKIP_NETNS:-}" ]; then
    echo "== MPI backend: two nodes (network namespaces) =="
    timeout 600 scripts/netns_two_nodes.sh
else
    echo "== two-node test skipped (needs root allowed to make network namespaces) =="
fi
