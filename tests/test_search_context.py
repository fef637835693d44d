"""CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4) and PARTIAL results (RFC 9394) against the
real server: a session keeps `UID SEARCH RETURN (UPDATE) UNSEEN` and a `UID SORT` live and,
while it idles, learns of an LMTP delivery, another session's STORE and an EXPUNGE through
`* ESEARCH ... ADDTO` / `REMOVEFROM` lines; CANCELUPDATE ends a context; PARTIAL pages from
either end, for SEARCH/SORT results and with UID FETCH's PARTIAL modifier."""

import socket
import time
import unittest

from harness import RawImap, ServerTest, lmtp_deliver, message


class SearchContext(ServerTest):
    def deliver(self, subject):
        lmtp = self.server.lmtp()
        raw = message(subject, f"body of {subject}")
        replies = lmtp_deliver(lmtp, "sender@example.org", ["alice@localhost"], raw)
        lmtp.quit()
        self.assertEqual(replies[0][0], 250, replies)

    def ok(self, c, tag, text):
        lines, tagged = c.command(tag, text)
        self.assertTrue(tagged.startswith(tag.encode() + b" OK"), (text, lines, tagged))
        return lines

    def idle_until(self, c, wanted, timeout=20.0):
        """Lines received in IDLE until every line of `wanted` came (in any order)."""
        seen = []
        deadline = time.monotonic() + timeout
        while not all(w in seen for w in wanted):
            left = deadline - time.monotonic()
            if left <= 0:
                self.fail(f"waited for {wanted}, got {seen}")
            try:
                seen.append(c.line(left))
            except socket.timeout:
                continue
        return seen

    def test_kept_searches_follow_deliveries_stores_and_expunges(self):
        for subject in ("c", "a", "b"):
            self.deliver(subject)
        c = RawImap(self.server.imap_port).login("alice", "alice-pw")
        caps = b"".join(self.ok(c, "a1", "CAPABILITY"))
        self.assertIn(b" CONTEXT=SEARCH", caps)
        self.assertIn(b" CONTEXT=SORT", caps)
        self.ok(c, "a2", "SELECT INBOX")
        lines = self.ok(c, "k1", "UID SEARCH RETURN (UPDATE) UNSEEN")
        self.assertEqual(lines, [b'* ESEARCH (TAG "k1") UID ALL 1:3\r\n'])
        lines = self.ok(c, "k2", "UID SORT RETURN (UPDATE PARTIAL 1:2) (SUBJECT) UTF-8 ALL")
        self.assertEqual(lines, [b'* ESEARCH (TAG "k2") UID PARTIAL (1:2 2:3)\r\n'])
        lines = self.ok(c, "p1", "UID SEARCH RETURN (PARTIAL -1:-2 COUNT) ALL")
        self.assertEqual(lines, [b'* ESEARCH (TAG "p1") UID COUNT 3 PARTIAL (-1:-2 2:3)\r\n'])

        c.send(b"i1 IDLE\r\n")
        self.assertEqual(c.line(), b"+ idling\r\n")
        self.deliver("aa")
        self.idle_until(
            c,
            [
                b"* 4 EXISTS\r\n",
                b'* ESEARCH (TAG "k1") UID ADDTO (0 4)\r\n',
                b'* ESEARCH (TAG "k2") UID ADDTO (2 4)\r\n',
            ],
        )
        other = self.server.imap("alice", "alice-pw")
        other.select("INBOX")
        typ, data = other.uid("STORE", "2", "+FLAGS", "(\\Seen)")
        self.assertEqual(typ, "OK", data)
        self.idle_until(c, [b'* ESEARCH (TAG "k1") UID REMOVEFROM (0 2)\r\n'])
        typ, data = other.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
        self.assertEqual(typ, "OK", data)
        typ, data = other.expunge()
        self.assertEqual(typ, "OK", data)
        other.logout()
        # Sort order was a(2), aa(4), b(3), c(1): c goes from position 4.
        self.idle_until(
            c,
            [
                b"* 1 EXPUNGE\r\n",
                b'* ESEARCH (TAG "k1") UID REMOVEFROM (0 1)\r\n',
                b'* ESEARCH (TAG "k2") UID REMOVEFROM (4 1)\r\n',
            ],
        )
        c.send(b"DONE\r\n")
        lines, tagged = c.read_tagged("i1")
        self.assertTrue(tagged.startswith(b"i1 OK"), (lines, tagged))

        self.ok(c, "k3", 'CANCELUPDATE "k1"')
        self.deliver("z")
        lines = self.ok(c, "n1", "NOOP")
        self.assertIn(b'* ESEARCH (TAG "k2") UID ADDTO (4 5)\r\n', lines)
        self.assertFalse([line for line in lines if b'"k1"' in line], lines)
        # The kept SEARCH ended; a fresh one agrees with what the updates said.
        lines = self.ok(c, "s1", "UID SEARCH RETURN (ALL) UNSEEN")
        self.assertEqual(lines, [b'* ESEARCH (TAG "s1") UID ALL 3:5\r\n'])
        c.close()

    def test_uid_fetch_partial_pages(self):
        for subject in ("p1", "p2", "p3", "p4"):
            self.deliver(subject)
        c = self.server.imap("alice", "alice-pw")
        typ, data = c.capability()
        self.assertEqual(typ, "OK", data)
        self.assertIn(b"PARTIAL", data[0].split())
        typ, data = c.select("INBOX")
        self.assertEqual((typ, data), ("OK", [b"4"]))
        # The last two of the four, in mailbox order; this session holds \Recent (rev1).
        typ, data = c.uid("FETCH", "1:*", "(FLAGS) (PARTIAL -1:-2)")
        self.assertEqual(typ, "OK", data)
        self.assertEqual(data, [b"3 (UID 3 FLAGS (\\Recent))", b"4 (UID 4 FLAGS (\\Recent))"])
        typ, data = c.uid("FETCH", "2:*", "(UID) (PARTIAL 1:1)")
        self.assertEqual((typ, data), ("OK", [b"2 (UID 2)"]))
        # A page past the end: nothing, and OK.
        typ, data = c.uid("FETCH", "1:*", "(UID) (PARTIAL 5:9)")
        self.assertEqual((typ, data), ("OK", [None]))
        with self.assertRaises(c.error):
            c.uid("FETCH", "1:*", "(UID) (PARTIAL 0:2)")
        c.logout()


if __name__ == "__main__":
    unittest.main()
