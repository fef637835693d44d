#!/bin/bash
# Alternating A/B of skua binaries on one scenario: REPS rounds, each binary once per round,
# the order reversed every other round (the first binary of a round runs about 5 % faster on
# the 2-core VM, whatever it is). Fresh data dir per run, 100 users, server pinned to CPU 0,
# skua-bench to CPU 1, 10 s per run. Prints one line per run: binary, ops/s of every command
# (deliveries for lmtp), and the p50 and p99 of deliveries (lmtp) or of the first command.
#   perf/ab_alternate.sh SCENARIO CONNECTIONS REPS BIN...
#   e.g. perf/ab_alternate.sh lmtp 8 4 /tmp/skua-old /tmp/skua-new
# SCENARIO: lmtp, imap-mixed or imap-read. Copy the binaries out of target/ first: a build
# replaces them under you. Extra skua-bench options: BENCH_ARGS (e.g. "--corpus DIR").
set -u
SCENARIO=$1; CONNECTIONS=$2; REPS=$3; shift 3
BENCH=${BENCH:-$(cd "$(dirname "$0")/.." && pwd)/target/release/skua-bench}
# One line from skua-bench's JSON report.
SUMMARY='
import json, sys
r = json.load(sys.stdin)
ops = [o for o in r["ops"] if o["name"] != "connect"]
main = [o for o in ops if o["name"] == "deliver"] or ops
rate = sum(o["count"] for o in main) / r["elapsed_s"]
latency = main[0]["latency_us"]
print(sys.argv[1], round(rate), main[0]["name"], "p50=%dus p99=%dus" % (latency["p50"], latency["p99"]))
'
run() {
  bin=$1
  d=$(mktemp -d /tmp/ab-XXXX); mkdir "$d/data"
  python3 -c "print(''.join(f'user{i}:{{PLAIN}}pw::::::\n' for i in range(100)),end='')" > "$d/data/passwd"
  taskset -c 0 "$bin" serve --data-dir "$d/data" --imap-listen 127.0.0.1:14500 \
    --lmtp-listen 127.0.0.1:12600 --no-imaps --shards 1 > "$d/log" 2>&1 &
  pid=$!; sleep 1.5
  if [ "$SCENARIO" = lmtp ]; then ports=(--port 12600); else ports=(--port 14500 --lmtp-port 12600 --prefill 20); fi
  # shellcheck disable=SC2086
  taskset -c 1 "$BENCH" "$SCENARIO" "${ports[@]}" \
    --connections "$CONNECTIONS" --duration 10 --json --quiet ${BENCH_ARGS:-} 2>/dev/null |
    python3 -c "$SUMMARY" "$bin"
  kill $pid; wait $pid 2>/dev/null; rm -rf "$d"
}
for i in $(seq "$REPS"); do
  if [ $((i % 2)) -eq 1 ]; then order=("$@"); else order=(); for b in "$@"; do order=("$b" "${order[@]}"); done; fi
  for bin in "${order[@]}"; do run "$bin"; done
done
