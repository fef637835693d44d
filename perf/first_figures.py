#!/usr/bin/env python3
"""First rough figures: LMTP deliveries per second and IMAP FETCH latency.

A stop-gap until `bench/` (skua-bench) exists: Python clients are slow, so on a small machine
these figures are bounded by the client as much as by the server. Usage:

    python3 perf/first_figures.py [--bin target/release/skua] [--connections 8] [--seconds 10]

It starts skua on a temporary data dir and free loopback ports, delivers 4 KiB messages over
N LMTP connections (one process each, so the GIL does not serialize the clients) for a fixed
time, then times `UID FETCH n BODY.PEEK[]` and `FETCH 1:* (FLAGS)` round trips over IMAP.
"""

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import harness  # noqa: E402

BODY = ("x" * 75 + "\r\n") * 52  # about 4 KiB with the headers


def lmtp_worker(port, seconds, users, index, queue):
    import smtplib

    client = smtplib.LMTP(harness.HOST, port, timeout=30)
    client.ehlo_or_helo_if_needed()
    latencies = []
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        raw = harness.message(f"perf {index}-{i}", BODY)
        start = time.perf_counter()
        replies = harness.lmtp_deliver(client, "perf@example.org", [f"user{i % users}"], raw)
        latencies.append(time.perf_counter() - start)
        assert replies[0][0] == 250, replies
        i += 1
    client.quit()
    queue.put(latencies)


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=harness.BIN)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--users", type=int, default=100)
    args = parser.parse_args()
    harness.BIN = args.bin
    users = {f"user{i}": "pw" for i in range(args.users)}
    with tempfile.TemporaryDirectory(prefix="skua-perf-") as tmp:
        server = harness.Server(os.path.join(tmp, "data"), users, shards=os.cpu_count()).start()
        try:
            queue = multiprocessing.Queue()
            procs = [
                multiprocessing.Process(
                    target=lmtp_worker,
                    args=(server.lmtp_port, args.seconds, args.users, n, queue),
                )
                for n in range(args.connections)
            ]
            started = time.monotonic()
            for p in procs:
                p.start()
            latencies = []
            for _ in procs:
                latencies.extend(queue.get())
            for p in procs:
                p.join()
            elapsed = time.monotonic() - started
            print(f"LMTP: {len(latencies)} deliveries of ~4 KiB over {args.connections} "
                  f"connections in {elapsed:.1f}s = {len(latencies) / elapsed:.0f}/s; "
                  f"latency p50 {percentile(latencies, 0.5) * 1e3:.2f} ms "
                  f"p99 {percentile(latencies, 0.99) * 1e3:.2f} ms")

            client = server.imap("user0", "pw")
            _, exists = client.select("INBOX")
            count = int(exists[0])
            body_times, flags_times = [], []
            for i in range(500):
                start = time.perf_counter()
                client.uid("FETCH", str(1 + i % count), "(BODY.PEEK[])")
                body_times.append(time.perf_counter() - start)
                start = time.perf_counter()
                client.fetch("1:*", "(FLAGS)")
                flags_times.append(time.perf_counter() - start)
            client.logout()
            print(f"IMAP UID FETCH BODY.PEEK[] (4 KiB): p50 {statistics.median(body_times) * 1e6:.0f} us "
                  f"p99 {percentile(body_times, 0.99) * 1e6:.0f} us")
            print(f"IMAP FETCH 1:* (FLAGS) over {count} messages: "
                  f"p50 {statistics.median(flags_times) * 1e6:.0f} us "
                  f"p99 {percentile(flags_times, 0.99) * 1e6:.0f} us")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
