#!/usr/bin/env bash
# perf/targets.sh - the figures of issue 16's targets in one sitting, implementations
# interleaved run by run, each run between two core-to-core probes (`limits c2c`).
#
# Usage: perf/targets.sh [REPS]     (default 3; needs `scripts/compare.sh build` first)
# Prints one line per run: target, implementation, c2c before/after (ns), value.
# Then the medians over runs whose two probes were both <= C2C_FAST (default 100 ns)
# and the ratios. Targets:
#   lat8      8 B one-way latency, osu_latency (project C program, Open MPI
#             best config / Open MPI default launch `mpirun -n 2 --bind-to core`)
#   loanlat   loaned 4 MiB one-way time / loaned 8 B (osu_loan)
#   loanbw    osu_loan -b at 4 MiB / osu_bw (copying) at 4 MiB
#   bcast1M   osu_bcast 1 MiB at 2 ranks, shmpi / Open MPI
#   bibw      osu_bibw 1..64 B, shmpi / Open MPI
#   bibwp     osu_bibw -p (persistent requests, both sides), shmpi / Open MPI's
#             better of its two forms (OSU's isend window, or -p)
#   bwn/bwp   osu_bw -n (owned buffers) and osu_bw -p at 1..64 B, likewise
#   sbw/sbibw osu_bw -w / osu_bibw -w (scoped requests: one send buffer, receives in
#             place) at 256 KiB, 1 MiB and 4 MiB, shmpi / Open MPI, against the C
#             program as OSU writes it (64 receives into one buffer) and with `-d`
#             (each receive into its own slice: the memory the scoped form must use)
set -uo pipefail
cd "$(dirname "$0")/.."
REPS=${1:-3}
C2C_FAST=${C2C_FAST:-100}
OUT=target/compare
REL=${CARGO_TARGET_DIR:-target}/release
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
SH=("$REL/shmrun" -n 2 --bind-to core)
OB=(mpirun.openmpi --mca pml ob1 --mca btl self,vader --bind-to core -np 2)
OD=(mpirun.openmpi -n 2 --bind-to core)
LOG=$OUT/targets.txt
: > "$LOG"
val() { awk -v s="$1" '$1==s{print $2}' | tail -n 1; }
run() { # run TARGET IMPL SIZE CMD...
    local t=$1 i=$2 s=$3
    shift 3
    local a b v
    a=$("$OUT/limits" c2c)
    v=$(timeout -k 5 120 "$@" 2> /dev/null | val "$s")
    b=$("$OUT/limits" c2c)
    echo "$t $i $a $b ${v:-NA}" | tee -a "$LOG"
}
for r in $(seq 1 "$REPS"); do
    run lat8 shmpi 8 "${SH[@]}" "$REL/examples/osu_latency" -m 8
    run lat8 ompi-best 8 "${OB[@]}" "$OUT/openmpi/osu_latency" -m 8
    run lat8 ompi-default 8 "${OD[@]}" "$OUT/openmpi/osu_latency" -m 8
    run loanlat loan8 8 "${SH[@]}" "$REL/examples/osu_loan" -m 8
    run loanlat loan4M 4194304 "${SH[@]}" "$REL/examples/osu_loan" -m 4M -i 1000
    run loanbw loan 4194304 "${SH[@]}" "$REL/examples/osu_loan" -b -m 4M
    run loanbw copy 4194304 "${SH[@]}" "$REL/examples/osu_bw" -m 4M
    run bcast1M shmpi 1048576 "${SH[@]}" "$REL/examples/osu_bcast" -m 1M
    run bcast1M ompi 1048576 "${OB[@]}" "$OUT/openmpi/osu_bcast" -m 1M -t 0.3
    for s in 1 8 64; do
        run "bibw$s" shmpi "$s" "${SH[@]}" "$REL/examples/osu_bibw" -m 64
        run "bibw$s" ompi "$s" "${OB[@]}" "$OUT/openmpi/osu_bibw" -m 64
        run "bibwp$s" shmpi "$s" "${SH[@]}" "$REL/examples/osu_bibw" -p -m 64
        run "bibwp$s" ompi-p "$s" "${OB[@]}" "$OUT/openmpi/osu_bibw" -p -m 64
        run "bw$s" shmpi-n "$s" "${SH[@]}" "$REL/examples/osu_bw" -n -m 64
        run "bw$s" shmpi-p "$s" "${SH[@]}" "$REL/examples/osu_bw" -p -m 64
        run "bw$s" ompi "$s" "${OB[@]}" "$OUT/openmpi/osu_bw" -m 64
        run "bw$s" ompi-p "$s" "${OB[@]}" "$OUT/openmpi/osu_bw" -p -m 64
    done
    for b in bw bibw; do
        for s in 262144 1048576 4194304; do
            run "s$b$s" shmpi "$s" "${SH[@]}" "$REL/examples/osu_$b" -w -m "$s"
            run "s$b$s" ompi "$s" "${OB[@]}" "$OUT/openmpi/osu_$b" -m "$s"
            run "s$b$s" ompi-d "$s" "${OB[@]}" "$OUT/openmpi/osu_$b" -d -m "$s"
        done
    done
done
python3 - "$LOG" "$C2C_FAST" <<'PY'
import sys, statistics
from collections import defaultdict
log, fast = sys.argv[1], float(sys.argv[2])
kept, all_ = defaultdict(list), defaultdict(list)
for line in open(log):
    t, i, a, b, v = line.split()
    if v == "NA":
        continue
    all_[(t, i)].append(float(v))
    if a != "NA" and b != "NA" and float(a) <= fast and float(b) <= fast:
        kept[(t, i)].append(float(v))
def med(k, d):
    return statistics.median(d[k]) if d.get(k) else None
def num(x):
    # Latencies to the nanosecond (the programs print three decimals), the rest to two.
    return "-" if x is None else f"{x:.3f}" if x < 10 else f"{x:.2f}"
print(f"\nmedians (clean runs: both probes <= {fast:.0f} ns; all runs in brackets)")
for k in sorted(all_):
    print(f"  {k[0]:8} {k[1]:13} clean {len(kept.get(k, []))}/{len(all_[k])}: "
          f"{num(med(k, kept))} [{num(med(k, all_))}]")
def ratio(name, a, b, d):
    x, y = med(a, d), med(b, d)
    return f"{name}: {x / y:.3f}" if x and y else f"{name}: -"
def ratio_best(name, a, bs, d):
    x, ys = med(a, d), [med(b, d) for b in bs]
    ys = [y for y in ys if y]
    return f"{name}: {x / max(ys):.3f}" if x and ys else f"{name}: -"
for d, label in ((kept, "clean"), (all_, "all")):
    print(f"ratios ({label} runs):")
    print("  " + ratio("8 B latency shmpi / Open MPI best", ("lat8", "shmpi"), ("lat8", "ompi-best"), d))
    print("  " + ratio("8 B latency shmpi / Open MPI default launch", ("lat8", "shmpi"), ("lat8", "ompi-default"), d))
    print("  " + ratio("loaned 4 MiB / loaned 8 B one-way", ("loanlat", "loan4M"), ("loanlat", "loan8"), d))
    print("  " + ratio("loan osu_bw / copying osu_bw at 4 MiB", ("loanbw", "loan"), ("loanbw", "copy"), d))
    print("  " + ratio("1 MiB bcast shmpi / Open MPI", ("bcast1M", "shmpi"), ("bcast1M", "ompi"), d))
    for s in (1, 8, 64):
        print("  " + ratio(f"osu_bibw {s} B shmpi / Open MPI", (f"bibw{s}", "shmpi"), (f"bibw{s}", "ompi"), d))
        print("  " + ratio_best(f"osu_bibw -p {s} B shmpi / Open MPI's best form", (f"bibwp{s}", "shmpi"),
                                [(f"bibw{s}", "ompi"), (f"bibwp{s}", "ompi-p")], d))
        print("  " + ratio(f"osu_bw -n {s} B shmpi / Open MPI", (f"bw{s}", "shmpi-n"), (f"bw{s}", "ompi"), d))
        print("  " + ratio_best(f"osu_bw -p {s} B shmpi / Open MPI's best form", (f"bw{s}", "shmpi-p"),
                                [(f"bw{s}", "ompi"), (f"bw{s}", "ompi-p")], d))
    for b in ("bw", "bibw"):
        for s in (262144, 1048576, 4194304):
            print("  " + ratio(f"osu_{b} -w {s >> 10} KiB shmpi / Open MPI", (f"s{b}{s}", "shmpi"), (f"s{b}{s}", "ompi"), d))
            print("  " + ratio(f"osu_{b} -w {s >> 10} KiB shmpi / Open MPI -d", (f"s{b}{s}", "shmpi"), (f"s{b}{s}", "ompi-d"), d))
PY
