#!/usr/bin/env bash
# A/B wall-clock comparison of two skua binaries under the same LMTP load, interleaved
# (A, B, A, B, ...) so that changing machine load hits both alike; prints each run and the
# median deliveries/s and p99 of each.
#   perf/profile/lmtp-ab.sh BINARY_A BINARY_B [PAIRS] [-- extra skua-bench args]
# Environment as lmtp-bench.sh (USERS, SHARDS, SIZE, CONNECTIONS, DURATION).
source "$(dirname "$0")/common.sh"
A=$1 B=$2
PAIRS=${3:-3}
shift 2; shift || true
[ "${1:-}" = "--" ] && shift
declare -A rates p99s
for pair in $(seq 1 "$PAIRS"); do
    for side in A B; do
        bin=${!side}
        out=$(SKUA=$bin "$(dirname "$0")/lmtp-bench.sh" 1 -- "$@")
        row=$(echo "$out" | awk '$1 == "deliver"')
        echo "pair $pair $side: $(echo "$out" | head -1 | sed 's/run 1: //') | $row"
        rates[$side]+="$(echo "$row" | awk '{ print $4 }') "
        p99s[$side]+="$(echo "$row" | awk '{ print $8 }') "
    done
done
for side in A B; do
    median=$(printf '%s\n' ${rates[$side]} | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
    echo "$side (${!side}): median deliveries/s $median; p99s: ${p99s[$side]}"
done
