"""Abuse suite, issue 7 defect 1: a second process on a live data dir.

Before the fix a second `skua serve` on the same `--data-dir` (and the same listen addresses:
SO_REUSEPORT let both bind and the kernel split the connections) started without error, and
acknowledged deliveries were lost after a restart; `skua reconstruct` on a user the server was
serving lost acknowledged deliveries and flag changes. The fixed server locks the data dir: a
second `serve` exits non-zero saying the dir is in use. `reconstruct` on a running server goes
through the server (issue 11), which closes the store first: its sessions are told to
reconnect, deliveries meanwhile are deferred, and nothing acknowledged is lost.
"""

import os
import imaplib
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from harness import BIN, HOST, AbuseServer, check_at_end, lmtp_deliver, message, OtherUserProbe

USERS = {"alice": "alice-pw", "bob": "bob-pw"}
SECOND_SERVER_EXIT_S = 5.0


def message_ids_and_flags(client, mailbox="INBOX"):
    """{Message-ID: flags bytes} of every message in `mailbox`."""
    typ, data = client.select(mailbox)
    assert typ == "OK", (typ, data)
    if data == [b"0"]:
        return {}
    typ, data = client.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    assert typ == "OK", (typ, data)
    result = {}
    for item in data:
        if isinstance(item, tuple):
            m = re.search(rb"Message-ID:\s*(<[^>]+>)", item[1], re.I)
            flags = re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1)
            if m:
                result.setdefault(m.group(1).decode(), []).append(flags)
    return result


class SecondProcess(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="skua-abuse-dir-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        check_at_end(self, os.path.join(self.tmp, "data"))
        self.data = os.path.join(self.tmp, "data")
        self.server = AbuseServer(self.data, USERS).start()
        self.others = []

    def tearDown(self):
        for process in self.others:
            if process.poll() is None:
                process.kill()
                process.wait()
        self.server.stop_quietly()

    def second_serve(self, data=None):
        """`skua serve` on the same listen addresses as the first, on the same data dir or on
        `data`."""
        process = subprocess.Popen(
            [
                BIN, "serve", "--data-dir", data or self.data,
                "--imap-listen", f"{HOST}:{self.server.imap_port}",
                "--lmtp-listen", f"{HOST}:{self.server.lmtp_port}",
                "--imaps-listen", f"{HOST}:{self.server.imaps_port}",
                "--shards", "1",
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self.others.append(process)
        return process

    def test_second_serve_on_another_data_dir_but_the_same_ports_exits_nonzero(self):
        """Before the fix SO_REUSEPORT let a second server with its own data dir join the
        first one's ports, and the kernel split the connections between two mail stores."""
        other = os.path.join(self.tmp, "other-data")
        with OtherUserProbe(self.server, "bob", "bob-pw") as probe:
            second = self.second_serve(other)
            try:
                # It gives a port in use 5 s to come free (a killed run's sockets linger).
                code = second.wait(timeout=SECOND_SERVER_EXIT_S + 10)
            except subprocess.TimeoutExpired:
                self.fail("a second server on the same ports is still running")
            stderr = second.stderr.read()
            self.assertNotEqual(code, 0)
            self.assertIn(f"cannot listen on {HOST}:{self.server.imap_port}", stderr)
            self.assertIn("in use", stderr)
        probe.check(self, "a second server's start on the same ports")
        for _ in range(20):  # every connection still reaches the first server
            c = self.server.imap("alice", "alice-pw")
            c.logout()

    def test_second_serve_on_the_same_data_dir_exits_nonzero_saying_in_use(self):
        with OtherUserProbe(self.server, "bob", "bob-pw") as probe:
            second = self.second_serve()
            try:
                code = second.wait(timeout=SECOND_SERVER_EXIT_S)
            except subprocess.TimeoutExpired:
                code = None
            if code is None:
                second.kill()
                second.wait()
                self.fail(
                    f"a second `skua serve` on a data dir in use was still running after "
                    f"{SECOND_SERVER_EXIT_S}s (it must refuse to start)"
                )
            stderr = second.stderr.read()
            self.assertNotEqual(code, 0, f"the second server exited 0: {stderr}")
            self.assertIn("in use", stderr, "the refusal must say the data dir is in use")
            # The first server keeps serving: a login, and a delivery that lands.
            lmtp = self.server.lmtp()
            replies = lmtp_deliver(lmtp, "s@example.org", ["alice@localhost"], message("after", "x"))
            self.assertEqual([c for c, _ in replies], [250])
            lmtp.quit()
            c = self.server.imap("alice", "alice-pw")
            self.assertEqual(len(message_ids_and_flags(c)), 1)
            c.logout()
        probe.check(self, "a second server's start")
        self.assertIsNone(self.server.process.poll(), "the first server must keep running")

    def test_reconstruct_on_a_live_data_dir_loses_nothing(self):
        """Reconstruct runs while deliveries and flag changes go on; the server closes the
        store for it (the busy session is told to reconnect and does), and every acknowledged
        delivery and flag change must be there, once, after a restart."""
        lmtp = self.server.lmtp()
        for i in range(20):
            raw = message(f"base {i}", f"body {i}", message_id=f"<base-{i}@test>")
            self.assertEqual(lmtp_deliver(lmtp, "s@example.org", ["alice@localhost"], raw)[0][0], 250)
        acked_ids = {f"<base-{i}@test>" for i in range(20)}
        flagged = set()
        reconnects = []
        stop = threading.Event()
        failures = []

        def load():
            imap = self.server.imap("alice", "alice-pw")
            imap.select("INBOX")
            i = 0
            while not stop.is_set():
                mid = f"<live-{i}@test>"
                try:
                    replies = lmtp_deliver(
                        lmtp, "s@example.org", ["alice@localhost"],
                        message(f"live {i}", "during reconstruct", message_id=mid),
                    )
                    if replies and replies[0][0] == 250:
                        acked_ids.add(mid)
                    target = f"<base-{i % 20}@test>"
                    try:
                        typ, _ = imap.uid("STORE", str(i % 20 + 1), "+FLAGS", r"(\Flagged)")
                    except imaplib.IMAP4.abort as told:  # * BYE [UNAVAILABLE] ... reset
                        reconnects.append(str(told))
                        for _ in range(100):  # deferred while the store is rebuilt
                            try:
                                imap = self.server.imap("alice", "alice-pw")
                                break
                            except imaplib.IMAP4.error:
                                time.sleep(0.05)
                        imap.select("INBOX")
                        typ = "NO"
                    if typ == "OK":
                        flagged.add(target)
                except Exception as error:  # noqa: BLE001 - reported below
                    failures.append(repr(error))
                    return
                i += 1
            imap.logout()

        with OtherUserProbe(self.server, "bob", "bob-pw") as probe:
            worker = threading.Thread(target=load)
            worker.start()
            time.sleep(0.5)
            result = subprocess.run(
                [BIN, "reconstruct", "alice", "--data-dir", self.data],
                capture_output=True, text=True, timeout=60,
            )
            time.sleep(1.0)
            stop.set()
            worker.join(timeout=30)
        lmtp.quit()
        probe.check(self, "reconstruct on the live data dir")
        self.assertFalse(failures, failures)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("reconstructed alice", result.stdout)
        self.assertTrue(reconnects, "the selected session was told to reconnect")
        self.assertEqual(self.server.stop(), 0)
        self.server = AbuseServer(self.data, None).start()
        c = self.server.imap("alice", "alice-pw")
        stored = message_ids_and_flags(c)
        c.logout()
        lost = sorted(acked_ids - stored.keys())
        if lost:
            self.fail(f"{len(lost)} of {len(acked_ids)} acknowledged deliveries lost: {lost[:5]}")
        unflagged = sorted(m for m in flagged if not any(rb"\Flagged" in f for f in stored[m]))
        self.assertFalse(unflagged, f"acknowledged \\Flagged lost on {unflagged}")
        twice = sorted(m for m, v in stored.items() if len(v) != 1)
        self.assertFalse(twice, f"messages stored more than once: {twice}")

    def test_300_deliveries_while_a_second_server_was_attempted_all_survive(self):
        with OtherUserProbe(self.server, "bob", "bob-pw") as probe:
            second = self.second_serve()
            time.sleep(1.0)  # let it bind (today) or refuse (fixed)
            acked = []
            refused = []
            for i in range(300):
                # A fresh connection each time, so SO_REUSEPORT would spread them.
                lmtp = self.server.lmtp()
                mid = f"<d{i}@test>"
                replies = lmtp_deliver(
                    lmtp, "s@example.org", ["alice@localhost"],
                    message(f"d{i}", f"delivery {i}", message_id=mid),
                )
                (acked if replies and replies[0][0] == 250 else refused).append(mid)
                lmtp.quit()
        probe.check(self, "300 deliveries with a second server attempted")
        self.assertEqual(len(acked), 300, f"refused: {refused[:5]}")
        if second.poll() is None:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
        self.assertEqual(self.server.stop(), 0)
        self.server = AbuseServer(self.data, None).start()
        c = self.server.imap("alice", "alice-pw")
        stored = message_ids_and_flags(c)
        c.logout()
        lost = [m for m in acked if m not in stored]
        if lost:
            self.fail(
                f"{len(lost)} of {len(acked)} acknowledged deliveries lost after a restart "
                f"(second server exit code {second.returncode}): {lost[:5]}"
            )
        twice = sorted(m for m, v in stored.items() if len(v) != 1)
        self.assertFalse(twice, f"messages stored more than once: {twice[:5]}")


if __name__ == "__main__":
    unittest.main()
