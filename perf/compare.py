#!/usr/bin/env python3
"""Measures skua, Dovecot and Cyrus the same way in one run and prints them side by side.

    python3 perf/compare.py [--peers skua,dovecot,cyrus] [--duration 10] [--out NAME.md]
    python3 perf/compare.py --tls --peers skua,dovecot [--out NAME.md]

For every peer in turn and every scenario, on a fresh temporary directory and fresh random
loopback ports: start the server (perf/peers/), prefill mailboxes over LMTP where the
scenario reads mail (the bench's own `--prefill`, identical for every peer), run skua-bench
with `--json`, stop the server. Then one table: per scenario and operation, ops/s, p50 and
p99 for each peer and the ratios skua/peer, with issue 3's targets. `--out` writes the table,
the machine, the commit, the exact command and every run's raw JSON into perf/results/.

By default (issue 12) every server process runs on the server CPUs and skua-bench on the
others (`--server-cpus`, `--client-cpus`; CPU 0 and CPU 1 on a 2-CPU machine; `--unpinned`:
shared), and each scenario reports the server's CPU per operation: the busy time of the server
CPUs in /proc/stat over the measured phase (and the server's process tree's CPU time). skua
also serves its Prometheus endpoint, which the bench scrapes around each measured phase
(`--server-metrics`): fdatasync calls and flush rounds per operation, flush-round
percentiles (peers: n/a). A scenario spec is NAME[:CONNECTIONS][@RATE|@auto]: the default
run sweeps LMTP at 8, 64 and 256 connections and IMAP at 8 and 64, then runs lmtp and
imap-read open loop at half the slowest peer's closed-loop rate.

With `--tls` the servers serve TLS with one certificate made for the run (ECDSA P-256, by
openssl, for localhost and 127.0.0.1; the bench verifies it with `--tls-ca`), and the
scenarios are TLS ones: `handshake-full` and `handshake-resumed` (the bench's `handshake`
scenario without and with `--tls-resume`), `imap-read` over implicit TLS, `imap-read-plain`
(the same on a server started without TLS, for the plain-text lead in the same run) and
`idle` over implicit TLS (server memory per idle TLS connection). `lmtp` (STARTTLS),
`imap-mixed` and `churn` (implicit TLS) may be asked for too. Only skua and Dovecot are
configured for TLS. See perf/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

PERF = pathlib.Path(__file__).resolve().parent
REPO = PERF.parent
sys.path.insert(0, str(PERF))

import compare_table  # noqa: E402
import machine  # noqa: E402
import peers  # noqa: E402
from peers import base as peer_base  # noqa: E402
from peers.base import PeerUnavailable, TlsFiles, free_port  # noqa: E402

BENCH = REPO / "target" / "release" / "skua-bench"
# Scenario names; a scenario spec on the command line is NAME[:CONNECTIONS][@RATE], where
# RATE is operations per second (open loop) or `auto`: OPEN_LOAD times the lowest ops/s any
# peer reached in the closed-loop run of NAME[:CONNECTIONS] earlier in the same run.
PLAIN_NAMES = ["lmtp", "imap-mixed", "imap-read", "idle", "churn", "sort", "thread", "qresync"]
# Scenarios on one user's whole mailbox (SORT, THREAD, a QRESYNC resync after --changes
# STOREs): asked for by name only, e.g. `--scenarios sort:1,thread:1,qresync:1`; one user,
# filled with --prefill-order messages.
ORDER_NAMES = {"sort", "thread", "qresync"}
# The default plain run: issue 12's sweeps (LMTP at 8, 64, 256 connections; imap-mixed and
# imap-read at 8 and 64) and open-loop runs at a rate every peer sustains.
SCENARIOS = ["lmtp", "lmtp:64", "lmtp:256", "imap-mixed", "imap-mixed:64", "imap-read",
             "imap-read:64", "lmtp@auto", "imap-read@auto", "idle", "churn"]
# --tls: the default scenarios, and every name allowed. `*-starttls`: STARTTLS on the plain
# IMAP port instead of implicit TLS.
TLS_SCENARIOS = ["handshake-full", "handshake-resumed", "handshake-starttls", "imap-read",
                 "imap-read-starttls", "imap-read-plain", "imap-mixed", "lmtp", "churn", "idle"]
TLS_NAMES = TLS_SCENARIOS
# Scenarios of a --tls run that use no TLS.
PLAIN_IN_TLS_RUN = {"imap-read-plain"}
# Scenarios of a --tls run with STARTTLS on the plain IMAP port (lmtp always uses STARTTLS).
STARTTLS_IN_TLS_RUN = {"handshake-starttls", "imap-read-starttls"}
# An `@auto` open-loop run's rate, as a share of the slowest peer's closed-loop ops/s.
OPEN_LOAD = 0.5
# Rows that are not paced by --rate (in the IMAP sessions, a tick starts a session or one
# command; LOGIN, SELECT/EXAMINE and LOGOUT follow without one).
UNPACED_ROWS = {"login", "select", "examine", "logout", "connect_lmtp"}
# The issue-8 goal: server memory per idle TLS connection, KiB.
TLS_IDLE_KIB_GOAL = 4.0
# Descriptors the bench keeps besides the idle sockets (stdio, runtime, LMTP, slack).
FD_RESERVE = 200
# Connections a server with a fixed limit keeps free for the idle scenario's LMTP connection
# (at least; 1/16 of the limit when larger, as skua's per-shard limits fill unevenly).
SERVER_RESERVE = 64


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--peers", default=",".join(peers.known()), help="comma-separated")
    p.add_argument("--scenarios", help="comma-separated (default: every scenario of the mode)")
    p.add_argument("--tls", action="store_true",
                   help="TLS scenarios with a certificate made for the run (skua and Dovecot)")
    p.add_argument("--users", type=int, default=100)
    p.add_argument("--duration", type=int, default=10, help="seconds per scenario")
    p.add_argument("--connections", type=int, default=8, help="bench connections (not idle)")
    p.add_argument("--idle-connections", type=int, default=19_000,
                   help="skua's idle connections (capped by the fd limit)")
    p.add_argument("--peer-idle-connections", type=int, default=500,
                   help="idle connections for Dovecot/Cyrus (a process each)")
    p.add_argument("--prefill-mixed", type=int, default=20, help="messages per user")
    p.add_argument("--prefill-read", type=int, default=50, help="messages per user")
    p.add_argument("--prefill-order", type=int, default=100_000,
                   help="messages in the one mailbox of the sort and thread scenarios")
    p.add_argument("--corpus-count", type=int, default=1000,
                   help="messages of the generated corpus; 0: synthetic 4 KiB messages")
    p.add_argument("--corpus-max-size", type=int, default=256 * 1024)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--shards", type=int,
                   help="skua's shards (default: the server CPUs, or every CPU unpinned)")
    p.add_argument("--server-cpus", help="CPUs of every server process (default: all but the "
                   "last quarter of this process's CPUs; 0 on a 2-CPU machine)")
    p.add_argument("--client-cpus", help="CPUs of skua-bench (default: the last quarter; 1 "
                   "on a 2-CPU machine)")
    p.add_argument("--unpinned", action="store_true",
                   help="no pinning: servers and bench share every CPU (the pre-issue-12 mode)")
    p.add_argument("--bench-threads", type=int, default=1, help="skua-bench's --threads")
    p.add_argument("--open-load", type=float, default=OPEN_LOAD,
                   help="@auto rate as a share of the slowest peer's closed-loop ops/s")
    p.add_argument("--dovecot-hibernate", action="store_true",
                   help="turn Dovecot's imap_hibernate on")
    p.add_argument("--workdir", default=tempfile.gettempdir(),
                   help="where the servers' temporary directories go")
    p.add_argument("--no-build", action="store_true", help="use the binaries as they are")
    p.add_argument("--keep", action="store_true", help="keep the servers' directories")
    p.add_argument("--out", help="write a result file perf/results/NAME.md")
    args = p.parse_args(argv)
    args.peers = [x for x in args.peers.split(",") if x]
    known = TLS_NAMES if args.tls else PLAIN_NAMES
    default = TLS_SCENARIOS if args.tls else SCENARIOS
    args.scenarios = [x for x in (args.scenarios or ",".join(default)).split(",") if x]
    for text in args.scenarios:
        try:
            parse_spec(text, known)
        except ValueError as e:
            p.error(f"{e}; known scenarios: {', '.join(known)}")
    if not 1 <= args.duration <= 3600:
        p.error("--duration must be 1..3600")
    if not 0 < args.open_load <= 1:
        p.error("--open-load must be in (0, 1]")
    try:
        args.server_cpus, args.client_cpus, args.placement_note = placement(
            args, sorted(os.sched_getaffinity(0)))
    except ValueError as e:
        p.error(str(e))
    if args.shards is None:
        args.shards = len(args.server_cpus) if args.server_cpus else (os.cpu_count() or 1)
    return args


class Spec:
    """One scenario spec, NAME[:CONNECTIONS][@RATE|@auto]."""

    def __init__(self, text: str, name: str, connections: int | None, rate: str | None):
        self.text, self.name, self.connections, self.rate = text, name, connections, rate

    def closed_text(self) -> str:
        """The closed-loop spec an `@auto` rate is taken from."""
        return self.name + (f":{self.connections}" if self.connections else "")


def parse_spec(text: str, known: list[str]) -> Spec:
    """Parses NAME[:CONNECTIONS][@RATE|@auto]; ValueError says what is wrong."""
    rest, _, rate = text.partition("@")
    name, _, connections = rest.partition(":")
    if name not in known:
        raise ValueError(f"unknown scenario {name!r} in {text!r}")
    count = None
    if connections:
        if not connections.isdigit() or not 1 <= int(connections) <= 100_000:
            raise ValueError(f"{text!r}: connections must be 1..100000")
        if name == "idle":
            raise ValueError("idle takes --idle-connections, not :N")
        count = int(connections)
    if rate:
        if name == "idle":
            raise ValueError("idle has no open-loop mode here")
        if rate != "auto":
            try:
                ok = 0 < float(rate) <= 10_000_000
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"{text!r}: the rate must be auto or operations per second")
    return Spec(text, name, count, rate or None)


def placement(args, allowed: list[int]) -> tuple[list[int] | None, list[int] | None, str]:
    """(server CPUs, bench CPUs, what was decided): disjoint sets within `allowed`, from
    --server-cpus/--client-cpus or by default the last quarter of `allowed` (at least one
    CPU) for the bench and the rest for the server; (None, None) with --unpinned or on one
    CPU."""
    if args.unpinned:
        if args.server_cpus or args.client_cpus:
            raise ValueError("--unpinned excludes --server-cpus and --client-cpus")
        return None, None, "unpinned (--unpinned): servers and bench share every CPU"
    if len(allowed) < 2 and not (args.server_cpus or args.client_cpus):
        return None, None, f"unpinned: only CPU {allowed} is available, nothing to separate"
    bench_count = max(1, len(allowed) // 4)
    server = (peer_base.parse_cpu_list(args.server_cpus) if args.server_cpus
              else allowed[:-bench_count])
    client = (peer_base.parse_cpu_list(args.client_cpus) if args.client_cpus
              else [c for c in allowed[-bench_count:] if c not in server] or None)
    if not client:
        raise ValueError("no CPU is left for the bench: give --client-cpus")
    if set(server) & set(client):
        raise ValueError(f"--server-cpus {server} and --client-cpus {client} overlap")
    outside = sorted((set(server) | set(client)) - set(allowed))
    if outside:
        raise ValueError(f"CPUs {outside} are not available to this process ({allowed})")
    return server, client, (
        f"pinned: every server process on CPU {peer_base.cpu_list_text(server)}, skua-bench "
        f"on CPU {peer_base.cpu_list_text(client)} (taskset)")


def build(no_build: bool) -> None:
    """Release builds of the bench and the server (the commands the brief names)."""
    if no_build:
        return
    for cmd in (
        ["cargo", "build", "--release", "-p", "skua-bench", "--bin", "skua-bench"],
        ["cargo", "build", "--release", "--bin", "skua"],
    ):
        log(f"$ {' '.join(cmd)}")
        subprocess.run(cmd, cwd=REPO, check=True)


def make_corpus(args, base: pathlib.Path) -> list[str]:
    """The bench's message options: a generated corpus, or synthetic 4 KiB messages."""
    if args.corpus_count == 0:
        return ["--size", "4096"]
    out = base / "corpus"
    cmd = [str(BENCH), "corpus", "--out", str(out), "--count", str(args.corpus_count),
           "--seed", str(args.seed), "--max-size", str(args.corpus_max_size)]
    log(f"$ {shlex.join(cmd)}")
    subprocess.run(cmd, check=True)
    return ["--corpus", str(out)]


def make_certificate(base: pathlib.Path) -> TlsFiles:
    """A self-signed ECDSA P-256 end-entity certificate and key for localhost and 127.0.0.1,
    made with openssl for this run and served by every peer (the bench verifies against it)."""
    cert, key = base / "tls.crt", base / "tls.key"
    cmd = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
           "-nodes", "-days", "30", "-subj", "/CN=localhost",
           "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
           # openssl marks a self-signed certificate CA:TRUE by default, and a CA certificate
           # is refused as a server's own (rustls/webpki: CaUsedAsEndEntity).
           "-addext", "basicConstraints=critical,CA:FALSE",
           "-keyout", str(key), "-out", str(cert)]
    log(f"$ {shlex.join(cmd)}")
    subprocess.run(cmd, check=True, capture_output=True)
    key.chmod(0o600)
    return TlsFiles(cert=cert, key=key)


def idle_limit(wanted: int) -> tuple[int, str | None]:
    """`wanted`, capped so the bench's sockets fit in its descriptor limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = hard if hard != resource.RLIM_INFINITY else soft
    cap = max(1, limit - FD_RESERVE)
    if wanted > cap:
        return cap, f"idle connections capped at {cap} by the fd limit ({limit})"
    return wanted, None


def bench_command(args, scenario, peer, imap, lmtp, message, pid, idle_k,
                  tls: TlsFiles | None = None, rate: float | None = None) -> list[str]:
    """The skua-bench command line of one run of scenario spec `scenario` (see parse_spec;
    `rate`: the resolved rate of an `@` spec); with `tls`, over TLS: IMAP to the IMAPS port
    (or STARTTLS on the plain port for the `*-starttls` scenarios), LMTP with STARTTLS (the
    `lmtp` scenario only; prefills and idle deliveries stay plain). It measures the server's
    CPU over the measured phase: its process tree (`--server-pid`) always, the busy time of
    its CPUs (`--server-cpus`) when pinned, and the storage work of the phase
    (`--server-metrics`) when the peer exports metrics (skua). The caller runs it on the
    bench's CPUs."""
    spec = parse_spec(scenario, TLS_NAMES if args.tls else PLAIN_NAMES)
    name = spec.name
    connections = str(spec.connections or args.connections)
    users = 1 if name in ORDER_NAMES else args.users
    common = ["--users", str(users), "--duration", str(args.duration), "--json",
              "--quiet", "--seed", str(args.seed), "--server-pid", str(pid)]
    if getattr(args, "server_cpus", None):
        common += ["--server-cpus", peer_base.cpu_list_text(args.server_cpus)]
    metrics = getattr(peer, "metrics_url", lambda: None)()
    if metrics:
        common += ["--server-metrics", metrics]
    if getattr(args, "bench_threads", 1) != 1:
        common += ["--threads", str(args.bench_threads)]
    if spec.rate is not None:
        if rate is None:
            raise ValueError(f"{scenario}: the open-loop rate was not resolved")
        common += ["--rate", f"{rate:g}"]
    if tls is not None:
        ca = ["--tls-ca", str(tls.cert)]
        if name == "lmtp" or name in STARTTLS_IN_TLS_RUN:
            common += ["--starttls", *ca]
        else:
            imap = tls.imaps_port
            common += ["--tls", *ca]
        if name.startswith("handshake-"):
            resume = ["--tls-resume"] if name == "handshake-resumed" else []
            return [str(BENCH), "handshake", "--port", str(imap), "--connections",
                    connections, *common, *resume]
    name = name.removesuffix("-plain").removesuffix("-starttls")
    if name == "lmtp":
        return [str(BENCH), "lmtp", "--port", str(lmtp), "--connections", connections,
                *common, *message]
    if name in ("imap-mixed", "imap-read"):
        prefill = args.prefill_mixed if name == "imap-mixed" else args.prefill_read
        return [str(BENCH), name, "--port", str(imap), "--lmtp-port", str(lmtp),
                "--prefill", str(prefill), "--connections", connections,
                *common, *message]
    if name in ORDER_NAMES:
        return [str(BENCH), name, "--port", str(imap), "--lmtp-port", str(lmtp),
                "--prefill", str(args.prefill_order), "--connections", connections,
                *common, *message]
    if name == "idle":
        return [str(BENCH), "idle", "--port", str(imap), "--lmtp-port", str(lmtp),
                "--connections", str(idle_k), "--settle", str(idle_settle(args)),
                *common, *message]
    return [str(BENCH), "churn", "--port", str(imap), "--connections", connections, *common]


def paced_per_sec(report: dict | None) -> float | None:
    """Operations per second that `--rate` paces, in a closed-loop report: deliveries
    (lmtp), sessions (churn), connections (handshake), session starts and commands (IMAP)."""
    if not report:
        return None
    rows = report.get("ops", [])
    kind = report.get("scenario")
    if kind == "lmtp":
        chosen = [o for o in rows if o["name"] == "deliver"]
    elif kind == "churn":
        chosen = [o for o in rows if o["name"] == "session"]
    else:
        chosen = [o for o in rows if o["name"] not in UNPACED_ROWS]
    return sum(o["per_sec"] for o in chosen) if chosen else None


def resolve_rates(args, specs: list[Spec], results: dict) -> tuple[dict, list[str]]:
    """The rate of every open-loop spec: a number as given, `auto` as --open-load times the
    lowest paced ops/s among the peers' closed-loop runs of the same scenario and connections
    (rounded down to 2 significant digits). Returns ({spec text: rate}, notes)."""
    rates, notes = {}, []
    for spec in specs:
        if spec.rate is None:
            continue
        if spec.rate != "auto":
            rates[spec.text] = float(spec.rate)
            continue
        base = spec.closed_text()
        seen = {peer: paced_per_sec(by.get(base)) for peer, by in results.items()}
        seen = {peer: v for peer, v in seen.items() if v}
        if not seen:
            notes.append(f"{spec.text}: no closed-loop run of {base} to take the rate from; "
                         "skipped")
            continue
        rate = round_down(args.open_load * min(seen.values()))
        rates[spec.text] = rate
        slowest = min(seen, key=seen.get)
        notes.append(f"{spec.text}: {rate:g}/s = {args.open_load:g} x {slowest}'s "
                     f"{seen[slowest]:,.0f}/s in {base}")
    return rates, notes


def round_down(x: float) -> float:
    """x rounded down to 2 significant digits (at least 1)."""
    if x < 1:
        return 1.0
    scale = 10 ** (len(str(int(x))) - 2)
    return float(max(1, int(x // scale) * scale)) if scale >= 1 else float(int(x))


def idle_settle(args) -> int:
    """Seconds between the last idler and the memory reading: longer than Dovecot's
    hibernation timeout (2 s) when that is on, so the idlers have hibernated; the same for
    every peer of the run."""
    return 6 if args.dovecot_hibernate else 2


def run_bench(cmd: list[str], timeout_s: float) -> tuple[dict | None, str]:
    """Runs one bench command; returns (its JSON report or None, error text)."""
    log(f"$ {shlex.join(cmd)}")
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout_s:.0f}s"
    if r.returncode != 0:
        return None, (r.stderr.strip() or f"exit {r.returncode}")[-2000:]
    try:
        return json.loads(r.stdout), ""
    except json.JSONDecodeError as e:
        return None, f"bad JSON ({e}): {r.stdout[:500]}"


def run_peer(args, name: str, message: list[str], base: pathlib.Path, record: dict,
             tls: TlsFiles | None = None, specs: list[str] | None = None,
             rates: dict | None = None) -> dict:
    """Every scenario of `specs` (default: all of the run) against one peer; returns
    spec -> report (None on failure). `rates`: the resolved rate of each open-loop spec."""
    specs = args.scenarios if specs is None else specs
    known = TLS_NAMES if args.tls else PLAIN_NAMES
    parsed = [parse_spec(text, known) for text in specs]
    most = max([args.connections] + [s.connections or 0 for s in parsed])
    lmtp_most = max([0] + [s.connections or args.connections for s in parsed
                           if s.name == "lmtp"])
    options = {"shards": args.shards, "dovecot_hibernate": args.dovecot_hibernate,
               "max_connections": max(args.peer_idle_connections, most) + 64,
               "lmtp_connections": lmtp_most + 16}
    peer = peers.make(name, options)
    peer.cpus = args.server_cpus
    peer.install()
    if tls is not None:
        peer.configure_tls(tls)  # PeerUnavailable for a peer without TLS support here
    record["version"] = peer.version()
    wanted = args.idle_connections if name == "skua" else args.peer_idle_connections
    idle_k, note = idle_limit(wanted)
    # Notes about the idle scenario, once per peer (run_peer runs once per phase).
    notes = record.setdefault("notes", [])
    has_idle = any(s.name == "idle" for s in parsed)
    if note and has_idle and note not in notes:
        notes.append(note)
    server_max = peer.max_connections() if hasattr(peer, "max_connections") else None
    reserve = max(SERVER_RESERVE, (server_max or 0) // 16)
    if server_max is not None and idle_k > server_max - reserve:
        idle_k = max(1, server_max - reserve)
        note = (f"idle connections capped at {idle_k}: the server accepts {server_max} at "
                f"once (less {reserve} for the LMTP connection and uneven spreading over shards)")
        if has_idle and note not in notes:
            notes.append(note)
    users = [(f"user{i}", "pw") for i in range(args.users)]
    results = {}
    for spec in parsed:
        scenario = spec.text
        if spec.rate is not None and scenario not in (rates or {}):
            continue  # an @auto rate with nothing to take it from (noted by resolve_rates)
        label = scenario.replace(":", "-c").replace("@", "-r")
        workdir = pathlib.Path(tempfile.mkdtemp(prefix=f"compare-{name}-{label}-", dir=base))
        imap, lmtp = free_port(), free_port()
        run_tls = None
        if tls is not None and spec.name not in PLAIN_IN_TLS_RUN:
            run_tls = TlsFiles(tls.cert, tls.key, free_port())
        if tls is not None:
            peer.configure_tls(run_tls)
        run = {"scenario": scenario, "workdir": str(workdir), "loadavg_before": machine.loadavg()}
        rate = (rates or {}).get(scenario)
        if rate is not None:
            run["rate"] = rate
        try:
            peer.start(workdir, users, imap, lmtp)
            run["settings"] = peer.settings()
            allowed = peer_base.allowed_cpus(peer.main_pid())
            run["server_cpus_allowed"] = peer_base.cpu_list_text(allowed) if allowed else "?"
            if args.server_cpus and allowed != args.server_cpus:
                raise RuntimeError(f"{name} runs on CPUs {allowed}, not {args.server_cpus}")
            timeout = args.duration * 3 + 900
            # No warm-up before idle: a warm-up leaves per-connection processes behind in the
            # servers that reuse them (Cyrus keeps its imapd processes for the next client),
            # which would hide their cost from the "after - before" difference. Every server
            # is measured from rest, fresh; skua's share of opening the users' stores for the
            # first time is in its figure (100 users over thousands of connections).
            cmd = peer_base.pinned(
                bench_command(args, scenario, peer, imap, lmtp, message, peer.main_pid(),
                              idle_k, run_tls, rate),
                args.client_cpus)
            report, error = run_bench(cmd, timeout)
            run.update(command=shlex.join(cmd), report=report, error=error or None)
            if error:
                log(f"{name} {scenario}: FAILED: {error}")
        except Exception as e:  # PeerUnavailable, or a peer module's bug: the next scenario runs
            text = str(e) if isinstance(e, PeerUnavailable) else traceback.format_exc()
            run.update(report=None, error=text)
            log(f"{name} {scenario}: {text}")
        finally:
            peer.stop()
            run["loadavg_after"] = machine.loadavg()
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
        record.setdefault("runs", []).append(run)
        results[scenario] = run.get("report")
    return results


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def stop_on_sigterm() -> None:
    """SIGTERM (or SIGHUP) raises SystemExit, so every `finally` stops its server."""
    def handler(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    started = time.time()
    build(args.no_build)
    base = pathlib.Path(tempfile.mkdtemp(prefix="skua-compare-", dir=args.workdir))
    base.chmod(0o755)  # peers' unprivileged processes (Dovecot's auth, mail user) traverse it
    info = machine.describe(REPO, base)
    info["load at start"] = machine.busiest()
    results, records = {}, {}
    try:
        message = make_corpus(args, base)
        tls = make_certificate(base) if args.tls else None
        known = TLS_NAMES if args.tls else PLAIN_NAMES
        specs = [parse_spec(text, known) for text in args.scenarios]
        # Closed-loop scenarios first, for every peer; then the open-loop ones, whose `auto`
        # rate comes from the closed-loop figures of every peer.
        closed = [s.text for s in specs if s.rate is None]
        opened = [s.text for s in specs if s.rate is not None]
        rates: dict = {}
        for phase, chosen in (("closed", closed), ("open", opened)):
            if not chosen:
                continue
            if phase == "open":
                rates, notes = resolve_rates(args, specs, results)
                args.rate_notes = notes
                for note in notes:
                    log(note)
            for name in args.peers:
                record = records.setdefault(name, {})
                if "skipped" in record:
                    continue
                try:
                    found = run_peer(args, name, message, base, record, tls, chosen, rates)
                    results.setdefault(name, {}).update(found)
                except PeerUnavailable as e:
                    record["skipped"] = str(e)
                    log(f"{name}: skipped: {e}")
                except Exception as e:  # a bug in one peer's module must not lose the others
                    record["skipped"] = f"failed: {type(e).__name__}: {e}"
                    log(f"{name}: failed:\n{traceback.format_exc()}")
        args.rates = rates
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    lines = summary(args, results, records)
    print("\n".join(lines))
    if args.out:
        path = write_result(args, argv, info, lines, records, started)
        log(f"wrote {path}")
    return 0


def summary(args, results: dict, records: dict) -> list[str]:
    """The table, the skipped peers, the targets."""
    rates = getattr(args, "rates", None) or {}
    lines = [f"Placement: {args.placement_note}" + (
        f"; skua --shards {args.shards}" if "skua" in args.peers else "")]
    lines.append("")
    lines += (compare_table.table(results, args.scenarios, rates) if results
              else ["(no peer ran)"])
    lines.append("")
    lines.append("ops x P = skua ops/s / P ops/s (higher is better); p99 x P = skua p99 / P p99, "
                 "cpu x P = skua CPU/op / P CPU/op and memory x P = skua / P (lower is better).")
    lines.append(cpu_method(args))
    details = compare_table.cpu_details(results, args.scenarios, rates)
    if details:
        lines += ["", "Server CPU over each measured phase:"] + [f"  {d}" for d in details]
    storage = compare_table.storage_details(results, args.scenarios, rates)
    if storage:
        lines += ["", "Server storage over each measured phase (skua's metrics endpoint; "
                  "peers export none: n/a):"] + [f"  {d}" for d in storage]
    sustained = open_loop_lines(results, rates, getattr(args, "rate_notes", []))
    if sustained:
        lines += ["", "Open loop (fixed arrival rate; latency from each intended start):"]
        lines += [f"  {x}" for x in sustained]
    for name, record in records.items():
        if "skipped" in record:
            lines.append(f"{name}: skipped: {record['skipped']}")
        for run in record.get("runs", []):
            if run.get("error"):
                lines.append(f"{name} {run['scenario']}: failed: {run['error'].splitlines()[-1]}")
    lines.append("")
    if args.tls:
        lines.append("Issue 8 goals (TLS):")
        lines += [f"  -> {v}" for v in tls_verdicts(results)]
        return lines
    lines.append("Issue 3 targets:")
    lines += [f"  {t}" for t in compare_table.TARGETS_TEXT]
    lines += [f"  -> {v}" for v in compare_table.verdicts(results)]
    return lines


def cpu_method(args) -> str:
    """How `cpu/op` was measured in this run."""
    if args.server_cpus:
        cpus = peer_base.cpu_list_text(args.server_cpus)
        return (f"cpu/op = busy time (user+nice+system+irq+softirq in /proc/stat) of CPU {cpus}, "
                "where every server process ran, over the measured phase / the scenario's "
                "operations (its 'per' row): kernel time and exited processes included, and "
                "anything else that ran there.")
    return ("cpu/op (marked (t)) = CPU time of the server's process tree (/proc/PID/stat, with "
            "reaped children) over the measured phase / the scenario's operations: unpinned, "
            "the CPUs' busy time would include the bench.")


def open_loop_lines(results: dict, rates: dict, notes: list[str]) -> list[str]:
    """How each open-loop rate was chosen, and whether each peer kept up with it (at least
    95% of the rate in paced operations: below that, its latencies are those of a server
    falling behind)."""
    lines = list(notes)
    for scenario, rate in rates.items():
        for peer, by_scenario in results.items():
            got = paced_per_sec(by_scenario.get(scenario))
            if got is None:
                continue
            kept = "sustained" if got >= 0.95 * rate else "NOT sustained"
            lines.append(f"{peer} {compare_table.scenario_label(scenario, rates)}: "
                         f"{got:,.1f}/s of {rate:g}/s: {kept}")
    return lines


def tls_verdicts(results: dict) -> list[str]:
    """The issue-8 goals against a --tls run: the TLS parameters each peer negotiated, memory
    per idle TLS connection (at most 4 KiB), and whether TLS keeps skua's lead over Dovecot
    in imap-read (skua/Dovecot ops/s over TLS against the same ratio in plain text)."""
    lines = []
    for peer, by_scenario in results.items():
        for scenario in ("handshake-full", "handshake-resumed", "handshake-starttls"):
            report = by_scenario.get(scenario)
            if report:
                full = compare_table.op_row(report, "full")
                resumed = compare_table.op_row(report, "resumed")
                cpu = report["extra"].get("server_cpu_ms_per_connection")
                lines.append(
                    f"{peer} {scenario}: {report['extra'].get('negotiated', '?')}, "
                    f"{full['count'] if full else 0} full and "
                    f"{resumed['count'] if resumed else 0} resumed handshakes, server CPU "
                    + ("?" if cpu is None else f"{cpu:.3f} ms") + " per connection"
                )
    for peer, by_scenario in results.items():
        idle = by_scenario.get("idle")
        pss = compare_table.idle_figure(idle, "pss_per_connection_kib")
        rss = compare_table.idle_figure(idle, "rss_per_connection_kib")
        held = compare_table.idle_figure(idle, "idle_connections")
        if idle is None:
            continue
        ok = bool(held) and rss is not None and rss <= TLS_IDLE_KIB_GOAL
        lines.append(
            f"{peer} idle TLS: {compare_table.fmt_num(held, 0)} held, RSS "
            f"{compare_table.fmt_num(rss, 2)} KiB, PSS {compare_table.fmt_num(pss, 2)} KiB per "
            f"connection (goal <= {TLS_IDLE_KIB_GOAL:.0f} KiB): "
            + compare_table.met_text(ok)
        )
    skua, dovecot = results.get("skua") or {}, results.get("dovecot") or {}
    for name in compare_table.operations(results, "imap-read"):
        tls_ratio = compare_table.ratio(
            per_sec(skua, "imap-read", name), per_sec(dovecot, "imap-read", name))
        plain_ratio = compare_table.ratio(
            per_sec(skua, "imap-read-plain", name), per_sec(dovecot, "imap-read-plain", name))
        if tls_ratio is None or plain_ratio is None:
            continue
        lines.append(
            f"imap-read {name}: skua/Dovecot {compare_table.fmt_ratio(tls_ratio)} over TLS, "
            f"{compare_table.fmt_ratio(plain_ratio)} plain: lead "
            + ("kept" if tls_ratio >= 1.0 else "LOST")
            + (" (narrower over TLS)" if tls_ratio < plain_ratio else "")
        )
    return lines


def per_sec(by_scenario: dict, scenario: str, name: str) -> float | None:
    """ops/s of operation `name` in a peer's report of `scenario`, if it ran."""
    row = compare_table.op_row(by_scenario.get(scenario), name)
    return row["per_sec"] if row else None


def write_result(args, argv, info, lines, records, started) -> pathlib.Path:
    """perf/results/NAME.md: when, what, where, how, the table and the raw runs."""
    name = args.out if args.out.endswith(".md") else args.out + ".md"
    path = PERF / "results" / pathlib.Path(name).name
    path.parent.mkdir(exist_ok=True)
    command = shlex.join(["python3", "perf/compare.py", *argv])
    mode = " over TLS" if args.tls else ""
    out = [f"# Comparison{mode}: {', '.join(args.peers)}", ""]
    out.append(f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, "
               f"took {time.time() - started:.0f}s")
    out += [f"- {k}: {v}" for k, v in info.items() if k != "load at start"]
    out.append(f"- Command: `{command}`")
    out.append(f"- Placement: {args.placement_note}; skua --shards {args.shards}")
    out += ["", "## Results", "", "```", *lines, "```", "", "## Summary", "",
            "Per scenario: the unit's ops/s and the server's CPU per op, and skua against each "
            "peer.", ""]
    results = {peer: {run["scenario"]: run.get("report") for run in record.get("runs", [])}
               for peer, record in records.items() if record.get("runs")}
    out += compare_table.markdown(results, args.scenarios, getattr(args, "rates", None))
    storage = compare_table.storage_markdown(results, args.scenarios, getattr(args, "rates", None))
    if storage:
        out += ["", "Storage work per operation (skua-bench --server-metrics; flush-round "
                "percentiles estimated from the server's histogram buckets):", "", *storage]
    out += ["", "## Peers", ""]
    for peer, record in records.items():
        out.append(f"### {peer} {record.get('version', '')}".rstrip())
        if "skipped" in record:
            out.append(f"Skipped: {record['skipped']}")
        settings = next((r["settings"] for r in record.get("runs", []) if "settings" in r), {})
        out += [f"- {k}: {v}" for k, v in settings.items()]
        out += [f"- note: {n}" for n in record.get("notes", [])]
        out.append("")
    out += ["## Machine load", "", "Processes using the most CPU when the run started "
            "(the machine is shared; other helpers were compiling):", "", "```",
            info["load at start"], "```", "", "Load average (1, 5, 15 min) around each run:", ""]
    for peer, record in records.items():
        for run in record.get("runs", []):
            out.append(f"- {peer} {run['scenario']}: before {run['loadavg_before']}, "
                       f"after {run['loadavg_after']}")
    out += ["", "## Raw runs", "", "```json", json.dumps(records, indent=1), "```", ""]
    path.write_text("\n".join(out))
    return path


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
