"""kill -9 under LMTP load: every message that got 250 is there after restart, byte-identical."""

import os
import shutil
import tempfile
import threading
import time
import unittest

from harness import Server, check_at_end, lmtp_deliver, message, without_trace_fields
from test_imap import fetch_uid_map

USERS = {f"user{i}": f"pw{i}" for i in range(4)}


class KillNineUnderLoad(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="skua-crash-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.data = os.path.join(self.tmp, "data")
        check_at_end(self, self.data)

    def test_acknowledged_deliveries_survive_kill9(self):
        server = Server(self.data, USERS, shards=2).start()
        acked = {name: [] for name in USERS}
        lock = threading.Lock()
        stop = threading.Event()

        def worker(n):
            try:
                lmtp = server.lmtp()
                i = 0
                while not stop.is_set():
                    names = [f"user{(n + k) % len(USERS)}" for k in range(1 + i % 2)]
                    raw = message(f"c{n}-{i}", f"worker {n} message {i}\r\n" + "x" * (i * 37 % 3000))
                    replies = lmtp_deliver(
                        lmtp, "s@example.org", [f"{u}@localhost" for u in names], raw
                    )
                    with lock:
                        for name, (code, _) in zip(names, replies):
                            if code == 250:
                                acked[name].append(raw)
                    i += 1
            except (OSError, EOFError, Exception):  # the server died under us: expected
                return

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        time.sleep(2.0)
        server.kill9()
        stop.set()
        for t in threads:
            t.join(timeout=30)
        total = sum(len(v) for v in acked.values())
        self.assertGreater(total, 0, "the load produced no acknowledged delivery")

        server = Server(self.data, None, shards=2).start()
        try:
            for name, expected in acked.items():
                c = server.imap(name, USERS[name])
                _, exists = c.select("INBOX")
                stored = list(fetch_uid_map(c).values()) if exists != [b"0"] else []
                stored_payloads = [without_trace_fields(b) for b in stored]
                for raw in expected:
                    self.assertIn(raw, stored_payloads, f"acknowledged message lost for {name}")
                c.logout()
        finally:
            self.assertEqual(server.stop(), 0)
        print(f"\nkill -9 test: {total} acknowledged deliveries checked after restart")


class JournalAcrossRestarts(unittest.TestCase):
    """The shard journals (core/FORMAT.md, "The shard journal"): a killed server leaves
    batches that the next start replays before it serves; a clean stop checkpoints, so the
    next start replays nothing. Either way the mail is all there."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="skua-journal-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.data = os.path.join(self.tmp, "data")
        check_at_end(self, self.data)

    def deliver(self, server, count, tag):
        lmtp = server.lmtp()
        raws = [message(f"{tag}-{i}", f"journal test {tag} {i}\r\n") for i in range(count)]
        for raw in raws:
            replies = lmtp_deliver(lmtp, "s@example.org", ["user0@localhost"], raw)
            self.assertEqual(replies[0][0], 250, replies)
        lmtp.quit()
        return raws

    def assert_stored(self, server, raws):
        c = server.imap("user0", USERS["user0"])
        c.select("INBOX")
        stored = [without_trace_fields(b) for b in fetch_uid_map(c).values()]
        for raw in raws:
            self.assertIn(raw, stored)
        c.logout()

    def test_a_kill_leaves_batches_to_replay_and_a_clean_stop_none(self):
        server = Server(self.data, USERS, shards=2).start()
        raws = self.deliver(server, 5, "before-kill")
        server.kill9()
        self.assertEqual(sorted(os.listdir(os.path.join(self.data, "journal"))),
                         ["00.wal", "01.wal"])
        server = Server(self.data, None, shards=2).start()
        self.assertIn("journals replayed", server.log_text())
        self.assert_stored(server, raws)
        raws += self.deliver(server, 3, "before-stop")
        self.assertEqual(server.stop(), 0)
        # A start with fewer shards replays every journal there is, and here there is none.
        server = Server(self.data, None, shards=1).start()
        try:
            self.assertNotIn("journals replayed", server.log_text())
            self.assertNotIn("journal replayed", server.log_text())
            self.assert_stored(server, raws)
        finally:
            self.assertEqual(server.stop(), 0)


if __name__ == "__main__":
    unittest.main()
