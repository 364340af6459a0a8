# Sourced by perf/python_*.sh: the interpreters, mpi4py's demos and the launcher they
# compare with, from the repository root.
SHMPY=${SHMPY:-target/venv-dev/bin/python}
MPY=target/venv-mpi4py/bin/python
DEMO=target/mpi4py-sdist/mpi4py-4.1.2/demo
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cargo build --quiet --release --bin shmrun
SHMRUN=target/release/shmrun
# The c2c probe of scripts/compare.sh, built here if it is not there yet.
[ -x target/compare/limits ] || { mkdir -p target/compare && gcc -O2 -o target/compare/limits perf/probes/limits.c; }

# Callgrind of a 2-rank run with both ranks on one CPU, so that every wait is a yield:
# cg_shmpi PYTHON SCRIPT OUT ARGS... writes OUT.r0 and OUT.r1 (whole programs); so does
# cg_mpi4py SCRIPT OUT ARGS... under Open MPI; cg_total FILE prints a file's total.
cg_shmpi() {
    local py=$1 script=$2 out=$3
    shift 3
    SHMPI_SPIN_US=0 taskset -c 0 "$SHMRUN" -n 2 valgrind --tool=callgrind \
        --callgrind-out-file="$out.r%q{SHMPI_RANK}" "$py" -m shmpi "$script" "$@" > /dev/null 2>&1
}
cg_mpi4py() {
    local script=$1 out=$2
    shift 2
    timeout 600 mpirun.openmpi -n 2 --bind-to none --mca mpi_yield_when_idle 1 taskset -c 0 \
        valgrind --tool=callgrind --callgrind-out-file="$out.r%q{OMPI_COMM_WORLD_RANK}" \
        "$MPY" "$script" "$@" > /dev/null 2>&1
}
cg_total() { callgrind_annotate "$1" 2> /dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1}'; }
