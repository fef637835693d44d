"""THREADID (RFC 8474 §5.2) against the real server: a thread delivered over LMTP into INBOX
and a reply APPENDed to Sent share one THREADID, an unrelated message has another, SEARCH
THREADID finds the thread, and after a restart the ids are the same and a new reply (which
the store threads from its map on disk and the spool) joins the same thread."""

import re
import unittest

from harness import ServerTest, lmtp_deliver, message

THREADID = re.compile(rb"THREADID \(([A-Za-z0-9_-]+)\)")
UID = re.compile(rb"UID (\d+)")


def reply(subject, body, message_id, parents):
    """A message answering `parents` (Message-IDs, oldest first): In-Reply-To the last,
    References all of them."""
    raw = message(subject, body, message_id=message_id)
    head, rest = raw.split(b"\r\n\r\n", 1)
    extra = f"In-Reply-To: {parents[-1]}\r\nReferences: {' '.join(parents)}".encode()
    return head + b"\r\n" + extra + b"\r\n\r\n" + rest


class ThreadId(ServerTest):
    def deliver(self, raw):
        lmtp = self.server.lmtp()
        replies = lmtp_deliver(lmtp, "sender@example.org", ["alice@localhost"], raw)
        lmtp.quit()
        self.assertEqual(replies[0][0], 250, replies)

    def thread_ids(self, c, mailbox):
        """UID -> THREADID of every message in `mailbox`."""
        typ, data = c.select(mailbox)
        self.assertEqual(typ, "OK", data)
        typ, data = c.uid("FETCH", "1:*", "(THREADID)")
        self.assertEqual(typ, "OK", data)
        found = {}
        for line in data:
            if line is None:
                continue
            found[int(UID.search(line).group(1))] = THREADID.search(line).group(1)
        return found

    def test_a_thread_across_lmtp_and_append_keeps_its_id_over_a_restart(self):
        self.deliver(message("plan", "the plan", message_id="<root.1@test>"))
        self.deliver(reply("Re: plan", "agreed", "<answer.2@test>", ["<root.1@test>"]))
        self.deliver(message("other", "unrelated", message_id="<other.3@test>"))
        c = self.server.imap("alice", "alice-pw")
        c.create("Sent")  # NO [ALREADYEXISTS] when the default folders have it
        sent = reply("Re: plan", "my answer", "<mine.4@test>", ["<root.1@test>", "<answer.2@test>"])
        typ, data = c.append("Sent", None, None, sent)
        self.assertEqual(typ, "OK", data)

        inbox = self.thread_ids(c, "INBOX")
        self.assertEqual(len(inbox), 3)
        root, answer, other = (inbox[uid] for uid in sorted(inbox))
        self.assertEqual(answer, root, "the delivered reply joins the root's thread")
        self.assertNotEqual(other, root)
        typ, data = c.uid("SEARCH", "THREADID", root.decode())
        self.assertEqual(typ, "OK", data)
        self.assertEqual(data[0].split(), [str(uid).encode() for uid in sorted(inbox)[:2]])
        sent_ids = self.thread_ids(c, "Sent")
        self.assertEqual(list(sent_ids.values()), [root], "the APPENDed reply too")
        c.logout()

        self.assertEqual(self.server.stop(), 0)
        self.server.start()
        self.deliver(reply("Re: plan", "late", "<late.5@test>", ["<root.1@test>"]))
        c = self.server.imap("alice", "alice-pw")
        after = self.thread_ids(c, "INBOX")
        self.assertEqual({uid: after[uid] for uid in inbox}, inbox, "unchanged by a restart")
        late = after[max(after)]
        self.assertEqual(late, root, "a reply after the restart joins the thread")
        self.assertEqual(self.thread_ids(c, "Sent"), sent_ids)
        c.logout()


if __name__ == "__main__":
    unittest.main()
