"""NOTIFY (RFC 5465) against the real binary: one imaplib connection sets NOTIFY and then only
waits (no IDLE, no command); another connection and an LMTP delivery change the mailboxes,
and the first hears the STATUS, LIST and EXISTS lines as they happen. Then NOTIFY NONE, and
the same changes are not announced."""

import imaplib
import socket
import unittest

from harness import ServerTest, lmtp_deliver, message

# imaplib knows no NOTIFY: valid in the authenticated and selected states (RFC 5465 §8).
imaplib.Commands.setdefault("NOTIFY", ("AUTH", "SELECTED"))


class Notify(ServerTest):
    def watcher(self):
        imap = self.server.imap("alice", "alice-pw")
        typ, data = imap.capability()
        self.assertEqual(typ, "OK")
        self.assertIn(b"NOTIFY", data[0].split())
        return imap

    def unsolicited(self, imap, count, timeout=10.0):
        """The next `count` lines the server sends without being asked."""
        imap.sock.settimeout(timeout)
        try:
            return [imap.readline().decode() for _ in range(count)]
        finally:
            imap.sock.settimeout(None)

    def quiet(self, imap, seconds=1.0):
        """True when the server sends nothing for `seconds`."""
        imap.sock.settimeout(seconds)
        try:
            line = imap.readline()
        except (socket.timeout, TimeoutError):
            return True
        finally:
            imap.sock.settimeout(None)
        return line == b""

    def test_notifications_arrive_without_idle(self):
        a = self.watcher()
        b = self.server.imap("alice", "alice-pw")
        typ, _ = b.create("Lists")
        self.assertEqual(typ, "OK")
        typ, _ = a.select("INBOX")
        self.assertEqual(typ, "OK")
        typ, data = a._simple_command(
            "NOTIFY", "SET", "STATUS",
            "(selected (MessageNew (UID) MessageExpunge))",
            "(personal (MessageNew MessageExpunge MailboxName SubscriptionChange))")
        self.assertEqual(typ, "OK", data)
        statuses = [r.decode() for r in a.untagged_responses.pop("STATUS", [])]
        # Every watched mailbox but the selected one (the default folders are there too).
        names = [s.split(" ", 1)[0] for s in statuses]
        self.assertIn("Lists", names)
        self.assertNotIn("INBOX", names)
        lists = statuses[names.index("Lists")]
        self.assertTrue(lists.startswith("Lists (MESSAGES 0 UIDNEXT 1 UIDVALIDITY "), lists)

        # Another session appends elsewhere: STATUS.
        typ, _ = b.append("Lists", None, None, message("one", "first"))
        self.assertEqual(typ, "OK")
        [line] = self.unsolicited(a, 1)
        self.assertRegex(line, r"^\* STATUS Lists \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+\)\r\n$")

        # A mailbox created, subscribed: LIST.
        b.create("Projects")
        b.subscribe("Projects")
        self.assertEqual(self.unsolicited(a, 2), [
            '* LIST () "/" Projects\r\n',
            '* LIST (\\Subscribed) "/" Projects\r\n',
        ])

        # A delivery to the selected INBOX: EXISTS, RECENT and the FETCH asked for.
        lmtp = self.server.lmtp()
        lmtp_deliver(lmtp, "s@example.org", ["alice@localhost"], message("hi", "delivered"))
        lmtp.quit()
        self.assertEqual(self.unsolicited(a, 3), [
            "* 1 EXISTS\r\n", "* 1 RECENT\r\n", "* 1 FETCH (UID 1)\r\n"])

        # The watcher still answers commands.
        typ, data = a.noop()
        self.assertEqual(typ, "OK")

        typ, data = a._simple_command("NOTIFY", "NONE")
        self.assertEqual(typ, "OK", data)
        b.append("Lists", None, None, message("two", "second"))
        b.create("Quiet")
        self.assertTrue(self.quiet(a))
        # A read that timed out leaves imaplib's file unusable: close without LOGOUT.
        a.shutdown()
        b.logout()


if __name__ == "__main__":
    unittest.main()
