#!/usr/bin/env bash
# Small broadcasts from Python: mpi4py's osu_bcast.py (8 B and 1 KiB) at 8 ranks on the
# 2 CPUs and at 2 ranks bound to them, under shmpi (HEAD's package, and a second
# build's if BEFORE names its python) and under the real mpi4py over Open MPI,
# interleaved in rounds, each round between two core-to-core probes; or, with
# `callgrind`, instructions per `Bcast` (with its loop step) at the root and at the
# other rank of python/bench/bcast_loop.py under both (2 ranks on one CPU; 2000 minus
# 1000 calls).
#
# Usage: perf/python_bcast.sh [ROUNDS]            (default 3)
#        BEFORE=target/venv-before/bin/python perf/python_bcast.sh 3
#        perf/python_bcast.sh callgrind
# Needs: SHMPY (default target/venv-dev/bin/python, with shmpi installed), the venv
# scripts/mpi4py_compare.sh makes (target/venv-mpi4py) and its mpi4py source
# (target/mpi4py-sdist); perf/python_common.sh builds the c2c probe if need be.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=perf/python_common.sh
. perf/python_common.sh

if [ "${1:-}" = callgrind ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    pys=("shmpi:$SHMPY")
    [ -n "${BEFORE:-}" ] && pys+=("before:$BEFORE")
    for i in 1000 2000; do
        for p in "${pys[@]}"; do
            cg_shmpi "${p#*:}" python/bench/bcast_loop.py "$tmp/${p%%:*}.$i" "$i"
        done
        cg_mpi4py python/bench/bcast_loop.py "$tmp/mpi4py.$i" "$i"
    done
    for p in "${pys[@]}" mpi4py; do
        impl=${p%%:*}
        for r in 0 1; do
            a=$(cg_total "$tmp/$impl.1000.r$r")
            b=$(cg_total "$tmp/$impl.2000.r$r")
            # Whole programs, whose difference is 1000 calls and their loop's steps.
            echo "$impl rank $r ($([ $r = 0 ] && echo root || echo other)): $(((b - a) / 1000)) instructions per Bcast"
        done
    done
    exit 0
fi

sizes() { awk '$1==8||$1==1024{printf "%s ", $2}'; }
for r in $(seq "${1:-3}"); do
    for n in 8 2; do
        bind=core y=()
        if [ "$n" -gt "$(nproc)" ]; then bind=none y=(--mca mpi_yield_when_idle 1 --oversubscribe); fi
        p1=$(target/compare/limits c2c)
        before=""
        if [ -n "${BEFORE:-}" ]; then
            before="before $(timeout 300 "$SHMRUN" -n "$n" --bind-to "$bind" "$BEFORE" -m shmpi "$DEMO/osu_bcast.py" | sizes)| "
        fi
        now=$(timeout 300 "$SHMRUN" -n "$n" --bind-to "$bind" "$SHMPY" -m shmpi "$DEMO/osu_bcast.py" | sizes)
        ref=$(timeout 300 mpirun.openmpi -n "$n" --bind-to "$bind" "${y[@]}" "$MPY" "$DEMO/osu_bcast.py" | sizes)
        p2=$(target/compare/limits c2c)
        echo "round $r n=$n (us at 8 B, 1 KiB; c2c $p1/$p2 ns) | ${before}shmpi $now| mpi4py $ref"
    done
done
