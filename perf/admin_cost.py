#!/usr/bin/env python3
"""What the operators' tools cost on one user's store (issue 11): wall time of each `skua`
subcommand, the process start included, with the server running (through the admin socket)
and stopped (the tool opens the store itself).

One user, MESSAGES messages of about SIZE bytes delivered by LMTP (one connection, pipelined
in groups), a second mailbox, then for each mode: `check`, `quota`, `df`, `mbexamine`,
`ipurge --dry-run`, `backup` (first, then a second with nothing new), `restore` into another
user, and `reconstruct`. Each timed REPS times; the median and the range are reported. Needs
`cargo build --release -p skua`. Prints a Markdown report on stdout.

    python3 perf/admin_cost.py [--messages 10000] [--size 5000] [--reps 3]
"""

import argparse
import os
import pathlib
import shutil
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402
from issue10_ab import BIN, ROOT, free_port, wait_port  # noqa: E402


def message(i, size):
    body = (f"line {i} of a message body for the admin tools' cost\r\n" * (size // 50 + 1))[:size]
    return (
        f"From: sender@example.org\r\nTo: alice@localhost\r\nSubject: message {i}\r\n"
        f"Message-ID: <cost-{i}@example.org>\r\n\r\n{body}\r\n"
    ).encode()


class Server:
    def __init__(self, data):
        self.data = data
        self.imap, self.lmtp = free_port(), free_port()
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [BIN, "serve", "--data-dir", self.data, "--shards", "2",
             "--imap-listen", f"127.0.0.1:{self.imap}", "--lmtp-listen", f"127.0.0.1:{self.lmtp}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_port(self.imap, self.process)
        wait_port(self.lmtp, self.process)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=60)


def cli(data, *args):
    started = time.monotonic()
    result = subprocess.run([BIN, *args, "--data-dir", data], capture_output=True, text=True)
    took = time.monotonic() - started
    if result.returncode not in (0,):
        raise RuntimeError(f"skua {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return took


def timed(data, reps, *args, before=None):
    times = []
    for _ in range(reps):
        if before:
            before()
        times.append(cli(data, *args))
    return times


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=5_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="skua-admin-cost-")
    try:
        data = os.path.join(tmp, "data")
        os.makedirs(data)
        with open(os.path.join(data, "passwd"), "w") as f:
            f.write("alice:{PLAIN}pw::::::\nbob:{PLAIN}pw::::::\ncarol:{PLAIN}pw::::::\n")
        server = Server(data)
        server.start()
        lmtp = smtplib.LMTP("127.0.0.1", server.lmtp)
        started = time.monotonic()
        for i in range(args.messages):
            lmtp.sendmail("sender@example.org", ["alice@localhost"], message(i, args.size))
        delivered = time.monotonic() - started
        lmtp.quit()
        archive = os.path.join(tmp, "alice.skb")
        rows = []

        def drop_archive():
            if os.path.exists(archive):
                os.unlink(archive)

        for mode, target in (("running", "bob"), ("stopped", "carol")):
            if mode == "stopped":
                server.stop()
            rows += [
                (mode, "check alice", timed(data, args.reps, "check", "alice")),
                (mode, "quota alice", timed(data, args.reps, "quota", "alice")),
                (mode, "df", timed(data, args.reps, "df")),
                (mode, "mbexamine alice INBOX", timed(data, args.reps, "mbexamine", "alice", "INBOX")),
                (mode, "ipurge --days 1 --dry-run alice",
                 timed(data, args.reps, "ipurge", "--days", "1", "--dry-run", "alice")),
                (mode, "backup alice (first, every body)",
                 timed(data, args.reps, "backup", "alice", "--to", archive, before=drop_archive)),
                (mode, "backup alice (again, nothing new)",
                 timed(data, args.reps, "backup", "alice", "--to", archive)),
                (mode, f"restore into {target} (first: every message)",
                 timed(data, 1, "restore", archive, "--user", "alice", "--to-user", target)),
                (mode, f"restore into {target} (again: all skipped)",
                 timed(data, args.reps, "restore", archive, "--user", "alice", "--to-user", target)),
                (mode, "reconstruct alice", timed(data, args.reps, "reconstruct", "alice")),
            ]
        info = machine.describe(pathlib.Path(ROOT), pathlib.Path(tmp))
        print(f"# Admin tools' cost: one user, {args.messages} messages of ~{args.size} bytes\n")
        print(f"Command: `python3 perf/admin_cost.py --messages {args.messages} --size {args.size} "
              f"--reps {args.reps}`\n")
        for key, value in info.items():
            print(f"- {key}: {value}")
        print(f"- delivery of the messages (one LMTP connection, python smtplib): "
              f"{delivered:.1f} s\n")
        print("Wall time of the `skua` command, process start included; median (min-max) of "
              "the runs, in ms.\n")
        print("| server | command | ms |")
        print("| --- | --- | --- |")
        for mode, name, times in rows:
            ms = [t * 1000 for t in times]
            spread = f" ({min(ms):.0f}-{max(ms):.0f})" if len(ms) > 1 else ""
            print(f"| {mode} | `skua {name}` | {statistics.median(ms):.0f}{spread} |")
    finally:
        try:
            server.stop()
        except Exception:  # noqa: BLE001 - stopped already
            pass
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
