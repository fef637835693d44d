"""OBJECTID (RFC 8474) and SAVEDATE (RFC 8514) against the real server through Python's
imaplib: MAILBOXID on CREATE, SELECT and STATUS, kept by RENAME; EMAILID the same for a
delivered message and its MOVE copy, different between messages; SAVEDATE set at delivery
and at MOVE; all of it unchanged after a restart (stored, not computed per process)."""

import re
import unittest

from harness import ServerTest, lmtp_deliver, message

MAILBOXID = re.compile(rb"MAILBOXID \(([A-Za-z0-9_-]+)\)")
EMAILID = re.compile(rb"EMAILID \(([A-Za-z0-9_-]+)\)")
SAVEDATE = re.compile(rb'SAVEDATE "([^"]+)"')


class ObjectId(ServerTest):
    def deliver(self, subject):
        lmtp = self.server.lmtp()
        raw = message(subject, f"body of {subject}")
        replies = lmtp_deliver(lmtp, "sender@example.org", ["alice@localhost"], raw)
        lmtp.quit()
        self.assertEqual(replies[0][0], 250, replies)

    def ids(self, c, mailbox):
        """UID -> (EMAILID, SAVEDATE) of every message in `mailbox`."""
        typ, _ = c.select(mailbox)
        self.assertEqual(typ, "OK")
        typ, data = c.uid("FETCH", "1:*", "(EMAILID SAVEDATE THREADID)")
        self.assertEqual(typ, "OK", data)
        found = {}
        for line in data:
            if line is None:
                continue
            uid = int(re.search(rb"UID (\d+)", line).group(1))
            # Each delivered message has a Message-ID of its own and no parent: its own thread
            # (tests/test_threadid.py threads them).
            self.assertRegex(line, rb"THREADID \(T[0-9a-f]{16}\)")
            found[uid] = (EMAILID.search(line).group(1), SAVEDATE.search(line).group(1))
        return found

    def mailbox_id(self, c, name):
        typ, data = c.status(name, "(MAILBOXID)")
        self.assertEqual(typ, "OK", data)
        return MAILBOXID.search(data[0]).group(1)

    def test_ids_follow_moves_and_renames_and_survive_a_restart(self):
        for n in range(3):
            self.deliver(f"m{n}")
        c = self.server.imap("alice", "alice-pw")
        typ, data = c.capability()
        self.assertIn(b"OBJECTID", data[0].split())
        self.assertIn(b"SAVEDATE", data[0].split())
        typ, data = c.create("Work")
        self.assertEqual(typ, "OK", data)
        # imaplib hands back the tagged OK's text: `[MAILBOXID (id)] CREATE completed`.
        work_id = MAILBOXID.search(data[0]).group(1)
        self.assertEqual(self.mailbox_id(c, "Work"), work_id)
        inbox_id = self.mailbox_id(c, "INBOX")
        self.assertNotEqual(inbox_id, work_id)

        inbox = self.ids(c, "INBOX")
        self.assertEqual(len(inbox), 3)
        emailids = [emailid for emailid, _ in inbox.values()]
        self.assertEqual(len(set(emailids)), 3, emailids)
        moved_uid = sorted(inbox)[1]
        typ, data = c.uid("MOVE", str(moved_uid), "Work")
        self.assertEqual(typ, "OK", data)
        typ, data = c.uid("SEARCH", "EMAILID", inbox[moved_uid][0].decode())
        self.assertEqual(data, [b""], "the moved message left INBOX")
        work = self.ids(c, "Work")
        self.assertEqual([emailid for emailid, _ in work.values()], [inbox[moved_uid][0]])
        typ, data = c.uid("SEARCH", "EMAILID", inbox[moved_uid][0].decode())
        self.assertEqual(data, [b" ".join(str(uid).encode() for uid in work)])

        typ, data = c.rename("Work", "Projects")
        self.assertEqual(typ, "OK", data)
        self.assertEqual(self.mailbox_id(c, "Projects"), work_id)
        c.logout()

        self.assertEqual(self.server.stop(), 0)
        self.server.start()
        c = self.server.imap("alice", "alice-pw")
        self.assertEqual(self.mailbox_id(c, "INBOX"), inbox_id)
        self.assertEqual(self.mailbox_id(c, "Projects"), work_id)
        typ, data = c.select("Projects")
        self.assertEqual(c.response("MAILBOXID")[1], [b"(" + work_id + b")"])
        self.assertEqual(self.ids(c, "Projects"), work)
        inbox_after = self.ids(c, "INBOX")
        del inbox[moved_uid]
        self.assertEqual(inbox_after, inbox)
        c.logout()


if __name__ == "__main__":
    unittest.main()
