"""One-way latency against message size, log-log, from scripts/mpi4py_compare.sh's
raw runs (medians): mpi4py lowercase and uppercase, shmpi's Python package lowercase
and uppercase, and C (osu_latency) over Open MPI.

    python python/bench/plot_latency.py target/mpi4py-compare/raw docs/img/python_pingpong.png
"""

import collections
import glob
import os
import re
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

raw, out = sys.argv[1], sys.argv[2]
series = collections.defaultdict(lambda: collections.defaultdict(list))
for path in glob.glob(os.path.join(raw, "pingpong.*.n2.*.txt")):
    impl = path.split(".")[-4]
    for line in open(path):
        f = line.split()
        if line.startswith("#") or len(f) != 4:
            continue
        series[f"{impl} lowercase (pickle)"][int(f[1])].append(float(f[2]))
        series[f"{impl} uppercase (buffer)"][int(f[1])].append(float(f[3]))
for path in glob.glob(os.path.join(raw, "osu_latency_c.c.n2.*.txt")):
    for line in open(path):
        f = line.split()
        if line.startswith("#") or len(f) != 2 or int(f[0]) < 8:
            continue
        series["C osu_latency, Open MPI"][int(f[0])].append(float(f[1]))

style = {
    "mpi4py lowercase (pickle)": ("tab:blue", "--", "o"),
    "mpi4py uppercase (buffer)": ("tab:blue", "-", "s"),
    "shmpi lowercase (pickle)": ("tab:red", "--", "o"),
    "shmpi uppercase (buffer)": ("tab:red", "-", "s"),
    "C osu_latency, Open MPI": ("black", ":", "^"),
}
fig, ax = plt.subplots(figsize=(7, 4.5))
for name, (color, ls, marker) in style.items():
    pts = series.get(name)
    if not pts:
        continue
    xs = sorted(pts)
    ax.plot(xs, [statistics.median(pts[x]) for x in xs], color=color, linestyle=ls, marker=marker,
            markersize=3, label=name)
ax.set_xscale("log", base=2)
ax.set_yscale("log")
ax.set_xlabel("message size (bytes)")
ax.set_ylabel("one-way latency (µs)")
ax.set_title("Ping-pong, 2 ranks on one machine: shmpi vs mpi4py 4.1.2 + Open MPI")
ax.grid(True, which="both", alpha=0.3)
ax.legend(fontsize=8)
fig.tight_layout()
os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
fig.savefig(out, dpi=110)
print(f"wrote {out}")
