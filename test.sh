#!/usr/bin/env bash
# Runs every test: the Rust unit and integration tests of every crate (including the store's
# crash-point simulation), then the end-to-end tests that start the real `skua` binary and
# drive it with Python's imaplib / smtplib.LMTP and curl.
set -euo pipefail
cd "$(dirname "$0")"

cargo test --workspace --all-features
cargo build --release --bin skua
SKUA_BIN="$PWD/target/release/skua" python3 -m unittest discover -s tests -p 'test_*.py' -v
# The comparison script's own logic (table, ratios, peer configs); starts no server.
python3 -m unittest discover -s perf -p 'test_*.py'
python3 perf/peers/cyrus.py --unit
