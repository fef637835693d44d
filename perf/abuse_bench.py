"""Other users' NOOP/FETCH p99 with and without abuse on the same shard (issue 7, "Performance").

Starts the release `skua` on a temporary data dir (one shard by default, so every user shares
the shard the abuse runs on), sets up three abusing users, and runs `skua-bench imap-read`
(NOOP, FETCH of a body, FETCH of a range) for the normal users twice: once alone, once while

- `lister` repeats `LIST "" "*a*a…"` (a 20,000-character pattern) over 2,000 long names;
- `searcher` repeats `SEARCH TEXT "zzz-not-there"` over a big INBOX (`--search-mb`, default
  1024 MB of 200 KB messages delivered by LMTP; scale it down on a small machine and say so);
- `stuck` has pipelined `FETCH 1:* (ENVELOPE)` over 300 messages of 1,000 addresses each and
  never reads (a 4 KiB receive buffer).

It prints a table of p99 per operation, without and with the abuse, and their ratio (the issue's
target: within 2×). It records nothing; the figures belong in perf/results only when measured on
merged code by whoever runs it.

    python3 perf/abuse_bench.py                     # builds skua and skua-bench first
    python3 perf/abuse_bench.py --search-mb 256 --duration 10 --skip-build
    python3 perf/abuse_bench.py --skip-build --server-cpus 0 --client-cpus 1   # as issue 12 asks

Standard library only; it reuses the test harness (tests/harness.py) to start the server and
for its raw IMAP client.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import harness  # noqa: E402  (needs the path above)

MAILBOXES = 2000
NAME_PREFIX = "a" * 200
PATTERN = "*a" * 10000
MESSAGE_KB = 200
STUCK_MESSAGES = 300
STUCK_ADDRESSES = 1000
OPS = ("noop", "fetch-body", "fetch-range")


def build():
    for args in (["--bin", "skua"], ["-p", "skua-bench"]):
        subprocess.run(["cargo", "build", "--release", *args], cwd=REPO, check=True)


def deliver_many(server, user, count, make, workers=4):
    """Delivers `count` messages (make(i) -> bytes) to `user` over `workers` LMTP connections."""
    errors = []

    def work(w):
        lmtp = server.lmtp()
        for i in range(w, count, workers):
            replies = harness.lmtp_deliver(lmtp, "s@example.org", [f"{user}@localhost"], make(i))
            if not replies or replies[0][0] != 250:
                errors.append(replies)
        lmtp.quit()

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"deliveries to {user} refused: {errors[:3]}")


def setup_abusers(server, search_mb):
    t0 = time.monotonic()
    c = harness.raw_login(server.imap_port, "lister", "pw")
    data = b"".join(
        f'c{i} CREATE "{NAME_PREFIX}{i:04d}"\r\n'.encode() for i in range(MAILBOXES)
    )
    sender = threading.Thread(target=c.send, args=(data,))
    sender.start()
    for i in range(MAILBOXES):
        c.read_tagged(f"c{i}", 120)
    sender.join()
    c.close()
    print(f"lister: {MAILBOXES} mailboxes in {time.monotonic() - t0:.1f}s", file=sys.stderr)

    t0 = time.monotonic()
    line = "the quick brown fox jumps over the lazy dog again and again and again\r\n"
    body = line * (MESSAGE_KB * 1024 // len(line))
    count = max(1, search_mb * 1024 // MESSAGE_KB)
    deliver_many(server, "searcher", count, lambda i: harness.message(f"big {i}", f"{i}\r\n{body}"))
    print(f"searcher: {count} x {MESSAGE_KB} KB in {time.monotonic() - t0:.1f}s", file=sys.stderr)

    t0 = time.monotonic()
    to = ", ".join(f"Person {k} <person{k:04d}@example.org>" for k in range(STUCK_ADDRESSES))
    deliver_many(
        server, "stuck", STUCK_MESSAGES, lambda i: harness.message(f"many {i}", "x", to=to)
    )
    print(f"stuck: {STUCK_MESSAGES} messages in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    return count


def bench(args, port, lmtp_port, prefill):
    cmd = [
        str(REPO / "target" / "release" / "skua-bench"), "imap-read",
        "--port", str(port), "--lmtp-port", str(lmtp_port),
        "--users", str(args.users), "--user-pattern", "user%d", "--password", "pw",
        "--connections", str(args.connections), "--duration", str(args.duration),
        "--mix", "noop=40,fetch-body=30,fetch-range=30", "--prefill", str(prefill),
        "--json", "--quiet",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 600)
    if result.returncode != 0:
        raise RuntimeError(f"skua-bench failed: {result.stderr}")
    report = json.loads(result.stdout)
    return {op["name"]: op for op in report["ops"]}


class Loop(threading.Thread):
    """Repeats one command on its own session until stopped; counts completions."""

    def __init__(self, server, user, setup, command):
        super().__init__(daemon=True)
        self.client = harness.raw_login(server.imap_port, user, "pw")
        for tag, text in setup:
            self.client.command(tag, text, timeout=60)
        self.command = command
        self.stop = threading.Event()
        self.durations = []

    def run(self):
        i = 0
        while not self.stop.is_set():
            start = time.monotonic()
            try:
                _, tagged = self.client.command(f"r{i}", self.command, timeout=600)
            except (OSError, socket.timeout):
                return
            if not tagged:
                return
            self.durations.append(time.monotonic() - start)
            i += 1


def cpu_set(text):
    """'0', '0,2' or '0-3' as a set of CPU numbers."""
    cpus = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def pin_process(pid, cpus):
    """Pins every thread of `pid` (shards, blocking pool) to `cpus`."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except ProcessLookupError:
            pass  # a thread that ended meanwhile


def fmt_us(value):
    return "-" if value is None else f"{value / 1000:.2f}ms"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per bench run")
    parser.add_argument("--search-mb", type=int, default=1024, help="searcher's INBOX size")
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--users", type=int, default=20, help="normal users measured")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--prefill", type=int, default=20, help="messages per normal user")
    parser.add_argument("--skip-build", action="store_true")
    parser.add_argument("--server-cpus", help="pin the server's threads to these CPUs (e.g. 0)")
    parser.add_argument("--client-cpus", help="pin this script, its clients and skua-bench (e.g. 1)")
    args = parser.parse_args()
    if args.client_cpus:
        os.sched_setaffinity(0, cpu_set(args.client_cpus))
    if not args.skip_build:
        build()
    harness.BIN = str(REPO / "target" / "release" / "skua")
    tmp = tempfile.mkdtemp(prefix="skua-abuse-bench-")
    users = {f"user{i}": "pw" for i in range(args.users)}
    users.update({"lister": "pw", "searcher": "pw", "stuck": "pw"})
    server = harness.AbuseServer(os.path.join(tmp, "data"), users, shards=args.shards)
    loops = []
    try:
        server.start()
        if args.server_cpus:
            pin_process(server.process.pid, cpu_set(args.server_cpus))
        messages = setup_abusers(server, args.search_mb)
        bench(args, server.imap_port, server.lmtp_port, args.prefill)  # prefill and warm up
        quiet = bench(args, server.imap_port, server.lmtp_port, 0)

        stuck = harness.raw_login(server.imap_port, "stuck", "pw", rcvbuf=4096)
        stuck.command("s", "SELECT INBOX", timeout=60)
        rss_before = server.memory_kib()["VmRSS"]
        stuck.send(b"f FETCH 1:* (ENVELOPE)\r\n")
        loops = [
            Loop(server, "lister", [], f'LIST "" "{PATTERN}"'),
            Loop(server, "searcher", [("s", "SELECT INBOX")], 'SEARCH TEXT "zzz-not-there"'),
        ]
        for loop in loops:
            loop.start()
        time.sleep(1.0)
        abused = bench(args, server.imap_port, server.lmtp_port, 0)
        rss_after = server.memory_kib()["VmRSS"]
        for loop in loops:
            loop.stop.set()
    finally:
        server.stop_quietly(timeout_s=120)
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\nskua abuse bench: {args.shards} shard(s), {args.users} users, "
          f"{args.connections} connections, {args.duration}s per run; searcher INBOX "
          f"{messages} x {MESSAGE_KB} KB = {messages * MESSAGE_KB // 1024} MB")
    print(f"{'op':<14}{'p99 alone':>12}{'p99 abused':>12}{'ratio':>8}  {'within 2x':<10}  "
          f"ok/errors alone, abused")
    for op in OPS:
        a, b = quiet.get(op), abused.get(op)
        pa = a["latency_us"]["p99"] if a and a["latency_us"] else None
        pb = b["latency_us"]["p99"] if b and b["latency_us"] else None
        if pa and pb:
            ratio, verdict = f"{pb / pa:.2f}", ("yes" if pb <= 2 * pa else "NO")
        elif pa and not pb:
            ratio, verdict = "inf", "NO (none answered)"
        else:
            ratio, verdict = "-", "-"

        def counts(r):
            return f"{r['count']}/{r['errors']}" if r else "0/0"

        print(f"{op:<14}{fmt_us(pa):>12}{fmt_us(pb):>12}{ratio:>8}  {verdict:<10}  "
              f"{counts(a)}, {counts(b)}")
    for loop, name in zip(loops, ("LIST 20,000-char pattern", "SEARCH TEXT")):
        d = loop.durations
        print(f"{name}: {len(d)} completed during the abused run"
              + (f", each {min(d):.2f}-{max(d):.2f}s" if d else ""))
    print(f"server VmRSS: {rss_before // 1024} MB before the stuck FETCH, "
          f"{rss_after // 1024} MB at the end of the abused run")


if __name__ == "__main__":
    main()
