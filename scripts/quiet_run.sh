#!/usr/bin/env bash
# quiet_run.sh CMD [ARGS...] - run CMD once the machine is quiet.
#
# On a small shared machine (2 cores, other people's builds) a benchmark run during a
# compile measures the compile.  This waits until the CPUs have been at least
# QUIET_IDLE % idle (default 85) over one second, for at most QUIET_MAX_WAIT seconds
# (default 120; then it runs anyway and says so on stderr), then execs CMD.
set -euo pipefail
QUIET_IDLE=${QUIET_IDLE:-85}
QUIET_MAX_WAIT=${QUIET_MAX_WAIT:-120}
idle_pct() {
    local a b
    read -r -a a < /proc/stat
    sleep 1
    read -r -a b < /proc/stat
    local tot=0 i
    for i in 1 2 3 4 5 6 7 8; do tot=$((tot + b[i] - a[i])); done
    [ "$tot" -gt 0 ] || tot=1
    echo $((100 * ((b[4] + b[5]) - (a[4] + a[5])) / tot))
}
waited=0
while idle=$(idle_pct) && [ "$idle" -lt "$QUIET_IDLE" ]; do
    waited=$((waited + 1))
    if [ "$waited" -ge "$QUIET_MAX_WAIT" ]; then
        echo "quiet_run: running with only ${idle}% idle CPU" >&2
        break
    fi
done
exec "$@"
