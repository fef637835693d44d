"""RENAME INBOX against the real binary (issue 9): a session with INBOX selected used to keep
reading and changing the renamed mailbox. Now INBOX keeps its UIDVALIDITY, its messages move
to the new mailbox (the server waits for the copies to be durable before expunging them from
INBOX), and the watching session sees them expunged and stays on INBOX."""

import unittest

from harness import ServerTest, lmtp_deliver, message


class RenameInbox(ServerTest):
    def test_a_session_on_inbox_sees_it_emptied_and_stays(self):
        lmtp = self.server.lmtp()
        for i in range(40):
            lmtp_deliver(lmtp, "s@example.org", ["alice@localhost"], message(f"m{i}", f"body {i}"))
        lmtp.quit()
        watcher = self.server.imap("alice", "alice-pw")
        typ, data = watcher.select("INBOX")
        self.assertEqual((typ, data), ("OK", [b"40"]))
        typ, data = watcher.status("INBOX", "(UIDVALIDITY)")
        validity = data[0].split(b"UIDVALIDITY ")[1].rstrip(b")")
        self.assertEqual(watcher.store("3", "+FLAGS", "(\\Flagged)")[0], "OK")

        mover = self.server.imap("alice", "alice-pw")
        typ, data = mover.rename("INBOX", "Old/Mail")
        self.assertEqual(typ, "OK", data)
        typ, data = mover.status("Old/Mail", "(MESSAGES)")
        self.assertEqual(data, [b"Old/Mail (MESSAGES 40)"])
        mover.select("Old/Mail", readonly=True)
        typ, data = mover.search(None, "FLAGGED")
        self.assertEqual(data, [b"3"], "flags move with the messages")
        mover.logout()

        typ, _ = watcher.noop()
        self.assertEqual(typ, "OK")
        self.assertEqual(len(watcher.untagged_responses.get("EXPUNGE", [])), 40)
        typ, data = watcher.search(None, "ALL")
        self.assertEqual(data, [b""])
        typ, data = watcher.status("INBOX", "(UIDVALIDITY UIDNEXT MESSAGES)")
        self.assertIn(b"UIDVALIDITY " + validity, data[0])
        self.assertIn(b"UIDNEXT 41", data[0])
        # Still on INBOX: new mail shows up in this session.
        lmtp = self.server.lmtp()
        lmtp_deliver(lmtp, "s@example.org", ["alice@localhost"], message("after", "later"))
        lmtp.quit()
        watcher.noop()
        typ, data = watcher.uid("SEARCH", None, "ALL")
        self.assertEqual(data, [b"41"])
        watcher.logout()


if __name__ == "__main__":
    unittest.main()
