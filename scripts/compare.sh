#!/usr/bin/env bash
# compare.sh - shmpi vs Open MPI vs MPICH on this machine, in one sitting.
#
# Installs Open MPI and MPICH from the Debian packages (only what is missing),
# builds the project's C OSU-style benchmarks (perf/c/) with both MPIs and
# shmpi's Rust examples of the same names, runs them all interleaved, and
# prints markdown tables (medians over repetitions) with shmpi/MPI ratios.
#
# Usage:   scripts/compare.sh [step ...]        (from anywhere)
#   steps: install build run table             (default: all four, in order)
#   e.g.   scripts/compare.sh                   # everything, ~10 min with REPS=3
#          REPS=1 MAX_SIZE=64K scripts/compare.sh run table   # quick look
#          scripts/compare.sh table             # re-print tables from raw files
#
# Environment knobs:
#   REPS=3               kept (clean) runs wanted per benchmark and implementation;
#                        rounds run every benchmark once for every implementation that
#                        still lacks kept runs, implementations interleaved
#   C2C_FAST=100         a run is kept only if the core-to-core probe (`limits c2c`,
#                        one cache line, ns) reads at most this both before and after it:
#                        the host moves the vCPUs between a fast (40-80 ns) and a slow
#                        (200-250 ns) state, and one slow run skews a median of three
#                        (0 = keep every run, no probe)
#   MAX_ROUNDS=3*REPS    give up after this many rounds; a benchmark with fewer than
#                        MIN_KEPT kept runs for some implementation then gets a warning
#                        instead of a table (see compare_table.py)
#   MIN_KEPT=REPS        ... the least number of kept runs a table cell may rest on
#   MAX_SIZE=            if set, -m MAX_SIZE for every benchmark (bytes; 64K, 4M ok);
#                        default: the programs' own (4 MiB pt2pt, 8 MiB allreduce,
#                        1 MiB bcast)
#   ITERS=               if set, -i ITERS for every benchmark (see perf/README.md)
#   COLL_NS="2 8"        rank counts for the collectives (e.g. "2 4 8 16" on 16 cores)
#   COLL_BUDGET=1        collectives: seconds of timed calls per size (-t, every impl)
#   SKIP_MPICH_OVERSUB=0 1 = skip MPICH at 8 ranks (it busy-polls, ~25 ms/call)
#   MPICH_OVERSUB_BUDGET=0.25  COLL_BUDGET for MPICH at 8 ranks (keeps it short)
#   IMPLS="shmpi ompi-cma ompi-nosc mpich"   implementations to run
#   RUN_TIMEOUT=120      hard limit per run (timeout -k 5 RUN_TIMEOUT)
#   QUIET_IDLE=80        before each run wait until CPUs are >= this % idle
#   QUIET_MAX_WAIT=15    ... for at most this many seconds (0 = don't wait)
#
# Implementations (launch commands, as in the project's anchors):
#   shmpi      $REL/shmrun -n N --bind-to core|none $REL/examples/osu_X
#              (REL = ${CARGO_TARGET_DIR:-target}/release: cargo's own output directory)
#   ompi-cma   mpirun.openmpi --mca pml ob1 --mca btl self,vader   (vader's default
#              single-copy mechanism, CMA) [--bind-to core | --oversubscribe]
#   ompi-nosc  the same + --mca btl_vader_single_copy_mechanism none
#   mpich      mpirun.mpich -np N [-bind-to core]  (Debian ch4:ucx build)
# With at most as many ranks as CPUs every implementation binds one rank per core;
# with more (8 ranks on 2 cores: oversubscribed) none binds.
#
# Benchmarks: osu_latency, osu_bw, osu_bibw at 2 ranks; osu_allreduce,
# osu_barrier and osu_bcast at each of COLL_NS ranks.  Output: target/compare/{openmpi,mpich}/ (C
# binaries), target/compare/raw/ (one file per run + env.txt), tables on stdout
# (also saved as target/compare/tables.md).  If shmpi's examples cannot be
# built, a warning is printed and the shmpi columns show "-".
set -euo pipefail
cd "$(dirname "$0")/.."

REPS=${REPS:-3}
C2C_FAST=${C2C_FAST:-100}
MAX_ROUNDS=${MAX_ROUNDS:-$((3 * REPS))}
MIN_KEPT=${MIN_KEPT:-$REPS}
MAX_SIZE=${MAX_SIZE:-}
ITERS=${ITERS:-}
COLL_NS=${COLL_NS:-2 8}
COLL_BUDGET=${COLL_BUDGET:-1}
SKIP_MPICH_OVERSUB=${SKIP_MPICH_OVERSUB:-0}
MPICH_OVERSUB_BUDGET=${MPICH_OVERSUB_BUDGET:-0.25}
IMPLS=${IMPLS:-shmpi ompi-cma ompi-nosc mpich}
RUN_TIMEOUT=${RUN_TIMEOUT:-120}
QUIET_IDLE=${QUIET_IDLE:-80}
QUIET_MAX_WAIT=${QUIET_MAX_WAIT:-15}

OUT=target/compare
# where cargo puts shmpi's release binaries (it honours CARGO_TARGET_DIR; so must we)
REL=${CARGO_TARGET_DIR:-target}/release
RAW=$OUT/raw
BENCHES=(osu_latency osu_bw osu_bibw osu_allreduce osu_barrier osu_bcast)
SHMPI_LIST=$OUT/shmpi-benches.txt # written by `build`: shmpi examples built OK
NCPU=$(nproc)                     # up to this many ranks, one rank per core

# Open MPI refuses to run as root without these.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
OMPI=(mpirun.openmpi --mca pml ob1 --mca btl "self,vader")

log() { printf '[compare] %s\n' "$*" >&2; }
warn() { printf '[compare] WARNING: %s\n' "$*" >&2; }

# MAX_SIZE may say 64K or 4M; the programs all get plain bytes
if [ -n "$MAX_SIZE" ]; then
    case $MAX_SIZE in
    *[kK]) MAX_SIZE=$((${MAX_SIZE%?} << 10)) ;;
    *[mM]) MAX_SIZE=$((${MAX_SIZE%?} << 20)) ;;
    *[!0-9]* | '') echo "MAX_SIZE must be bytes, or a number with K or M" >&2 && exit 2 ;;
    esac
fi

# --- install -------------------------------------------------------------

step_install() {
    local pkgs=(openmpi-bin libopenmpi-dev mpich libmpich-dev gcc)
    local missing=() p
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        log "install: all of ${pkgs[*]} already installed"
        return 0
    fi
    log "install: installing ${missing[*]}"
    # A private TMPDIR for dpkg: the shared /tmp got cleaned mid-install once
    # (see /work/shared/anchors/README.md) and left dpkg half-way.
    mkdir -p "$OUT/apt-tmp"
    apt-get update
    DEBIAN_FRONTEND=noninteractive TMPDIR="$PWD/$OUT/apt-tmp" \
        apt-get install -y --no-install-recommends "${missing[@]}"
}

# --- build ---------------------------------------------------------------

step_build() {
    local b
    mkdir -p "$OUT/openmpi" "$OUT/mpich"
    for b in "${BENCHES[@]}"; do
        mpicc.openmpi -O2 -Wall -o "$OUT/openmpi/$b" "perf/c/$b.c"
        mpicc.mpich -O2 -Wall -o "$OUT/mpich/$b" "perf/c/$b.c"
    done
    gcc -O2 -Wall -o "$OUT/limits" perf/probes/limits.c
    log "build: C benchmarks in $OUT/openmpi/ and $OUT/mpich/, $OUT/limits (c2c probe)"

    # shmpi: everything at once; if that fails (e.g. an unrelated example is
    # broken), each benchmark on its own.  Only what built now gets run.
    : > "$SHMPI_LIST"
    if cargo build --release --bin shmrun --examples; then
        for b in "${BENCHES[@]}"; do
            if [ -x "$REL/examples/$b" ]; then echo "$b" >> "$SHMPI_LIST"; fi
        done
    else
        warn "cargo build --release --bin shmrun --examples failed; trying the osu_* examples one by one"
        for b in "${BENCHES[@]}"; do
            if cargo build --release --bin shmrun --example "$b" 2>/dev/null; then
                echo "$b" >> "$SHMPI_LIST"
            fi
        done
    fi
    for b in "${BENCHES[@]}"; do
        grep -qx "$b" "$SHMPI_LIST" ||
            warn "shmpi example $b could not be built: its shmpi column will be '-'"
    done
}

# --- run -----------------------------------------------------------------

cpu_idle_pct() { # idle % of all CPUs over the next second
    local u1 n1 s1 i1 w1 q1 sq1 st1 u2 n2 s2 i2 w2 q2 sq2 st2 tot
    read -r _ u1 n1 s1 i1 w1 q1 sq1 st1 _ < /proc/stat
    sleep 1
    read -r _ u2 n2 s2 i2 w2 q2 sq2 st2 _ < /proc/stat
    tot=$(((u2 + n2 + s2 + i2 + w2 + q2 + sq2 + st2) - (u1 + n1 + s1 + i1 + w1 + q1 + sq1 + st1)))
    [ "$tot" -gt 0 ] || tot=1
    echo $((100 * ((i2 + w2) - (i1 + w1)) / tot))
}

IDLE=100
wait_quiet() { # others compile on this 2-core machine: wait for a quiet moment
    local waited=0
    [ "$QUIET_MAX_WAIT" -gt 0 ] || { IDLE=NA; return 0; }
    while IDLE=$(cpu_idle_pct) && [ "$IDLE" -lt "$QUIET_IDLE" ]; do
        if [ "$waited" -ge "$QUIET_MAX_WAIT" ]; then
            warn "running with only ${IDLE}% idle CPU (other load on the machine)"
            return 0
        fi
        waited=$((waited + 1))
    done
}

shmpi_has() { # shmpi_has BENCH: was shmpi's example built (or, without a build step, present)?
    if [ -f "$SHMPI_LIST" ]; then
        grep -qx "$1" "$SHMPI_LIST"
    else
        [ -x "$REL/examples/$1" ] && [ -x "$REL/shmrun" ]
    fi
}

# run_one IMPL BENCH NRANKS REP: one bounded run into $RAW/BENCH_nN_IMPL_rREP.txt
run_one() {
    local impl=$1 bench=$2 n=$3 rep=$4
    local file=$RAW/${bench}_n${n}_${impl}_r${rep}.txt
    local args=() cmd=() rc t0 t1 budget=$COLL_BUDGET
    [ -z "$MAX_SIZE" ] || args+=(-m "$MAX_SIZE")
    [ -z "$ITERS" ] || args+=(-i "$ITERS")
    # the collectives take a time budget per size, the same for every implementation
    [ "$impl" != mpich ] || [ "$n" -le "$NCPU" ] || budget=$MPICH_OVERSUB_BUDGET
    case $bench in osu_allreduce | osu_barrier | osu_bcast) args+=(-t "$budget") ;; esac

    case $impl in
    shmpi)
        if ! shmpi_has "$bench"; then
            rm -f "$file"
            return 0
        fi
        cmd=("$REL/shmrun" -n "$n" --bind-to "$([ "$n" -le "$NCPU" ] && echo core || echo none)"
            "$REL/examples/$bench" "${args[@]}")
        ;;
    ompi-cma | ompi-nosc)
        cmd=("${OMPI[@]}")
        [ "$impl" = ompi-cma ] || cmd+=(--mca btl_vader_single_copy_mechanism none)
        if [ "$n" -le "$NCPU" ]; then cmd+=(--bind-to core); else cmd+=(--oversubscribe); fi
        cmd+=(-np "$n" "$OUT/openmpi/$bench" "${args[@]}")
        ;;
    mpich)
        cmd=(mpirun.mpich -np "$n")
        if [ "$n" -le "$NCPU" ]; then
            cmd+=(-bind-to core "$OUT/mpich/$bench" "${args[@]}")
        else
            if [ "$SKIP_MPICH_OVERSUB" = 1 ]; then
                rm -f "$file"
                return 0
            fi
            cmd+=("$OUT/mpich/$bench" "${args[@]}")
        fi
        ;;
    *)
        warn "unknown implementation $impl"
        return 0
        ;;
    esac

    wait_quiet
    # The host moves the two vCPUs: core-to-core latency jumps between ~35, ~55 and
    # ~200 ns from one minute to the next, and every figure moves with it.  Probe it
    # right before and right after the run; the run is kept only if both are fast.
    local c2c=NA c2c_after=NA kept=1
    c2c=$(c2c_probe)
    t0=$(date +%s.%N)
    rc=0
    timeout -k 5 "$RUN_TIMEOUT" "${cmd[@]}" > "$file.tmp" 2> "${file%.txt}.err" || rc=$?
    t1=$(date +%s.%N)
    c2c_after=$(c2c_probe)
    if [ "$C2C_FAST" != 0 ]; then
        is_fast "$c2c" && is_fast "$c2c_after" || kept=0
    fi
    [ "$rc" -eq 0 ] || kept=0
    {
        echo "# cmd: ${cmd[*]}"
        echo "# rc=$rc wall_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b - a}') cpu_idle_before_pct=$IDLE c2c_ns_before=$c2c c2c_ns_after=$c2c_after c2c_fast_max=$C2C_FAST kept=$kept"
        cat "$file.tmp"
    } > "$file"
    rm -f "$file.tmp"
    [ -s "${file%.txt}.err" ] || rm -f "${file%.txt}.err"
    if [ "$rc" -ne 0 ]; then
        warn "$(basename "$file"): exit code $rc$([ "$rc" -eq 124 ] && echo ' (timed out)'), see ${file%.txt}.err"
    else
        log "$(basename "$file") ok ($(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b - a}') s, c2c $c2c/$c2c_after ns: $([ "$kept" = 1 ] && echo kept || echo discarded))"
    fi
    RUN_KEPT=$kept
}

c2c_probe() { # one cache line between two cores, ns (NA without the probe)
    if [ "$C2C_FAST" != 0 ] && [ -x "$OUT/limits" ]; then
        "$OUT/limits" c2c 2> /dev/null || echo NA
    else
        echo NA
    fi
}

is_fast() { # is_fast NS: a probe reading in the fast host state (NA: no probe, counts as fast)
    [ "$1" = NA ] && return 0
    awk -v v="$1" -v m="$C2C_FAST" 'BEGIN{exit !(v + 0 <= m + 0)}'
}

write_env() {
    {
        echo "date: $(date '+%Y-%m-%d %H:%M %Z')"
        echo "nproc: $(nproc)"
        echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -n1)"
        echo "kernel: $(uname -r)"
        echo "os: $(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release)"
        echo "openmpi: $(dpkg-query -W -f='${Version}' openmpi-bin 2>/dev/null || echo '?')"
        echo "mpich: $(dpkg-query -W -f='${Version}' mpich 2>/dev/null || echo '?')"
        echo "gcc: $(gcc -dumpfullversion 2>/dev/null || echo '?')"
        echo "shmpi: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src 2>/dev/null || echo ' (+ local changes)')"
        echo "reps: $REPS"
        echo "c2c_fast_max_ns: $C2C_FAST"
        echo "max_rounds: $MAX_ROUNDS"
        echo "min_kept: $MIN_KEPT"
        echo "max_size: ${MAX_SIZE:-default}"
        echo "iters: ${ITERS:-default}"
        echo "coll_ns: $COLL_NS"
        echo "coll_budget_s: $COLL_BUDGET"
        echo "impls: $IMPLS"
        echo "mpich_oversub: $([ "$SKIP_MPICH_OVERSUB" = 1 ] && echo skipped || echo "budget $MPICH_OVERSUB_BUDGET s per size")"
    } > "$RAW/env.txt"
}

step_run() {
    local b
    for b in "${BENCHES[@]}"; do
        if { [[ " $IMPLS " == *" ompi-"* ]] && [ ! -x "$OUT/openmpi/$b" ]; } ||
            { [[ " $IMPLS " == *" mpich "* ]] && [ ! -x "$OUT/mpich/$b" ]; }; then
            log "run: $OUT/{openmpi,mpich}/$b missing, run the build step first"
            return 1
        fi
    done
    # `run` without `build` uses whatever shmpi binaries exist: say so if they are
    # older than the sources (the table would describe another version)
    local stale="" b
    for b in "${BENCHES[@]}"; do
        [ -x "$REL/examples/$b" ] || continue
        [ -z "$(find src "perf/rust/$b.rs" Cargo.toml -newer "$REL/examples/$b" -print -quit 2>/dev/null)" ] ||
            stale+=" $b"
    done
    [ -z "$stale" ] || warn "shmpi sources are newer than the binaries of:$stale (run the build step first)"
    # a fresh set: the tables take the median over every _r* file present
    rm -rf "$RAW"
    mkdir -p "$RAW"
    write_env
    # Rounds: each runs every (benchmark, ranks) once for every implementation that
    # has fewer than REPS kept runs of it, implementations interleaved, until all
    # have REPS or MAX_ROUNDS rounds are spent.
    declare -A KEPT=()
    local round impl bench n todo start=$SECONDS configs=()
    for bench in osu_latency osu_bw osu_bibw; do configs+=("$bench 2"); done
    for n in $COLL_NS; do
        for bench in osu_allreduce osu_barrier osu_bcast; do configs+=("$bench $n"); done
    done
    local cfg total=0 discarded=0
    for round in $(seq 1 "$MAX_ROUNDS"); do
        todo=0
        for cfg in "${configs[@]}"; do
            read -r bench n <<< "$cfg"
            for impl in $IMPLS; do
                [ "${KEPT[$cfg $impl]:-0}" -lt "$REPS" ] || continue
                todo=1
                RUN_KEPT=1
                run_one "$impl" "$bench" "$n" "$round"
                [ -f "$RAW/${bench}_n${n}_${impl}_r${round}.txt" ] || { KEPT[$cfg $impl]=$REPS; continue; }
                total=$((total + 1))
                if [ "$RUN_KEPT" = 1 ]; then
                    KEPT[$cfg $impl]=$((${KEPT[$cfg $impl]:-0} + 1))
                else
                    discarded=$((discarded + 1))
                fi
            done
        done
        [ "$todo" = 1 ] || break
        log "round $round done: $total runs so far, $discarded discarded (slow host state or failed)"
    done
    log "run: done in $((SECONDS - start)) s, $total runs, $discarded discarded, raw outputs in $RAW/"
    for cfg in "${configs[@]}"; do
        for impl in $IMPLS; do
            [ "${KEPT[$cfg $impl]:-0}" -ge "$MIN_KEPT" ] ||
                warn "$cfg $impl: only ${KEPT[$cfg $impl]:-0} clean run(s) of $REPS wanted after $MAX_ROUNDS rounds"
        done
    done
}

# --- table ---------------------------------------------------------------

step_table() {
    MIN_KEPT=$MIN_KEPT python3 scripts/compare_table.py "$RAW" | tee "$OUT/tables.md"
}

# --- main ----------------------------------------------------------------

steps=("$@")
[ "${#steps[@]}" -gt 0 ] || steps=(install build run table)
for s in "${steps[@]}"; do
    case $s in
    install | build | run | table) ;;
    *)
        echo "unknown step '$s' (steps: install build run table)" >&2
        exit 2
        ;;
    esac
done
for s in "${steps[@]}"; do
    log "step $s"
    "step_$s"
done
