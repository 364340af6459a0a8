#!/usr/bin/env bash
# shmpi's Python package against the real mpi4py 4.1.2 over Open MPI, on this machine.
#
# Installs mpi4py 4.1.2 (built against Open MPI's mpicc), NumPy and matplotlib in a
# venv of their own (target/venv-mpi4py), then runs, interleaved A/B, REPS times:
# mpi4py's demo/osu_latency.py, osu_bw.py, osu_bibw.py (2 ranks), osu_bcast.py,
# osu_barrier.py, osu_allgather.py, osu_alltoall.py and python/bench/osu_allreduce.py
# (2 and 8 ranks), all unchanged, the seed's ping-pong (../shared/anchors style:
# python/bench/pingpong_mpi4py.py, a small dict lowercase and float64 arrays of 8 B
# to 4 MiB both cases), and the C osu_latency (perf/c) over Open MPI; then prints
# tables of medians (python/bench/compare_table.py) and draws the latency plot
# (python/bench/plot_latency.py).
#
#   scripts/mpi4py_compare.sh              # REPS=2, everything
#   REPS=1 BENCHES="osu_latency pingpong" scripts/mpi4py_compare.sh
#   scripts/mpi4py_compare.sh table        # tables and plot from the raw runs already there
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/target/mpi4py-compare}
RAW=$OUT/raw
REPS=${REPS:-2}
BENCHES=${BENCHES:-"pingpong osu_latency osu_bw osu_bibw osu_bcast osu_barrier osu_allgather osu_alltoall osu_allreduce"}
VENV=$ROOT/target/venv-mpi4py
SHMPY=${SHMPY:-$ROOT/target/venv-ci/bin/python}
SHMRUN=$ROOT/target/release/shmrun
DEMO=$ROOT/target/mpi4py-sdist/mpi4py-4.1.2/demo
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$RAW"

table() {
    "$VENV/bin/python" python/bench/compare_table.py "$RAW"
    "$VENV/bin/python" python/bench/plot_latency.py "$RAW" docs/img/python_pingpong.png
}
if [ "${1:-}" = table ]; then table; exit 0; fi

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import mpi4py, numpy, matplotlib" 2>/dev/null; then
    python3 -m venv "$VENV"
    MPICC=mpicc.openmpi "$VENV/bin/pip" install --quiet mpi4py==4.1.2 numpy matplotlib
fi
FETCH_ONLY=1 scripts/mpi4py_suite.sh
cargo build --release --bin shmrun
mpicc.openmpi -O2 -o "$OUT/c_osu_latency" perf/c/osu_latency.c

script_of() {
    case $1 in
        pingpong) echo "$ROOT/python/bench/pingpong_mpi4py.py" ;;
        osu_allreduce) echo "$ROOT/python/bench/osu_allreduce.py" ;;
        *) echo "$DEMO/$1.py" ;;
    esac
}
args_of() { # the ping-pong at PINGPONG_SCALE percent of osu_latency's iterations
    if [ "$1" = pingpong ]; then echo "${PINGPONG_SCALE:-30}"; fi
}
ranks_of() {
    case $1 in
        pingpong | osu_latency | osu_bw | osu_bibw) echo 2 ;;
        *) echo "2 8" ;;
    esac
}
run_one() { # impl bench n rep
    local impl=$1 bench=$2 n=$3 rep=$4 script
    script=$(script_of "$bench")
    local f=$RAW/$bench.$impl.n$n.$rep.txt
    local bind=core yield=()
    if [ "$n" -gt "$(nproc)" ]; then bind=none; yield=(--mca mpi_yield_when_idle 1 --oversubscribe); fi
    case $impl in
        mpi4py) timeout 900 mpirun.openmpi -n "$n" --bind-to "$bind" "${yield[@]}" \
            "$VENV/bin/python" "$script" $(args_of "$bench") >"$f" ;;
        shmpi) timeout 900 "$SHMRUN" -n "$n" --bind-to "$bind" --timeout 880 \
            "$SHMPY" -m shmpi "$script" $(args_of "$bench") >"$f" ;;
        c) timeout 900 mpirun.openmpi -n 2 --bind-to core "$OUT/c_osu_latency" >"$f" ;;
    esac
    echo "  $impl $bench n=$n rep $rep: $(grep -vc '^#' "$f") lines"
}

for rep in $(seq 1 "$REPS"); do
    # The pickle floor, in the interpreter both run.
    "$SHMPY" -c "import pickle, timeit; d = {'a': 7, 'b': 3.14}; n = 200000
print(min(timeit.repeat(lambda: pickle.loads(pickle.dumps(d, 5)), number=n, repeat=5)) / n * 1e6)" \
        >"$RAW/pickle_floor.$rep.txt"
    for bench in $BENCHES; do
        for n in $(ranks_of "$bench"); do
            # Alternate which one goes first, so neither always meets the same host phase.
            if [ $((rep % 2)) = 1 ]; then order="mpi4py shmpi"; else order="shmpi mpi4py"; fi
            for impl in $order; do run_one "$impl" "$bench" "$n" "$rep"; done
        done
    done
    run_one c osu_latency_c 2 "$rep"
done
table
