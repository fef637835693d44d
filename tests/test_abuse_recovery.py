"""Abuse suite, issue 7: opening a user's store (recovery included) does not hold up the other
sessions of the core.

Before the fix, the first login after a lost index rebuilt it from the whole spool in one
piece on the shard's thread. Now the open runs in steps with the shard's other work between
them. Here alice's INBOX index is deleted while the server is down; after the restart bob,
on the same (only) shard, is served NOOP and FETCH throughout alice's recovering login, two
logins of alice at once share one open, and every message comes back."""

import glob
import os
import shutil
import smtplib
import tempfile
import threading
import unittest

from harness import AbuseServer, check_at_end, message, OtherUserProbe, raw_login

USERS = {"alice": "alice-pw", "bob": "bob-pw"}
MESSAGES = 6000


class Recovery(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="skua-abuse-recovery-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        check_at_end(self, os.path.join(self.tmp, "data"))
        self.data = os.path.join(self.tmp, "data")
        self.server = AbuseServer(self.data, users=USERS)
        self.server.start()
        self.addCleanup(self.server.stop_quietly)

    def deliver(self, count, workers=4):
        errors = []

        def work(w):
            try:
                lmtp = smtplib.LMTP("127.0.0.1", self.server.lmtp_port, timeout=60)
                lmtp.ehlo_or_helo_if_needed()
                for i in range(w, count, workers):
                    lmtp.sendmail("a@example.org", ["alice@localhost"],
                                  message(f"m{i}", f"body {i}"))
                lmtp.quit()
            except Exception as error:  # noqa: BLE001 (reported below)
                errors.append(error)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])

    def test_a_recovering_login_leaves_other_users_served(self):
        self.deliver(MESSAGES)
        self.server.stop()
        indexes = glob.glob(os.path.join(self.data, "users", "*", "alice", "mbox", "*.idx"))
        self.assertTrue(indexes, "alice has index files")
        for path in indexes:
            os.remove(path)
        self.server.start()
        # bob is logged in (his store opened) before alice's recovery starts.
        with OtherUserProbe(self.server, "bob", "bob-pw") as probe:
            sessions = []
            threads = [
                threading.Thread(
                    target=lambda: sessions.append(raw_login(self.server.imap_port, "alice",
                                                             "alice-pw")))
                for _ in range(2)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(len(sessions), 2, "both logins of alice succeeded")
            for c in sessions:
                untagged, tagged = c.command("s", "SELECT INBOX")
                self.assertTrue(tagged.startswith(b"s OK"), tagged)
                self.assertIn(f"* {MESSAGES} EXISTS\r\n".encode(), untagged)
                c.close()
        probe.check(self)
        self.assertNotIn("panicked", self.server.log_text())


if __name__ == "__main__":
    unittest.main()
