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
# (target/mpi4py-sdist), target/compare/limits (scripts/compare.sh builds it).
set -euo pipefail
cd "$(dirname "$0")/.."
SHMPY=${SHMPY:-target/venv-dev/bin/python}
MPY=target/venv-mpi4py/bin/python
DEMO=target/mpi4py-sdist/mpi4py-4.1.2/demo
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cargo build --quiet --release --bin shmrun
SHMRUN=target/release/shmrun

if [ "${1:-}" = callgrind ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    total() { callgrind_annotate "$1" 2> /dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1}'; }
    for i in 100 200; do
        SHMPI_SPIN_US=0 taskset -c 0 "$SHMRUN" -n 2 valgrind --tool=callgrind \
            --callgrind-out-file="$tmp/shmpi.$i.r%q{SHMPI_RANK}" \
            "$SHMPY" -m shmpi python/bench/nb_window.py "$i" > /dev/null 2>&1
        timeout 600 mpirun.openmpi -n 2 --bind-to none --mca mpi_yield_when_idle 1 taskset -c 0 \
            valgrind --tool=callgrind --callgrind-out-file="$tmp/mpi4py.$i.r%q{OMPI_COMM_WORLD_RANK}" \
            "$MPY" python/bench/nb_window.py "$i" > /dev/null 2>&1
    done
    for impl in shmpi mpi4py; do
        for r in 0 1; do
            a=$(total "$tmp/$impl.100.r$r")
            b=$(total "$tmp/$impl.200.r$r")
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
