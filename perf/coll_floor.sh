#!/usr/bin/env bash
# Mid-size and large collectives from Python against the copies they cannot avoid:
# python/bench/coll_mid.py (allgather in place and not, alltoall, broadcast of 64 KiB to
# 1 MiB per rank, on written buffers) under shmpi and under the real mpi4py over Open
# MPI, interleaved in rounds at 2 and 8 ranks, then perf/probes/coll_floor.c at the same
# sizes: every rank's copies alone, with a barrier after each call, along the faster of
# the single-copy path (process_vm_readv) and the two-copy path through shared memory;
# a 2-rank broadcast's floor is each rank copying half, as shmpi's does (none is
# computed for 8 ranks). Prints the medians, the ratio shmpi / mpi4py, the floor and
# floor / mpi4py: no implementation that copies along those paths can have a ratio
# below the last.
#
# Usage: perf/coll_floor.sh [ROUNDS]      (default 3; about 2 minutes a round, then 3
#                                         for the floors; raw runs in target/coll-floor/)
#        perf/coll_floor.sh table DIR     (the table of a sitting's raw runs again)
# Needs what perf/python_common.sh names (SHMPY, target/venv-mpi4py).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=perf/python_common.sh
. perf/python_common.sh
SIZES="65536 131072 262144 1048576"
table() { # the medians of DIR/runs
python3 - "$1/runs" <<'PY'
import statistics, sys
v = {}
for line in open(sys.argv[1]):
    impl, name, n, size, us = line.split()
    v.setdefault((name, int(n), int(size)), {}).setdefault(impl, []).append(float(us))
print("| call | ranks | size (B) | shmpi (µs) | mpi4py (µs) | shmpi / mpi4py | floor (µs) | floor / mpi4py |")
print("|---|---|---|---|---|---|---|---|")
for (name, n, size), d in sorted(v.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2])):
    if "shmpi" not in d or "mpi4py" not in d:
        continue
    a, b = statistics.median(d["shmpi"]), statistics.median(d["mpi4py"])
    f = d.get("floor")
    fl = f"{f[0]:.1f} | {f[0] / b:.2f}" if f else "- | -"
    print(f"| {name} | {n} | {size} | {a:.1f} | {b:.1f} | {a / b:.2f} | {fl} |")
PY
}
if [ "${1:-}" = table ]; then table "$2"; exit 0; fi
OUT=target/coll-floor/$(date -u +%Y%m%d-%H%M)
mkdir -p "$OUT"
echo "raw runs in $OUT/runs"
gcc -O2 -Wall -o "$OUT/coll_floor" perf/probes/coll_floor.c

for r in $(seq "${1:-3}"); do
    for n in 2 8; do
        bind=core yield=()
        if [ "$n" -gt "$(nproc)" ]; then bind=none; yield=(--mca mpi_yield_when_idle 1 --oversubscribe); fi
        p1=$(target/compare/limits c2c)
        timeout 300 "$SHMRUN" -n "$n" --bind-to "$bind" "$SHMPY" -m shmpi python/bench/coll_mid.py $SIZES |
            sed 's/^/shmpi /' >> "$OUT/runs"
        timeout 300 mpirun.openmpi -n "$n" --bind-to "$bind" "${yield[@]}" "$MPY" python/bench/coll_mid.py $SIZES |
            sed 's/^/mpi4py /' >> "$OUT/runs"
        p2=$(target/compare/limits c2c)
        echo "round $r, $n ranks: c2c $p1 / $p2 ns" | tee -a "$OUT/probes"
    done
done
floor() { # kind n flags sizes...: "floor kind n size µs" lines, the faster path's
    local kind=$1 n=$2 flags=$3
    shift 3
    # shellcheck disable=SC2086
    "$OUT/coll_floor" $flags "$n" "$@" | awk -v k="$kind" -v n="$n" '
        / (cma|shm) / { if (!($1 in best) || $4 < best[$1]) best[$1] = $4 }
        END { for (s in best) print "floor", k, n, s, best[s] }'
}
for n in 2 8; do
    floor allgather_in_place "$n" "-b -i" $SIZES >> "$OUT/runs"
    floor allgather "$n" "-b" $SIZES >> "$OUT/runs"
    floor alltoall "$n" "-a -b" $SIZES >> "$OUT/runs"
done
# A 2-rank broadcast: each rank copies half, from or into the other's memory.
for s in $SIZES; do floor bcast 2 "-b -i" $((s / 2)) | awk -v s="$s" '{$4 = s; print}' >> "$OUT/runs"; done
table "$OUT"
