#!/usr/bin/env bash
# Syscall view of LMTP delivery: skua under `strace -f`, driven by skua-bench for OPS
# deliveries. Writes a per-syscall summary (strace -c) and, with TRACE=1, a full trace with
# timestamps of the fsync-family calls so rounds can be counted (see PROFILING.md).
#   perf/profile/lmtp-strace.sh [OPS] [OUT_DIR]
# Environment: USERS (100), SHARDS (2), CONNECTIONS (8), SIZE (4096), TRACE (0).
source "$(dirname "$0")/common.sh"
OPS=${1:-5000}
OUT=${2:-/tmp/skua-strace}
mkdir -p "$OUT"
trap stop_server EXIT
make_data_dir
pick_ports
if [ "${TRACE:-0}" = 1 ]; then
    # -T: time spent in each call; -tt: wall clock; only the calls that matter for rounds.
    STRACE=(strace -f -tt -T -e trace=fdatasync,fsync,io_uring_enter,writev,pwrite64,pwritev,sendto,write,read,recvfrom -o "$OUT/trace")
else
    STRACE=(strace -f -c -o "$OUT/summary")
fi
"${STRACE[@]}" "$SKUA" serve --data-dir "$DATA" --imap-listen 127.0.0.1:$IMAP_PORT \
    --lmtp-listen 127.0.0.1:$LMTP_PORT --shards "${SHARDS:-2}" >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
wait_port "$LMTP_PORT"
"$BENCH" lmtp --port "$LMTP_PORT" --users "$USERS" --password pw --connections "${CONNECTIONS:-8}" \
    --duration 120 --max-ops "$OPS" --size "${SIZE:-4096}" --quiet | tee "$OUT/bench.txt"
# strace does not pass SIGTERM on: stop the traced server itself, then strace ends.
kill -TERM "$(pgrep -P "$SERVER_PID")"
wait "$SERVER_PID" || true
SERVER_PID=
rm -rf "$DATA"
if [ "${TRACE:-0}" = 1 ]; then
    echo "fdatasync calls: $(grep -c 'fdatasync(' "$OUT/trace")"
    echo "fsync calls:     $(grep -c 'fsync(' "$OUT/trace" | head -1)"
    awk '/fdatasync\(|fsync\(/ { match($0, /<[0-9.]+>/); t += substr($0, RSTART + 1, RLENGTH - 2) } END { printf "seconds inside fsync-family calls (summed over threads): %.3f\n", t }' "$OUT/trace"
else
    head -30 "$OUT/summary"
fi
