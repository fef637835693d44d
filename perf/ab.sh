#!/bin/bash
# A/B of two skua binaries on this machine, back to back: imap-read, imap-mixed and lmtp
# operations per second (skua-bench, 8 connections, 12 s each, fresh data dir per binary),
# server pinned to CPU 0 and bench to CPU 1, twice each, alternating. For telling a code
# change from machine drift between two compare.py runs.
#   perf/ab.sh OLD_SKUA NEW_SKUA     (e.g. a build of the older commit with CARGO_TARGET_DIR)
set -u
OLD=$1; NEW=$2
BENCH=$(cd "$(dirname "$0")/.." && pwd)/target/release/skua-bench
run() {
  bin=$1; label=$2
  d=$(mktemp -d /tmp/ab-XXXX); mkdir $d/data
  python3 -c "print(''.join(f'user{i}:{{PLAIN}}pw::::::\n' for i in range(100)),end='')" > $d/data/passwd
  taskset -c 0 $bin serve --data-dir $d/data --imap-listen 127.0.0.1:14500 --lmtp-listen 127.0.0.1:12600 --no-imaps --shards 1 > $d/log 2>&1 &
  pid=$!; sleep 2
  r=$(taskset -c 1 $BENCH imap-read --port 14500 --lmtp-port 12600 --prefill 50 --connections 8 --duration 12 --json --quiet 2>/dev/null | python3 -c "import json,sys; r=json.load(sys.stdin); print(round(sum(o['count'] for o in r['ops'] if o['name'] not in ('connect',))/r['elapsed_s']))" 2>/dev/null)
  m=$(taskset -c 1 $BENCH imap-mixed --port 14500 --lmtp-port 12600 --prefill 20 --connections 8 --duration 12 --json --quiet 2>/dev/null | python3 -c "import json,sys; r=json.load(sys.stdin); print(round(sum(o['count'] for o in r['ops'] if o['name'] not in ('connect',))/r['elapsed_s']))" 2>/dev/null)
  l=$(taskset -c 1 $BENCH lmtp --port 12600 --connections 8 --duration 12 --json --quiet 2>/dev/null | python3 -c "import json,sys; r=json.load(sys.stdin); print(round(sum(o['count'] for o in r['ops'] if o['name']=='deliver')/r['elapsed_s']))" 2>/dev/null)
  kill $pid; wait $pid 2>/dev/null; rm -rf $d
  echo "$label imap-read=$r imap-mixed=$m lmtp=$l"
}
for i in 1 2; do run "$OLD" old; run "$NEW" new; done
