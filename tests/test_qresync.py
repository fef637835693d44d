"""QRESYNC (RFC 7162) and UIDONLY (RFC 9586) against the real binary: a session in IDLE hears
another session's expunges as VANISHED, and after a restart a new connection resynchronises
with SELECT (QRESYNC ...) and UID FETCH ... VANISHED from the store's expunge history, which
survived on disk."""

import re
import unittest

from harness import RawImap, ServerTest, lmtp_deliver, message


class Qresync(ServerTest):
    def deliver(self, count):
        lmtp = self.server.lmtp()
        for n in range(count):
            lmtp_deliver(lmtp, "s@example.org", ["alice@localhost"], message(f"m{n}", f"body {n}"))
        lmtp.quit()

    def connect(self):
        c = RawImap(self.server.imap_port)
        self.assertTrue(c.greeting().startswith(b"* OK"))
        c.login("alice", "alice-pw")
        return c

    def test_vanished_in_idle_and_resync_after_restart(self):
        self.deliver(6)
        a = self.connect()
        _, tagged = a.command("e", "ENABLE QRESYNC")
        self.assertEqual(tagged, b"e OK ENABLE completed\r\n")
        lines, tagged = a.command("s", "SELECT INBOX")
        self.assertTrue(tagged.startswith(b"s OK"), tagged)
        text = b"".join(lines).decode()
        validity = int(re.search(r"\[UIDVALIDITY (\d+)\]", text).group(1))
        since = int(re.search(r"\[HIGHESTMODSEQ (\d+)\]", text).group(1))
        a.send(b"i IDLE\r\n")
        self.assertEqual(a.line(), b"+ idling\r\n")

        b = self.connect()
        for tag, command in [("b1", "SELECT INBOX"), ("b2", "STORE 2 +FLAGS (\\Flagged)"),
                             ("b3", "STORE 3:4 +FLAGS (\\Deleted)"), ("b4", "EXPUNGE")]:
            _, tagged = b.command(tag, command)
            self.assertTrue(tagged.startswith(f"{tag} OK".encode()), tagged)
        b.command("b5", "LOGOUT")
        b.close()

        heard = []
        while b"* VANISHED 3:4\r\n" not in heard:
            heard.append(a.line())
        self.assertNotIn(b" EXPUNGE\r\n", b"".join(heard))
        a.send(b"DONE\r\n")
        lines, tagged = a.read_tagged("i")
        self.assertEqual(tagged, b"i OK IDLE terminated\r\n")
        a.command("z", "LOGOUT")
        a.close()

        self.assertEqual(self.server.stop(), 0)
        self.server.start()

        c = self.connect()
        c.command("e", "ENABLE QRESYNC")
        lines, tagged = c.command("s", f"SELECT INBOX (QRESYNC ({validity} {since}))")
        self.assertTrue(tagged.startswith(b"s OK [READ-WRITE]"), tagged)
        tail = [line for line in lines if b"VANISHED" in line or b"FETCH" in line]
        self.assertEqual(tail[0], b"* VANISHED (EARLIER) 3:4\r\n", lines)
        self.assertEqual(len(tail), 2, lines)
        self.assertRegex(tail[1], rb"^\* 2 FETCH \(FLAGS \(\\Flagged\) MODSEQ \(\d+\) UID 2\)\r\n$")
        lines, tagged = c.command("f", f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {since} VANISHED)")
        self.assertTrue(tagged.startswith(b"f OK"), tagged)
        self.assertEqual(lines[0], b"* VANISHED (EARLIER) 3:4\r\n", lines)
        # UIDONLY on the same connection: numbers refused, UIDFETCH back.
        _, tagged = c.command("u", "ENABLE UIDONLY")
        self.assertTrue(tagged.startswith(b"u OK"), tagged)
        _, tagged = c.command("n", "FETCH 1 (FLAGS)")
        self.assertTrue(tagged.startswith(b"n BAD [UIDREQUIRED]"), tagged)
        lines, tagged = c.command("x", "UID FETCH 2 (FLAGS)")
        self.assertTrue(tagged.startswith(b"x OK"), tagged)
        self.assertEqual(lines, [b"* 2 UIDFETCH (FLAGS (\\Flagged))\r\n"])
        c.command("z", "LOGOUT")
        c.close()


if __name__ == "__main__":
    unittest.main()
