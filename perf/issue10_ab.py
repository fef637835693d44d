#!/usr/bin/env python3
"""Issue 10's two cost limits, measured A/B on one machine with the same release binary:

- quota: LMTP deliveries/s and server CPU per delivery with quota enforcement on (real limits
  every delivery is checked against) and off; goal: at most 5% fewer deliveries/s.
- compaction: imap-read p99 with spool compaction running in the background and without;
  goal: p99 within 20%.

Runs alternate between the two sides (ABAB..., then BABA...) so drift of the machine falls on
both. Server on CPU 0, bench on CPU 1. Needs `cargo build --release -p skua -p skua-bench`.
Prints a Markdown report on stdout.

    python3 perf/issue10_ab.py [--reps 5] [--part quota|compaction|both]
"""

import argparse
import imaplib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "skua")
BENCH = os.path.join(ROOT, "target", "release", "skua-bench")

QUOTA_ON = '[quota]\nstorage = "100G"\nmessages = 100000000\nmailboxes = 100000\n'
COMPACTION_OFF = "[compaction]\nenabled = false\n"
COMPACTION_ON = (
    "[compaction]\nenabled = true\nretention = \"0\"\ninterval_seconds = 1\n"
    "bytes_per_second = 8388608\nfree_bytes_min = 1048576\n"
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, process, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"skua exited {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} never answered")


class Server:
    def __init__(self, data_dir, config_text):
        self.data_dir = data_dir
        self.config = os.path.join(os.path.dirname(data_dir), f"skua-{os.getpid()}.toml")
        with open(self.config, "w", encoding="utf-8") as f:
            f.write(config_text)
        self.imap = free_port()
        self.lmtp = free_port()
        self.log = open(os.path.join(os.path.dirname(data_dir), "server.log"), "ab")
        self.process = subprocess.Popen(
            ["taskset", "-c", "0", BIN, "serve", "--config", self.config,
             "--data-dir", data_dir, "--imap-listen", f"127.0.0.1:{self.imap}",
             "--lmtp-listen", f"127.0.0.1:{self.lmtp}", "--no-imaps", "--shards", "1"],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.imap, self.process)
        wait_port(self.lmtp, self.process)

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        self.log.close()


def bench(args):
    out = subprocess.run(["taskset", "-c", "1", BENCH, *args, "--json", "--quiet"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def passwd(data_dir, users):
    os.makedirs(data_dir, exist_ok=True)
    with open(os.path.join(data_dir, "passwd"), "w", encoding="utf-8") as f:
        for i in range(users):
            f.write(f"user{i}:{{PLAIN}}pw::::::\n")


def quota_run(config_text, duration):
    with tempfile.TemporaryDirectory(prefix="skua-ab-") as tmp:
        data = os.path.join(tmp, "data")
        passwd(data, 100)
        server = Server(data, config_text)
        try:
            report = bench(["lmtp", "--port", str(server.lmtp), "--connections", "8",
                            "--users", "100", "--duration", str(duration),
                            "--server-pid", str(server.process.pid)])
        finally:
            server.stop()
    delivered = sum(op["count"] for op in report["ops"] if op["name"] == "deliver")
    rate = delivered / report["elapsed_s"]
    cpu = report.get("extra", {}).get("server_tree_cpu_us_per_op") or report.get(
        "server_tree_cpu_us_per_op")
    return rate, cpu


def quota(reps, duration):
    sides = {"on": QUOTA_ON, "off": ""}
    results = {"on": [], "off": []}
    for rep in range(reps):
        order = ["on", "off"] if rep % 2 == 0 else ["off", "on"]
        for side in order:
            results[side].append(quota_run(sides[side], duration))
            print(f"quota {side} rep {rep}: {results[side][-1]}", file=sys.stderr)
    return results


def fill(template, users, messages, size):
    """A data dir with `messages` of `size` bytes per user, every other one expunged."""
    passwd(template, users)
    server = Server(template, COMPACTION_OFF)
    try:
        bench(["imap-read", "--port", str(server.imap), "--lmtp-port", str(server.lmtp),
               "--users", str(users), "--prefill", str(messages), "--size", str(size),
               "--duration", "1", "--connections", "1"])
        for i in range(users):
            imap = imaplib.IMAP4("127.0.0.1", server.imap)
            imap.login(f"user{i}", "pw")
            typ, data = imap.select("INBOX")
            count = int(data[0])
            every_other = ",".join(str(n) for n in range(2, count + 1, 2))
            imap.store(every_other, "+FLAGS.SILENT", r"(\Deleted)")
            imap.expunge()
            imap.logout()
    finally:
        server.stop()


def disk_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


def compaction_run(template, config_text, users, duration):
    with tempfile.TemporaryDirectory(prefix="skua-ab-") as tmp:
        data = os.path.join(tmp, "data")
        shutil.copytree(template, data)
        before = disk_bytes(data)
        server = Server(data, config_text)
        try:
            report = bench(["imap-read", "--port", str(server.imap), "--users", str(users),
                            "--connections", "8", "--duration", str(duration)])
        finally:
            server.stop()
        freed = before - disk_bytes(data)
    p99 = {op["name"]: op["latency_us"]["p99"] for op in report["ops"]
           if op.get("latency_us")}
    return p99, freed


def compaction(reps, duration):
    users, messages, size = 4, 1100, 65536
    results = {"on": [], "off": []}
    with tempfile.TemporaryDirectory(prefix="skua-ab-template-") as tmp:
        template = os.path.join(tmp, "data")
        fill(template, users, messages, size)
        for rep in range(reps):
            order = ["on", "off"] if rep % 2 == 0 else ["off", "on"]
            for side in order:
                text = COMPACTION_ON if side == "on" else COMPACTION_OFF
                results[side].append(compaction_run(template, text, users, duration))
                print(f"compaction {side} rep {rep}: {results[side][-1]}", file=sys.stderr)
    return results


def report_quota(results):
    print("## LMTP with quota enforcement (goal: at most 5% fewer deliveries/s)\n")
    print("| side | deliveries/s per run | median | server CPU µs/delivery (median) |")
    print("| --- | --- | --- | --- |")
    med = {}
    for side in ("off", "on"):
        rates = [r for r, _ in results[side]]
        cpus = [c for _, c in results[side] if c is not None]
        med[side] = statistics.median(rates)
        cpu = f"{statistics.median(cpus):.1f}" if cpus else "n/a"
        runs = ", ".join(f"{r:.0f}" for r in rates)
        print(f"| quota {side} | {runs} | {med[side]:.0f} | {cpu} |")
    print(f"\nquota on / off, medians: {100 * (med['on'] / med['off'] - 1):+.1f}% deliveries/s\n")


def report_compaction(results):
    print("## Compaction in the background (goal: imap-read p99 within 20%)\n")
    ops = sorted({op for p99, _ in results["off"] for op in p99})
    print("| op | p99 off (ms, per run) | p99 on (ms, per run) | median on / off |")
    print("| --- | --- | --- | --- |")
    for op in ops:
        off = [p99.get(op) for p99, _ in results["off"] if p99.get(op)]
        on = [p99.get(op) for p99, _ in results["on"] if p99.get(op)]
        if not off or not on:
            continue
        ratio = 100 * (statistics.median(on) / statistics.median(off) - 1)
        fmt = lambda xs: " / ".join(f"{x / 1000:.2f}" for x in xs)  # noqa: E731
        print(f"| {op} | {fmt(off)} | {fmt(on)} | {ratio:+.1f}% |")
    freed = [f / 1e6 for _, f in results["on"]]
    print(f"\nfreed during each 'on' run: {', '.join(f'{f:.0f} MB' for f in freed)}\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--duration", type=int, default=12)
    parser.add_argument("--part", choices=["quota", "compaction", "both"], default="both")
    args = parser.parse_args()
    if args.part in ("quota", "both"):
        report_quota(quota(args.reps, args.duration))
    if args.part in ("compaction", "both"):
        report_compaction(compaction(args.reps, max(args.duration, 20)))


if __name__ == "__main__":
    main()
