"""LMTP for mailbox_command and MTA cluster setups (issue 10, item 6): duplicate suppression,
LMTP on a unix socket, and `skua deliver`, against the real binary.

- The same Message-ID delivered twice to the same user, in two transactions and again after
  a restart, is stored once and every delivery is answered 250; a message without a
  Message-ID, or with `duplicate_window = 0`, is stored each time.
- `[lmtp] listen = "unix:/path"` serves LMTP (Python's smtplib.LMTP("/path")) beside TCP,
  with the configured file mode, replaces a stale socket file, refuses a path that is not a
  socket, and removes the file at shutdown.
- `skua deliver` exits 0 when delivered, 67 for an unknown user, 75 when the server is not
  running, 64 on a bad command line.
"""

import os
import re
import shutil
import smtplib
import socket
import stat
import subprocess
import tempfile
import time
import unittest

from harness import BIN, AbuseServer, check_at_end, lmtp_deliver, message

USERS = {"alice": "alice-pw", "bob": "bob-pw"}


def inbox_count(server, user):
    client = server.imap(user, USERS[user])
    try:
        typ, data = client.select("INBOX")
        assert typ == "OK", (typ, data)
        return int(data[0])
    finally:
        client.logout()


def inbox_bodies(server, user):
    client = server.imap(user, USERS[user])
    try:
        typ, data = client.select("INBOX")
        assert typ == "OK", (typ, data)
        if data == [b"0"]:
            return []
        typ, data = client.fetch("1:*", "(BODY.PEEK[])")
        assert typ == "OK", (typ, data)
        return [item[1] for item in data if isinstance(item, tuple)]
    finally:
        client.logout()


def run_deliver(*args, stdin=b""):
    return subprocess.run([BIN, "deliver", *args], input=stdin, capture_output=True, timeout=60)


class LmtpOpsTest(unittest.TestCase):
    CONFIG = ""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="skua-lmtp-ops-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        check_at_end(self, os.path.join(self.tmp, "data"))
        self.socket_path = os.path.join(self.tmp, "lmtp.sock")
        config = self.CONFIG.replace("SOCKET", self.socket_path)
        self.server = AbuseServer(os.path.join(self.tmp, "data"), USERS, 2, config)
        self.server.start()
        if "SOCKET" in self.CONFIG:
            self.wait_for_socket()

    def connectable(self):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.connect(self.socket_path)
            return True
        except OSError:
            return False

    def wait_for_socket(self):
        """Waits for shard 0's socket: start() returns once a TCP port answers, which the
        other shard's listener may do first."""
        deadline = time.monotonic() + 10
        while not self.connectable():
            self.assertLess(time.monotonic(), deadline, "no unix socket\n" + self.server.log_text())
            time.sleep(0.02)

    def tearDown(self):
        if self.server.process is not None:
            code = self.server.stop()
            self.assertEqual(code, 0, self.server.log_text()[-3000:])

    def deliver(self, data, recipients=("alice@localhost",)):
        client = self.server.lmtp()
        try:
            return lmtp_deliver(client, "sender@example.org", list(recipients), data)
        finally:
            client.quit()


class DuplicateSuppression(LmtpOpsTest):
    CONFIG = ""  # the default window (24h)

    def test_the_same_message_id_is_stored_once_and_always_answered_250(self):
        raw = message("twice", "the same message", message_id="<dup.1@test>")
        replies = self.deliver(raw, ["alice@localhost", "bob@localhost"])
        self.assertEqual([code for code, _ in replies], [250, 250])
        replies = self.deliver(raw, ["alice@localhost", "bob@localhost"])
        self.assertEqual([code for code, _ in replies], [250, 250], "a duplicate is accepted")
        self.assertEqual(inbox_count(self.server, "alice"), 1)
        self.assertEqual(inbox_count(self.server, "bob"), 1)
        self.assertIn("duplicate suppressed", self.server.log_text())

        self.assertEqual(self.server.stop(), 0)
        self.server.start()
        self.assertEqual([code for code, _ in self.deliver(raw)], [250], "after a restart")
        self.assertEqual(inbox_count(self.server, "alice"), 1, "still stored once")
        other = message("other", "another message", message_id="<dup.2@test>")
        self.assertEqual([code for code, _ in self.deliver(other)], [250])
        self.assertEqual(inbox_count(self.server, "alice"), 2)

    def test_a_message_without_message_id_is_never_suppressed(self):
        raw = re.sub(rb"Message-ID: [^\r]*\r\n", b"", message("no id", "body"))
        self.assertNotIn(b"Message-ID", raw)
        for _ in range(2):
            self.assertEqual([code for code, _ in self.deliver(raw)], [250])
        self.assertEqual(inbox_count(self.server, "alice"), 2)


class DuplicateWindowOff(LmtpOpsTest):
    CONFIG = "[lmtp]\nduplicate_window = 0\n"

    def test_window_zero_stores_every_copy(self):
        raw = message("twice", "the same message", message_id="<off.1@test>")
        for _ in range(2):
            self.assertEqual([code for code, _ in self.deliver(raw)], [250])
        self.assertEqual(inbox_count(self.server, "alice"), 2)


class UnixSocket(LmtpOpsTest):
    CONFIG = '[lmtp]\nlisten = ["unix:SOCKET"]\n'

    def test_lmtp_over_the_unix_socket_delivers_and_the_file_goes_at_shutdown(self):
        mode = stat.S_IMODE(os.stat(self.socket_path).st_mode)
        self.assertTrue(stat.S_ISSOCK(os.stat(self.socket_path).st_mode))
        self.assertEqual(mode, 0o660)
        client = smtplib.LMTP(self.socket_path, timeout=30)
        try:
            client.ehlo_or_helo_if_needed()
            raw = message("unix", "over the socket", message_id="<unix.1@test>")
            replies = lmtp_deliver(client, "s@example.org", ["alice@localhost", "bob@localhost"], raw)
            self.assertEqual([code for code, _ in replies], [250, 250])
        finally:
            client.quit()
        self.assertEqual(inbox_count(self.server, "alice"), 1)
        self.assertEqual(inbox_count(self.server, "bob"), 1)
        # TCP still serves beside it.
        self.assertEqual([c for c, _ in self.deliver(message("tcp", "b"))], [250])
        self.assertEqual(self.server.stop(), 0)
        self.assertFalse(os.path.exists(self.socket_path), "removed at shutdown")

    def test_a_stale_socket_file_is_replaced(self):
        self.server.kill9()
        self.assertTrue(os.path.exists(self.socket_path), "a killed server leaves its file")
        # The dead server's sockets may accept for a moment (its io_uring goes after it):
        # wait until they are gone, or start() would see its old ports answer.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                    probe.connect(self.socket_path)
                time.sleep(0.05)
            except OSError:
                break
        self.server.start()
        # Shard 0 makes the socket while the other shard may already answer on TCP.
        deadline = time.monotonic() + 10
        while not stat.S_ISSOCK(os.stat(self.socket_path).st_mode) or not self.connectable():
            self.assertLess(time.monotonic(), deadline, "the socket was not replaced")
            time.sleep(0.05)
        client = smtplib.LMTP(self.socket_path, timeout=30)
        try:
            client.ehlo_or_helo_if_needed()
            raw = message("stale", "after a kill")
            replies = lmtp_deliver(client, "s@example.org", ["alice@localhost"], raw)
            self.assertEqual([code for code, _ in replies], [250])
        finally:
            client.quit()

    def test_a_socket_another_server_serves_is_not_taken(self):
        config = self.CONFIG.replace("SOCKET", self.socket_path)
        second = AbuseServer(os.path.join(self.tmp, "data2"), USERS, 1, config)
        try:
            # Its TCP listener may answer before the socket check (about 2 s) refuses it.
            second.start()
            code = second.process.wait(timeout=30)
            second.process = None
            second.log.close()
            self.assertNotEqual(code, 0)
            refusal = second.log_text()
        except AssertionError as refused:
            refusal = str(refused)
        self.assertIn("another server is listening there", refusal)
        client = smtplib.LMTP(self.socket_path, timeout=30)
        try:
            client.ehlo_or_helo_if_needed()
            replies = lmtp_deliver(client, "s@example.org", ["alice@localhost"], message("x", "y"))
            self.assertEqual([code for code, _ in replies], [250], "the first server keeps it")
        finally:
            client.quit()

    def test_a_path_that_is_not_a_socket_is_refused(self):
        self.assertEqual(self.server.stop(), 0)
        with open(self.socket_path, "w", encoding="ascii") as f:
            f.write("not a socket")
        with self.assertRaises(AssertionError) as refused:
            self.server.start()
        self.assertIn("is not a socket", str(refused.exception))
        with open(self.socket_path, encoding="ascii") as f:
            self.assertEqual(f.read(), "not a socket", "left alone")


class UnixSocketMode(LmtpOpsTest):
    CONFIG = '[lmtp]\nlisten = ["unix:SOCKET"]\nunix_mode = "0600"\n'

    def test_the_configured_mode_is_used(self):
        self.assertEqual(stat.S_IMODE(os.stat(self.socket_path).st_mode), 0o600)


class DeliverCommand(LmtpOpsTest):
    CONFIG = '[lmtp]\nlisten = ["unix:SOCKET"]\n'

    def test_exit_codes_delivered_unknown_user_and_server_down(self):
        config = self.server.config_path
        # LF line ends and an mbox From_ line, as a mailbox_command gets them.
        raw = b"From sender@example.org Mon Dec  7 07:00:00 2026\nSubject: cli\nMessage-ID: <cli.1@test>\n\nbody\n.dot\n"
        done = run_deliver("--config", config, "-f", "sender@example.org", "-a", "alice", stdin=raw)
        self.assertEqual(done.returncode, 0, done.stderr)
        bodies = inbox_bodies(self.server, "alice")
        self.assertEqual(len(bodies), 1)
        self.assertIn(b"Subject: cli\r\n", bodies[0])
        self.assertTrue(bodies[0].endswith(b"\r\nbody\r\n.dot\r\n"), bodies[0])
        self.assertNotIn(b"From sender", bodies[0])

        env = dict(os.environ, USER="bob")
        done = subprocess.run([BIN, "deliver", "--config", config], input=raw, env=env,
                              capture_output=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(inbox_count(self.server, "bob"), 1, "$USER is the default recipient")

        tcp = f"127.0.0.1:{self.server.lmtp_port}"
        done = run_deliver("--lmtp", tcp, "-a", "alice", stdin=raw.replace(b"cli.1", b"cli.2"))
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(inbox_count(self.server, "alice"), 2, "over TCP")

        done = run_deliver("--config", config, "-a", "nobody", stdin=raw)
        self.assertEqual(done.returncode, 67, done.stderr)
        self.assertIn(b"5.1.1", done.stderr)

        done = run_deliver("--config", config, "--no-such-flag", stdin=raw)
        self.assertEqual(done.returncode, 64, done.stderr)

        self.assertEqual(self.server.stop(), 0)
        done = run_deliver("--config", config, "-a", "alice", stdin=raw)
        self.assertEqual(done.returncode, 75, done.stderr)
        done = run_deliver("--lmtp", tcp, "-a", "alice", stdin=raw)
        self.assertEqual(done.returncode, 75, done.stderr)

    def test_help_lists_the_exit_codes(self):
        done = run_deliver("--help")
        self.assertEqual(done.returncode, 0)
        for code in (b"EX_OK", b"EX_NOUSER", b"EX_TEMPFAIL", b"EX_DATAERR", b"EX_USAGE"):
            self.assertIn(code, done.stdout)


if __name__ == "__main__":
    unittest.main()
