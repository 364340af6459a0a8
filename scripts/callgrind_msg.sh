#!/usr/bin/env bash
# callgrind_msg.sh - instructions per message on the 8-byte hot path, counted by
# valgrind's callgrind (repeatable, unlike timings on this VM).
#
# 1. Ping-pong: osu_latency -m 8 under callgrind, collecting only inside
#    `pingpong_loop` (--toggle-collect), both ranks on one CPU (taskset -c 0) with
#    SHMPI_SPIN_US=0, so that every wait is exactly one yield (deterministic counts;
#    spinning would add a random number of polls).  Two runs, -i 2000 and -i 1000,
#    are subtracted: (Ir(2000) - Ir(1000)) / 5500 round trips (5 sizes 0..8 B, 1100
#    extra round trips each) = Ir per round trip per rank = one send + one receive +
#    one idle step (a yield) per rank.
# 2. Message cost without waiting: osu_msgrate -m 8 under callgrind, collecting only
#    inside send_burst (rank 0) and recv_burst (rank 1): Ir per send and per receive.
#
# 3. Non-blocking messages: osu_bw -n -m 8 (64 isend_vec / irecv_into per window,
#    collecting inside `window_nonblocking`: Ir per message sent, rank 0, and
#    received, rank 1) and osu_bibw -m 8 (both ranks post 64 receives and 64 sends per
#    window: Ir per message sent and received), both ranks on one CPU as in 1.; runs
#    at -i 2000 and -i 1000 subtracted: (Ir(2000) - Ir(1000)) / (1100 x 64 x 4 sizes)
#    (`-i N` runs N timed and N/10 warm-up windows per size).
#
# Usage: scripts/callgrind_msg.sh        (builds the release examples first)
#        BIN_DIR=DIR scripts/callgrind_msg.sh   (no build: DIR/shmrun, DIR/examples/osu_*;
#                                               for A/B of two builds kept aside)
set -euo pipefail
cd "$(dirname "$0")/.."
REL=${BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}
[ -n "${BIN_DIR:-}" ] || cargo build --release --bin shmrun --example osu_latency --example osu_msgrate \
    --example osu_bw --example osu_bibw >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
declare -A ir
for i in 1000 2000; do
    SHMPI_SPIN_US=0 taskset -c 0 "$REL/shmrun" -n 2 valgrind --tool=callgrind \
        --callgrind-out-file="$tmp/pp.$i.r%q{SHMPI_RANK}" --toggle-collect='*pingpong_loop*' \
        "$REL/examples/osu_latency" -m 8 -i "$i" > /dev/null 2> "$tmp/pp.$i.log"
    for r in 0 1; do
        ir[$i.$r]=$(callgrind_annotate "$tmp/pp.$i.r$r" 2> /dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1}')
    done
done
for r in 0 1; do
    echo "ping-pong 8 B, rank $r: $(((ir[2000.$r] - ir[1000.$r]) / 5500)) Ir per round trip" \
        "(Ir $((ir[1000.$r])) at -i 1000, $((ir[2000.$r])) at -i 2000)"
done
"$REL/shmrun" -n 2 valgrind --tool=callgrind --callgrind-out-file="$tmp/mr.r%q{SHMPI_RANK}" \
    --toggle-collect='*send_burst*' --toggle-collect='*recv_burst*' \
    "$REL/examples/osu_msgrate" -m 8 -i 4000 -s > /dev/null 2> "$tmp/mr.log"
for r in 0 1; do
    t=$(callgrind_annotate "$tmp/mr.r$r" 2> /dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1}')
    echo "osu_msgrate 0..8 B (20000 messages), rank $r ($([ $r = 0 ] && echo send || echo recv)):" \
        "$((t / 20000)) Ir per message"
done
for prog in "osu_bw -n:window_nonblocking" "osu_bibw:main"; do
    args=${prog%%:*}
    # shellcheck disable=SC2086 # the program and its options, split on purpose
    set -- $args
    for i in 1000 2000; do
        SHMPI_SPIN_US=0 taskset -c 0 "$REL/shmrun" -n 2 valgrind --tool=callgrind \
            --callgrind-out-file="$tmp/nb.$i.r%q{SHMPI_RANK}" --toggle-collect="*${prog##*:}*" \
            "$REL/examples/$1" "${@:2}" -m 8 -i "$i" > /dev/null 2> "$tmp/nb.$i.log"
        for r in 0 1; do
            ir[nb.$i.$r]=$(callgrind_annotate "$tmp/nb.$i.r$r" 2> /dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1}')
        done
    done
    for r in 0 1; do
        case "$args.$r" in
            "osu_bw -n.0") what="per message sent" ;;
            "osu_bw -n.1") what="per message received" ;;
            *) what="per message sent and received" ;;
        esac
        echo "$args -m 8, rank $r: $(((ir[nb.2000.$r] - ir[nb.1000.$r]) / 281600)) Ir $what"
    done
done
