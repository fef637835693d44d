"""Space comes back (issue 10, item 5): the shard's background spool compaction frees the
space of expunged mail on a real file system (holes: allocated blocks drop, every remaining
message reads back the same), and `skua user del --purge` removes a user's mail, refusing
while a server runs on the data dir."""

import os
import shutil
import tempfile
import time
import unittest

from harness import AbuseServer, check_at_end, lmtp_deliver, message, run_cli

MIB = 1 << 20


def spool_blocks(user_dir):
    """Bytes the user's spool segments take on disk (allocated blocks, not lengths)."""
    spool = os.path.join(user_dir, "spool")
    return sum(os.stat(os.path.join(spool, n)).st_blocks * 512 for n in os.listdir(spool)
               if n.endswith(".seg"))


class Compaction(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="skua-space-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        check_at_end(self, os.path.join(self.tmp, "data"))
        config = ("[compaction]\nretention = \"0\"\ninterval_seconds = 1\n"
                  "free_bytes_min = 1048576\nbytes_per_second = 268435456\n")
        self.server = AbuseServer(os.path.join(self.tmp, "data"), {"alice": "pw"}, config=config)
        self.server.start()

    def tearDown(self):
        self.assertEqual(self.server.stop(), 0, self.server.log_text()[-3000:])

    def test_expunged_mail_leaves_the_disk_and_the_rest_reads_the_same(self):
        # 70 messages of 1 MiB: the first 64 MiB segment fills and a second one starts.
        client = self.server.lmtp()
        for n in range(70):
            body = f"{n:04d}".encode() * (MIB // 4)
            data = message(f"m{n}", body.decode(), to="alice@localhost")
            replies = lmtp_deliver(client, "s@example.org", ["alice@localhost"], data)
            self.assertEqual([code for code, _ in replies], [250])
        client.quit()
        user_dir = self.server.user_dir("alice")
        imap = self.server.imap("alice", "pw")
        imap.select("INBOX")
        imap.store("1:60", "+FLAGS.SILENT", "(\\Deleted)")
        imap.expunge()
        _, data = imap.fetch("1:*", "(UID BODY.PEEK[])")
        before = {item[0]: item[1] for item in data if isinstance(item, tuple)}
        self.assertEqual(len(before), 10)
        full = spool_blocks(user_dir)
        deadline = time.monotonic() + 30
        while spool_blocks(user_dir) > full - 40 * MIB and time.monotonic() < deadline:
            imap.noop()  # keeps the store open (the task compacts open stores)
            time.sleep(0.2)
        freed = full - spool_blocks(user_dir)
        print(f"spool blocks {full >> 20} MiB, freed {freed >> 20} MiB", flush=True)
        self.assertGreater(full, 70 * MIB)
        self.assertGreater(freed, 40 * MIB, "the space came back")
        _, data = imap.fetch("1:*", "(UID BODY.PEEK[])")
        after = {item[0]: item[1] for item in data if isinstance(item, tuple)}
        self.assertEqual(after, before)
        imap.logout()
        # After a restart too.
        self.assertEqual(self.server.stop(), 0)
        self.server.start()
        imap = self.server.imap("alice", "pw")
        imap.select("INBOX")
        _, data = imap.fetch("1:*", "(UID BODY.PEEK[])")
        self.assertEqual({item[0]: item[1] for item in data if isinstance(item, tuple)}, before)
        imap.logout()


class UserDelPurge(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="skua-purge-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.data = os.path.join(self.tmp, "data")
        check_at_end(self, self.data)

    def test_purge_removes_the_mail_and_is_refused_while_a_server_runs(self):
        server = AbuseServer(self.data, {"alice": "pw", "bob": "pw"}).start()
        try:
            client = server.lmtp()
            for user in ("alice", "bob"):
                data = message("hi", "hello", to=f"{user}@localhost")
                lmtp_deliver(client, "s@example.org", [f"{user}@localhost"], data)
            client.quit()
            alice, bob = server.user_dir("alice"), server.user_dir("bob")
            refused = run_cli("user", "del", "alice", "--purge", "--data-dir", self.data,
                              check=False)
            self.assertNotEqual(refused.returncode, 0)
            self.assertIn("admin socket", refused.stderr)
            self.assertIn("nothing was changed", refused.stderr)
            self.assertTrue(os.path.isdir(alice))
            server.imap("alice", "pw").logout()  # still a user
        finally:
            self.assertEqual(server.stop(), 0)
        done = run_cli("user", "del", "alice", "--purge", "--data-dir", self.data)
        self.assertIn("their mail", done.stderr)
        self.assertFalse(os.path.exists(alice))
        self.assertTrue(os.path.isdir(bob), "another user's mail stays")
        # Without --purge and without a terminal, the mail stays.
        kept = run_cli("user", "del", "bob", "--data-dir", self.data)
        self.assertIn("--purge", kept.stderr)
        self.assertTrue(os.path.isdir(bob))
        self.assertEqual(run_cli("user", "list", "--data-dir", self.data).stdout.split(), [])


if __name__ == "__main__":
    unittest.main()
