#!/usr/bin/env bash
# perf/mem/run.sh - the memory of a job: shmpi beside Open MPI (and MPICH) for the
# same two programs (perf/rust/mem_probe.rs, perf/c/mem_probe.c) at several N.
#
# Usage: perf/mem/run.sh [N ...]          (default: 2 16 64 256)
#   IMPLS="shmpi ompi"                    implementations (ompi, mpich)
#   MODES="hello alltoall exchange chatter"   programs (see perf/rust/mem_probe.rs)
# Prints a markdown table: per program and N, the sum over ranks of RSS and PSS
# (proportional set size: shared pages divided among the processes mapping them), the
# largest rank's RSS, and the shared segment's committed bytes (shmpi: the memfd;
# Open MPI: its vader files in /dev/shm). Ranks only: the launchers are not counted.
set -euo pipefail
cd "$(dirname "$0")/../.."
NS=("$@")
[ "${#NS[@]}" -gt 0 ] || NS=(2 16 64 256)
IMPLS=${IMPLS:-shmpi ompi}
OUT=target/mem
REL=${CARGO_TARGET_DIR:-target}/release
mkdir -p "$OUT"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpicc.openmpi -O2 -Wall -o "$OUT/mem_probe_ompi" perf/c/mem_probe.c
mpicc.mpich -O2 -Wall -o "$OUT/mem_probe_mpich" perf/c/mem_probe.c
cargo build --release --bin shmrun --example mem_probe >&2
echo "| program | N | impl | RSS sum (MiB) | PSS sum (MiB) | largest rank RSS (MiB) | shared segment committed (MiB) |"
echo "|---|---|---|---|---|---|---|"
for mode in ${MODES:-hello alltoall exchange chatter}; do
    for n in "${NS[@]}"; do
        for impl in $IMPLS; do
            case $impl in
            shmpi) cmd=("$REL/shmrun" -n "$n" "$REL/examples/mem_probe" "$mode") ;;
            ompi) cmd=(mpirun.openmpi --mca pml ob1 --mca btl self,vader --oversubscribe -np "$n" "$OUT/mem_probe_ompi" "$mode") ;;
            mpich) cmd=(mpirun.mpich -np "$n" "$OUT/mem_probe_mpich" "$mode") ;;
            esac
            line=$(timeout -k 5 300 "${cmd[@]}" 2> "$OUT/err_${impl}_${mode}_$n.txt" | tail -n 1) || line=""
            if [ -z "$line" ]; then
                echo "| $mode | $n | $impl | failed (see $OUT/err_${impl}_${mode}_$n.txt) | | | |"
                continue
            fi
            read -r _ _ rss pss rmax seg <<< "$line"
            awk -v m="$mode" -v n="$n" -v i="$impl" -v r="$rss" -v p="$pss" -v x="$rmax" -v s="$seg" \
                'BEGIN{printf "| %s | %s | %s | %.1f | %.1f | %.1f | %.1f |\n", m, n, i, r/1024, p/1024, x/1024, s/1024}'
        done
    done
done
