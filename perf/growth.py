#!/usr/bin/env python3
"""How the cost grows (issue 12, item 4): skua beside Dovecot (and Cyrus where it can run it),
pinned as perf/compare.py pins them, with server CPU per operation from /proc/stat.

    python3 perf/growth.py [--peers skua,dovecot] [--parts mailbox,users,sizes] [--out NAME]

Three parts, each on fresh servers in temporary directories (removed afterwards):

- `mailbox`: one user's INBOX filled over LMTP with 4 KiB messages up to each of
  `--mailbox-sizes` (1,000, 10,000, 100,000) in turn, on one server. At each size: the
  server's memory (PSS of its process tree) before and while one session has the mailbox
  open (LOGIN, EXAMINE), then for `--duration` seconds each, one connection running only
  EXAMINE of the open mailbox (`examine-again`), FETCH of one body (`fetch-body`), FETCH of
  the headers of the last 50 messages (`fetch-tail`), SEARCH HEADER Message-ID matching none
  (`search-header`) and STATUS (`status`): latency and server CPU per command.
- `users`: a server started with each of `--user-counts` (1,000, 10,000, 100,000) users in
  its passwd-file, no mail: start-up time (launch until both ports answer), the server's PSS
  with no one logged in, and the first LOGIN + SELECT INBOX of five users nobody has used
  since the start (cold users), one after another.
- `sizes`: for each of `--message-sizes` (4 KiB, 256 KiB, 10 MiB), on a fresh server: LMTP
  deliveries/s with 8 connections, then FETCH bandwidth (`imap-read` with only `fetch-body`,
  8 connections) over mailboxes prefilled with messages of that size.

CPU per operation is the busy time of the server CPUs over each measured phase divided by the
operations of the row (so a session's LOGIN and EXAMINE are not charged to the command
measured); with --unpinned it is the server's process tree's CPU time instead.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

PERF = pathlib.Path(__file__).resolve().parent
REPO = PERF.parent
sys.path.insert(0, str(PERF))

import compare  # noqa: E402
import machine  # noqa: E402
import peers  # noqa: E402
from peers import base  # noqa: E402
from peers.base import PeerUnavailable, free_port  # noqa: E402

BENCH = compare.BENCH
PARTS = ["mailbox", "users", "sizes"]
MAILBOX_OPS = ["examine-again", "fetch-body", "fetch-tail", "search-header", "status"]
GROWER = "grow"  # the one user of the mailbox part
COLD_LOGINS = 5
SIZE_USERS = 4  # users of the sizes part's FETCH prefill
PREFILL_BYTES = 200 << 20  # the sizes part's FETCH prefill, all users together (at most)
IMAP_TIMEOUT_S = 300.0


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--peers", default="skua,dovecot", help="comma-separated")
    p.add_argument("--parts", default=",".join(PARTS), help="comma-separated")
    p.add_argument("--mailbox-sizes", default="1000,10000,100000")
    p.add_argument("--user-counts", default="1000,10000,100000")
    p.add_argument("--message-sizes", default="4096,262144,10485760")
    p.add_argument("--duration", type=int, default=5, help="seconds per measured run")
    p.add_argument("--server-cpus")
    p.add_argument("--client-cpus")
    p.add_argument("--unpinned", action="store_true")
    p.add_argument("--workdir", default=tempfile.gettempdir())
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--out", help="write perf/results/NAME.md")
    args = p.parse_args(argv)
    args.peers = [x for x in args.peers.split(",") if x]
    args.parts = [x for x in args.parts.split(",") if x]
    if any(x not in PARTS for x in args.parts):
        p.error(f"--parts: known parts are {', '.join(PARTS)}")
    try:
        args.mailbox_sizes = numbers(args.mailbox_sizes)
        args.user_counts = numbers(args.user_counts)
        args.message_sizes = numbers(args.message_sizes)
        args.server_cpus, args.client_cpus, args.placement_note = compare.placement(
            args, sorted(os.sched_getaffinity(0)))
    except ValueError as e:
        p.error(str(e))
    if not 1 <= args.duration <= 600:
        p.error("--duration must be 1..600")
    args.shards = len(args.server_cpus) if args.server_cpus else (os.cpu_count() or 1)
    return args


def numbers(text: str) -> list[int]:
    """'1000,10000' as ascending positive integers."""
    values = sorted({int(x) for x in text.split(",") if x.strip()})
    if not values or values[0] <= 0:
        raise ValueError(f"{text!r}: positive numbers, comma-separated")
    return values


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ----- measuring -----------------------------------------------------------------------------


def tree_pss_kib(pid: int) -> int | None:
    """PSS of process `pid` and its descendants, KiB (smaps_rollup), or None if unreadable."""
    total = 0
    for p in [pid, *base.descendants(pid)]:
        try:
            text = pathlib.Path(f"/proc/{p}/smaps_rollup").read_text()
        except OSError:
            if p == pid:
                return None
            continue  # a child that exited meanwhile
        total += pss_of_rollup(text) or 0
    return total


def pss_of_rollup(text: str) -> int | None:
    """The `Pss:` line of smaps_rollup, KiB."""
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return None


class Imap:
    """The few IMAP commands this script sends itself, on one blocking connection."""

    def __init__(self, port: int, timeout: float = IMAP_TIMEOUT_S):
        self.sock = socket.create_connection((base.HOST, port), timeout=timeout)
        self.file = self.sock.makefile("rb")
        self.greeting = self.file.readline()
        self.tag = 0

    def command(self, text: str) -> tuple[bytes, float]:
        """Sends `text`; returns (the tagged reply line, seconds until it came)."""
        self.tag += 1
        tag = f"g{self.tag}".encode()
        started = time.monotonic()
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError(f"closed during {text!r}")
            if line.startswith(tag + b" "):
                return line.strip(), time.monotonic() - started

    def close(self) -> None:
        try:
            self.command("LOGOUT")
        except (OSError, ConnectionError):
            pass
        self.file.close()
        self.sock.close()


def ok(line: bytes) -> bool:
    """True for a tagged OK."""
    parts = line.split(None, 2)
    return len(parts) > 1 and parts[1].upper() == b"OK"


def run_bench(args, argv: list[str], pid: int, timeout: float) -> dict:
    """skua-bench `argv` on the client CPUs, measuring the server's CPUs and tree; its JSON."""
    cmd = [str(BENCH), *argv, "--json", "--quiet", "--server-pid", str(pid)]
    if args.server_cpus:
        cmd += ["--server-cpus", base.cpu_list_text(args.server_cpus)]
    cmd = base.pinned(cmd, args.client_cpus)
    log(f"$ {shlex.join(cmd)}")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError((r.stderr.strip() or f"exit {r.returncode}")[-1500:])
    return json.loads(r.stdout)


def row_figures(report: dict, name: str) -> dict | None:
    """One row of a bench report with CPU per operation of that row: the server CPUs' busy
    time (or, unpinned, the process tree's) over the phase divided by the row's count."""
    row = next((o for o in report.get("ops", []) if o["name"] == name), None)
    if not row or not row["count"]:
        return None
    extra = report.get("extra", {})
    busy = extra.get("server_cpu_busy_ms")
    method = "cpus"
    if busy is None:
        busy, method = extra.get("server_tree_cpu_ms"), "tree"
    lat = row.get("latency_us") or {}
    return {
        "count": row["count"], "errors": row["errors"], "per_sec": row["per_sec"],
        "mib_per_sec": row.get("bytes_per_sec", 0) / (1 << 20),
        "p50_us": lat.get("p50"), "p99_us": lat.get("p99"),
        "cpu_us_per_op": None if busy is None else busy * 1000 / row["count"],
        "cpu_method": method, "busy_share": extra.get("server_cpu_busy_share"),
    }


# ----- the parts ---------------------------------------------------------------------------


def make_peer(args, name: str, users: int):
    options = {"shards": args.shards, "max_connections": 600, "lmtp_connections": 64}
    peer = peers.make(name, options)
    peer.cpus = args.server_cpus
    peer.install()
    return peer


def fill(args, peer, lmtp: int, pid: int, count: int, size: int = 4096) -> int:
    """Delivers `count` messages to GROWER over LMTP; returns how many were accepted."""
    report = run_bench(args, ["lmtp", "--port", str(lmtp), "--users", "1", "--user-pattern",
                              GROWER, "--connections", "8", "--duration", "3600",
                              "--max-ops", str(count), "--size", str(size)], pid, 4000)
    row = next((o for o in report["ops"] if o["name"] == "deliver"), None)
    return row["count"] if row else 0


def mailbox_part(args, name: str, base_dir: pathlib.Path) -> dict:
    """One mailbox growing through --mailbox-sizes on one server."""
    peer = make_peer(args, name, 1)
    work = pathlib.Path(tempfile.mkdtemp(prefix=f"growth-{name}-mailbox-", dir=base_dir))
    imap, lmtp = free_port(), free_port()
    out: dict = {"version": peer.version(), "sizes": {}}
    try:
        peer.start(work, [(GROWER, "pw")], imap, lmtp)
        pid = peer.main_pid()
        have = 0
        for size in args.mailbox_sizes:
            started = time.monotonic()
            have += fill(args, peer, lmtp, pid, size - have)
            stage: dict = {"messages": have, "fill_s": round(time.monotonic() - started, 1),
                           "loadavg": machine.loadavg()}
            log(f"{name}: {have} messages in INBOX")
            before = tree_pss_kib(pid)
            session = Imap(imap)
            login, _ = session.command(f"LOGIN {GROWER} pw")
            examine, took = session.command("EXAMINE INBOX")
            time.sleep(0.5)
            during = tree_pss_kib(pid)
            session.close()
            stage["first_examine_ms"] = round(took * 1000, 2) if ok(examine) else None
            stage["pss_before_kib"], stage["pss_open_kib"] = before, during
            if before is not None and during is not None:
                stage["open_mailbox_kib"] = during - before
            for op in MAILBOX_OPS:
                report = run_bench(args, ["imap-read", "--port", str(imap), "--users", "1",
                                          "--user-pattern", GROWER, "--connections", "1",
                                          "--duration", str(args.duration), "--ops-per-session",
                                          "1000000", "--mix", f"{op}=1"],
                                   pid, args.duration * 4 + 600)
                row = "status" if op == "status" else op
                stage[op] = row_figures(report, row)
            out["sizes"][str(size)] = stage
    finally:
        peer.stop()
        shutil.rmtree(work, ignore_errors=True)
    return out


def users_part(args, name: str, base_dir: pathlib.Path) -> dict:
    """Start-up, idle memory and cold first logins with --user-counts users."""
    out: dict = {"counts": {}}
    for count in args.user_counts:
        peer = make_peer(args, name, count)
        out["version"] = peer.version()
        work = pathlib.Path(tempfile.mkdtemp(prefix=f"growth-{name}-users-", dir=base_dir))
        imap, lmtp = free_port(), free_port()
        users = [(f"user{i}", "pw") for i in range(count)]
        try:
            started = time.monotonic()
            peer.start(work, users, imap, lmtp)
            stage: dict = {"start_s": round(time.monotonic() - started, 3),
                           "loadavg": machine.loadavg()}
            time.sleep(1.0)
            stage["pss_idle_kib"] = tree_pss_kib(peer.main_pid())
            logins, selects = [], []
            for k in range(COLD_LOGINS):
                user = f"user{count - 1 - k * max(1, count // COLD_LOGINS)}"
                session = Imap(imap)
                login, t_login = session.command(f"LOGIN {user} pw")
                select, t_select = session.command("SELECT INBOX")
                session.close()
                if ok(login) and ok(select):
                    logins.append(t_login * 1000)
                    selects.append(t_select * 1000)
            stage["cold_login_ms"] = [round(x, 2) for x in logins]
            stage["cold_select_ms"] = [round(x, 2) for x in selects]
            out["counts"][str(count)] = stage
            log(f"{name}: {count} users: {stage}")
        except PeerUnavailable as e:
            out["counts"][str(count)] = {"error": str(e)}
        finally:
            peer.stop()
            shutil.rmtree(work, ignore_errors=True)
    return out


def sizes_part(args, name: str, base_dir: pathlib.Path) -> dict:
    """LMTP deliveries/s and FETCH bandwidth for each of --message-sizes."""
    out: dict = {"sizes": {}}
    for size in args.message_sizes:
        stage: dict = {"loadavg": machine.loadavg()}
        for kind in ("lmtp", "fetch"):
            peer = make_peer(args, name, SIZE_USERS)
            out["version"] = peer.version()
            work = pathlib.Path(tempfile.mkdtemp(prefix=f"growth-{name}-size-", dir=base_dir))
            imap, lmtp = free_port(), free_port()
            users = [(f"user{i}", "pw") for i in range(SIZE_USERS)]
            try:
                peer.start(work, users, imap, lmtp)
                pid = peer.main_pid()
                if kind == "lmtp":
                    report = run_bench(args, ["lmtp", "--port", str(lmtp), "--users",
                                              str(SIZE_USERS), "--connections", "8",
                                              "--duration", str(args.duration), "--size",
                                              str(size)], pid, args.duration * 4 + 600)
                    stage["deliver"] = row_figures(report, "deliver")
                else:
                    prefill = max(5, min(50, PREFILL_BYTES // SIZE_USERS // size))
                    report = run_bench(args, ["imap-read", "--port", str(imap), "--lmtp-port",
                                              str(lmtp), "--users", str(SIZE_USERS),
                                              "--prefill", str(prefill), "--connections", "8",
                                              "--duration", str(args.duration), "--size",
                                              str(size), "--mix", "fetch-body=1"],
                                       pid, args.duration * 4 + 1200)
                    stage["fetch-body"] = row_figures(report, "fetch-body")
                    stage["prefill_per_user"] = prefill
            except (PeerUnavailable, RuntimeError) as e:
                stage[f"{kind}_error"] = str(e)[-500:]
            finally:
                peer.stop()
                shutil.rmtree(work, ignore_errors=True)
        out["sizes"][str(size)] = stage
        log(f"{name}: {size} bytes: {stage}")
    return out


# ----- output ------------------------------------------------------------------------------


def fmt_us(x) -> str:
    return compare.compare_table.fmt_us(x)


def cpu_text(row: dict | None) -> str:
    if not row or row.get("cpu_us_per_op") is None:
        return "-"
    return fmt_us(row["cpu_us_per_op"]) + ("(t)" if row["cpu_method"] == "tree" else "")


def growth_note(values: dict[int, float | None]) -> str:
    """How a figure grows across the sizes, step by step: each step's factor against the
    step's size factor (linear growth has them equal). FASTER than linear when any step grows
    more than 1.5 times its size factor; else about linear when the whole range grows more
    than the square root of its size factor, sub-linear above 2x, flat below."""
    known = sorted((k, v) for k, v in values.items() if v)
    if len(known) < 2:
        return ""
    steps = [(b[1] / a[1], b[0] / a[0]) for a, b in zip(known, known[1:])]
    factor = known[-1][1] / known[0][1]
    size_factor = known[-1][0] / known[0][0]
    if any(f > sf * 1.5 for f, sf in steps):
        shape = "FASTER than linear"
    elif factor > size_factor ** 0.5:
        shape = "about linear"
    elif factor > 2:
        shape = "sub-linear"
    else:
        shape = "flat"
    detail = ", ".join(f"x{f:,.1f} for x{sf:,.0f}" for f, sf in steps)
    return f"{detail} in size: {shape}"


def tables(args, results: dict) -> list[str]:
    """The results as Markdown tables, one per part."""
    lines = [f"Placement: {args.placement_note}; skua --shards {args.shards}", ""]
    if "mailbox" in args.parts:
        lines += ["### One mailbox: 1k / 10k / 100k messages of 4 KiB", "",
                  "| peer | messages | command | p50 | p99 | CPU/op | ops/s |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        growth = []
        for peer, parts in results.items():
            sizes = (parts.get("mailbox") or {}).get("sizes", {})
            for size, stage in sizes.items():
                for op in MAILBOX_OPS:
                    row = stage.get(op)
                    if row:
                        lines.append(f"| {peer} | {int(size):,} | {op} | {fmt_us(row['p50_us'])} "
                                     f"| {fmt_us(row['p99_us'])} | {cpu_text(row)} | "
                                     f"{row['per_sec']:,.1f} |")
            for op in MAILBOX_OPS:
                note = growth_note({int(s): (st.get(op) or {}).get("cpu_us_per_op")
                                    for s, st in sizes.items()})
                if note:
                    growth.append(f"- {peer} {op} CPU/op: {note}")
        lines += ["", "| peer | messages | open mailbox (PSS KiB) | EXAMINE, first session | "
                  "fill (s) |",
                  "| --- | --- | --- | --- | --- |"]
        for peer, parts in results.items():
            for size, stage in (parts.get("mailbox") or {}).get("sizes", {}).items():
                examine = stage.get("first_examine_ms")
                lines.append(f"| {peer} | {int(size):,} | {stage.get('open_mailbox_kib', '-')} "
                             f"| {'-' if examine is None else f'{examine} ms'} | "
                             f"{stage.get('fill_s', '-')} |")
        lines += ["", *growth, ""]
    if "users" in args.parts:
        lines += ["### Users: 1k / 10k / 100k in the passwd-file, no mail", "",
                  "| peer | users | start-up | PSS at rest (KiB) | cold LOGIN (median of "
                  f"{COLD_LOGINS}) | cold SELECT (median) |", "| --- | --- | --- | --- | --- | --- |"]
        for peer, parts in results.items():
            for count, stage in (parts.get("users") or {}).get("counts", {}).items():
                if "error" in stage:
                    lines.append(f"| {peer} | {int(count):,} | failed: {stage['error'][:80]} "
                                 "| | | |")
                    continue
                med = lambda xs: f"{statistics.median(xs):.2f} ms" if xs else "-"  # noqa: E731
                lines.append(f"| {peer} | {int(count):,} | {stage['start_s']:.2f} s | "
                             f"{stage.get('pss_idle_kib', '-')} | {med(stage['cold_login_ms'])} | "
                             f"{med(stage['cold_select_ms'])} |")
        lines.append("")
    if "sizes" in args.parts:
        lines += ["### Message size: LMTP deliveries/s and FETCH bandwidth (8 connections)", "",
                  "| peer | size | deliveries/s | deliver p99 | CPU/delivery | FETCH MiB/s | "
                  "FETCH p99 | CPU/FETCH |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for peer, parts in results.items():
            for size, stage in (parts.get("sizes") or {}).get("sizes", {}).items():
                d, f = stage.get("deliver"), stage.get("fetch-body")
                lines.append(
                    f"| {peer} | {int(size) // 1024:,} KiB | "
                    f"{'-' if not d else format(d['per_sec'], ',.1f')} | "
                    f"{fmt_us(d and d['p99_us'])} | {cpu_text(d)} | "
                    f"{'-' if not f else format(f['mib_per_sec'], ',.1f')} | "
                    f"{fmt_us(f and f['p99_us'])} | {cpu_text(f)} |")
        for peer, parts in results.items():
            sizes = (parts.get("sizes") or {}).get("sizes", {})
            for key, label in (("deliver", "CPU/delivery"), ("fetch-body", "CPU/FETCH")):
                note = growth_note({int(size): (stage.get(key) or {}).get("cpu_us_per_op")
                                    for size, stage in sizes.items()})
                if note:
                    lines.append(f"- {peer} {label}: {note}")
        lines.append("")
    return lines


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    compare.stop_on_sigterm()
    started = time.time()
    compare.build(args.no_build)
    base_dir = pathlib.Path(tempfile.mkdtemp(prefix="skua-growth-", dir=args.workdir))
    base_dir.chmod(0o755)
    info = machine.describe(REPO, base_dir)
    results: dict = {}
    try:
        for name in args.peers:
            for part in args.parts:
                fn = {"mailbox": mailbox_part, "users": users_part, "sizes": sizes_part}[part]
                try:
                    results.setdefault(name, {})[part] = fn(args, name, base_dir)
                except Exception as e:  # one peer's failure must not lose the others' figures
                    results.setdefault(name, {})[part] = {"error": f"{type(e).__name__}: {e}"}
                    log(f"{name} {part}: failed:\n{traceback.format_exc()}")
    finally:
        shutil.rmtree(base_dir, ignore_errors=True)
    lines = tables(args, results)
    print("\n".join(lines))
    if args.out:
        name = args.out if args.out.endswith(".md") else args.out + ".md"
        path = PERF / "results" / pathlib.Path(name).name
        out = ["# How the cost grows: " + ", ".join(args.peers), "",
               f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, "
               f"took {time.time() - started:.0f}s"]
        out += [f"- {k}: {v}" for k, v in info.items() if k != "load at start"]
        out += [f"- Command: `{shlex.join(['python3', 'perf/growth.py', *argv])}`", "",
                *lines, "## Load at start", "", "```", info["load at start"], "```", "",
                "## Raw", "", "```json", json.dumps(results, indent=1), "```", ""]
        path.write_text("\n".join(out))
        log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
