#!/usr/bin/env bash
# Wall-clock LMTP throughput: RUNS fresh servers, one skua-bench run each, then the median.
#   perf/profile/lmtp-bench.sh [RUNS] [-- extra skua-bench args]
# Environment: USERS (100), SHARDS (2), SIZE (4096), CONNECTIONS (8), DURATION (10).
# Prints each run's deliver row, the server's flush rounds (deliveries per round) and the
# median of deliveries/s; notes the load average.
source "$(dirname "$0")/common.sh"
RUNS=${1:-3}
shift || true
[ "${1:-}" = "--" ] && shift
SHARDS=${SHARDS:-2}
trap stop_server EXIT
rates=()
for run in $(seq 1 "$RUNS"); do
    make_data_dir
    pick_ports
    "$SKUA" serve --data-dir "$DATA" --imap-listen 127.0.0.1:$IMAP_PORT \
        --lmtp-listen 127.0.0.1:$LMTP_PORT --shards "$SHARDS" >"$DATA.log" 2>&1 &
    SERVER_PID=$!
    wait_port "$LMTP_PORT"
    echo "run $run: load average $(cut -d' ' -f1-3 /proc/loadavg)"
    out=$("$BENCH" lmtp --port "$LMTP_PORT" --users "$USERS" --password pw \
        --connections "${CONNECTIONS:-8}" --duration "${DURATION:-10}" --size "${SIZE:-4096}" \
        --quiet "$@")
    echo "$out" | grep -E '^(op|deliver)'
    rates+=("$(echo "$out" | awk '$1 == "deliver" { print $4 }')")
    stop_server
    SERVER_PID=
    # Flush rounds per shard, from the server's shutdown log: deliveries per round.
    rounds=$(sed 's/\x1b\[[0-9;]*m//g' "$DATA.log" | { grep -o 'flush_rounds=[0-9]*' || true; } \
        | awk -F= '{ s += $2 } END { print s + 0 }')
    count=$(echo "$out" | awk '$1 == "deliver" { print $2 }')
    echo "flush rounds: $rounds; deliveries per round: $(awk -v c="$count" -v r="$rounds" 'BEGIN { if (r > 0) printf "%.2f", c / r; else print "-" }')"
    rm -f "$DATA.log"
done
printf '%s\n' "${rates[@]}" | sort -n | awk '{ v[NR] = $1 } END { print "median deliveries/s: " v[int((NR + 1) / 2)] }'
