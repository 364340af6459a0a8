#!/usr/bin/env bash
# Instructions per call of one small collective from Python (python/bench/coll_loop.py:
# bcast, allreduce, allgather, alltoall or barrier, with mpi4py's OSU spec forms) at
# both ranks of 2 on one CPU under callgrind (so a wait is a yield, counted), 2000
# minus 1000 calls, for shmpi's package (SHMPY; also BEFORE's, if it names another
# venv's python) and for the real mpi4py over Open MPI. PYTHONHASHSEED is fixed: a
# dictionary lookup of the interpreter otherwise moves the counts by ~200 per call.
#
# Usage: perf/python_coll_cg.sh allreduce
#        BEFORE=target/venv-base/bin/python perf/python_coll_cg.sh bcast
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=perf/python_common.sh
. perf/python_common.sh
export PYTHONHASHSEED=0
call=${1:?usage: perf/python_coll_cg.sh bcast|allreduce|allgather|alltoall|barrier}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pys=("shmpi:$SHMPY")
[ -n "${BEFORE:-}" ] && pys+=("before:$BEFORE")
for i in 1000 2000; do
    for p in "${pys[@]}"; do
        cg_shmpi "${p#*:}" python/bench/coll_loop.py "$tmp/${p%%:*}.$i" "$call" "$i"
    done
    cg_mpi4py python/bench/coll_loop.py "$tmp/mpi4py.$i" "$call" "$i"
done
for p in "${pys[@]}" mpi4py; do
    impl=${p%%:*}
    for r in 0 1; do
        a=$(cg_total "$tmp/$impl.1000.r$r")
        b=$(cg_total "$tmp/$impl.2000.r$r")
        echo "$impl rank $r: $(((b - a) / 1000)) instructions per $call (with its loop step)"
    done
done
