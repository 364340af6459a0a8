#!/usr/bin/env bash
# What the MPI backend's large-message format costs MPI itself: 1 MiB blocking
# bandwidth over Open MPI's shared memory (ob1 + vader, 2 ranks bound to the cores),
# interleaved in rounds: perf/probes/mpi_head.c plain, the same with a 32-byte head
# before each message (shmpi's format, sent by C), and shmpi's own osu_bw over the MPI
# backend (100 windows at 1 MiB, -i 500). Prints each round, then medians and ratios.
#
# Usage: perf/mpi_head.sh [ROUNDS]       (default 10; needs scripts/install_mpi.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
OUT=target/mpi-overhead
mkdir -p "$OUT"
mpicc.openmpi -O2 -Wall -o "$OUT/mpi_head" perf/probes/mpi_head.c
MPICC=mpicc.openmpi CARGO_TARGET_DIR=target/mpi cargo build --quiet --release --features mpi \
    --example osu_bw
M=(--bind-to core --mca pml ob1 --mca btl self,vader)
rows=()
for r in $(seq "${1:-10}"); do
    a=$(timeout 120 mpirun.openmpi -n 2 "${M[@]}" "$OUT/mpi_head" 0 100)
    b=$(timeout 120 mpirun.openmpi -n 2 "${M[@]}" "$OUT/mpi_head" 1 100)
    c=$(timeout 120 mpirun.openmpi -n 2 "${M[@]}" target/mpi/release/examples/osu_bw \
        -m 1048576 -i 500 | awk '$1 == "1048576" {print $2}')
    echo "round $r: C $a, C with heads $b, shmpi over MPI $c MB/s"
    rows+=("$a $b $c")
done
printf '%s\n' "${rows[@]}" | python3 -c '
import sys, statistics as s
cols = list(zip(*[map(float, l.split()) for l in sys.stdin]))
c, h, r = (s.median(x) for x in cols)
print(f"medians: C {c:.0f}, C with heads {h:.0f}, shmpi {r:.0f} MB/s; "
      f"C over C with heads {c / h:.3f}, C over shmpi {c / r:.3f}")'
