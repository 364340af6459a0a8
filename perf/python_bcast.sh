#!/usr/bin/env bash
# Small broadcasts from Python: mpi4py's osu_bcast.py (8 B and 1 KiB) at 8 ranks on the
# 2 CPUs and at 2 ranks bound to them, under shmpi (HEAD's package, and a second
# build's if BEFORE names its python) and under the real mpi4py over Open MPI,
# interleaved in rounds, each round between two core-to-core probes; or, with
# `callgrind`, instructions per `Bcast` (with its loop step) at the root and at the
# other rank under both (`perf/python_coll_cg.sh bcast`).
#
# Usage: perf/python_bcast.sh [ROUNDS]            (default 3)
#        BEFORE=target/venv-before/bin/python perf/python_bcast.sh 3
#        BEFORE=... BEFORE_SHMRUN=../before/target/release/shmrun perf/python_bcast.sh 3
#          (the before build's own launcher, where the segment's layout changed)
#        perf/python_bcast.sh callgrind
# Needs: SHMPY (default target/venv-dev/bin/python, with shmpi installed), the venv
# scripts/mpi4py_compare.sh makes (target/venv-mpi4py) and its mpi4py source
# (target/mpi4py-sdist); perf/python_common.sh builds the c2c probe if need be.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=perf/python_common.sh
. perf/python_common.sh

if [ "${1:-}" = callgrind ]; then
    exec perf/python_coll_cg.sh bcast
fi

sizes() { awk '$1==8||$1==1024{printf "%s ", $2}'; }
for r in $(seq "${1:-3}"); do
    for n in 8 2; do
        bind=core y=()
        if [ "$n" -gt "$(nproc)" ]; then bind=none y=(--mca mpi_yield_when_idle 1 --oversubscribe); fi
        p1=$(target/compare/limits c2c)
        before=""
        if [ -n "${BEFORE:-}" ]; then
            before="before $(timeout 300 "${BEFORE_SHMRUN:-$SHMRUN}" -n "$n" --bind-to "$bind" "$BEFORE" -m shmpi "$DEMO/osu_bcast.py" | sizes)| "
        fi
        now=$(timeout 300 "$SHMRUN" -n "$n" --bind-to "$bind" "$SHMPY" -m shmpi "$DEMO/osu_bcast.py" | sizes)
        ref=$(timeout 300 mpirun.openmpi -n "$n" --bind-to "$bind" "${y[@]}" "$MPY" "$DEMO/osu_bcast.py" | sizes)
        p2=$(target/compare/limits c2c)
        echo "round $r n=$n (us at 8 B, 1 KiB; c2c $p1/$p2 ns) | ${before}shmpi $now| mpi4py $ref"
    done
done
