#!/usr/bin/env bash
# The MPI backend's overhead: shmpi's Rust OSU programs (perf/rust/osu_latency.rs,
# osu_bw.rs, built with --features mpi and started by mpirun, so they run over MPI)
# against the project's C programs (perf/c/) on the same Open MPI and the same
# transport, interleaved in one sitting: TCP on the loopback (ob1 + tcp, what a
# cluster's network path does) and Open MPI's shared memory (ob1 + vader). The Rust
# osu_bw's default sends and receives with blocking calls; the C one is run both as OSU
# writes it (64 MPI_Isend/MPI_Irecv per window) and with -b (blocking, like the Rust).
# Prints the medians at 8 B and 1 MiB and the ratios Rust/C.
#
# Usage: REPS=5 scripts/mpi_overhead.sh      (needs scripts/install_mpi.sh)
#        ITERS=500 TRANSPORTS=sm REPS=9 scripts/mpi_overhead.sh
#          ITERS: -i for every program (100 windows or round trips per small size and
#          20 per large one by default; 500 makes each 1 MiB figure 100 windows, about
#          0.3 s over vader, long enough to span the host's phases); TRANSPORTS: a
#          subset of "tcp sm".
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-5}
ITERS=${ITERS:-}
TRANSPORTS=${TRANSPORTS:-tcp sm}
OUT=target/mpi-overhead
mkdir -p "$OUT/raw"
rm -f "$OUT"/raw/*
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export MPICC=mpicc.openmpi
CARGO_TARGET_DIR=target/mpi cargo build --quiet --release --features mpi \
    --example osu_latency --example osu_bw
RS=target/mpi/release/examples
for b in osu_latency osu_bw; do
    mpicc.openmpi -O2 -o "$OUT/$b" "perf/c/$b.c"
done
declare -A TR=(
    [tcp]="--mca pml ob1 --mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo"
    [sm]="--mca pml ob1 --mca btl self,vader"
)
for rep in $(seq "$REPS"); do
    for t in $TRANSPORTS; do
        for b in osu_latency osu_bw; do
            # c-b: the C osu_bw with blocking calls (-b), the shape of the Rust program's
            # default, so that the two make the same MPI calls.
            impls="c rust"
            [ "$b" = osu_bw ] && impls="c c-b rust"
            for impl in $impls; do
                prog=$OUT/$b opt=()
                [ "$impl" = rust ] && prog=$RS/$b
                [ "$impl" = c-b ] && opt=(-b)
                [ -n "$ITERS" ] && opt+=(-i "$ITERS")
                # shellcheck disable=SC2086
                timeout 300 mpirun.openmpi -n 2 --bind-to core ${TR[$t]} "$prog" -m 1048576 "${opt[@]}" \
                    >"$OUT/raw/$t.$b.$impl.$rep" 2>&1 || echo "failed: $t $b $impl $rep"
            done
        done
    done
done
python3 - "$OUT/raw" "$REPS" "$TRANSPORTS" <<'PY'
import sys, statistics, glob, os
raw, reps, transports = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
def val(path, size):
    for line in open(path):
        f = line.split()
        if len(f) == 2 and f[0] == str(size):
            return float(f[1])
    return None
print("| transport | benchmark | size | C (median) | Rust over MPI (median) | Rust / C |")
print("|---|---|---|---|---|---|")
for t in transports:
    for b, unit in [("osu_latency", "us"), ("osu_bw", "MB/s"), ("osu_bw -b", "MB/s")]:
        name, c = (("osu_bw", "c-b") if b == "osu_bw -b" else (b, "c"))
        for size, label in [(8, "8 B"), (1048576, "1 MiB")]:
            m = {}
            for impl in [c, "rust"]:
                xs = [val(os.path.join(raw, f"{t}.{name}.{impl}.{r}"), size) for r in range(1, reps + 1)]
                xs = [x for x in xs if x is not None]
                m[impl] = statistics.median(xs) if xs else None
            bench = "osu_bw (C: -b, blocking)" if c == "c-b" else b
            if None in m.values():
                print(f"| {t} | {bench} | {label} | {m[c]} | {m['rust']} | - |")
                continue
            # Latency: time ratio; bandwidth: the inverse, so > 1 is always slower.
            r = m["rust"] / m[c] if b == "osu_latency" else m[c] / m["rust"]
            print(f"| {t} | {bench} | {label} | {m[c]:.2f} {unit} | {m['rust']:.2f} {unit} | {r:.3f} |")
PY
