"""The interface every measured server implements, and what the implementations share.

`perf/compare.py` drives skua, Dovecot and Cyrus through this interface only, so each is
installed, configured, started and measured the same way:

    peer.install()                      # idempotent; raises PeerUnavailable with the reason
    peer.version()
    peer.start(workdir, users, imap_port, lmtp_port)
    peer.main_pid()                     # memory is read over this process and its descendants
    peer.stop()                         # always, even after a failure
    peer.configure_tls(TlsFiles(...))   # compare.py --tls: before start; skua and Dovecot only

Every server listens on 127.0.0.1 only, on the ports it is given, with the users it is given
(plain-text passwords, so that hashing cost decides nothing), and answers an LMTP 250 only
after the message is on stable storage.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time

HOST = "127.0.0.1"
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 20


class PeerUnavailable(Exception):
    """The peer cannot be installed or started here; the message says why."""


class Peer:
    """One server under test. Subclasses set `name` and implement every method."""

    name: str = "?"
    # CPUs the server runs on (compare.py sets it before `start`): every process the peer
    # starts inherits them (`pinned`); None: wherever the kernel puts it.
    cpus: list[int] | None = None

    def install(self) -> None:
        """Makes the server's binaries present (idempotent)."""
        raise NotImplementedError

    def version(self) -> str:
        """The server's version, as it reports it."""
        raise NotImplementedError

    def start(
        self,
        workdir: pathlib.Path,
        users: list[tuple[str, str]],
        imap_port: int,
        lmtp_port: int,
    ) -> None:
        """Configures and starts the server in `workdir`; returns once both ports answer."""
        raise NotImplementedError

    def main_pid(self) -> int:
        """The server's master process."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stops every process the peer started; safe to call twice or after a failed start."""
        raise NotImplementedError

    def settings(self) -> dict[str, str]:
        """Settings worth recording with the results (durability, process model, ...)."""
        return {}

    def max_connections(self) -> int | None:
        """Client connections the server accepts at once, if it has a fixed limit (optional)."""
        return None

    def metrics_url(self) -> str | None:
        """The running server's Prometheus endpoint for skua-bench `--server-metrics`
        (optional); None: the server exports none."""
        return None

    def configure_tls(self, tls: TlsFiles | None) -> None:
        """Serves TLS with `tls` from the next `start` on: implicit TLS (IMAPS) on
        `tls.imaps_port` and STARTTLS on the plain listeners; `None`: plain text, as without
        the call. Peers without TLS support in compare.py raise PeerUnavailable."""
        if tls is not None:
            raise PeerUnavailable(f"{self.name}: compare.py does not configure TLS for it")


@dataclasses.dataclass
class TlsFiles:
    """A certificate and key (PEM files) for a TLS run, and the IMAPS port of the next start
    (set by compare.py before each `start`)."""

    cert: pathlib.Path
    key: pathlib.Path
    imaps_port: int = 0


class ProcessPeer(Peer):
    """A peer that is one foreground process (plus its children), logging to a file."""

    def __init__(self):
        self.process: subprocess.Popen | None = None
        self.log = None

    def launch(self, argv: list[str], log_path: pathlib.Path, ports: list[int]) -> None:
        """Starts `argv` with output to `log_path`; returns once every port answers."""
        self.log = open(log_path, "ab")
        self.process = subprocess.Popen(
            pinned(argv, self.cpus), stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        try:
            wait_for_ports(ports, alive=lambda: self.process.poll() is None)
        except RuntimeError as e:
            self.stop()
            raise PeerUnavailable(f"{self.name} did not start: {e} (see {log_path})") from e

    def main_pid(self) -> int:
        assert self.process is not None, "main_pid() before start()"
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None:
            kill_tree(self.process.pid)
            self.process.wait()
            self.process = None
        if self.log is not None:
            self.log.close()
            self.log = None


def parse_cpu_list(text: str) -> list[int]:
    """'0', '0,2' or '0-3,6' (taskset's and the kernel's notation) as sorted CPU numbers."""
    cpus: set[int] = set()
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        if not first.isdigit() or not (last or first).isdigit():
            raise ValueError(f"{text!r} is not a CPU list (like 0 or 0,2 or 0-3)")
        lo, hi = int(first), int(last or first)
        if lo > hi:
            raise ValueError(f"{part!r}: the range runs backwards")
        cpus.update(range(lo, hi + 1))
    return sorted(cpus)


def cpu_list_text(cpus: list[int]) -> str:
    """Sorted CPU numbers in their shortest list form ('0-3,6')."""
    parts, run = [], []
    for cpu in sorted(set(cpus)):
        if run and cpu != run[-1] + 1:
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
            run = []
        run.append(cpu)
    if run:
        parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(parts)


def pinned(argv: list[str], cpus: list[int] | None) -> list[str]:
    """`argv` run on `cpus` only: `taskset -c LIST argv...` (taskset execs the command, so
    the process keeps its pid and every process it forks inherits the set). No cpus: argv."""
    if not cpus:
        return list(argv)
    return ["taskset", "-c", cpu_list_text(cpus), *argv]


def allowed_cpus(pid: int) -> list[int] | None:
    """The CPUs process `pid` may run on (`Cpus_allowed_list` of /proc/PID/status)."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith("Cpus_allowed_list:"):
                    return parse_cpu_list(line.split(":", 1)[1].strip())
    except (OSError, ValueError):
        pass
    return None


def free_port() -> int:
    """A loopback port in 20000-60000 that was free a moment ago (the brief's range)."""
    import random

    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(20000, 60000)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-60000 on 127.0.0.1")


def port_answers(port: int) -> bool:
    """True if something accepts a TCP connection on the loopback port."""
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_ports(
    ports: list[int], alive=lambda: True, timeout_s: float = START_TIMEOUT_S
) -> None:
    """Waits until every port accepts connections; raises if `alive()` turns false first."""
    deadline = time.monotonic() + timeout_s
    for port in ports:
        while not port_answers(port):
            if not alive():
                raise RuntimeError(f"the server exited before port {port} answered")
            if time.monotonic() > deadline:
                raise RuntimeError(f"port {port} did not answer within {timeout_s}s")
            time.sleep(0.05)


def parent_pids() -> dict[int, int]:
    """child pid -> parent pid of every process now in /proc."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue  # exited since the listing
        ppid = parent_of_stat(stat)
        if ppid is not None:
            parents[int(entry)] = ppid
    return parents


def parent_of_stat(stat: str) -> int | None:
    """The parent pid in a /proc/PID/stat line; the command name may hold spaces and ')'."""
    close = stat.rfind(")")
    if close < 0:
        return None
    fields = stat[close + 1 :].split()
    if len(fields) < 2 or not fields[1].isdigit():
        return None
    return int(fields[1])


def descendants(root: int, parents: dict[int, int] | None = None) -> list[int]:
    """Every descendant of `root`, breadth first (without `root`)."""
    parents = parent_pids() if parents is None else parents
    children: dict[int, list[int]] = {}
    for child, parent in parents.items():
        if child != parent:
            children.setdefault(parent, []).append(child)
    found, seen, queue = [], {root}, [root]
    while queue:
        for child in children.get(queue.pop(0), []):
            if child not in seen:
                seen.add(child)
                found.append(child)
                queue.append(child)
    return found


def kill_tree(root: int, grace_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM to `root`, then SIGKILL to it and whatever of its descendants remain.

    The descendants are listed before the SIGTERM: once the root is gone its children are
    re-parented and could no longer be found from it.
    """
    tree = descendants(root)
    try:
        os.kill(root, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(alive(p) for p in [root, *tree]):
        time.sleep(0.1)
    for pid in [root, *tree]:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def alive(pid: int) -> bool:
    """True if `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            stat = f.read()
    except OSError:
        return False
    close = stat.rfind(")")
    return close >= 0 and stat[close + 1 :].split()[:1] != ["Z"]


def apt_install(packages: list[str], why: str) -> None:
    """`apt-get install -y PACKAGES` (non-interactive) when any is missing.

    Raises PeerUnavailable with apt's last lines when it fails. A package whose postinst tries
    to start a system service is not trusted to have left it stopped: the caller stops it.
    """
    missing = [p for p in packages if not dpkg_installed(p)]
    if not missing:
        return
    if shutil.which("apt-get") is None:
        raise PeerUnavailable(f"{why}: apt-get not found and {missing} not installed")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    args = ["apt-get", "install", "-y", "-q", *missing]
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        # The package lists may be missing on a fresh machine: update once and retry.
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=900)
        result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-5:])
        raise PeerUnavailable(f"{why}: apt-get install {' '.join(missing)} failed:\n{tail}")


def dpkg_installed(package: str) -> bool:
    """True if dpkg says the package is installed."""
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True
    )
    return result.returncode == 0 and result.stdout.strip().endswith("installed")


def stop_system_service(service: str, binary_name: str, own_config_flag: str = "-c") -> None:
    """Stops and disables a system service a package may have started, whatever the init.

    Tries systemctl, then `service`, then ends the processes whose executable is
    `binary_name`, whose parent is init (a daemon started by a postinst script) and whose
    command line has no `own_config_flag` (so it runs the system configuration): never a
    server of compare.py (those run in the foreground under it, with their own config file).
    """
    if shutil.which("systemctl"):
        subprocess.run(["systemctl", "disable", "--now", service], capture_output=True)
    if shutil.which("service"):
        subprocess.run(["service", service, "stop"], capture_output=True)
    for pid, ppid in parent_pids().items():
        if ppid != 1:
            continue
        try:
            exe = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
        except OSError:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if exe == binary_name and own_config_flag.encode() not in argv:
            kill_tree(pid, grace_s=5)
