#!/usr/bin/env bash
# Instruction counts per LMTP delivery with callgrind.
#
# glommio 0.9 does not run under valgrind on this machine (the executor spins and never
# accepts: see PROFILING.md), so the server is not run here. Instead this counts the sans-IO
# workload in protocols/src/lmtp/workload.rs: the real LmtpSession, mime::cache::build and
# UserStore::append on a real OsDisk with a flush round every BATCH deliveries, i.e. all the
# work of a delivery above the runtime (glommio, sockets, the mesh).
#
#   perf/profile/lmtp-callgrind.sh [DELIVERIES] [OUT_DIR]
# Environment: USERS (100), SIZE (4096), BATCH (4).
# Output: OUT_DIR/callgrind.out, OUT_DIR/summary.txt (Ir total and per delivery, measured as
# the difference between a run of DELIVERIES and a run of DELIVERIES/2 so start-up cancels),
# OUT_DIR/inclusive.txt and OUT_DIR/self.txt (callgrind_annotate).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
N=${1:-2000}
OUT=${2:-/tmp/skua-callgrind}
mkdir -p "$OUT"
cd "$ROOT"
BIN=$(cargo test --profile profiling -p skua-protocols --lib --no-run --message-format=json 2>/dev/null \
    | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "skua_protocols":
        print(m["executable"])' | tail -1)
count() { # deliveries outfile -> total Ir
    SKUA_WORKLOAD_DELIVERIES=$1 SKUA_WORKLOAD_USERS=${USERS:-100} SKUA_WORKLOAD_SIZE=${SIZE:-4096} \
    SKUA_WORKLOAD_BATCH=${BATCH:-4} valgrind --tool=callgrind --callgrind-out-file="$2" \
        "$BIN" --ignored --exact lmtp::workload::tests::profile_lmtp_deliveries --test-threads=1 \
        >/dev/null 2>"$2.log"
    awk '/Collected :/ { print $NF }' "$2.log"
}
full=$(count "$N" "$OUT/callgrind.out")
half=$(count $((N / 2)) "$OUT/callgrind-half.out")
{
    echo "binary: $BIN"
    echo "deliveries: $N (users ${USERS:-100}, size ${SIZE:-4096}, flush every ${BATCH:-4})"
    echo "total Ir ($N deliveries): $full"
    echo "total Ir ($((N / 2)) deliveries): $half"
    echo "Ir per delivery (difference / $((N - N / 2))): $(((full - half) / (N - N / 2)))"
} | tee "$OUT/summary.txt"
callgrind_annotate --inclusive=yes "$OUT/callgrind.out" | head -70 >"$OUT/inclusive.txt"
callgrind_annotate "$OUT/callgrind.out" | head -50 >"$OUT/self.txt"
