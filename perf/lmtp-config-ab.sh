#!/bin/bash
# Used for perf/results/2026-12-07-compare-issue10.md: the cost of [lmtp] duplicate suppression
# and trace fields (same binary, config changed). Run after `cargo build --release -p skua -p skua-bench`.
# LMTP deliveries/s with each config, server on CPU 0, bench on CPU 1, twice each.
ROOT=$(cd "$(dirname "$0")/.." && pwd); BIN=$ROOT/target/release/skua; BENCH=$ROOT/target/release/skua-bench
run() {
  label=$1; conf=$2
  d=$(mktemp -d /tmp/lab-XXXX); mkdir $d/data
  python3 -c "print(''.join(f'user{i}:{{PLAIN}}pw::::::\n' for i in range(100)),end='')" > $d/data/passwd
  printf "$conf" > $d/skua.toml
  taskset -c 0 $BIN serve --config $d/skua.toml --data-dir $d/data --imap-listen 127.0.0.1:14500 --lmtp-listen 127.0.0.1:12600 --no-imaps --shards 1 > $d/log 2>&1 &
  pid=$!; sleep 2
  l=$(taskset -c 1 $BENCH lmtp --port 12600 --connections 8 --users 100 --duration 12 --json --quiet 2>/dev/null | python3 -c "import json,sys; r=json.load(sys.stdin); n=sum(o['count'] for o in r['ops'] if o['name']=='deliver'); print(round(n/r['elapsed_s']))" 2>/dev/null)
  kill $pid; wait $pid 2>/dev/null; rm -rf $d
  echo "$label $l"
}
for i in 1 2; do
  run default ""
  run no-dup "[lmtp]\nduplicate_window = 0\n"
  run no-dup-no-trace "[lmtp]\nduplicate_window = 0\nreceived_header = false\ndelivered_to_header = false\n"
done
