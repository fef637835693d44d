"""UTF8=ACCEPT (RFC 6855, issue 9) against the real binary, with Python's imaplib and raw
sockets for the bytes imaplib will not send.

A session that enables UTF8=ACCEPT creates and lists names in UTF-8 (quoted UTF-8 both ways);
a second IMAP4rev1 session that never enables it sees the same mailboxes in modified UTF-7
(RFC 3501 §5.1.3) and its own modified UTF-7 creations come back as UTF-8 to the first. APPEND
with RFC 6855's `UTF8 (literal8)` data item stores the message as sent (read back byte for
byte); it is BAD before the ENABLE. A session with no UTF-8 may APPEND 8-bit header fields
(stored as sent) and is served a stored UTF-8 header as it is (in a literal). Invalid UTF-8 in a quoted
string is BAD, and SEARCH CHARSET is BAD after the ENABLE.

imaplib (3.11) cannot be used for APPEND once UTF-8 is enabled: it puts `UTF8 (` and `)`
inside the literal (`APPEND box {n}` then `UTF8 (message)`), which is not RFC 6855's syntax
and would be stored as the message; the test sends that APPEND on a raw socket instead.
"""

import base64
import imaplib
import re
import unittest

from harness import RawImap, ServerTest, raw_login


def mutf7(name):
    """RFC 3501 §5.1.3 modified UTF-7, written here independently of skua's encoder."""
    out, run = [], []

    def flush():
        if run:
            data = "".join(run).encode("utf-16-be")
            out.append("&" + base64.b64encode(data).decode().rstrip("=").replace("/", ",") + "-")
            run.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


DRAFTS = "Entwürfe"
NESTED = "日本語/Ωμέγα"
FOLDER = "Ordner-ä"
MESSAGE = (
    "Subject: Grüße aus Köln, 日本語\r\n"
    "From: Jürgen <jürgen@exämple.org>\r\n"
    "To: alice@localhost\r\n"
    "\r\n"
    "Körper der Nachricht\r\n"
).encode()


def listed_names(lines):
    """The mailbox names of `* LIST` lines, as the bytes after the separator."""
    names = []
    for line in lines:
        if isinstance(line, tuple):
            line = line[0] + line[1]
        m = re.match(rb'\(.*?\) "/" (.*)$', line)
        if m:
            names.append(m.group(1))
    return names


class Utf8Accept(ServerTest):
    def test_names_in_both_session_forms_and_append_utf8(self):
        utf8 = self.server.imap("alice", "alice-pw")
        rev1 = self.server.imap("alice", "alice-pw")
        typ, data = utf8.capability()
        self.assertIn(b"UTF8=ACCEPT", data[0].split())

        typ, data = utf8.enable("UTF8=ACCEPT")
        self.assertEqual(typ, "OK", data)
        self.assertEqual(utf8.response("ENABLED")[1], [b"UTF8=ACCEPT"])
        typ, data = utf8.enable("UTF8=ACCEPT")
        self.assertEqual(typ, "OK", data)
        self.assertEqual(utf8.response("ENABLED")[1], [b""], "only newly enabled ones are listed")

        for name in (DRAFTS, NESTED):
            typ, data = utf8.create(f'"{name}"')
            self.assertEqual(typ, "OK", data)
        typ, data = rev1.create(mutf7(FOLDER))
        self.assertEqual(typ, "OK", data)

        typ, data = utf8.list('""', "*")
        self.assertEqual(typ, "OK", data)
        names = listed_names(data)
        for name in (DRAFTS, NESTED, "日本語", FOLDER):
            self.assertIn(f'"{name}"'.encode(), names)

        typ, data = rev1.list('""', "*")
        self.assertEqual(typ, "OK", data)
        names = listed_names(data)
        self.assertTrue(all(name.isascii() for name in names), names)
        self.assertIn(b"Entw&APw-rfe", names)
        self.assertIn(mutf7(NESTED).encode(), names)
        self.assertIn(b"Ordner-&AOQ-", names)
        self.assertNotIn(f'"{DRAFTS}"'.encode(), names)

        # APPEND UTF8 (RFC 6855 §4): BAD before ENABLE, stored as sent after it.
        raw = raw_login(self.server.imap_port, "alice", "alice-pw")
        append = f'APPEND "{DRAFTS}" UTF8 (~{{{len(MESSAGE)}+}}\r\n'.encode() + MESSAGE + b")"
        raw.send(b"r1 " + append + b"\r\n")
        _, tagged = raw.read_tagged("r1")
        self.assertTrue(tagged.startswith(b"r1 BAD"), tagged)
        _, tagged = raw.command("r2", "ENABLE UTF8=ACCEPT")
        self.assertTrue(tagged.startswith(b"r2 OK"), tagged)
        raw.send(b"r3 " + append + b"\r\n")
        _, tagged = raw.read_tagged("r3")
        self.assertRegex(tagged, rb"^r3 OK \[APPENDUID \d+ 1\] ")
        raw.close()

        typ, data = utf8.select(f'"{DRAFTS}"')
        self.assertEqual(typ, "OK", data)
        typ, data = utf8.fetch("1", "(BODY.PEEK[])")
        self.assertEqual(typ, "OK", data)
        self.assertEqual(data[0][1], MESSAGE)
        typ, data = utf8.search(None, "SUBJECT", '"Grüße"')
        self.assertEqual((typ, data), ("OK", [b"1"]))
        # RFC 6855 §3: no CHARSET once UTF8=ACCEPT is on (imaplib's search() refuses to send
        # one in UTF-8 mode, so the command goes out directly; BAD raises).
        with self.assertRaisesRegex(imaplib.IMAP4.error, "CHARSET"):
            utf8._simple_command("SEARCH", "CHARSET", "UTF-8", "SUBJECT", '"Grüße"')

        # The rev1 session reaches the same mailbox by its modified UTF-7 name and is served
        # the stored UTF-8 header as it is, in a literal (skua does not downgrade).
        typ, data = rev1.status("Entw&APw-rfe", "(MESSAGES)")
        self.assertEqual(typ, "OK", data)
        self.assertIn(b"(MESSAGES 1)", data[0])
        typ, data = rev1.select("Entw&APw-rfe")
        self.assertEqual(typ, "OK", data)
        typ, data = rev1.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertEqual(typ, "OK", data)
        self.assertEqual(data[0][1], "Subject: Grüße aus Köln, 日本語\r\n\r\n".encode())
        typ, data = rev1.search("UTF-8", "SUBJECT", '"Grüße"'.encode())
        self.assertEqual((typ, data), ("OK", [b"1"]), "CHARSET still works without UTF8=ACCEPT")
        typ, data = rev1.select(f'"{DRAFTS}"'.encode())
        self.assertEqual(typ, "OK", "a UTF-8 name from a rev1 client is taken as UTF-8 too")

        for c in (utf8, rev1):
            c.logout()

    def test_refusals(self):
        raw = raw_login(self.server.imap_port, "alice", "alice-pw")
        # No UTF-8 enabled: 8-bit header fields are stored as sent (old mail being migrated
        # has them; RFC 9755 dropped RFC 6855's NO), and so is an 8-bit body.
        header8 = "Subject: Grüße\r\n\r\nbody\r\n".encode()
        raw.send(f"n1 APPEND INBOX {{{len(header8)}+}}\r\n".encode() + header8 + b"\r\n")
        _, tagged = raw.read_tagged("n1")
        self.assertTrue(tagged.startswith(b"n1 OK "), tagged)
        body8 = "Subject: hi\r\n\r\nGrüße\r\n".encode()
        raw.send(f"n2 APPEND INBOX {{{len(body8)}+}}\r\n".encode() + body8 + b"\r\n")
        _, tagged = raw.read_tagged("n2")
        self.assertTrue(tagged.startswith(b"n2 OK "), tagged)
        # Invalid UTF-8 in a quoted string is BAD, before and after the ENABLE; the session
        # goes on.
        for tag in ("n3", "n5"):
            raw.send(tag.encode() + b' CREATE "caf\xe9"\r\n')
            _, tagged = raw.read_tagged(tag)
            self.assertTrue(tagged.startswith(tag.encode() + b" BAD "), tagged)
            if tag == "n3":
                _, tagged = raw.command("n4", "ENABLE UTF8=ACCEPT")
                self.assertTrue(tagged.startswith(b"n4 OK"), tagged)
        raw.send('n6 CREATE "café"\r\n'.encode())
        _, tagged = raw.read_tagged("n6")
        self.assertTrue(tagged.startswith(b"n6 OK "), tagged)
        untagged, tagged = raw.command("n7", 'LIST "" caf*')
        self.assertEqual(untagged, ['* LIST (\\HasNoChildren) "/" "café"\r\n'.encode()])
        raw.close()

        # ENABLE before login is BAD (valid only once authenticated).
        fresh = RawImap(self.server.imap_port)
        fresh.greeting()
        _, tagged = fresh.command("p1", "ENABLE UTF8=ACCEPT")
        self.assertTrue(tagged.startswith(b"p1 BAD "), tagged)
        fresh.close()


if __name__ == "__main__":
    unittest.main()
