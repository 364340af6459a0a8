#!/usr/bin/env bash
# Small non-blocking messages from Python: mpi4py's osu_bw.py and osu_bibw.py at 1, 8
# and 64 B under shmpi (HEAD's package, and a second build's if BEFORE names its
# python) and under the real mpi4py over Open MPI, interleaved in rounds, each round
# between two core-to-core probes; or, with `callgrind`, instructions per message of
# python/bench/nb_window.py under both (both ranks on one CPU; 200 minus 100 windows).
#
# Usage: perf/python_small_nb.sh [ROUNDS]            (default 3)
#        BEFORE=target/venv-before/bin/python perf/python_small_nb.sh 3
#        perf/python_small_nb.sh callgrind
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
    for i in 100 200; do
        cg_shmpi "$SHMPY" python/bench/nb_window.py "$tmp/shmpi.$i" "$i"
        cg_mpi4py python/bench/nb_window.py "$tmp/mpi4py.$i" "$i"
    done
    for impl in shmpi mpi4py; do
        for r in 0 1; do
            a=$(cg_total "$tmp/$impl.100.r$r")
            b=$(cg_total "$tmp/$impl.200.r$r")
            echo "$impl rank $r ($([ $r = 0 ] && echo Isend || echo Irecv)): $(((b - a) / 6400)) instructions per message"
        done
    done
    exit 0
fi

sizes() { awk '$1==1||$1==8||$1==64{printf "%s ", $2}'; }
for r in $(seq "${1:-3}"); do
    for b in osu_bw osu_bibw; do
        p1=$(target/compare/limits c2c)
        before=""
        if [ -n "${BEFORE:-}" ]; then
            before="before $(timeout 120 "$SHMRUN" -n 2 --bind-to core "$BEFORE" -m shmpi "$DEMO/$b.py" | sizes)| "
        fi
        now=$(timeout 120 "$SHMRUN" -n 2 --bind-to core "$SHMPY" -m shmpi "$DEMO/$b.py" | sizes)
        ref=$(timeout 120 mpirun.openmpi -n 2 --bind-to core "$MPY" "$DEMO/$b.py" | sizes)
        p2=$(target/compare/limits c2c)
        echo "round $r $b (MB/s at 1 8 64 B; c2c $p1/$p2 ns) | ${before}shmpi $now| mpi4py $ref"
    done
done
