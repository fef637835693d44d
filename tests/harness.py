"""Starts the real `skua` binary on a temporary data dir and free loopback ports.

Every integration test talks to a real server process through real clients (imaplib,
smtplib.LMTP, curl). The binary is `$SKUA_BIN`, or `target/release/skua` under the repository.
"""

import imaplib
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
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


class Server:
    """One skua process. `users` maps names to PLAIN passwords written to the passwd-file."""

    def __init__(self, data_dir, users=None, shards=2, extra_args=()):
        self.data_dir = data_dir
        self.imap_port = free_port()
        self.lmtp_port = free_port()
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

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="skua-test-")
        self.server = Server(os.path.join(self.tmp, "data"), self.USERS, self.SHARDS).start()

    def tearDown(self):
        try:
            if self.server.process is not None:
                code = self.server.stop()
                self.assertEqual(code, 0, "skua must exit 0 on SIGTERM\n" + self.server.log_text())
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
