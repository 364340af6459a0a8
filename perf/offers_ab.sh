#!/usr/bin/env bash
# perf/offers_ab.sh - offered non-blocking sends (the default) against the ring
# (SHMPI_CMA=0), interleaved in rounds, beside mpi4py 4.1.2 and Open MPI's C programs.
#
# Usage: perf/offers_ab.sh [ROUNDS]   (default 2; needs `scripts/compare.sh build` for
# target/compare/openmpi/, and the venvs of scripts/mpi4py_compare.sh)
# Runs per round: mpi4py's demo osu_bw.py and osu_bibw.py under shmpi (ring, offers)
# and under mpi4py; perf/rust osu_bw -n, osu_bw -w and osu_bibw -w (ring, offers);
# Open MPI's osu_bw and osu_bibw. Prints the medians (and ranges) in MB/s at 64 KiB,
# 256 KiB, 1 MiB and 4 MiB, with the core-to-core probe before and after each round.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-2}
REL=${CARGO_TARGET_DIR:-target}/release
OUT=target/offers-ab
SHMPY=${SHMPY:-target/venv-ci/bin/python}
MPY=target/venv-mpi4py/bin/python
DEMO=target/mpi4py-sdist/mpi4py-4.1.2/demo
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
SR=("$REL/shmrun" -n 2 --bind-to core)
rm -rf "$OUT" && mkdir -p "$OUT"
cargo build --release --bin shmrun --example osu_bw --example osu_bibw >/dev/null
probe() { target/compare/limits c2c 2>/dev/null | tail -n 1; }
for r in $(seq 1 "$ROUNDS"); do
    echo "round $r: c2c $(probe) ns"
    for b in osu_bw osu_bibw; do
        SHMPI_CMA=0 "${SR[@]}" "$SHMPY" -m shmpi "$DEMO/$b.py" >"$OUT/py_$b.ring.$r"
        "${SR[@]}" "$SHMPY" -m shmpi "$DEMO/$b.py" >"$OUT/py_$b.offers.$r"
        mpirun.openmpi -n 2 --bind-to core "$MPY" "$DEMO/$b.py" >"$OUT/py_$b.mpi4py.$r"
    done
    for b in "osu_bw -n" "osu_bw -w" "osu_bibw -w"; do
        f=$(echo "$b" | tr -d ' -')
        # shellcheck disable=SC2086
        SHMPI_CMA=0 "${SR[@]}" "$REL/examples/"$b >"$OUT/rs_$f.ring.$r"
        # shellcheck disable=SC2086
        "${SR[@]}" "$REL/examples/"$b >"$OUT/rs_$f.offers.$r"
    done
    for b in osu_bw osu_bibw; do
        mpirun.openmpi -n 2 --bind-to core "target/compare/openmpi/$b" >"$OUT/c_$b.openmpi.$r"
    done
    echo "round $r: c2c $(probe) ns after"
done
python3 - "$OUT" <<'PY'
import collections, glob, statistics, sys
runs = collections.defaultdict(lambda: collections.defaultdict(list))
for f in glob.glob(sys.argv[1] + "/*"):
    bench, impl, _ = f.rsplit("/", 1)[1].rsplit(".", 2)
    for line in open(f):
        p = line.split()
        if len(p) == 2 and p[0].isdigit():
            runs[bench][(impl, int(p[0]))].append(float(p[1]))
for bench in sorted(runs):
    impls = sorted({i for i, _ in runs[bench]})
    print(f"{bench}: {' / '.join(impls)} (MB/s, median [range])")
    for size in (65536, 262144, 1048576, 4194304):
        cells = []
        for i in impls:
            v = sorted(runs[bench].get((i, size), []))
            cells.append(f"{statistics.median(v):.0f} [{v[0]:.0f}-{v[-1]:.0f}]" if v else "-")
        print(f"  {size:>8}  " + " | ".join(cells))
PY
