"""Tables of medians from scripts/mpi4py_compare.sh's raw runs: shmpi's Python
package against mpi4py over Open MPI, per benchmark, size and rank count, with the
ratio shmpi / mpi4py (below 1: shmpi is faster; for bandwidths, above 1).

    python python/bench/compare_table.py target/mpi4py-compare/raw
"""

import collections
import glob
import os
import re
import statistics
import sys

raw = sys.argv[1]
runs = collections.defaultdict(list)  # (bench, impl, n) -> [{size: value}]
for path in sorted(glob.glob(os.path.join(raw, "*.txt"))):
    m = re.match(r"(.+)\.(mpi4py|shmpi|c)\.n(\d+)\.(\d+)\.txt$", os.path.basename(path))
    if not m:
        continue
    bench, impl, n = m.group(1), m.group(2), int(m.group(3))
    vals, lower, upper, dict_us = {}, {}, {}, None
    for line in open(path):
        d = re.search(r"lowercase send/recv of .*: ([\d.]+) us", line)
        if d:
            dict_us = float(d.group(1))
        if line.startswith("#") or not line.strip():
            continue
        f = line.split()
        if bench == "pingpong" and len(f) == 4:
            lower[int(f[1])], upper[int(f[1])] = float(f[2]), float(f[3])
        elif len(f) >= 2:
            vals[int(f[0])] = float(f[1])
    if bench == "pingpong":
        runs[("pingpong-lower", impl, n)].append(lower)
        runs[("pingpong-upper", impl, n)].append(upper)
        if dict_us is not None:
            runs[("pingpong-dict", impl, n)].append({0: dict_us})
    else:
        runs[(bench, impl, n)].append(vals)


def median(bench, impl, n, size):
    xs = [r[size] for r in runs.get((bench, impl, n), []) if size in r]
    return statistics.median(xs) if xs else None


floors = []
for p in glob.glob(os.path.join(raw, "pickle_floor.*.txt")):
    floors.append(float(open(p).read()))
if floors:
    print(f"pickle.loads(pickle.dumps(d, 5)) alone: {statistics.median(floors):.2f} us (median of {len(floors)})")

d = (median("pingpong-dict", "shmpi", 2, 0), median("pingpong-dict", "mpi4py", 2, 0))
if None not in d:
    print(f"small dict, lowercase, one-way: shmpi {d[0]:.2f} us, mpi4py {d[1]:.2f} us, ratio {d[0] / d[1]:.2f}")

SHOW = {
    "pingpong-upper": [8, 1024, 65536, 1048576, 4194304],
    "pingpong-lower": [8, 1024, 65536, 1048576, 4194304],
    "osu_latency": [0, 8, 1024, 65536, 1048576, 4194304],
    "osu_bw": [8, 1024, 65536, 1048576, 4194304],
    "osu_bibw": [8, 1024, 65536, 1048576, 4194304],
    "osu_bcast": [8, 1024, 65536, 1048576],
    "osu_barrier": [0],
    "osu_allgather": [8, 1024, 65536, 1048576],
    "osu_alltoall": [8, 1024, 65536, 1048576],
    "osu_allreduce": [8, 1024, 65536, 1048576],
}
print()
print("| benchmark | ranks | size (B) | shmpi | mpi4py + Open MPI | shmpi / mpi4py |")
print("|---|---|---|---|---|---|")
for bench, sizes in SHOW.items():
    for n in (2, 8):
        for size in sizes:
            a, b = median(bench, "shmpi", n, size), median(bench, "mpi4py", n, size)
            if a is None or b is None:
                continue
            unit = "MB/s" if bench in ("osu_bw", "osu_bibw") else "us"
            print(f"| {bench} | {n} | {size} | {a:.2f} {unit} | {b:.2f} {unit} | {a / b:.2f} |")
c = [median("osu_latency_c", "c", 2, s) for s in (8, 1048576)]
if None not in c:
    print(f"\nC osu_latency over Open MPI: 8 B {c[0]:.2f} us, 1 MiB {c[1]:.2f} us")
