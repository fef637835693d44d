"""IMAP through Python's imaplib against the real server."""

import re
import socket
import unittest

from harness import HOST, ServerTest, lmtp_deliver, message


def fetch_uid_map(client, query="(UID RFC822.SIZE BODY.PEEK[])"):
    """Runs FETCH 1:* and returns {uid: body bytes}."""
    typ, data = client.fetch("1:*", query)
    assert typ == "OK", (typ, data)
    result = {}
    for item in data:
        if isinstance(item, tuple):
            uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
            result[uid] = item[1]
    return result


class ImapBasics(ServerTest):
    def test_login_failure_is_no(self):
        import imaplib

        client = imaplib.IMAP4(HOST, self.server.imap_port, timeout=30)
        with self.assertRaises(imaplib.IMAP4.error):
            client.login("alice", "wrong")
        # The connection stays usable after a failed login.
        typ, _ = client.noop()
        self.assertEqual(typ, "OK")
        client.login("alice", "alice-pw")
        client.logout()

    def test_create_list_select(self):
        c = self.server.imap("alice", "alice-pw")
        self.assertEqual(c.create("Work")[0], "OK")
        self.assertEqual(c.create("Work/Reports")[0], "OK")
        typ, listing = c.list()
        self.assertEqual(typ, "OK")
        names = b"\n".join(listing)
        for name in (b"INBOX", b"Work", b"Work/Reports"):
            self.assertIn(name, names)
        typ, data = c.select("Work")
        self.assertEqual(typ, "OK")
        self.assertEqual(data, [b"0"])
        self.assertEqual(c.create("Work")[0], "NO")
        c.logout()

    def test_append_then_fetch_is_byte_identical(self):
        c = self.server.imap("alice", "alice-pw")
        raw = message("hello", "first line\r\nsecond line é\r\n")
        typ, data = c.append("INBOX", r"(\Seen)", None, raw)
        self.assertEqual(typ, "OK")
        self.assertIn(b"APPENDUID", data[0])
        c.select("INBOX")
        bodies = fetch_uid_map(c)
        self.assertEqual(list(bodies.values()), [raw])
        typ, data = c.fetch("1", "(FLAGS RFC822.SIZE)")
        self.assertIn(rb"\Seen", data[0])
        self.assertIn(f"RFC822.SIZE {len(raw)}".encode(), data[0])
        typ, data = c.fetch("1", "(ENVELOPE BODYSTRUCTURE)")
        self.assertEqual(typ, "OK")
        self.assertIn(b'"hello"', data[0])
        self.assertIn(b'"text" "plain"'.upper(), data[0].upper())
        c.logout()

    def test_store_copy_move_expunge(self):
        c = self.server.imap("alice", "alice-pw")
        c.create("Archive")
        for i in range(3):
            c.append("INBOX", None, None, message(f"m{i}", f"body {i}"))
        c.select("INBOX")
        typ, data = c.store("1:2", "+FLAGS", r"(\Flagged)")
        self.assertEqual(typ, "OK")
        typ, data = c.fetch("1:3", "(FLAGS)")
        flagged = [d for d in data if rb"\Flagged" in d]
        self.assertEqual(len(flagged), 2)
        typ, data = c.copy("1", "Archive")
        self.assertEqual(typ, "OK")
        typ, data = c.uid("MOVE", "3", "Archive")
        self.assertEqual(typ, "OK")
        # RFC 6851: MOVE reports the source message's removal as an untagged EXPUNGE.
        self.assertEqual(c.response("EXPUNGE"), ("EXPUNGE", [b"3"]))
        typ, data = c.status("Archive", "(MESSAGES)")
        self.assertIn(b"MESSAGES 2", data[0])
        typ, data = c.search(None, "ALL")
        self.assertEqual(data[0].split(), [b"1", b"2"])
        c.store("1", "+FLAGS", r"(\Deleted)")
        typ, data = c.expunge()
        self.assertEqual(typ, "OK")
        self.assertEqual(data, [b"1"])
        typ, data = c.search(None, "ALL")
        self.assertEqual(data[0].split(), [b"1"])
        typ, data = c.search(None, "SUBJECT", "m1")
        self.assertEqual(data[0].split(), [b"1"])
        c.logout()

    def test_two_sessions_see_each_other(self):
        a = self.server.imap("alice", "alice-pw")
        b = self.server.imap("alice", "alice-pw")
        a.select("INBOX")
        b.select("INBOX")
        b.append("INBOX", None, None, message("from b", "x"))
        typ, data = a.noop()
        self.assertIn(b"1", [d for d in a.untagged_responses.get("EXISTS", [])])
        a.store("1", "+FLAGS", r"(\Answered)")
        b.noop()
        fetches = b.untagged_responses.get("FETCH", [])
        self.assertTrue(any(rb"\Answered" in f for f in fetches), fetches)
        a.store("1", "+FLAGS", r"(\Deleted)")
        a.expunge()
        b.noop()
        self.assertIn(b"1", b.untagged_responses.get("EXPUNGE", []))
        a.logout()
        b.logout()

    def test_idle_sees_lmtp_delivery(self):
        c = self.server.imap("bob", "bob-pw")
        c.select("INBOX")
        sock = c.socket()
        sock.sendall(b"i1 IDLE\r\n")
        self.assertTrue(c.readline().startswith(b"+"))
        lmtp = self.server.lmtp()
        replies = lmtp_deliver(lmtp, "s@example.org", ["bob@localhost"], message("ping", "idle"))
        self.assertEqual([r[0] for r in replies], [250])
        lmtp.quit()
        sock.settimeout(10)
        line = c.readline()
        self.assertEqual(line.strip(), b"* 1 EXISTS")
        sock.sendall(b"DONE\r\n")
        while True:
            line = c.readline()
            if line.startswith(b"i1 "):
                break
        self.assertTrue(line.startswith(b"i1 OK"), line)
        c.logout()

    def test_bad_command_keeps_connection(self):
        c = self.server.imap("alice", "alice-pw")
        sock = c.socket()
        sock.sendall(b"x1 FROBNICATE\r\n")
        self.assertTrue(c.readline().startswith(b"x1 BAD"))
        sock.sendall(b"x2 FETCH\r\n")
        self.assertTrue(c.readline().startswith(b"x2 BAD"))
        self.assertEqual(c.noop()[0], "OK")
        c.logout()


class ImapRawSocket(ServerTest):
    def test_literal_plus_and_pipelining(self):
        with socket.create_connection((HOST, self.server.imap_port), timeout=10) as s:
            f = s.makefile("rb")
            self.assertTrue(f.readline().startswith(b"* OK"))
            body = b"Subject: lp\r\n\r\nliteral plus\r\n"
            s.sendall(
                b'a LOGIN {5+}\r\nalice "alice-pw"\r\n'
                + b"b APPEND INBOX {%d+}\r\n" % len(body) + body + b"\r\n"
                + b"c SELECT INBOX\r\n"
                + b"d LOGOUT\r\n"
            )
            lines = []
            while True:
                line = f.readline()
                if not line:
                    break
                lines.append(line)
            tagged = [l.split()[0:2] for l in lines if not l.startswith((b"*", b"+"))]
            self.assertEqual(tagged, [[b"a", b"OK"], [b"b", b"OK"], [b"c", b"OK"], [b"d", b"OK"]])


if __name__ == "__main__":
    unittest.main()
