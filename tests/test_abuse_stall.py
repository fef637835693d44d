"""Abuse suite, issue 7 defects 3 and 4: one command must not stall the shard, and a client that
stops reading must not pin a whole response; with the families they stand for (pathological
LIST patterns and SEARCH expressions).

Before the fix `LIST "" "*a*a…"` with a 20,000-character pattern over 2,000 long names ran
about 30 s on the shard thread while other users' NOOPs on that shard waited as long; SEARCH
TEXT over a big mailbox stalled the shard too (no command yielded partway through). A stuck
`FETCH 1:* (ENVELOPE)` reader over 300 messages of 1,000 addresses each held ~15 MiB until the
write timeout. Every test runs the server with one shard, so the other user (bob, asked NOOP
and FETCH in a loop by `OtherUserProbe`) shares the shard with the abuse.
"""

import os
import shutil
import socket
import ssl
import tempfile
import threading
import time
import unittest

from harness import AbuseServer, check_at_class_end, check_at_end, lmtp_deliver, message, OtherUserProbe, raw_login

USERS = {"alice": "alice-pw", "bob": "bob-pw"}
MAILBOXES = 2000
NAME_PREFIX = "a" * 200  # long names: every byte advances a "*a*a…" pattern
COMMAND_COMPLETES_S = 60.0  # "reasonable time" for the abusive command itself


def pipelined(client, commands, timeout=120.0):
    """Sends every command (tags c0, c1, ...) in a few large writes, then reads all the tagged
    replies; returns them in order."""
    data = b"".join(f"c{i} {cmd}\r\n".encode() for i, cmd in enumerate(commands))
    sender = threading.Thread(target=client.send, args=(data,))
    sender.start()
    replies = []
    deadline = time.monotonic() + timeout
    for i in range(len(commands)):
        _, tagged = client.read_tagged(f"c{i}", max(0.1, deadline - time.monotonic()))
        replies.append(tagged)
    sender.join()
    return replies


def run_with_probe(test, server, client, command, what):
    """Sends `command` on `client` (tag x1) while bob is probed; checks bob was served within the
    bound and that the command completed with a tagged OK in reasonable time."""
    with OtherUserProbe(server, "bob", "bob-pw") as probe:
        time.sleep(0.3)
        start = time.monotonic()
        client.send(f"x1 {command}\r\n".encode())
        try:
            _, tagged = client.read_tagged("x1", COMMAND_COMPLETES_S)
        except socket.timeout:
            tagged = None
        elapsed = time.monotonic() - start
    probe.check(test, what)
    test.assertIsNotNone(tagged, f"{what} did not complete within {COMMAND_COMPLETES_S}s")
    test.assertTrue(tagged.startswith(b"x1 OK"), f"{what}: {tagged!r}")
    return elapsed


class ServerPerClass(unittest.TestCase):
    """One server for the class: the setup (thousands of mailboxes, tens of MB of mail) is the
    expensive part, and every test only reads."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="skua-abuse-stall-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, ignore_errors=True)
        check_at_class_end(cls, os.path.join(cls.tmp, "data"))
        cls.server = AbuseServer(os.path.join(cls.tmp, "data"), USERS).start()
        # A cleanup, not tearDownClass: it runs even when the rest of a setUpClass fails.
        cls.addClassCleanup(cls.server.stop_quietly)


class PathologicalList(ServerPerClass):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = raw_login(cls.server.imap_port, "alice", "alice-pw")
        names = [f"{NAME_PREFIX}{i:04d}" for i in range(MAILBOXES)]
        replies = pipelined(c, [f'CREATE "{n}"' for n in names])
        bad = [r for r in replies if b" OK" not in r[:8]]
        assert not bad, bad[:3]
        c.close()

    def setUp(self):
        self.alice = raw_login(self.server.imap_port, "alice", "alice-pw")

    def tearDown(self):
        self.alice.close()

    def test_long_star_pattern_does_not_stall_the_shard(self):
        pattern = "*a" * 10000
        elapsed = run_with_probe(
            self, self.server, self.alice, f'LIST "" "{pattern}"',
            "a 20,000-character LIST pattern over 2,000 long names",
        )
        print(f"\n  LIST *a*a... took {elapsed:.2f}s")

    def test_percent_pattern(self):
        run_with_probe(
            self, self.server, self.alice, f'LIST "" "{"%" * 20000}"', 'LIST "" "%%%…" (20,000)'
        )

    def test_star_percent_pattern(self):
        run_with_probe(
            self, self.server, self.alice, f'LIST "" "{"*%" * 10000}"', 'LIST "" "*%*%…" (20,000)'
        )

    def test_lsub_with_long_pattern(self):
        c = self.alice
        replies = pipelined(c, [f'SUBSCRIBE "{NAME_PREFIX}{i:04d}"' for i in range(MAILBOXES)])
        self.assertTrue(all(b" OK" in r[:8] for r in replies))
        run_with_probe(self, self.server, c, f'LSUB "" "{"*a" * 10000}"', "LSUB with a long pattern")


class BigSearch(ServerPerClass):
    MESSAGES = 300
    BODY_BYTES = 200 * 1024

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        line = "the quick brown fox jumps over the lazy dog again and again and again\r\n"
        body = line * (cls.BODY_BYTES // len(line))

        def deliver(worker, count):
            lmtp = cls.server.lmtp()
            for i in range(worker, count, 4):
                raw = message(f"big {i}", f"{i}\r\n{body}")
                assert lmtp_deliver(lmtp, "s@example.org", ["alice@localhost"], raw)[0][0] == 250
            lmtp.quit()

        threads = [threading.Thread(target=deliver, args=(w, cls.MESSAGES)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def setUp(self):
        self.alice = raw_login(self.server.imap_port, "alice", "alice-pw")
        _, tagged = self.alice.command("s1", "SELECT INBOX", timeout=60)
        self.assertTrue(tagged.startswith(b"s1 OK"), tagged)

    def tearDown(self):
        self.alice.close()

    def test_search_text_over_a_big_mailbox_does_not_stall_the_shard(self):
        elapsed = run_with_probe(
            self, self.server, self.alice, 'SEARCH TEXT "zzz-not-there"',
            f"SEARCH TEXT over {self.MESSAGES} messages of {self.BODY_BYTES // 1024} KB",
        )
        print(f"\n  SEARCH TEXT took {elapsed:.2f}s")

    def test_search_with_many_text_keys_does_not_stall_the_shard(self):
        """Sixty `NOT TEXT` keys: every key reads every message (about 3.6 GB of text in all),
        as a SEARCH TEXT over a 3.6 GB mailbox would. (The plain SEARCH TEXT above scans only
        60 MB, which the suite can set up in a few seconds; this one makes the same work as
        long as the issue's 1 GB case.)"""
        keys = " ".join(f'NOT TEXT "zzz-not-there-{k}"' for k in range(60))
        elapsed = run_with_probe(
            self, self.server, self.alice, f"SEARCH {keys}",
            f"SEARCH with 60 TEXT keys over {self.MESSAGES} messages",
        )
        print(f"\n  SEARCH NOT TEXT x60 took {elapsed:.2f}s")


class PathologicalSearchExpressions(ServerPerClass):
    def test_nesting_past_the_parse_limit_is_bad_and_the_connection_lives(self):
        c = raw_login(self.server.imap_port, "alice", "alice-pw")
        self.addCleanup(c.close)
        c.command("s1", "SELECT INBOX")
        with OtherUserProbe(self.server, "bob", "bob-pw") as probe:
            for i, expression in enumerate((
                "NOT " * 200 + "ALL",
                "(" * 200 + "ALL" + ")" * 200,
                "OR ALL " * 200 + "ALL",
                "NOT (" * 100 + "ALL" + ")" * 100,
                "OR (" * 2000 + "ALL" + ") ALL" * 2000,
            )):
                _, tagged = c.command(f"q{i}", f"SEARCH {expression}", timeout=10)
                self.assertTrue(tagged.startswith(f"q{i} BAD".encode()), (expression[:40], tagged))
                _, tagged = c.command(f"n{i}", "NOOP", timeout=10)
                self.assertTrue(tagged.startswith(f"n{i} OK".encode()), tagged)
        probe.check(self, "deeply nested SEARCH expressions")


class StuckReader(unittest.TestCase):
    """A client pipelines a FETCH whose response is ~15 MiB, then never reads."""

    MESSAGES = 300
    ADDRESSES = 1000
    GROWTH_MAX_KIB = 4 * 1024

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="skua-abuse-stuck-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        check_at_end(self, os.path.join(self.tmp, "data"))
        self.server = AbuseServer(os.path.join(self.tmp, "data"), USERS).start()

    def tearDown(self):
        self.server.stop_quietly()

    def fill(self):
        to = ", ".join(f"Person {k} <person{k:04d}@example.org>" for k in range(self.ADDRESSES))

        def deliver(worker):
            lmtp = self.server.lmtp()
            for i in range(worker, self.MESSAGES, 4):
                raw = message(f"many {i}", "short body", to=to)
                assert lmtp_deliver(lmtp, "s@example.org", ["alice@localhost"], raw)[0][0] == 250
            lmtp.quit()

        threads = [threading.Thread(target=deliver, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def stall(self, send_fetch, what):
        """Sends the FETCH through `send_fetch`, never reads, and checks what the server holds."""
        time.sleep(0.5)
        before = self.server.memory_kib()
        with OtherUserProbe(self.server, "bob", "bob-pw") as probe:
            send_fetch()
            time.sleep(3.0)
            after = self.server.memory_kib()
        probe.check(self, what)
        grown = {k: after[k] - before[k] for k in ("VmRSS", "RssAnon", "RssFile")}
        print(f"\n  {what}: growth KiB {grown}")
        self.assertLess(
            grown["VmRSS"], self.GROWTH_MAX_KIB,
            f"a client that stopped reading made the server hold {grown['VmRSS'] / 1024:.1f} MiB "
            f"more (anonymous {grown['RssAnon'] / 1024:.1f} MiB, file {grown['RssFile'] / 1024:.1f})",
        )

    def test_a_client_that_stops_reading_does_not_pin_the_response(self):
        self.fill()
        stuck = raw_login(self.server.imap_port, "alice", "alice-pw", rcvbuf=4096)
        self.addCleanup(stuck.close)
        _, tagged = stuck.command("s1", "SELECT INBOX", timeout=30)
        self.assertTrue(tagged.startswith(b"s1 OK"), tagged)
        self.stall(lambda: stuck.send(b"f1 FETCH 1:* (ENVELOPE)\r\n"), "stuck reader")

    def test_a_tls_client_that_stops_reading_holds_no_more_than_a_plain_one(self):
        # Issue 8: TLS adds no unbounded buffer (at most one buffer of records waits).
        self.fill()
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect(("127.0.0.1", self.server.imaps_port))
        context = ssl.create_default_context(
            cafile=os.path.join(self.server.data_dir, "tls", "selfsigned.crt"))
        stuck = context.wrap_socket(raw, server_hostname="localhost")
        self.addCleanup(stuck.close)
        reply = b""
        stuck.sendall(b"l LOGIN alice alice-pw\r\ns SELECT INBOX\r\n")
        while b"s OK" not in reply:
            chunk = stuck.recv(65536)
            self.assertTrue(chunk, reply[-300:])
            reply += chunk
        self.stall(lambda: stuck.sendall(b"f FETCH 1:* (ENVELOPE)\r\n"), "stuck TLS reader")


if __name__ == "__main__":
    unittest.main()
