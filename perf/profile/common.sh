# Shared helpers for the perf/profile scripts: sourced, not run.
# A fresh data dir with USERS users (user0.., password "pw"), and random free-ish ports in
# 20000-60000 (the machine is shared: never fixed ports).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
USERS=${USERS:-100}
PROFILE_DIR=${PROFILE_DIR:-release}
SKUA=${SKUA:-$ROOT/target/$PROFILE_DIR/skua}
BENCH=${BENCH:-$ROOT/target/release/skua-bench}

make_data_dir() {
    DATA=$(mktemp -d /tmp/skua-prof.XXXXXX)
    for i in $(seq 0 $((USERS - 1))); do echo "user$i:{PLAIN}pw::::::"; done >"$DATA/passwd"
}

pick_ports() {
    while :; do
        # Below the kernel's ephemeral range (32768 up by default), where client sockets of
        # other benchmarks on this machine would otherwise take our port between check and bind.
        IMAP_PORT=$((20000 + RANDOM % 12000))
        LMTP_PORT=$((IMAP_PORT + 1))
        # Skip ports someone already listens on (other servers run on this machine).
        if ! ss -Htan | awk '{ print $4 }' | grep -qE ":($IMAP_PORT|$LMTP_PORT)\$"; then
            return 0
        fi
    done
}

# Waits until the LMTP port answers (at most ~20 s: valgrind starts slowly).
wait_port() {
    for _ in $(seq 1 200); do
        if (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "server did not open port $1" >&2
    return 1
}

# Stops the server started by the script (by its pid only) and removes the data dir.
stop_server() {
    if [ -n "${SERVER_PID:-}" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ -n "${DATA:-}" ] && [ -z "${KEEP_DATA:-}" ]; then rm -rf "$DATA"; fi
}
