#!/usr/bin/env bash
# CPU profile of the running server under LMTP load with `perf record` (software clock
# event: this VM has no hardware counters, `perf stat -e instructions true` says
# "<not supported>"), plus a folded-stack file for a flame graph.
#   perf/profile/lmtp-perf.sh [SECONDS] [OUT_DIR]
# Environment: USERS (100), SHARDS (2), CONNECTIONS (8), SIZE (4096), FREQ (499 Hz),
# SKUA (binary; the profiling build gives the best symbols).
# Output: OUT_DIR/perf.data, OUT_DIR/report.txt (flat, by symbol, children included),
# OUT_DIR/folded.txt (one line per stack: "frame;frame;... count"), and flame.svg if
# inferno-flamegraph is installed (cargo install inferno).
PROFILE_DIR=${PROFILE_DIR:-profiling}
source "$(dirname "$0")/common.sh"
SECONDS_=${1:-10}
OUT=${2:-/tmp/skua-perf}
mkdir -p "$OUT"
trap stop_server EXIT
make_data_dir
pick_ports
"$SKUA" serve --data-dir "$DATA" --imap-listen 127.0.0.1:$IMAP_PORT \
    --lmtp-listen 127.0.0.1:$LMTP_PORT --shards "${SHARDS:-2}" >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
wait_port "$LMTP_PORT"
"$BENCH" lmtp --port "$LMTP_PORT" --users "$USERS" --password pw --connections "${CONNECTIONS:-8}" \
    --duration $((SECONDS_ + 2)) --size "${SIZE:-4096}" --quiet >"$OUT/bench.txt" &
BENCH_PID=$!
sleep 1
# DWARF unwinding: Rust release builds keep no frame pointers.
perf record -e cpu-clock -F "${FREQ:-499}" --call-graph dwarf,16384 -p "$SERVER_PID" \
    -o "$OUT/perf.data" -- sleep "$SECONDS_" 2>"$OUT/record.log"
wait "$BENCH_PID"
cat "$OUT/bench.txt"
stop_server
SERVER_PID=
# Full reports to files first: `perf report | head` would fail the script (SIGPIPE, pipefail).
perf report -i "$OUT/perf.data" --no-children --sort symbol --stdio -g none \
    >"$OUT/report-self.txt" 2>/dev/null
perf report -i "$OUT/perf.data" --children --sort symbol --stdio -g none \
    >"$OUT/report.txt" 2>/dev/null
perf script -i "$OUT/perf.data" 2>/dev/null | "$(dirname "$0")/fold-perf-script.py" >"$OUT/folded.txt"
"$(dirname "$0")/categorize-folded.py" "$OUT/folded.txt" | tee "$OUT/categories.txt"
if command -v inferno-flamegraph >/dev/null; then
    inferno-flamegraph <"$OUT/folded.txt" >"$OUT/flame.svg"
fi
echo "wrote $OUT/report-self.txt $OUT/report.txt $OUT/folded.txt $OUT/categories.txt"
