#!/usr/bin/env bash
# Runs every test: the Rust unit and integration tests of every crate (including the store's
# crash-point simulation, the fuzz targets' smoke runs and the tidy checks), then, against the
# release binary, the load generator's end-to-end tests and the tests that start the real
# `skua` binary and drive it with Python's imaplib / smtplib.LMTP and curl.
set -euo pipefail
cd "$(dirname "$0")"

cargo test --workspace --all-features
cargo build --release --bin skua
export SKUA_BIN="$PWD/target/release/skua"
# The bench's scenarios against the release server (ignored in a plain `cargo test`: they need
# the release build). One at a time: each starts a server and loads it.
cargo test -p skua-bench --test against_skua -- --ignored --test-threads=1
python3 -m unittest discover -s tests -p 'test_*.py' -v
# The comparison script's own logic (table, ratios, peer configs); starts no server.
python3 -m unittest discover -s perf -p 'test_*.py'
python3 perf/peers/cyrus.py --unit
