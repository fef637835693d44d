"""Abuse suite, issue 7 defect 2: memory and time a client can take before it logs in, and the
literal family (huge and unfinished literals before and after login).

Before the fix `a APPEND INBOX {62914560}` before login got `+ Ready`, the 60 MB literal was
buffered and only then refused; six such connections took the server from 8 MB to 370 MB. The
pre-login timeout was per read, so a byte every 59 s held a connection for ever. The fixed server
limits literals before login to what LOGIN/AUTHENTICATE need (a few KiB), closes a connection
that sends a too large non-synchronizing literal, and has a whole-session pre-login deadline
(`[limits] login_deadline_seconds`) and a whole-command deadline
(`[limits] command_deadline_seconds`).
"""

import os
import shutil
import socket
import tempfile
import time
import unittest

from harness import AbuseServer, check_at_end, OtherUserProbe, raw_login, RawImap

USERS = {"alice": "alice-pw", "bob": "bob-pw"}
HUGE = 62914560  # 60 MiB
MIB = 1024 * 1024


def refusal(line, tag=b"a"):
    """True for a tagged NO or BAD."""
    return line.startswith(tag + b" NO") or line.startswith(tag + b" BAD")


class AbuseCase(unittest.TestCase):
    CONFIG = None

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="skua-abuse-lit-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        check_at_end(self, os.path.join(self.tmp, "data"))
        self.server = AbuseServer(os.path.join(self.tmp, "data"), USERS, config=self.CONFIG)
        self.clients = []
        self.server.start()

    def tearDown(self):
        for c in self.clients:
            c.close()
        self.server.stop_quietly()

    def connect(self, **kwargs):
        c = RawImap(self.server.imap_port, **kwargs)
        self.clients.append(c)
        greeting = c.greeting()
        self.assertTrue(greeting.startswith(b"* OK"), greeting)
        return c


class LiteralsBeforeLogin(AbuseCase):
    def test_huge_append_literal_before_login_is_refused_without_continuation(self):
        with OtherUserProbe(self.server, "bob", "bob-pw") as probe:
            c = self.connect()
            c.send(b"a APPEND INBOX {%d}\r\n" % HUGE)
            line = c.line(5)
        probe.check(self)
        self.assertFalse(line.startswith(b"+"), f"a 60 MB literal before login got {line!r}")
        self.assertTrue(refusal(line), f"expected a tagged NO or BAD, got {line!r}")

    def test_large_login_literal_is_refused_without_continuation(self):
        for size in (100000, 65536):
            with self.subTest(size=size):
                c = self.connect()
                c.send(b"a LOGIN {%d}\r\n" % size)
                line = c.line(5)
                self.assertFalse(
                    line.startswith(b"+"), f"a {size}-byte LOGIN literal before login got {line!r}"
                )
                self.assertTrue(refusal(line), f"expected a tagged NO or BAD, got {line!r}")

    def test_small_login_literals_still_work(self):
        """The limit must leave room for what LOGIN needs (the control for the tests above)."""
        c = self.connect()
        c.send(b"a LOGIN {5}\r\n")
        self.assertTrue(c.line(5).startswith(b"+"))
        c.send(b"alice {8}\r\n")
        self.assertTrue(c.line(5).startswith(b"+"))
        c.send(b"alice-pw\r\n")
        _, tagged = c.read_tagged("a", 10)
        self.assertTrue(tagged.startswith(b"a OK"), tagged)

    def test_huge_nonsynchronizing_literal_before_login_closes_the_connection(self):
        """The client sends 1 MiB of a 60 MB non-synchronizing literal, then waits: the server
        must refuse and close rather than wait to read (and hold) the rest."""
        with OtherUserProbe(self.server, "bob", "bob-pw") as probe:
            c = self.connect()
            try:
                c.send(b"a APPEND INBOX {%d+}\r\n" % HUGE + b"x" * MIB)
            except (BrokenPipeError, ConnectionResetError):
                pass  # closed already: what we want
            except socket.timeout:
                pass  # not reading: whether it closes is checked next
            try:
                elapsed, lines = c.wait_closed(5)
            except socket.timeout:
                self.fail(
                    "a 60 MB non-synchronizing literal before login: the connection was still "
                    "open 5 s after the first MiB (the server is waiting to read the rest)"
                )
        probe.check(self)
        self.assertFalse(any(line.startswith(b"+") for line in lines), lines)
        self.assertFalse(any(line.startswith(b"a OK") for line in lines), lines)

    def test_six_huge_literals_before_login_keep_memory_bounded(self):
        """Six unauthenticated connections each try to make the server hold 60 MB (all of a
        literal but its last byte); memory must stay within +50 MB."""
        before = self.server.memory_kib()["VmRSS"]
        with OtherUserProbe(self.server, "bob", "bob-pw") as probe:
            for i in range(6):
                c = self.connect()
                sync = i % 2 == 0
                c.send(b"a%d APPEND INBOX {%d%s}\r\n" % (i, HUGE, b"" if sync else b"+"))
                if sync:
                    line = c.line(5)
                    if not line.startswith(b"+"):
                        continue  # refused: nothing to send
                try:
                    payload = b"x" * MIB
                    for _ in range(HUGE // MIB - 1):
                        c.send(payload)
                    c.send(payload[: MIB - 1])
                except (BrokenPipeError, ConnectionResetError, socket.timeout):
                    continue  # refused, closed, or not reading: memory is what is checked
            time.sleep(1.0)
            after = self.server.memory_kib()["VmRSS"]
        probe.check(self)
        self.assertLess(
            (after - before) / 1024, 50,
            f"six pre-login literals grew the server from {before // 1024} MB to {after // 1024} MB",
        )


class PreLoginDeadline(AbuseCase):
    CONFIG = "[limits]\nlogin_deadline_seconds = 3\n"

    def test_a_byte_a_second_before_login_is_closed_at_the_deadline(self):
        with OtherUserProbe(self.server, "bob", "bob-pw") as probe:
            c = self.connect()
            start = time.monotonic()
            closed_after = None
            for byte in b"a LOGIN alice wrong-password-typed-slowly":
                try:
                    c.send(bytes([byte]))
                    line = c.line(1.0)
                except (BrokenPipeError, ConnectionResetError):
                    closed_after = time.monotonic() - start
                    break
                except socket.timeout:
                    if time.monotonic() - start > 10:
                        break
                    continue
                if not line or b"BYE" in line:
                    closed_after = time.monotonic() - start
                    break
        probe.check(self)
        self.assertIsNotNone(closed_after, "a byte every second held the pre-login session open")
        self.assertGreaterEqual(closed_after, 2.0, "closed before the 3 s deadline")
        self.assertLessEqual(closed_after, 6.0, "not closed by ~3-5 s with a 3 s login deadline")


class UnfinishedLiteralAfterLogin(AbuseCase):
    CONFIG = "[limits]\ncommand_deadline_seconds = 3\n"

    def test_half_sent_append_literal_is_dropped_at_the_command_deadline(self):
        before = self.server.memory_kib()["VmRSS"]
        with OtherUserProbe(self.server, "bob", "bob-pw") as probe:
            c = raw_login(self.server.imap_port, "alice", "alice-pw")
            self.clients.append(c)
            c.send(b"a APPEND INBOX {1000000}\r\n")
            self.assertTrue(c.line(5).startswith(b"+"))
            c.send(b"y" * 500000)
            start = time.monotonic()
            try:
                elapsed, lines = c.wait_closed(8)
            except socket.timeout:
                self.fail("a half-sent APPEND literal was still held 8 s later (deadline 3 s)")
            after = self.server.memory_kib()["VmRSS"]
        probe.check(self)
        self.assertLessEqual(time.monotonic() - start, 6.0)
        self.assertFalse(any(line.startswith(b"a OK") for line in lines), lines)
        self.assertLess((after - before) / 1024, 50, "memory not released after the drop")
        # Nothing of the unfinished APPEND was stored.
        c = self.server.imap("alice", "alice-pw")
        self.assertEqual(c.select("INBOX")[1], [b"0"])
        c.logout()


if __name__ == "__main__":
    unittest.main()
