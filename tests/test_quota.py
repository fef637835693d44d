"""QUOTA (RFC 9208) against the real server through Python's imaplib and smtplib.LMTP: the
config's default limits and GETQUOTAROOT, an APPEND over quota answered NO [OVERQUOTA] with
nothing stored, EXPUNGE freeing quota at once, a passwd-file `userdb_quota_rule` (as Dovecot
writes it) winning over the default, LMTP DATA over quota refused, and SETQUOTA: NO [NOPERM]
for a user who is not in `[imap] admins`, honoured (and kept across a restart) for one who is,
on their own root `""` and on another user's root named by the user (run on that user's
shard). RCPT with SIZE= reserves room so that concurrent deliveries never overshoot.
"""

import os
import re
import shutil
import tempfile
import time
import unittest

from harness import AbuseServer, check_at_end, lmtp_deliver, message

CONFIG = """
[imap]
admins = ["alice"]

[quota]
storage = "2K"
messages = 3
"""


class Quota(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="skua-quota-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        data = os.path.join(self.tmp, "data")
        check_at_end(self, data)
        users = {"alice": "alice-pw", "bob": "bob-pw"}
        self.server = AbuseServer(data, users, shards=2, config=CONFIG)
        with open(os.path.join(data, "passwd"), "a", encoding="utf-8") as f:
            f.write("carol:{PLAIN}carol-pw::::::userdb_quota_rule=*:messages=1 "
                    "userdb_quota_rule2=*:storage=1M\n")
            f.write("dave:{PLAIN}dave-pw::::::userdb_quota_rule=*:storage=1M "
                    "userdb_quota_rule2=*:messages=100\n")
        self.server.start()

    def tearDown(self):
        if self.server.process is not None:
            self.assertEqual(self.server.stop(), 0, self.server.log_text())

    def quota_of(self, client, mailbox="INBOX"):
        """GETQUOTAROOT: (roots, {resource: (usage, limit)})."""
        typ, data = client.getquotaroot(mailbox)
        self.assertEqual(typ, "OK", data)
        roots_line, quota_lines = data
        roots = roots_line[0].decode().split(" ")[1:]
        resources = {}
        for line in quota_lines:
            inside = re.search(rb"\((.*)\)", line).group(1).decode().split()
            for i in range(0, len(inside), 3):
                resources[inside[i]] = (int(inside[i + 1]), int(inside[i + 2]))
        return roots, resources

    def test_default_limits_append_over_quota_and_expunge_frees(self):
        c = self.server.imap("bob", "bob-pw")
        caps = c.capability()[1][0].decode().split()
        for cap in ("QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE", "QUOTA=RES-MAILBOX",
                    "QUOTASET"):
            self.assertIn(cap, caps)
        roots, resources = self.quota_of(c)
        self.assertEqual(roots, ['""'])
        self.assertEqual(resources, {"STORAGE": (0, 2), "MESSAGE": (0, 3)})
        big = b"Subject: big\r\n\r\n" + b"x" * 1500 + b"\r\n"
        self.assertEqual(c.append("INBOX", None, None, big)[0], "OK")
        typ, data = c.append("INBOX", None, None, big)
        self.assertEqual(typ, "NO")
        self.assertIn(b"[OVERQUOTA]", data[0])
        c.select("INBOX")
        self.assertEqual(c.search(None, "ALL")[1], [b"1"], "nothing was stored")
        c.store("1", "+FLAGS", "(\\Deleted)")
        c.expunge()
        self.assertEqual(self.quota_of(c)[1]["STORAGE"], (0, 2), "expunge frees at once")
        self.assertEqual(c.append("INBOX", None, None, big)[0], "OK")
        c.logout()

    def test_passwd_rule_wins_and_lmtp_is_refused_over_quota(self):
        c = self.server.imap("carol", "carol-pw")
        _, resources = self.quota_of(c)
        self.assertEqual(resources, {"STORAGE": (0, 1024), "MESSAGE": (0, 1)})
        lmtp = self.server.lmtp()
        replies = lmtp_deliver(lmtp, "s@example.org", ["carol@localhost"],
                               message("one", "first"))
        self.assertEqual(replies[0][0], 250, replies)
        replies = lmtp_deliver(lmtp, "s@example.org", ["carol@localhost"],
                               message("two", "second"))
        code, text = replies[0]
        # Permanent by default (`[lmtp] overquota_temporary = true` makes it 452 4.2.2).
        self.assertEqual((code, text[:5]), (552, b"5.2.2"), replies)
        lmtp.quit()
        c.select("INBOX")
        self.assertEqual(c.search(None, "ALL")[1], [b"1"])
        c.logout()

    def test_rcpt_reserves_the_declared_size_so_concurrent_deliveries_never_overshoot(self):
        limit = 1024 * 1024  # dave: storage=1M

        def transaction(size):
            lmtp = self.server.lmtp()
            self.assertEqual(lmtp.mail("s@example.org", [f"SIZE={size}"])[0], 250)
            return lmtp, lmtp.rcpt("dave@localhost")

        def body(size):
            head = b"Subject: big\r\n\r\n"
            line = b"x" * 998 + b"\r\n"
            text = head + line * ((size - len(head)) // len(line))
            return text + b"y" * (size - len(text) - 2) + b"\r\n"

        a, reply = transaction(600_000)
        self.assertEqual(reply[0], 250, reply)
        # A holds 600 000 bytes of dave's 1 MiB: a second 600 000 does not fit, at RCPT.
        b, reply = transaction(600_000)
        self.assertEqual((reply[0], reply[1][:5]), (552, b"5.2.2"), reply)
        b.rset()
        self.assertEqual(b.mail("s@example.org", ["SIZE=300000"])[0], 250)
        self.assertEqual(b.rcpt("dave@localhost")[0], 250)
        # A reservation given back by RSET makes room again.
        d, reply = transaction(100_000)
        self.assertEqual(reply[0], 250, reply)
        d.rset()
        self.assertEqual(a.data(body(600_000))[0], 250)
        self.assertEqual(b.data(body(300_000))[0], 250)
        # D's RSET gave its 100 000 back (in the background, right after the reply).
        for _ in range(50):
            e, reply = transaction(140_000)
            if reply[0] == 250:
                break
            e.quit()
            time.sleep(0.05)
        self.assertEqual(reply[0], 250, "900 000 + 140 000 fits once D's 100 000 is back")
        e.rset()
        c, reply = transaction(200_000)
        self.assertEqual(reply[0], 552, "900 000 stored + 200 000 does not fit")
        for lmtp in (a, b, c, d, e):
            lmtp.quit()
        imap = self.server.imap("dave", "dave-pw")
        _, resources = self.quota_of(imap)
        used_kib, limit_kib = resources["STORAGE"]
        self.assertLessEqual(used_kib * 1024, limit + 1023)
        self.assertEqual(limit_kib, 1024)
        imap.select("INBOX")
        self.assertEqual(len(imap.search(None, "ALL")[1][0].split()), 2)
        imap.logout()

    def test_setquota_needs_an_administrator_and_is_kept(self):
        bob = self.server.imap("bob", "bob-pw")
        typ, data = bob.setquota('""', "(STORAGE 100)")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[NOPERM]", data[0])
        bob.logout()
        alice = self.server.imap("alice", "alice-pw")
        # The login made INBOX and the five default folders: room for one more.
        typ, data = alice.setquota('""', "(STORAGE 100 MAILBOX 7)")
        self.assertEqual(typ, "OK", data)
        self.assertEqual(alice.create("One")[0], "OK")
        typ, data = alice.create("Two")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[OVERQUOTA]", data[0])
        # An administrator names another user's root by the user (on that user's shard).
        typ, data = alice.setquota('"bob"', "(STORAGE 1 MESSAGE 2)")
        self.assertEqual(typ, "OK", data)
        self.assertEqual(alice.setquota('"nobody"', "(STORAGE 1)")[0], "NO")
        alice.logout()
        self.assertEqual(self.server.stop(), 0)
        self.server.start()
        alice = self.server.imap("alice", "alice-pw")
        _, resources = self.quota_of(alice)
        self.assertEqual(resources, {"STORAGE": (0, 100), "MAILBOX": (7, 7)})
        alice.logout()
        bob = self.server.imap("bob", "bob-pw")
        _, resources = self.quota_of(bob)
        self.assertEqual(resources, {"STORAGE": (0, 1), "MESSAGE": (0, 2)})
        bob.logout()


if __name__ == "__main__":
    unittest.main()
