#!/usr/bin/env bash
# shmpi_extra.sh - the shmpi-only measurements of docs/performance.md that
# compare.sh does not make: object vs array latency, the oversubscription ratio,
# osu_bw's and osu_bibw's two buffer modes, and the per-message cost (osu_msgrate).
#
# Usage: scripts/shmpi_extra.sh            (REPS=3 by default; results in
#        target/extra/, medians on stdout).  Builds the release examples first.
# Knobs: REPS=3, OVERSUB_N=8, QUIET_IDLE/QUIET_MAX_WAIT (see quiet_run.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-3}
OVERSUB_N=${OVERSUB_N:-8}
REL=${CARGO_TARGET_DIR:-target}/release
OUT=target/extra
mkdir -p "$OUT"
rm -f "$OUT"/*.txt
cargo build --release --bin shmrun --examples >&2
run() { # run NAME CMD... : one repetition into $OUT/NAME_rREP.txt
    local name=$1
    shift
    QUIET_MAX_WAIT=${QUIET_MAX_WAIT:-60} scripts/quiet_run.sh timeout -k 5 300 "$@" > "$OUT/${name}_r$rep.txt"
    echo "[extra] $name r$rep done" >&2
}
for rep in $(seq 1 "$REPS"); do
    run latency_obj "$REL/shmrun" -n 2 --bind-to core "$REL/examples/osu_latency_obj" -m 64K
    run oversub_n2 "$REL/shmrun" -n 2 "$REL/examples/osu_latency_oversub" -m 4K
    run "oversub_n$OVERSUB_N" "$REL/shmrun" -n "$OVERSUB_N" "$REL/examples/osu_latency_oversub" -m 4K
    run bw_owned "$REL/shmrun" -n 2 --bind-to core "$REL/examples/osu_bw" -n -m 4M
    run bw_blocking "$REL/shmrun" -n 2 --bind-to core "$REL/examples/osu_bw" -m 4M
    run bibw_owned "$REL/shmrun" -n 2 --bind-to core "$REL/examples/osu_bibw" -m 4M
    run bibw_sendrecv "$REL/shmrun" -n 2 --bind-to core "$REL/examples/osu_bibw" -s -m 4M
    run msgrate "$REL/shmrun" -n 2 --bind-to core "$REL/examples/osu_msgrate" -m 1K
done
python3 - "$OUT" "$OVERSUB_N" <<'PY'
import glob, os, re, statistics, sys
out, n = sys.argv[1], sys.argv[2]
def rows(name):
    d = {}
    for f in sorted(glob.glob(os.path.join(out, f"{name}_r*.txt"))):
        for line in open(f):
            p = line.split()
            if len(p) == 2 and not line.startswith("#"):
                d.setdefault(int(p[0]), []).append(float(p[1]))
    return {k: statistics.median(v) for k, v in d.items()}
def comments(name, pat):
    vals = []
    for f in sorted(glob.glob(os.path.join(out, f"{name}_r*.txt"))):
        for line in open(f):
            m = re.search(pat, line)
            if m:
                vals.append(tuple(float(x) for x in m.groups()))
    return vals
s = comments("latency_obj", r"object: ([\d.]+) us.*?: ([\d.]+) us; object/array = ([\d.]+)")
if s:
    o, a, r = (statistics.median(x[i] for x in s) for i in range(3))
    print(f"object latency, struct {{a: i64, b: f64}}: {o:.3} us, 16-byte array {a:.3} us, "
          f"ratio {r:.2f} (median of {len(s)} runs)")
obj = rows("latency_obj")
print("\n| size | Vec<f64> object (us) |\n|---|---|")
for k in sorted(obj):
    print(f"| {k} | {obj[k]:.2f} |")
a, b = rows("oversub_n2"), rows(f"oversub_n{n}")
print(f"\n| size | 2 ranks (us) | {n} ranks (us) | ratio |\n|---|---|---|---|")
for k in sorted(a):
    if k in b:
        print(f"| {k} | {a[k]:.2f} | {b[k]:.2f} | {b[k] / a[k]:.2f} |")
o, bl = rows("bw_owned"), rows("bw_blocking")
print("\n| size | osu_bw -n, 64 owned buffers (MB/s) | osu_bw default, one buffer (MB/s) |\n|---|---|---|")
for k in sorted(o):
    print(f"| {k} | {o[k]:.0f} | {bl.get(k, float('nan')):.0f} |")
o, sr = rows("bibw_owned"), rows("bibw_sendrecv")
print("\n| size | osu_bibw, 64 owned buffers each way (MB/s) | osu_bibw -s, sendrecv_slice, one buffer each way (MB/s) |\n|---|---|---|")
for k in sorted(o):
    print(f"| {k} | {o[k]:.0f} | {sr.get(k, float('nan')):.0f} |")
m = rows("msgrate")
print("\n| size | send + recv us per message (osu_msgrate) |\n|---|---|")
for k in sorted(m):
    print(f"| {k} | {m[k]:.3f} |")
PY
