"""Cyrus IMAP 3.6 (Debian 12's package) as a benchmark peer beside skua and Dovecot.

Debian's cyrus-imapd conflicts with dovecot-imapd (both provide imap-server), and Dovecot is
installed on the same machine for the comparison. So Cyrus is never `apt-get install`ed: its
two packages are downloaded with `apt-get download`, unpacked with `dpkg -x` into a private
directory ($SKUA_PEERS_DIR/cyrus, default /var/tmp/skua-peers/cyrus), and only their plain
library dependencies are installed. The binaries find their private libcyrus*.so through
LD_LIBRARY_PATH and their configuration through `-C`: nothing under /etc is touched.

Each `start` gets its own workdir: imapd.conf, cyrus.conf, a sasldb with the users'
plain-text passwords, the databases, the spool and the sockets all live there. Cyrus logs
only through syslog(3), and the machine has no /dev/log, so the master runs in a private
mount namespace whose /dev/log is a stream socket this module reads into
workdir/cyrus.log (a plain /dev is kept for everything else). See perf/peers/CYRUS.md for
the configuration choices and why they are fair next to skua and Dovecot.

Run `python3 perf/peers/cyrus.py --selftest` for the end-to-end check, `--unit` for the unit
tests of the pure parts.
"""

from __future__ import annotations

import os
import pathlib
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

try:
    from .base import Peer, PeerUnavailable, pinned
except ImportError:  # run as a script: perf/ is then not a package parent
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    try:
        from peers.base import Peer, PeerUnavailable, pinned
    except ImportError:  # base.py not written yet: the same interface, locally

        class PeerUnavailable(Exception):  # type: ignore[no-redef]
            """The peer cannot be installed or started here; the message says why."""

        class Peer:  # type: ignore[no-redef]
            """One server under test (fallback copy of perf/peers/base.py's interface)."""

            name: str = "?"

            def settings(self) -> dict[str, str]:
                """Settings worth recording with the results."""
                return {}

        def pinned(argv: list[str], cpus: list[int] | None) -> list[str]:
            """`argv` under `taskset -c` (fallback copy of perf/peers/base.py's)."""
            return list(argv) if not cpus else ["taskset", "-c", ",".join(map(str, cpus)), *argv]


HOST = "127.0.0.1"
# The Debian packages that hold master, imapd, lmtpd, idled and their tools/libraries.
CYRUS_PACKAGES = ("cyrus-common", "cyrus-imapd")
# Library dependencies of cyrus-common that none of the programs run here links:
# libclamav12 serves only cyr_virusscan, libzephyr4 only notifyd.
UNNEEDED_LIBS = frozenset({"libclamav12", "libzephyr4"})
# Programs run by this module; each must resolve all its shared libraries.
PROGRAMS = ("master", "imapd", "lmtpd", "idled", "ctl_cyrusdb")
# saslpasswd2 (sasl2-bin) fills the sasldb; the sasldb auxprop plugin is libsasl2-modules-db.
SASL_PACKAGES = ("sasl2-bin", "libsasl2-modules", "libsasl2-modules-db")
CYRUS_USER, CYRUS_GROUP = "cyrus", "mail"
SERVERNAME = "localhost"  # also the SASL realm of every sasldb entry
ADMIN = "cyrusadmin"  # IMAP admin that creates the users' INBOXes
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 20
APT_TIMEOUT_S = 900
SUN_PATH_MAX = 100  # AF_UNIX paths are limited to 108 bytes; keep a margin
LOG_TAIL_LINES = 40
# Directories under configdirectory (as mkimap makes them).
CONFIG_DIRS = ("db", "log", "lock", "proc", "quota", "sieve", "socket", "user")
SYSLOG_BACKLOG = 512  # pending connections to the stand-in /dev/log
SYSLOG_RECORD_MAX = 64 * 1024  # longest syslog record kept whole (glibc sends far less)
# Device nodes bound into the master's private /dev.
DEVICES = ("null", "zero", "random", "urandom", "full", "tty")


def peers_dir() -> pathlib.Path:
    """Where unpacked peers live: $SKUA_PEERS_DIR or /var/tmp/skua-peers."""
    return pathlib.Path(os.environ.get("SKUA_PEERS_DIR", "/var/tmp/skua-peers"))


def run(
    args: list[str], timeout: float = APT_TIMEOUT_S, env: dict[str, str] | None = None, **kw
) -> subprocess.CompletedProcess:
    """Runs a command, capturing text output; never raises on a non-zero exit."""
    env = dict(env or os.environ, DEBIAN_FRONTEND="noninteractive")
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, **kw)


def tail(text: str, lines: int = 8) -> str:
    """The last `lines` lines of `text`."""
    return "\n".join(text.strip().splitlines()[-lines:])


def missing_libraries(ldd_output: str) -> list[str]:
    """Sonames that `ldd` reported as `not found`."""
    return sorted({m.group(1) for m in re.finditer(r"^\s*(\S+) => not found", ldd_output, re.M)})


def library_depends(apt_cache_depends: str) -> list[str]:
    """The plain `Depends: libX` packages in `apt-cache depends` output, less UNNEEDED_LIBS."""
    found = []
    for m in re.finditer(r"^\s*\|?Depends: (lib[^\s<>]+)$", apt_cache_depends, re.M):
        name = m.group(1).split(":")[0]
        if name not in UNNEEDED_LIBS and name not in found:
            found.append(name)
    return found


def shared_uniqueids(mboxlist_dump: str) -> dict[str, list[str]]:
    """uniqueid -> mailbox names, for every uniqueid that `ctl_mboxlist -d` shows twice."""
    import json

    by_id: dict[str, list[str]] = {}
    for name, entry in json.loads(mboxlist_dump or "{}").items():
        by_id.setdefault(entry.get("uniqueid", ""), []).append(name)
    return {uid: names for uid, names in by_id.items() if len(names) > 1}


def imapd_conf(work: pathlib.Path, config_dir: pathlib.Path) -> str:
    """The imapd.conf for a server whose state lives in `work`.

    `config_dir` is `work/config` itself, or a short symlink to it when the real path is too
    long for the Unix sockets Cyrus puts under it (sun_path holds 108 bytes).
    """
    sockets = config_dir / "socket"
    options = [
        ("configdirectory", config_dir),
        ("partition-default", work / "spool"),
        ("sievedir", work / "sieve"),
        ("temp_path", work / "tmp"),
        ("servername", SERVERNAME),
        ("admins", ADMIN),
        # Authentication: plain-text passwords in a sasldb, like skua's and Dovecot's
        # {PLAIN} passwd-files, so password hashing decides nothing. No TLS anywhere.
        ("sasl_pwcheck_method", "auxprop"),
        ("sasl_auxprop_plugin", "sasldb"),
        ("sasl_sasldb_path", work / "sasldb2"),
        ("sasl_mech_list", "PLAIN"),
        ("allowplaintext", "yes"),
        # The 3.x defaults, spelled out: '/' separator, personal folders beside INBOX.
        ("unixhierarchysep", "yes"),
        ("altnamespace", "yes"),
        ("virtdomains", "off"),
        # Neither skua nor Dovecot's LMTP suppresses duplicates; the bench's Message-IDs are
        # unique anyway. Off, so Cyrus does not pay a database write per delivery for it.
        ("duplicatesuppression", "no"),
        ("idlesocket", sockets / "idle"),
        ("lmtpsocket", sockets / "lmtp"),
        ("notifysocket", sockets / "notify"),
    ]
    return "".join(f"{key}: {value}\n" for key, value in options)


def cyrus_conf(bin_dir: pathlib.Path, conf: pathlib.Path, imap_port: int, lmtp_port: int) -> str:
    """cyrus.conf: recovery at start, IMAP and TCP LMTP on loopback, idled, checkpoints.

    master passes no `-C` to what it runs, so every command names the workdir's imapd.conf.
    `lmtpd -a` preauthorises LMTP clients on the TCP socket (they would otherwise have to
    AUTHENTICATE), as an MTA on the same host is for Dovecot's and skua's LMTP.
    """

    def cmd(program: str, *args: str) -> str:
        return " ".join([str(bin_dir / program), "-C", str(conf), *args])

    return (
        "START {\n"
        f'  recover cmd="{cmd("ctl_cyrusdb", "-r")}"\n'
        "}\n"
        "SERVICES {\n"
        f'  imap cmd="{cmd("imapd")}" listen="{HOST}:{imap_port}" prefork=1\n'
        f'  lmtp cmd="{cmd("lmtpd", "-a")}" listen="{HOST}:{lmtp_port}" prefork=1\n'
        "}\n"
        "EVENTS {\n"
        f'  checkpoint cmd="{cmd("ctl_cyrusdb", "-c")}" period=30\n'
        "}\n"
        "DAEMON {\n"
        f'  idled cmd="{cmd("idled")}"\n'
        "}\n"
    )


def launch_script(dev: pathlib.Path, log_socket: pathlib.Path | None, master_argv: list[str]) -> str:
    """Shell run under `unshare -m`: a private /dev with /dev/log, then exec the master.

    The master keeps the pid of `unshare` (every step execs), so Popen.pid is the master.
    Without `log_socket` (no mount namespace here) it only execs the master.
    """
    quoted = " ".join(shell_quote(a) for a in master_argv)
    if log_socket is None:
        return f"exec {quoted}\n"
    lines = ["set -e", f"D={shell_quote(str(dev))}", 'mkdir -p "$D" "$D/shm"']
    for name in DEVICES:
        lines.append(f': > "$D/{name}"; mount --bind /dev/{name} "$D/{name}"')
    lines += [
        'mount --bind /dev/shm "$D/shm"',
        'ln -sfn /proc/self/fd "$D/fd"',
        ': > "$D/log"',
        f'mount --bind {shell_quote(str(log_socket))} "$D/log"',
        'mount --rbind "$D" /dev',
        f"exec {quoted}",
    ]
    return "\n".join(lines) + "\n"


def shell_quote(word: str) -> str:
    """Single-quotes `word` for sh."""
    return "'" + word.replace("'", "'\\''") + "'"


def syslog_text(record: bytes) -> str:
    """A syslog record as a log line: `<PRI>` replaced by the severity's name."""
    text = record.rstrip(b"\0\n").decode("utf-8", "replace")
    m = re.match(r"<(\d{1,3})>", text)
    if not m:
        return text
    severity = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
    return f"{severity[int(m.group(1)) % 8]}: {text[m.end():]}"


def split_records(pending: bytes) -> tuple[list[bytes], bytes]:
    """Complete NUL-terminated syslog records in `pending`, and the incomplete rest.

    A rest longer than SYSLOG_RECORD_MAX is returned as a record of its own (bounded memory).
    """
    *records, rest = pending.split(b"\0")
    if len(rest) > SYSLOG_RECORD_MAX:
        records.append(rest)
        rest = b""
    return [r for r in records if r.strip(b"\n")], rest


class SyslogSink:
    """A stream socket standing in for /dev/log; every record is appended to a file.

    A stream socket, not a datagram one: glibc's syslog() falls back to SOCK_STREAM when
    the datagram connect is refused with EPROTOTYPE, and then each Cyrus process gets its
    own connection with a socket buffer of its own. On a datagram socket every process would
    share one receive queue of net.unix.max_dgram_qlen (10 here) records and block in
    syslog() whenever this reader fell that far behind: the reader would set Cyrus's pace.
    """

    def __init__(self, path: pathlib.Path, log: pathlib.Path):
        import selectors

        self.path = path
        if path.exists() or path.is_symlink():
            path.unlink()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        os.chmod(path, 0o666)
        self.listener.listen(SYSLOG_BACKLOG)
        self.listener.setblocking(False)
        self.wake_r, self.wake_w = socket.socketpair()
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.selector.register(self.wake_r, selectors.EVENT_READ)
        self.pending: dict[socket.socket, bytes] = {}
        self.out = open(log, "a", encoding="utf-8")
        self.thread = threading.Thread(target=self._pump, name="cyrus-syslog", daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        import selectors

        while True:
            for key, _ in self.selector.select():
                if key.fileobj is self.wake_r:
                    return
                if key.fileobj is self.listener:
                    try:
                        conn, _ = self.listener.accept()
                    except OSError:
                        continue
                    self.pending[conn] = b""
                    self.selector.register(conn, selectors.EVENT_READ)
                    continue
                self._read(key.fileobj)
            self.out.flush()

    def _read(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._write([self.pending.pop(conn, b"")])
            self.selector.unregister(conn)
            conn.close()
            return
        records, self.pending[conn] = split_records(self.pending[conn] + data)
        self._write(records)

    def _write(self, records: list[bytes]) -> None:
        for record in records:
            if record.strip(b"\0\n"):
                self.out.write(syslog_text(record) + "\n")

    def close(self) -> None:
        """Stops the reader, writes what it holds, closes everything, removes the socket."""
        self.wake_w.send(b"x")
        self.thread.join(timeout=5)
        for conn, rest in list(self.pending.items()):
            self._write([rest])
            conn.close()
        self.pending.clear()
        self.selector.close()
        for sock in (self.listener, self.wake_r, self.wake_w):
            sock.close()
        self.out.close()
        try:
            self.path.unlink()
        except OSError:
            pass


class CyrusPeer(Peer):
    """Cyrus IMAP's master with imapd, lmtpd (TCP, preauthorised) and idled."""

    name = "cyrus"

    def __init__(self, base_dir: pathlib.Path | None = None):
        self.base = base_dir or peers_dir() / "cyrus"
        self.root = self.base / "root"
        self.bin_dir = self.root / "usr" / "lib" / "cyrus" / "bin"
        self.lib_dir = self.root / "usr" / "lib" / "x86_64-linux-gnu"
        self.process: subprocess.Popen | None = None
        self.sink: SyslogSink | None = None
        self.workdir: pathlib.Path | None = None
        self.short_dir: pathlib.Path | None = None  # holds a short symlink to config/
        self.stderr = None
        self.sockets: pathlib.Path | None = None
        self.admin_password = ""
        self.known_pids: set[int] = set()

    # ----- install -------------------------------------------------------------------------

    def install(self) -> None:
        """User `cyrus`, the unpacked packages, their libraries and sasl2-bin (idempotent)."""
        if os.geteuid() != 0:
            raise PeerUnavailable("cyrus: install needs root (apt-get, a system user)")
        for tool in ("apt-get", "dpkg", "unshare", "setpriv"):
            if shutil.which(tool) is None:
                raise PeerUnavailable(f"cyrus: {tool} not found")
        self._ensure_user()
        if not (self.bin_dir / "master").exists():
            self._unpack()
        self._ensure_libraries()
        self._apt_install([p for p in SASL_PACKAGES if not dpkg_installed(p)])
        if shutil.which("saslpasswd2") is None:
            raise PeerUnavailable("cyrus: saslpasswd2 missing after installing sasl2-bin")

    def _ensure_user(self) -> None:
        try:
            pwd.getpwnam(CYRUS_USER)
            return
        except KeyError:
            pass
        result = run([
            "useradd", "--system", "--gid", CYRUS_GROUP, "--no-create-home",
            "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", CYRUS_USER,
        ])
        if result.returncode != 0:
            raise PeerUnavailable(f"cyrus: useradd {CYRUS_USER} failed: {tail(result.stderr)}")

    def _unpack(self) -> None:
        debs = self.base / "debs"
        shutil.rmtree(debs, ignore_errors=True)
        debs.mkdir(parents=True)
        os.chmod(debs, 0o777)  # apt's _apt sandbox user downloads into it
        result = run(["apt-get", "download", *CYRUS_PACKAGES], cwd=debs)
        if result.returncode != 0:
            run(["apt-get", "update", "-q"])
            result = run(["apt-get", "download", *CYRUS_PACKAGES], cwd=debs)
        files = sorted(debs.glob("*.deb"))
        if result.returncode != 0 or len(files) != len(CYRUS_PACKAGES):
            raise PeerUnavailable(f"cyrus: apt-get download failed:\n{tail(result.stderr)}")
        staging = self.base / "root.new"
        shutil.rmtree(staging, ignore_errors=True)
        for deb in files:
            unpacked = run(["dpkg", "-x", str(deb), str(staging)])
            if unpacked.returncode != 0:
                raise PeerUnavailable(f"cyrus: dpkg -x {deb.name} failed: {tail(unpacked.stderr)}")
        shutil.rmtree(self.root, ignore_errors=True)
        staging.rename(self.root)

    def _unresolved(self) -> list[str]:
        programs = [str(self.bin_dir / p) for p in PROGRAMS]
        result = run(["ldd", *programs], env=self._env())
        return missing_libraries(result.stdout + result.stderr)

    def _ensure_libraries(self) -> None:
        if not self._unresolved():
            return
        depends = run(["apt-cache", "depends", *CYRUS_PACKAGES])
        if not library_depends(depends.stdout):
            run(["apt-get", "update", "-q"])
            depends = run(["apt-cache", "depends", *CYRUS_PACKAGES])
        self._apt_install([p for p in library_depends(depends.stdout) if not dpkg_installed(p)])
        still = self._unresolved()
        if still:
            raise PeerUnavailable(f"cyrus: libraries still missing: {', '.join(still)}")

    def _apt_install(self, packages: list[str]) -> None:
        if not packages:
            return
        args = [
            "apt-get", "install", "-y", "-q", "--no-install-recommends",
            "-o", "DPkg::Lock::Timeout=300", *packages,
        ]
        result = run(args)
        if result.returncode != 0:
            run(["apt-get", "update", "-q"])
            result = run(args)
        if result.returncode != 0:
            raise PeerUnavailable(
                f"cyrus: apt-get install {' '.join(packages)} failed:\n{tail(result.stdout + result.stderr)}"
            )

    def _env(self) -> dict[str, str]:
        return dict(os.environ, LD_LIBRARY_PATH=str(self.lib_dir))

    def version(self) -> str:
        """What `master -V` says, e.g. `cyrus-imapd 3.6.1-Debian-3.6.1-4+deb12u5`."""
        result = run([str(self.bin_dir / "master"), "-V"], timeout=30, env=self._env())
        return (result.stdout or result.stderr).strip() or "unknown"

    # ----- start ---------------------------------------------------------------------------

    def start(self, workdir, users, imap_port, lmtp_port) -> None:
        """Configures Cyrus in `workdir`, starts its master, waits for both greetings and
        creates every user's INBOX; raises PeerUnavailable (with Cyrus's log) on failure."""
        if self.process is not None:
            raise RuntimeError("cyrus: start() while already running")
        work = pathlib.Path(workdir).resolve()
        self.workdir = work
        names = [name for name, _ in users]
        if ADMIN in names:
            raise PeerUnavailable(f"cyrus: a user may not be named {ADMIN} (the admin)")
        try:
            self._prepare(work, users, imap_port, lmtp_port)
            self._launch(work)
            self._wait_ready(imap_port, lmtp_port)
            self._create_inboxes(imap_port, names)
        except BaseException as e:
            detail = self._log_tail()
            self.stop()
            if isinstance(e, PeerUnavailable) or not isinstance(e, Exception):
                raise  # already explained, or an interrupt: pass it on as it is
            raise PeerUnavailable(f"cyrus did not start: {e}\n--- cyrus log ---\n{detail}") from e

    def _prepare(self, work: pathlib.Path, users, imap_port: int, lmtp_port: int) -> None:
        # What Cyrus's mkimap would create; config/socket also holds the services' lock files.
        # spool/stage./ too: lmtpd processes that race to create it on their first delivery
        # treat EEXIST as an I/O error and die on an assertion (seen with 8 connections).
        for sub in ("spool/stage.", "sieve", "tmp", *(f"config/{d}" for d in CONFIG_DIRS)):
            (work / sub).mkdir(parents=True, exist_ok=True)
        config_dir = work / "config"
        # imapd's and lmtpd's own idle sockets, config/socket/idle.PID, are the longest paths.
        if len(str(config_dir / "socket" / "idle.4194304")) > SUN_PATH_MAX:
            self.short_dir = pathlib.Path(tempfile.mkdtemp(prefix="cyr-"))
            (self.short_dir / "c").symlink_to(config_dir)
            config_dir = self.short_dir / "c"
        sockets = config_dir / "socket"
        conf = work / "imapd.conf"
        conf.write_text(imapd_conf(work, config_dir))
        (work / "cyrus.conf").write_text(cyrus_conf(self.bin_dir, conf, imap_port, lmtp_port))
        self.admin_password = secrets.token_hex(16)
        sasldb = work / "sasldb2"
        if sasldb.exists():
            sasldb.unlink()
        for name, password in [*users, (ADMIN, self.admin_password)]:
            result = run(
                ["saslpasswd2", "-f", str(sasldb), "-u", SERVERNAME, "-c", "-p", name],
                input=password + "\n",
                timeout=60,
            )
            if result.returncode != 0:
                raise RuntimeError(f"saslpasswd2 {name}: {tail(result.stderr)}")
        owner = pwd.getpwnam(CYRUS_USER)
        extra = [self.short_dir, self.short_dir / "c"] if self.short_dir else []
        for path in [work, *work.rglob("*"), *extra]:
            os.lchown(path, owner.pw_uid, owner.pw_gid)
        self.sockets = sockets
        self._check_reachable(work, sockets)

    def _check_reachable(self, *dirs: pathlib.Path) -> None:
        """The cyrus user must reach the workdir and run the binaries (no 0700 parents)."""
        as_cyrus = ["setpriv", f"--reuid={CYRUS_USER}", f"--regid={CYRUS_GROUP}", "--init-groups"]
        checks = [["test", "-w", str(d)] for d in dirs]
        checks.append(["test", "-x", str(self.bin_dir / "master")])
        for check in checks:
            if run([*as_cyrus, *check], timeout=30).returncode != 0:
                raise PeerUnavailable(
                    f"cyrus: the {CYRUS_USER} user fails `{' '.join(check)}`: a parent "
                    "directory is not searchable by others (use another workdir or SKUA_PEERS_DIR)"
                )

    def _launch(self, work: pathlib.Path) -> None:
        log_socket = self.sockets / "log"
        if len(str(log_socket)) > SUN_PATH_MAX or not namespaces_work():
            log_socket = None
            (work / "cyrus.log").write_text(
                "no private mount namespace here: Cyrus's syslog messages are lost\n"
            )
        else:
            self.sink = SyslogSink(log_socket, work / "cyrus.log")
        master = [
            "setpriv", f"--reuid={CYRUS_USER}", f"--regid={CYRUS_GROUP}", "--init-groups",
            "env", f"LD_LIBRARY_PATH={self.lib_dir}",
            str(self.bin_dir / "master"),
            "-C", str(work / "imapd.conf"),
            "-M", str(work / "cyrus.conf"),
            "-p", str(work / "master.pid"),
            "-l", "256",
            "-L", str(work / "master.stderr"),
        ]
        script = work / "launch.sh"
        script.write_text(launch_script(work / "dev", log_socket, master))
        self.stderr = open(work / "launch.stderr", "ab")
        argv = ["sh", str(script)]
        if log_socket is not None:
            argv = ["unshare", "--mount", "--propagation", "private", *argv]
        # compare.py's --server-cpus: the master and everything it forks run on those CPUs.
        argv = pinned(argv, getattr(self, "cpus", None))
        self.process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self.stderr, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _wait_ready(self, imap_port: int, lmtp_port: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        for port, greeting in ((imap_port, b"* OK"), (lmtp_port, b"220")):
            while True:
                if not self._alive():
                    raise RuntimeError(f"the master exited (status {self.process.returncode})")
                line = read_greeting(port)
                if line is not None and line.startswith(greeting):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"port {port} gave no {greeting!r} greeting in time")
                time.sleep(0.1)
        exe = os.path.basename(os.readlink(f"/proc/{self.process.pid}/exe"))
        if exe != "master":
            raise RuntimeError(f"pid {self.process.pid} runs {exe}, not Cyrus's master")
        self.known_pids.update(descendants(self.process.pid))

    def _create_inboxes(self, imap_port: int, names: list[str]) -> None:
        """CREATE user/NAME for every user over ONE admin connection, then checks the ids.

        One connection on purpose: Cyrus 3.6 gives mailboxes created at the same moment by
        different imapd processes the same uniqueid, and with it the same spool directory and
        index (seen with 4 connections: user2 and user3 shared one INBOX).
        """
        self._create_some(imap_port, names)
        shared = shared_uniqueids(self._mboxlist_dump())
        if shared:
            raise RuntimeError(f"mailboxes sharing a uniqueid (Cyrus bug): {shared}")

    def _mboxlist_dump(self) -> str:
        assert self.workdir is not None
        result = run(
            ["setpriv", f"--reuid={CYRUS_USER}", f"--regid={CYRUS_GROUP}", "--init-groups",
             str(self.bin_dir / "ctl_mboxlist"), "-C", str(self.workdir / "imapd.conf"), "-d"],
            timeout=120, env=self._env(),
        )
        if result.returncode != 0:
            raise RuntimeError(f"ctl_mboxlist -d: {tail(result.stderr)}")
        return result.stdout

    def _create_some(self, imap_port: int, names: list[str]) -> None:
        import imaplib

        if not names:
            return
        admin = imaplib.IMAP4(HOST, imap_port, timeout=60)
        try:
            admin.login(ADMIN, self.admin_password)
            for name in names:
                typ, data = admin.create(f"user/{name}")
                if typ != "OK" and b"ALREADYEXISTS" not in b" ".join(data):
                    raise RuntimeError(f"CREATE user/{name}: {typ} {data}")
        finally:
            try:
                admin.logout()
            except (OSError, imaplib.IMAP4.error):
                pass

    def _log_tail(self) -> str:
        if self.workdir is None:
            return ""
        parts = []
        for name in ("launch.stderr", "master.stderr", "cyrus.log"):
            path = self.workdir / name
            if path.exists():
                parts.append(f"[{name}]\n" + tail(path.read_text(errors="replace"), LOG_TAIL_LINES))
        return "\n".join(parts)

    # ----- run / stop ----------------------------------------------------------------------

    def main_pid(self) -> int:
        """The master's pid (imapd, lmtpd and idled are its children)."""
        if self.process is None:
            raise RuntimeError("cyrus: main_pid() before start()")
        return self.process.pid

    def stop(self) -> None:
        """SIGTERM to the master, SIGKILL to whatever of its tree outlives the grace time."""
        if self.process is not None:
            root = self.process.pid
            tree = set(descendants(root)) | self.known_pids
            if self._alive():
                try:
                    os.kill(root, signal.SIGTERM)  # master stops its children on SIGTERM
                except ProcessLookupError:
                    pass
                try:
                    self.process.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    tree |= set(descendants(root))
                    os.kill(root, signal.SIGKILL)
                    self.process.wait()
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and any(is_ours(p) for p in tree):
                time.sleep(0.1)
            for pid in tree:
                if is_ours(pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            self.process = None
            self.known_pids = set()
        if self.sink is not None:
            self.sink.close()
            self.sink = None
        if self.stderr is not None:
            self.stderr.close()
            self.stderr = None
        if self.short_dir is not None:
            shutil.rmtree(self.short_dir, ignore_errors=True)
            self.short_dir = None

    def settings(self) -> dict[str, str]:
        """The choices that matter for the comparison (see CYRUS.md)."""
        return {
            "durability": "LMTP 250 after fsync of the message file, cyrus.cache and "
            "cyrus.index of every recipient's mailbox (Cyrus's only mode; no option needed)",
            "passwords": "plain text in a sasldb (auxprop), LOGIN/AUTH=PLAIN, no TLS",
            "process model": "master + one imapd per IMAP connection, one lmtpd per LMTP "
            "connection (prefork=1 each), idled for IDLE",
            "duplicatesuppression": "off",
            "expunge_mode": "delayed (default: files removed later by cyr_expire)",
        }


def namespaces_work() -> bool:
    """True if this process may create a mount namespace and mount in it."""
    try:
        result = run(["unshare", "--mount", "--propagation", "private",
                      "mount", "-t", "tmpfs", "none", "/mnt"], timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def read_greeting(port: int) -> bytes | None:
    """The first line the server sends on `port`, or None if it does not answer."""
    try:
        with socket.create_connection((HOST, port), timeout=2) as s:
            s.settimeout(5)
            data = b""
            while b"\n" not in data and len(data) < 4096:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            return data.split(b"\n")[0] if data else None
    except OSError:
        return None


def parent_pids() -> dict[int, int]:
    """child pid -> parent pid of every process in /proc."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = pathlib.Path(f"/proc/{entry}/stat").read_text(errors="replace")
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 1:].split()
            if len(fields) > 1 and fields[1].isdigit():
                parents[int(entry)] = int(fields[1])
    return parents


def descendants(root: int) -> list[int]:
    """Every descendant of `root` now alive, breadth first."""
    children: dict[int, list[int]] = {}
    for child, parent in parent_pids().items():
        children.setdefault(parent, []).append(child)
    found, queue = [], [root]
    while queue:
        for child in children.get(queue.pop(0), []):
            if child not in found:
                found.append(child)
                queue.append(child)
    return found


def is_ours(pid: int) -> bool:
    """True if `pid` is a live (non-zombie) process of the cyrus user.

    Cyrus rewrites its processes' titles (so /proc/PID/cmdline no longer names the workdir):
    callers pass only pids that were descendants of this peer's master a moment ago.
    """
    try:
        status = pathlib.Path(f"/proc/{pid}/status").read_text(errors="replace")
    except OSError:
        return False
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    uid = fields.get("Uid", "").split()[:1]
    return fields.get("State", "").split()[:1] != ["Z"] and uid == [str(cyrus_uid())]


def cyrus_uid() -> int:
    """The cyrus user's uid (-1 when there is no such user)."""
    try:
        return pwd.getpwnam(CYRUS_USER).pw_uid
    except KeyError:
        return -1


def dpkg_installed(package: str) -> bool:
    """True if dpkg says `package` is installed."""
    result = run(["dpkg-query", "-W", "-f=${Status}", package], timeout=60)
    return result.returncode == 0 and result.stdout.strip().endswith(" installed")


# ----- self-test (python3 perf/peers/cyrus.py --selftest [--bench]) ----------------------------

REPO = pathlib.Path(__file__).resolve().parents[2]
SELFTEST_USERS = [(f"user{i}", "pw") for i in range(5)]
IDLE_WAIT_S = 10
EXISTS = re.compile(rb"\* (\d+) EXISTS")
IDLE_REGISTER_S = 0.5  # time for imapd to tell idled about an IDLE it has just begun
# The bench runs of --bench: (scenario, port kind, extra arguments).
BENCH_RUNS = (
    ("lmtp", "lmtp", ["--connections", "8", "--duration", "5", "--size", "4096"]),
    ("imap-mixed", "imap", ["--duration", "5"]),
    ("churn", "imap", ["--duration", "5"]),
)


def free_port(taken: set[int]) -> int:
    """A loopback port in 20000-60000 that was free a moment ago and is not in `taken`."""
    rng = secrets.SystemRandom()
    for _ in range(200):
        port = rng.randrange(20000, 60000)
        if port in taken:
            continue
        with socket.socket() as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free loopback port in 20000-60000")


def dot_stuff(message: bytes) -> bytes:
    """The DATA payload for `message` (CRLF line ends), with the closing `.` line."""
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    return re.sub(rb"(?m)^\.", b"..", message) + b".\r\n"


def lmtp_deliver(port: int, rcpts: list[str], message: bytes) -> list[tuple[int, bytes]]:
    """One LMTP transaction to all `rcpts`; the per-recipient replies after DATA."""
    import smtplib

    client = smtplib.LMTP(HOST, port, timeout=30)
    try:
        client.ehlo("selftest.localhost")
        code, text = client.mail("sender@localhost")
        if code != 250:
            raise RuntimeError(f"MAIL FROM: {code} {text!r}")
        for rcpt in rcpts:
            code, text = client.rcpt(rcpt)
            if code != 250:
                raise RuntimeError(f"RCPT TO:<{rcpt}>: {code} {text!r}")
        client.putcmd("data")
        code, text = client.getreply()
        if code != 354:
            raise RuntimeError(f"DATA: {code} {text!r}")
        client.send(dot_stuff(message))
        return [client.getreply() for _ in rcpts]
    finally:
        client.close()


def test_message(n: int) -> bytes:
    """A small RFC 5322 message with a Date (so Cyrus adds none) and a unique Message-ID."""
    return (
        b"From: Sender <sender@localhost>\r\n"
        b"To: user1@localhost, user2@localhost\r\n"
        b"Subject: cyrus peer self-test " + str(n).encode() + b"\r\n"
        b"Date: Thu, 26 Nov 2026 01:00:00 +0000\r\n"
        b"Message-ID: <selftest-" + secrets.token_hex(8).encode() + b"@localhost>\r\n"
        b"\r\n"
        b"Line one.\r\n"
        b".leading dot, stuffed on the wire\r\n"
        b"Last line.\r\n"
    )


def added_headers(stored: bytes, sent: bytes) -> list[str]:
    """Names of the header fields the server put in front of `sent` (which `stored` ends with)."""
    if not stored.endswith(sent):
        raise AssertionError("the stored message does not end with the message sent")
    prefix = stored[: len(stored) - len(sent)].decode("utf-8", "replace")
    return [line.split(":", 1)[0] for line in prefix.split("\r\n") if line and line[0] not in " \t"]


def fetch_first(port: int, user: str, password: str) -> bytes:
    """BODY.PEEK[] of message 1 in the user's INBOX."""
    import imaplib

    client = imaplib.IMAP4(HOST, port, timeout=30)
    try:
        client.login(user, password)
        typ, _ = client.select("INBOX")
        if typ != "OK":
            raise RuntimeError(f"SELECT INBOX as {user}: {typ}")
        typ, data = client.fetch("1", "(BODY.PEEK[])")
        if typ != "OK" or not data or not isinstance(data[0], tuple):
            raise RuntimeError(f"FETCH 1 as {user}: {typ} {data!r}")
        return data[0][1]
    finally:
        client.logout()


class RawImap:
    """A line-level IMAP client, enough for IDLE (imaplib has none before Python 3.14)."""

    def __init__(self, port: int):
        self.sock = socket.create_connection((HOST, port), timeout=IDLE_WAIT_S)
        self.buf = b""
        self.line()  # greeting

    def line(self) -> bytes:
        """The next line the server sent, without its CRLF."""
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("IMAP connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def command(self, tag: str, text: str) -> list[bytes]:
        """Sends `tag text`; the lines up to the tagged OK (anything else raises)."""
        self.sock.sendall(f"{tag} {text}\r\n".encode())
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(f"{tag} ".encode()):
                if not line.startswith(f"{tag} OK".encode()):
                    raise RuntimeError(f"{text.split()[0]}: {line!r}")
                return lines

    def close(self) -> None:
        """Closes the connection."""
        self.sock.close()


def check_idle(imap_port: int, lmtp_port: int) -> float:
    """Seconds from an LMTP 250 to the EXISTS a client IDLE on user1's INBOX is sent."""
    client = RawImap(imap_port)
    try:
        client.command("a", "LOGIN user1 pw")
        selected = client.command("b", "SELECT INBOX")
        exists = [int(m.group(1)) for m in map(EXISTS.fullmatch, selected) if m]
        if not exists:
            raise RuntimeError(f"SELECT gave no EXISTS: {selected!r}")
        client.sock.sendall(b"c IDLE\r\n")
        if not client.line().startswith(b"+"):
            raise RuntimeError("IDLE got no continuation")
        # imapd sends "+ idling" before it registers with idled: a delivery in between is
        # announced only at the next poll (imapidlepoll, 60 s). Stay out of that window.
        time.sleep(IDLE_REGISTER_S)
        replies = lmtp_deliver(lmtp_port, ["user1@localhost"], test_message(2))
        delivered = time.monotonic()
        if [code for code, _ in replies] != [250]:
            raise RuntimeError(f"delivery during IDLE: {replies!r}")
        seen = []
        while True:
            try:
                line = client.line()
            except TimeoutError:
                raise RuntimeError(f"no EXISTS within {IDLE_WAIT_S}s of the 250; got {seen!r}")
            seen.append(line)
            m = EXISTS.fullmatch(line)
            if m and int(m.group(1)) == exists[-1] + 1:
                waited = time.monotonic() - delivered
                break
        client.sock.sendall(b"DONE\r\n")
        while not client.line().startswith(b"c "):
            pass
        client.command("d", "LOGOUT")
        return waited
    finally:
        client.close()


def check_login_refused(port: int) -> None:
    """A wrong password must fail: the sasldb really decides."""
    import imaplib

    client = imaplib.IMAP4(HOST, port, timeout=30)
    try:
        client.login("user0", "wrong")
    except imaplib.IMAP4.error:
        return
    finally:
        client.shutdown()
    raise AssertionError("LOGIN with a wrong password succeeded")


def run_bench(imap_port: int, lmtp_port: int) -> None:
    """Runs skua-bench's scenarios against the running server and prints their reports."""
    bench = REPO / "target" / "release" / "skua-bench"
    if not bench.exists():
        print(f"bench: {bench} not built (cargo build --release -p skua-bench); skipped")
        return
    for scenario, kind, extra in BENCH_RUNS:
        port = lmtp_port if kind == "lmtp" else imap_port
        argv = [str(bench), scenario, "--port", str(port), "--users", str(len(SELFTEST_USERS)),
                "--password", "pw", "--quiet", *extra]
        load = pathlib.Path("/proc/loadavg").read_text().split()[:3]
        print(f"$ {' '.join(argv[1:])}    (load average before: {' '.join(load)})")
        result = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        print(result.stdout.rstrip())
        if result.returncode != 0:
            print(f"exit {result.returncode}: {tail(result.stderr, 20)}")


def selftest(with_bench: bool) -> int:
    """Install, start, log in, deliver, fetch, IDLE, (bench,) stop, check nothing is left."""
    peer = CyrusPeer()
    peer.install()
    print(f"version: {peer.version()}")
    work = pathlib.Path(tempfile.mkdtemp(prefix="cyrus-selftest-", dir="/var/tmp"))
    imap_port = free_port(set())
    lmtp_port = free_port({imap_port})
    print(f"workdir {work}, imap 127.0.0.1:{imap_port}, lmtp 127.0.0.1:{lmtp_port}")
    tree: list[int] = []
    try:
        began = time.monotonic()
        peer.start(work, SELFTEST_USERS, imap_port, lmtp_port)
        print(f"started in {time.monotonic() - began:.2f}s, master pid {peer.main_pid()}")
        check_login_refused(imap_port)
        print("LOGIN with a wrong password: refused")
        message = test_message(1)
        replies = lmtp_deliver(lmtp_port, ["user1@localhost", "user2@localhost"], message)
        print(f"LMTP, one transaction to user1 and user2: {[c for c, _ in replies]}")
        if [c for c, _ in replies] != [250, 250]:
            raise AssertionError(f"expected two 250s, got {replies!r}")
        for user in ("user1", "user2"):
            stored = fetch_first(imap_port, user, "pw")
            print(f"{user}'s INBOX holds the message byte for byte after the fields Cyrus "
                  f"added: {', '.join(added_headers(stored, message))}")
        waited = check_idle(imap_port, lmtp_port)
        print(f"IDLE: the new EXISTS came {waited * 1000:.0f} ms after the LMTP 250")
        if with_bench:
            run_bench(imap_port, lmtp_port)
        tree = [peer.main_pid(), *descendants(peer.main_pid())]
    finally:
        peer.stop()
    left = [pid for pid in tree if is_ours(pid)]
    if left:
        raise AssertionError(f"processes left after stop(): {left}")
    print(f"stopped; none of the {len(tree)} processes of the server is left")
    shutil.rmtree(work, ignore_errors=True)
    print("selftest: OK")
    return 0


# ----- unit tests of the pure parts (python3 perf/peers/cyrus.py --unit) ----------------------

def unit_tests():
    """The unittest.TestCase of this module (defined lazily: unittest is only needed here)."""
    import unittest

    class PureParts(unittest.TestCase):
        """Configuration rendering, output parsing, the syslog reader."""

        def test_missing_libraries(self):
            out = ("\tlibical.so.3 => not found\n\tlibc.so.6 => /lib/libc.so.6 (0x1)\n"
                   "\tlibical.so.3 => not found\n\tlibxapian.so.30 => not found\n")
            self.assertEqual(missing_libraries(out), ["libical.so.3", "libxapian.so.30"])
            self.assertEqual(missing_libraries("\tlibc.so.6 => /lib/libc.so.6\n"), [])

        def test_library_depends(self):
            out = ("cyrus-common\n  PreDepends: init-system-helpers\n  Depends: gawk\n"
                   "  Depends: libclamav12\n  Depends: libical3\n |Depends: <default-mta>\n"
                   "  Depends: libzephyr4\n    libzephyr4-krb5\n  Depends: libical3\n"
                   " |Recommends: libfoo1\ncyrus-imapd\n  Depends: libwrap0\n")
            self.assertEqual(library_depends(out), ["libical3", "libwrap0"])

        def test_shared_uniqueids(self):
            dump = ('{\n"user.a": {"name": "user.a", "uniqueid": "x1"},\n'
                    '"user.b": {"name": "user.b", "uniqueid": "y2"},\n'
                    '"user.c": {"name": "user.c", "uniqueid": "x1"}\n}\n')
            self.assertEqual(shared_uniqueids(dump), {"x1": ["user.a", "user.c"]})
            self.assertEqual(shared_uniqueids(""), {})

        def test_imapd_conf(self):
            conf = imapd_conf(pathlib.Path("/w"), pathlib.Path("/s"))  # /s: a short symlink
            lines = dict(line.split(": ", 1) for line in conf.splitlines())
            self.assertEqual(lines["configdirectory"], "/s")
            self.assertEqual(lines["partition-default"], "/w/spool")
            self.assertEqual(lines["sasl_sasldb_path"], "/w/sasldb2")
            self.assertEqual(lines["idlesocket"], "/s/socket/idle")
            self.assertEqual(lines["admins"], ADMIN)
            self.assertEqual(lines["duplicatesuppression"], "no")

        def test_cyrus_conf(self):
            conf = cyrus_conf(pathlib.Path("/b"), pathlib.Path("/w/imapd.conf"), 20001, 20002)
            self.assertIn('imap cmd="/b/imapd -C /w/imapd.conf" listen="127.0.0.1:20001"', conf)
            self.assertIn('lmtp cmd="/b/lmtpd -C /w/imapd.conf -a" listen="127.0.0.1:20002"', conf)
            self.assertIn('idled cmd="/b/idled -C /w/imapd.conf"', conf)
            self.assertEqual(conf.count("{"), conf.count("}"))

        def test_launch_script(self):
            argv = ["setpriv", "x y", "it's"]
            plain = launch_script(pathlib.Path("/w/dev"), None, argv)
            self.assertEqual(plain, "exec 'setpriv' 'x y' 'it'\\''s'\n")
            ns = launch_script(pathlib.Path("/w/dev"), pathlib.Path("/s/log"), argv)
            self.assertIn("mount --bind '/s/log' \"$D/log\"", ns)
            self.assertTrue(ns.rstrip().endswith(plain.rstrip()))
            self.assertLess(ns.index("mount --rbind"), ns.index("exec "))

        def test_syslog_text(self):
            self.assertEqual(syslog_text(b"<19>Nov 26 master[1]: x\0"), "err: Nov 26 master[1]: x")
            self.assertEqual(syslog_text(b"<22>a"), "info: a")
            self.assertEqual(syslog_text(b"no priority"), "no priority")

        def test_dot_stuff(self):
            self.assertEqual(dot_stuff(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n")
            self.assertEqual(dot_stuff(b"a"), b"a\r\n.\r\n")

        def test_added_headers(self):
            sent = b"From: a\r\n\r\nbody\r\n"
            stored = b"Return-Path: <x>\r\nReceived: from y\r\n\tby z\r\n" + sent
            self.assertEqual(added_headers(stored, sent), ["Return-Path", "Received"])
            with self.assertRaises(AssertionError):
                added_headers(b"changed", sent)

        def test_split_records(self):
            self.assertEqual(split_records(b"<1>a\0<2>b\0<3>c"), ([b"<1>a", b"<2>b"], b"<3>c"))
            self.assertEqual(split_records(b"\0\0x"), ([], b"x"))
            big = b"y" * (SYSLOG_RECORD_MAX + 1)
            self.assertEqual(split_records(big), ([big], b""))

        def test_syslog_sink(self):
            with tempfile.TemporaryDirectory() as d:
                path, out = pathlib.Path(d) / "log", pathlib.Path(d) / "out"
                sink = SyslogSink(path, out)
                with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as dgram:
                    with self.assertRaises(OSError):  # EPROTOTYPE: glibc falls back to stream
                        dgram.connect(str(path))
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect(str(path))
                    s.sendall(b"<21>hello\0<19>wor")
                    s.sendall(b"ld\0<22>unterminated")
                deadline = time.monotonic() + 5
                while "world" not in out.read_text():
                    self.assertLess(time.monotonic(), deadline)
                    time.sleep(0.01)
                sink.close()
                self.assertEqual(
                    out.read_text(), "notice: hello\nerr: world\ninfo: unterminated\n"
                )
                self.assertFalse(path.exists())

    return PureParts


def main(args: list[str]) -> int:
    """Command line: --unit, or --selftest [--bench]."""
    if args[:1] == ["--unit"]:
        import unittest

        suite = unittest.defaultTestLoader.loadTestsFromTestCase(unit_tests())
        result = unittest.TextTestRunner(verbosity=2).run(suite)
        return 0 if result.wasSuccessful() else 1
    if args[:1] == ["--selftest"]:
        return selftest(with_bench="--bench" in args[1:])
    print("usage: cyrus.py --unit | --selftest [--bench]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
