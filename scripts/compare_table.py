#!/usr/bin/env python3
"""compare_table.py - markdown tables from the raw outputs of scripts/compare.sh.

Usage: python3 scripts/compare_table.py [RAW_DIR]   (default target/compare/raw)

Reads RAW_DIR/<bench>_n<ranks>_<impl>_r<rep>.txt (the benchmarks' own output,
preceded by "# cmd:" and "# rc=..." lines written by compare.sh) and
RAW_DIR/env.txt, and prints one table per benchmark: the median over the
repetitions for every size and implementation, plus the ratios
shmpi / Open MPI (the better of its two configurations, per size) and
shmpi / MPICH.  Data lines are "SIZE VALUE" (osu_barrier: just "VALUE");
every line starting with '#' is a comment.  Standard library only.

Clean runs: compare.sh probes the core-to-core latency before and after each
run and writes `kept=0|1` into its "# rc=" line; only kept runs enter a table.
A table for which some implementation has fewer than MIN_KEPT (environment,
default 3) kept runs is replaced by a warning naming what is missing
(ALL_RUNS=1 uses every run, clean or not, as older versions did).  Raw files
without a `kept=` field (older runs) count as kept; C2C_MAX=NS still filters
them by the probe before the run.
"""

import os
import re
import statistics
import sys
from collections import defaultdict

IMPLS = ["shmpi", "ompi-cma", "ompi-nosc", "mpich"]
IMPL_TITLES = {
    "shmpi": "shmpi",
    "ompi-cma": "Open MPI vader+CMA",
    "ompi-nosc": "Open MPI vader, no single-copy",
    "mpich": "MPICH",
}
FILE_RE = re.compile(r"^(osu_[a-z]+)_n(\d+)_([a-z-]+)_r(\d+)\.txt$")


def load(raw_dir, c2c_max=None):
    """Returns (values, runs, failed): values[(bench, n, impl)][size] = [v, ...].
    With `c2c_max`, only runs whose core-to-core probe before them read at most
    `c2c_max` ns are used (load.skipped counts the others)."""
    values = defaultdict(lambda: defaultdict(list))
    runs = defaultdict(int)
    failed = []
    c2c = []  # core-to-core ns recorded before each run (compare.sh's limits probe)
    skipped = 0
    discarded = defaultdict(int)  # (bench, n, impl) -> runs not kept (slow host state, failed)
    all_runs = os.environ.get("ALL_RUNS") == "1"
    for name in sorted(os.listdir(raw_dir)):
        m = FILE_RE.match(name)
        if not m:
            continue
        bench, n, impl = m.group(1), int(m.group(2)), m.group(3)
        key = (bench, n, impl)
        rows, run_c2c, bad, kept = [], None, None, True
        with open(os.path.join(raw_dir, name)) as f:
            for line in f:
                line = line.strip()
                rc = re.match(r"# rc=(\d+)", line)
                if rc and rc.group(1) != "0":
                    bad = f"{name} (exit code {rc.group(1)})"
                cc = re.search(r"c2c_ns_before=([\d.]+)", line)
                if cc:
                    run_c2c = float(cc.group(1))
                kk = re.search(r"kept=([01])", line)
                if kk and line.startswith("#"):
                    kept = kk.group(1) == "1"
                if not line or line.startswith("#"):
                    continue
                fields = line.split()
                try:
                    if len(fields) == 1:
                        rows.append((None, float(fields[0])))
                    elif len(fields) == 2:
                        rows.append((int(fields[0]), float(fields[1])))
                except ValueError:
                    pass  # not a data line (e.g. a stray message)
        if c2c_max is not None and (run_c2c is None or run_c2c > c2c_max):
            skipped += 1
            continue
        if run_c2c is not None:
            c2c.append(run_c2c)
        if not kept and not all_runs:
            discarded[key] += 1
            continue
        runs[key] += 1
        if bad:
            failed.append(bad)
        for size, v in rows:
            values[key][size].append(v)
    load.c2c = c2c
    load.skipped = skipped
    load.discarded = discarded
    return values, runs, failed


def human_size(size):
    for unit, shift in (("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift} {unit}"
    return f"{size} B"


def fmt(v):
    if v is None:
        return "-"
    if v >= 1000:
        return f"{v:.0f}"
    if v >= 100:
        return f"{v:.1f}"
    return f"{v:.2f}"


def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "-"


def median(xs):
    return statistics.median(xs) if xs else None


def render(title, unit, higher_is_better, row_label, rows, clean=None):
    """rows: [(label, {impl: [values]})] -> markdown lines (nothing if no rows).
    clean: (bench, n) whose kept-run counts gate the table (see too_few)."""
    if not rows:
        return []
    if clean is not None:
        short = too_few(*clean)
        if short:
            return [f"### {title}", "",
                    f"**WARNING: no table: too few clean runs** (fewer than {MIN_KEPT} kept, "
                    f"the others taken in the slow host state or failed): {short}. Run "
                    "`scripts/compare.sh run table` again (or raise MAX_ROUNDS).", ""]
    better = "higher" if higher_is_better else "lower"
    faster = "> 1" if higher_is_better else "< 1"
    out = [f"### {title}", "",
           f"{unit}, median of runs; {better} is better; a ratio {faster} means shmpi is faster; "
           "'Open MPI best' = the better of its two configurations in that row.", ""]
    head = [row_label] + [IMPL_TITLES[i] for i in IMPLS] + ["shmpi / Open MPI best", "shmpi / MPICH"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for label, cells in rows:
        med = {i: median(cells.get(i, [])) for i in IMPLS}
        ompi = [med[i] for i in ("ompi-cma", "ompi-nosc") if med[i] is not None]
        ompi_best = (max(ompi) if higher_is_better else min(ompi)) if ompi else None
        row = [label] + [fmt(med[i]) for i in IMPLS]
        row += [ratio(med["shmpi"], ompi_best), ratio(med["shmpi"], med["mpich"])]
        out.append("| " + " | ".join(row) + " |")
    out.append("")
    return out


MIN_KEPT = int(os.environ.get("MIN_KEPT") or 3)
RUNS = {}


def too_few(bench, n):
    """'' when every implementation run for (bench, n) has MIN_KEPT kept runs, else
    a list of those short of it with their kept/discarded counts."""
    if os.environ.get("ALL_RUNS") == "1":
        return ""
    short = []
    for i in IMPLS:
        k, d = RUNS.get((bench, n, i), 0), load.discarded.get((bench, n, i), 0)
        if (k or d) and k < MIN_KEPT:
            short.append(f"{IMPL_TITLES[i]} {k} kept / {d} discarded")
    return "; ".join(short)


def by_size(values, bench, n):
    """Rows by message size for one benchmark at n ranks."""
    per_impl = {i: values.get((bench, n, i), {}) for i in IMPLS}
    sizes = sorted({s for d in per_impl.values() for s in d if s is not None})
    return [(human_size(s), {i: d.get(s, []) for i, d in per_impl.items()}) for s in sizes]


def rank_counts(values, bench):
    keys = list(values) + list(getattr(load, "discarded", {}))
    return sorted({k[1] for k in keys if k[0] == bench})


def main():
    raw_dir = sys.argv[1] if len(sys.argv) > 1 else "target/compare/raw"
    if not os.path.isdir(raw_dir):
        sys.exit(f"compare_table.py: no raw results in {raw_dir} (run scripts/compare.sh run first)")
    c2c_max = float(os.environ["C2C_MAX"]) if os.environ.get("C2C_MAX") else None
    values, runs, failed = load(raw_dir, c2c_max)
    RUNS.update(runs)

    out = ["## shmpi vs Open MPI vs MPICH (scripts/compare.sh)", ""]
    env_path = os.path.join(raw_dir, "env.txt")
    env = {}
    if os.path.exists(env_path):
        with open(env_path) as f:
            env = dict(line.rstrip("\n").split(": ", 1) for line in f if ": " in line)
        out.append(f"Machine: {env.get('nproc', '?')} CPUs, {env.get('cpu', '?')}, "
                   f"kernel {env.get('kernel', '?')}, {env.get('os', '?')}.  ")
        out.append(f"Run: {env.get('date', '?')}, repetitions: {env.get('reps', '?')}; "
                   f"Open MPI {env.get('openmpi', '?')}, MPICH {env.get('mpich', '?')}, "
                   f"gcc {env.get('gcc', '?')} -O2; shmpi {env.get('shmpi', '?')}.  ")
        out.append(f"Settings: max size {env.get('max_size', '?')}, iterations "
                   f"{env.get('iters', '?')}, collectives' budget {env.get('coll_budget_s', '?')} s "
                   f"per size, MPICH oversubscribed: {env.get('mpich_oversub', '?')}.")
        out.append("")
    if load.c2c:
        cc = sorted(load.c2c)
        out.append(f"Core-to-core latency before each run (`limits c2c`, one cache line, ns): "
                   f"median {statistics.median(cc):.0f}, range {cc[0]:.0f}-{cc[-1]:.0f} over "
                   f"{len(cc)} runs, kept or not (the host moves the vCPUs; every figure moves with it).")
        out.append("")
    if c2c_max is not None:
        out.append(f"**Only runs with c2c <= {c2c_max:.0f} ns before them** (`C2C_MAX`): "
                   f"{load.skipped} run(s) left out; a cell is the median of what remains.")
        out.append("")
    disc = sum(load.discarded.values())
    if os.environ.get("ALL_RUNS") == "1":
        out.append("**All runs used** (`ALL_RUNS=1`), clean or not.")
    else:
        out.append(f"Clean runs only: {sum(runs.values())} kept, {disc} discarded (core-to-core "
                   f"probe above {env.get('c2c_fast_max_ns', '?')} ns "
                   "before or after the run, or a failed run); a table needs "
                   f"{MIN_KEPT} kept runs per implementation.")
        if disc:
            out.append("Discarded: " + ", ".join(
                f"{b} n={n} {i}: {c}" for (b, n, i), c in sorted(load.discarded.items())) + ".")
    out.append("")
    if not any(k[2] == "shmpi" for k in values):
        out += ["**shmpi: no results** (its examples were not built or not run): shmpi columns are '-'.", ""]

    out += render("Latency (osu_latency, 2 ranks)", "one-way µs", False, "size",
                  by_size(values, "osu_latency", 2), ("osu_latency", 2))
    out += render("Bandwidth (osu_bw, 2 ranks, window 64)", "MB/s (1e6 B/s)", True, "size",
                  by_size(values, "osu_bw", 2), ("osu_bw", 2))
    out += render("Bidirectional bandwidth (osu_bibw, 2 ranks, window 64)",
                  "MB/s (1e6 B/s), both directions together", True, "size",
                  by_size(values, "osu_bibw", 2), ("osu_bibw", 2))
    # the machine the runs were made on (env.txt), which may not be this one
    try:
        ncpu = int(env.get("nproc", ""))
    except ValueError:
        ncpu = os.cpu_count() or 2
    for n in rank_counts(values, "osu_allreduce"):
        note = f", oversubscribed on {ncpu} CPUs" if n > ncpu else ""
        out += render(f"MPI_Allreduce (osu_allreduce, doubles, MPI_SUM, {n} ranks{note})",
                      "avg µs per call (mean over ranks)", False, "size",
                      by_size(values, "osu_allreduce", n), ("osu_allreduce", n))
    for n in rank_counts(values, "osu_bcast"):
        note = f", oversubscribed on {ncpu} CPUs" if n > ncpu else ""
        out += render(f"MPI_Bcast (osu_bcast, bytes, root 0, {n} ranks{note})",
                      "avg µs per call (mean over ranks; each call timed alone, a barrier after it)",
                      False, "size", by_size(values, "osu_bcast", n), ("osu_bcast", n))
    out += render("MPI_Barrier (osu_barrier)", "avg µs per barrier (mean over ranks)", False, "ranks",
                  [(f"{n}", {i: values.get(("osu_barrier", n, i), {}).get(None, []) for i in IMPLS})
                   for n in rank_counts(values, "osu_barrier") if not too_few("osu_barrier", n)])
    for n in rank_counts(values, "osu_barrier"):
        short = too_few("osu_barrier", n)
        if short:
            out += [f"**WARNING: MPI_Barrier at {n} ranks: too few clean runs**: {short}.", ""]

    counts = sorted(set(runs.values()))
    if len(counts) > 1:
        out.append(f"Note: configurations have different numbers of runs ({counts}).")
    if failed:
        out.append("Runs that failed or timed out (their complete data lines are still used):")
        out += [f"- {f}" for f in failed]
    print("\n".join(out).rstrip())


if __name__ == "__main__":
    main()
