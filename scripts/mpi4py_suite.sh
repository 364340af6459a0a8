#!/usr/bin/env bash
# mpi4py's own test suite on shmpi: fetches the mpi4py 4.1.2 source distribution from
# PyPI (cached in target/mpi4py-sdist/, never committed), then runs its test runner
# under shmrun, `shmrun -n N python -m shmpi test/main.py ...`, for every test file
# below at every N, minus the cases python/mpi4py-excluded.txt lists with a reason.
# Each run has a watchdog (shmrun --timeout, and `timeout` around it).
#
#   scripts/mpi4py_suite.sh                 # the must-pass files at N = 1 2 3 5; fails on any failure
#   NS="2" FILES="test_p2p_obj" scripts/mpi4py_suite.sh
#   REST=1 scripts/mpi4py_suite.sh          # every other test file (reported, never fails the run)
#   FETCH_ONLY=1 scripts/mpi4py_suite.sh    # only download and unpack the source
#
# Environment: PYTHON (a Python with shmpi, numpy installed; default target/venv-ci),
# SHMRUN (default target/release/shmrun), RUN_TIMEOUT (seconds per run, default 300).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-$ROOT/target/venv-ci/bin/python}
SHMRUN=${SHMRUN:-$ROOT/target/release/shmrun}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
NS=${NS:-"1 2 3 5"}
VERSION=4.1.2
MUST="test_p2p_obj test_cco_obj test_p2p_buf test_cco_buf test_cco_vec test_msgzero test_status
test_p2p_obj_matched test_p2p_buf_matched test_pickle test_request test_group test_cco_nb_vec
test_cco_nb_buf test_cco_pr_buf test_cco_pr_vec test_win test_rma test_rma_nb
test_comm_topo test_cco_ngh_buf test_cco_ngh_obj test_cco_pr_ngh_buf test_file test_session
test_attributes test_info test_comm_inter test_cco_obj_inter test_cco_buf_inter
test_cco_vec_inter test_comm test_util_pkl5 test_util_sync test_exceptions test_errorcode
test_grequest test_p2p_buf_part"
FILES=${FILES:-$MUST}
CACHE=$ROOT/target/mpi4py-sdist
SRC=$CACHE/mpi4py-$VERSION
XFILE=$ROOT/python/mpi4py-excluded.txt
LOGS=$ROOT/target/mpi4py-logs
mkdir -p "$CACHE" "$LOGS"

if [ ! -f "$SRC/test/main.py" ]; then
    if [ ! -f "$CACHE/mpi4py-$VERSION.tar.gz" ]; then
        "$PYTHON" -m pip download --quiet --no-deps --no-binary :all: "mpi4py==$VERSION" -d "$CACHE" \
            || { echo "mpi4py_suite: cannot download mpi4py $VERSION from PyPI" >&2; exit 2; }
    fi
    tar -xzf "$CACHE/mpi4py-$VERSION.tar.gz" -C "$CACHE" || exit 2
fi

if [ "${FETCH_ONLY:-0}" = 1 ]; then exit 0; fi
if [ "${REST:-0}" = 1 ]; then
    FILES=$(cd "$SRC/test" && ls test_*.py | sed 's/\.py$//' | grep -vxF -f <(printf '%s\n' $MUST))
fi

fail=0
printf '%-24s %2s %5s %5s %6s %5s %5s  %s\n' file N ran pass failed skip excl result
for f in $FILES; do
    for n in $NS; do
        log=$LOGS/$f.n$n.log
        (cd "$SRC" && timeout -k 5 "$((RUN_TIMEOUT + 10))" "$SHMRUN" -n "$n" --timeout "$RUN_TIMEOUT" \
            "$PYTHON" -m shmpi "$ROOT/python/tests/mpi4py/run_suite.py" test "$XFILE" "$f") >"$log" 2>&1
        rc=$?
        # Rank 0's summary; a case that fails on any rank fails (the exit status says so).
        line=$(grep -a -o 'SUITE rank=0 [^$]*' "$log" | head -1)
        if [ -z "$line" ]; then
            printf '%-24s %2s %5s %5s %6s %5s %5s  %s\n' "$f" "$n" - - - - - "no summary (exit $rc, see $log)"
            fail=1
            continue
        fi
        get() { echo "$line" | sed -n "s/.* $1=\([0-9]*\).*/\1/p"; }
        ran=$(get ran) failed=$(get failed) errors=$(get errors) skipped=$(get skipped) excl=$(get excluded)
        bad=$(grep -a -o 'SUITE rank=[0-9]* [^$]*' "$log" | sed -n 's/.* failed=\([0-9]*\) errors=\([0-9]*\).*/\1 \2/p' \
            | awk '{ if ($1 + $2 > m) m = $1 + $2 } END { print m + 0 }')
        pass=$((ran - bad - skipped))
        [ "$pass" -ge 0 ] || pass=0 # a class-level error counts on top of its cases
        res=ok
        [ "$rc" = 0 ] || { res="FAIL (exit $rc, $log)"; fail=1; }
        printf '%-24s %2s %5s %5s %6s %5s %5s  %s\n' "$f" "$n" "$ran" "$pass" "$bad" "$skipped" "$excl" "$res"
    done
done
if [ "${REST:-0}" = 1 ]; then exit 0; fi
exit $fail
