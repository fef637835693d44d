"""Starts the real `skua` binary on a temporary data dir and free loopback ports.

Every integration test talks to a real server process through real clients (imaplib,
smtplib.LMTP, curl). The binary is `$SKUA_BIN`, or `target/release/skua` under the repository.
"""

import imaplib
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("SKUA_BIN", os.path.join(REPO, "target", "release", "skua"))
HOST = "127.0.0.1"
START_TIMEOUT_S = 30


def free_port():
    """A port that was free a moment ago on the loopback address."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_for_port(port, process, timeout_s=START_TIMEOUT_S):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"skua exited early with {process.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"skua did not listen on {port} within {timeout_s}s")


def run_cli(*args, stdin=None, check=True):
    """Runs `skua ARGS...` and returns the CompletedProcess (text mode)."""
    result = subprocess.run(
        [BIN, *args], input=stdin, capture_output=True, text=True, timeout=60
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"skua {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def check_all(test, data_dir):
    """Runs `skua check --all --json` on `data_dir` (server running or stopped) and fails
    `test` unless it exits 0 with no findings (issue 11: every test may end with this)."""
    result = run_cli("check", "--all", "--json", "--data-dir", data_dir, check=False)
    test.assertEqual(
        result.returncode, 0, f"skua check --all found damage:\n{result.stdout}\n{result.stderr}"
    )
    return result


def check_at_end(test, data_dir):
    """Makes `test` end with `skua check --all` on `data_dir` (see [`check_all`]): a cleanup,
    so call it after registering the cleanup that removes the directory (cleanups run last
    registered first) and it runs after `tearDown`, on the stopped server's data dir. A data dir
    the test never made is skipped, and so is a test that sets `CHECK_AT_END = False` on itself
    (it leaves damage on purpose)."""

    def check():
        if os.path.isdir(data_dir) and getattr(test, "CHECK_AT_END", True):
            check_all(test, data_dir)

    test.addCleanup(check)


def check_at_class_end(cls, data_dir):
    """[`check_at_end`] for a server shared by a test class (a class cleanup)."""

    def check():
        if os.path.isdir(data_dir):
            result = run_cli("check", "--all", "--json", "--data-dir", data_dir, check=False)
            if result.returncode != 0:
                raise AssertionError(f"skua check --all found damage:\n{result.stdout}\n{result.stderr}")

    cls.addClassCleanup(check)


class Server:
    """One skua process. `users` maps names to PLAIN passwords written to the passwd-file."""

    def __init__(self, data_dir, users=None, shards=2, extra_args=()):
        self.data_dir = data_dir
        self.imap_port = free_port()
        self.lmtp_port = free_port()
        self.imaps_port = free_port()
        self.shards = shards
        self.extra_args = list(extra_args)
        self.process = None
        self.log_path = os.path.join(data_dir, "..", f"skua-{self.imap_port}.log")
        if users:
            os.makedirs(data_dir, exist_ok=True)
            with open(os.path.join(data_dir, "passwd"), "a", encoding="utf-8") as f:
                for name, password in users.items():
                    f.write(f"{name}:{{PLAIN}}{password}::::::\n")

    def start(self):
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [
                BIN, "serve",
                "--data-dir", self.data_dir,
                "--imap-listen", f"{HOST}:{self.imap_port}",
                "--lmtp-listen", f"{HOST}:{self.lmtp_port}",
                "--imaps-listen", f"{HOST}:{self.imaps_port}",
                "--shards", str(self.shards),
                *self.extra_args,
            ],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        wait_for_port(self.imap_port, self.process)
        wait_for_port(self.lmtp_port, self.process)
        return self

    def stop(self, sig=signal.SIGTERM, timeout_s=30):
        """Stops the server; returns its exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
            raise AssertionError("skua did not stop within the timeout")
        finally:
            self.process = None
            self.log.close()
        return code

    def kill9(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.process = None
        self.log.close()

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def imap(self, user, password):
        client = imaplib.IMAP4(HOST, self.imap_port, timeout=30)
        client.login(user, password)
        return client

    def lmtp(self):
        client = smtplib.LMTP(HOST, self.lmtp_port, timeout=30)
        client.ehlo_or_helo_if_needed()
        return client


class ServerTest(unittest.TestCase):
    """A test case with a fresh server per test, on a temporary directory."""

    USERS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}
    SHARDS = 2
    # Every test ends with `skua check --all` on its data dir, which must find nothing (issue
    # 11, as Cyrus's tests end with reconstruct and quota -f); a test that damages the store
    # on purpose says False.
    CHECK_AT_END = True

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="skua-test-")
        self.server = Server(os.path.join(self.tmp, "data"), self.USERS, self.SHARDS).start()

    def tearDown(self):
        try:
            if self.server.process is not None:
                code = self.server.stop()
                self.assertEqual(code, 0, "skua must exit 0 on SIGTERM\n" + self.server.log_text())
            if self.CHECK_AT_END and os.path.isdir(self.server.data_dir):
                check_all(self, self.server.data_dir)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


def message(subject, body, message_id=None, sender="sender@example.org", to="alice@localhost"):
    """A small RFC 5322 message with CRLF line ends, as bytes."""
    message_id = message_id or f"<{subject.replace(' ', '.')}.{time.monotonic_ns()}@test>"
    lines = [
        f"From: Sender <{sender}>",
        f"To: {to}",
        f"Subject: {subject}",
        "Date: Wed, 25 Nov 2026 21:00:00 +0000",
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "",
        body,
        "",
    ]
    return "\r\n".join(lines).encode("utf-8")


def without_trace_fields(stored):
    """A message as LMTP stored it, without the trace fields skua prepends at the top
    (Return-Path, Delivered-To, Received with its folded lines): the client's message."""
    trace = (b"return-path:", b"delivered-to:", b"received:")
    rest = stored
    while True:
        line, sep, after = rest.partition(b"\r\n")
        if not sep or not (line.lower().startswith(trace) or line[:1] in (b" ", b"\t")):
            return rest
        rest = after


def lmtp_deliver(client, sender, recipients, data):
    """One LMTP transaction; returns one (code, text) reply per accepted recipient, in order.

    smtplib sends DATA and reads the first reply; LMTP then sends one more reply per further
    accepted recipient (RFC 2033 §4.2), read here with getreply().
    """
    code, text = client.mail(sender)
    assert code == 250, (code, text)
    accepted = []
    for rcpt in recipients:
        code, text = client.rcpt(rcpt)
        if code == 250:
            accepted.append(rcpt)
    if not accepted:
        client.rset()
        return []
    replies = [client.data(data)]
    for _ in accepted[1:]:
        replies.append(client.getreply())
    return replies


# ---------------------------------------------------------------------------------------------
# The abuse suite (tests/test_abuse_*.py): servers with a config file, raw sockets from chosen
# source addresses, memory readings, and a probe that checks another user is still served.
# ---------------------------------------------------------------------------------------------

# How long another user on the shard may wait for a NOOP/FETCH answer while abuse runs.
PROBE_BOUND_S = 2.0


def write_config(path, text):
    """Writes a TOML config file and returns its path."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


class AbuseServer(Server):
    """A `Server` with an optional TOML config (passed as `--config`) and one shard by default,
    so that every user shares the shard the abuse runs on."""

    def __init__(self, data_dir, users=None, shards=1, config=None, extra_args=()):
        super().__init__(data_dir, users, shards, extra_args)
        self.config_path = None
        if config is not None:
            self.config_path = write_config(
                os.path.join(data_dir, "..", f"skua-{self.imap_port}.toml"), config
            )
            self.extra_args = ["--config", self.config_path, *self.extra_args]

    def start(self):
        try:
            return super().start()
        except RuntimeError as error:
            # Say why (an unknown config key, a refused lock...), not only that it exited.
            if self.process is not None and self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self.process = None
            self.log.close()
            raise AssertionError(f"{error}; server log:\n{self.log_text()[-3000:]}") from None

    def stop_quietly(self, timeout_s=30):
        """Stops the server (SIGTERM, then SIGKILL after `timeout_s`); returns the exit code or
        None when it had to be killed. For tearDown after abuse, where a clean exit is not what
        the test checks."""
        if self.process is None:
            return None
        try:
            return self.stop(timeout_s=timeout_s)
        except AssertionError:
            return None

    def memory_kib(self):
        """{"VmRSS": KiB, "RssAnon": KiB, ...} from /proc/PID/status."""
        return proc_memory_kib(self.process.pid)

    def user_dir(self, user):
        """The store directory of `user` (FORMAT.md: `users/<hh>/<user>`), found on disk."""
        users = os.path.join(self.data_dir, "users")
        for bucket in sorted(os.listdir(users)):
            candidate = os.path.join(users, bucket, user)
            if os.path.isdir(candidate):
                return candidate
        raise AssertionError(f"no store directory for {user} under {users}")


def proc_memory_kib(pid):
    """The Vm*/Rss* lines of /proc/PID/status, in KiB."""
    result = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            m = re.match(r"(Vm\w+|Rss\w+):\s+(\d+) kB", line)
            if m:
                result[m.group(1)] = int(m.group(2))
    return result


class RawImap:
    """An IMAP connection on a plain socket, for what imaplib will not send: huge or unfinished
    literals, byte-at-a-time commands, connections from a chosen 127.0.0.x source, a client
    that stops reading (small SO_RCVBUF)."""

    def __init__(self, port, source=HOST, timeout=10.0, rcvbuf=None, host=HOST):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind((source, 0))
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = b""
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)

    def line(self, timeout=10.0):
        """The next line (with CRLF); b"" at EOF or reset. Raises socket.timeout."""
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buf:
            if self.eof:
                rest, self.buf = self.buf, b""
                return rest
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout(f"no line within {timeout}s (have {self.buf[:200]!r})")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.eof = True
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line + b"\r\n"

    def greeting(self, timeout=10.0):
        return self.line(timeout)

    def command(self, tag, text, timeout=10.0):
        """Sends `TAG TEXT` and reads up to the tagged reply: (untagged lines, tagged line).
        The tagged line is b"" when the connection closed first."""
        self.send(f"{tag} {text}\r\n".encode())
        return self.read_tagged(tag, timeout)

    def read_tagged(self, tag, timeout=10.0):
        deadline = time.monotonic() + timeout
        lines = []
        prefix = tag.encode() + b" "
        while True:
            line = self.line(max(0.01, deadline - time.monotonic()))
            if not line:
                return lines, b""
            if line.startswith(prefix):
                return lines, line
            lines.append(line)
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if m:
                # A literal inside an untagged response: skip its bytes.
                need = int(m.group(1))
                while len(self.buf) < need and not self.eof:
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        self.eof = True
                    self.buf += chunk
                lines.append(self.buf[:need])
                self.buf = self.buf[need:]

    def login(self, user, password, tag="l1"):
        _, tagged = self.command(tag, f'LOGIN "{user}" "{password}"')
        assert tagged.startswith(tag.encode() + b" OK"), tagged
        return self

    def wait_closed(self, timeout):
        """Reads until EOF/reset; returns (seconds it took, the lines read). Raises
        socket.timeout if the connection is still open after `timeout`."""
        start = time.monotonic()
        lines = []
        while True:
            line = self.line(max(0.01, timeout - (time.monotonic() - start)))
            if not line:
                return time.monotonic() - start, lines
            lines.append(line)


def raw_login(port, user, password, source=HOST, rcvbuf=None):
    """A RawImap past its greeting and logged in."""
    c = RawImap(port, source=source, rcvbuf=rcvbuf)
    greeting = c.greeting()
    assert greeting.startswith(b"* OK"), greeting
    return c.login(user, password)


class SourcedIMAP4(imaplib.IMAP4):
    """imaplib's client, connecting from a chosen loopback source address."""

    def __init__(self, port, source=HOST, timeout=60):
        self.source = source
        super().__init__(HOST, port, timeout=timeout)

    def _create_socket(self, timeout):
        return socket.create_connection(
            (self.host, self.port), timeout, source_address=(self.source, 0)
        )


class OtherUserProbe:
    """Another user's session on the same server, asked NOOP and FETCH in a loop from a thread
    while a test's abuse runs; `check` fails the test if any answer (or one still awaited at
    the end) took longer than the bound, or if nothing was answered at all.

    The session logs in and selects before the abuse starts (login itself goes through the
    shard), with one message in INBOX so that FETCH has something to read."""

    def __init__(
        self, server, user, password, bound_s=PROBE_BOUND_S, interval_s=0.1, source=HOST
    ):
        self.bound_s = bound_s
        self.interval_s = interval_s
        self.client = SourcedIMAP4(server.imap_port, source=source)
        self.client.login(user, password)
        typ, data = self.client.select("INBOX")
        assert typ == "OK", (typ, data)
        if data == [b"0"]:
            self.client.append("INBOX", None, None, message("probe", "probe body"))
            self.client.noop()
        self.latencies = []
        self.errors = []
        self.inflight_since = None
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def _run(self):
        commands = (lambda: self.client.noop(), lambda: self.client.fetch("1", "(FLAGS BODY.PEEK[])"))
        i = 0
        while not self.stop_event.is_set():
            self.inflight_since = time.monotonic()
            try:
                typ, data = commands[i % 2]()
                if typ != "OK":
                    self.errors.append(f"{typ} {data!r}")
            except Exception as error:  # a dropped or timed-out session is a failure
                self.errors.append(repr(error))
                self.inflight_since = None
                return
            self.latencies.append(time.monotonic() - self.inflight_since)
            self.inflight_since = None
            i += 1
            self.stop_event.wait(self.interval_s)

    def stop(self):
        """Stops the loop and logs out; returns (answered, worst latency in s, still-waiting
        seconds)."""
        self.stop_event.set()
        waiting = 0.0
        since = self.inflight_since
        if since is not None:
            waiting = time.monotonic() - since
        self.thread.join(timeout=self.bound_s + 1)
        if self.thread.is_alive() and since is not None:
            waiting = max(waiting, time.monotonic() - since)
        worst = max(self.latencies, default=0.0)
        self.result = (len(self.latencies), worst, waiting)
        if not self.thread.is_alive():
            try:
                self.client.logout()
            except Exception:  # noqa: BLE001 - the session may be gone; check() reports that
                pass
        return self.result

    def check(self, test, what="the abuse"):
        """Asserts the other user was served within the bound throughout."""
        if not self.stop_event.is_set():
            self.stop()
        answered, worst, waiting = self.result
        test.assertFalse(self.errors, f"the other user's session failed during {what}: {self.errors}")
        test.assertGreater(answered, 0, f"the other user got no answer at all during {what}")
        test.assertLess(
            max(worst, waiting), self.bound_s,
            f"the other user on the same shard waited {max(worst, waiting):.2f}s for a NOOP/FETCH "
            f"during {what} (bound {self.bound_s}s; {answered} answered)",
        )


def lmtp_raw_greeting(port, source=HOST, timeout=10.0):
    """Connects to LMTP from `source`; returns the first line (b"" when closed without one)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.settimeout(timeout)
    try:
        s.connect((HOST, port))
        f = s.makefile("rb")
        try:
            return f.readline()
        except (ConnectionResetError, socket.timeout):
            return b""
    finally:
        s.close()
