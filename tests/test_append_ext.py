"""APPEND extensions against the real binary (issue 9, "append"): MULTIAPPEND (RFC 3502),
APPENDLIMIT (RFC 7889) and CATENATE (RFC 4469), over a plain socket (imaplib sends one message
per APPEND). An acknowledged MULTIAPPEND survives a kill -9 whole; a refused one leaves nothing;
a synchronizing literal over APPENDLIMIT is refused before the client sends it."""

import re
import unittest

from harness import RawImap, Server, ServerTest

USER, PASSWORD = "alice", "alice-pw"


def msg(subject, body):
    return f"From: a@example.org\r\nSubject: {subject}\r\n\r\n{body}\r\n".encode()


class AppendExtensions(ServerTest):
    SHARDS = 1

    def connect(self):
        c = RawImap(self.server.imap_port)
        self.addCleanup(c.close)
        self.assertTrue(c.greeting().startswith(b"* OK"))
        return c.login(USER, PASSWORD)

    def fetch_bodies(self, c, tag, mailbox="INBOX"):
        _, tagged = c.command(tag + "s", f"EXAMINE {mailbox}")
        self.assertTrue(tagged.startswith(f"{tag}s OK".encode()), tagged)
        lines, tagged = c.command(tag + "f", "FETCH 1:* BODY.PEEK[]")
        if tagged.startswith(f"{tag}f BAD".encode()):
            return []  # an empty mailbox has no 1:*
        self.assertTrue(tagged.startswith(f"{tag}f OK".encode()), tagged)
        # read_tagged puts each literal's bytes right after the line announcing it.
        return [lines[i + 1] for i, line in enumerate(lines) if re.search(rb"\{\d+\}\r\n$", line)]

    def capability_limit(self, c):
        lines, tagged = c.command("c1", "CAPABILITY")
        self.assertTrue(tagged.startswith(b"c1 OK"), tagged)
        caps = lines[0].split()
        self.assertIn(b"MULTIAPPEND", caps)
        self.assertIn(b"CATENATE", caps)
        limits = [cap for cap in caps if cap.startswith(b"APPENDLIMIT=")]
        self.assertEqual(len(limits), 1, caps)
        return int(limits[0].split(b"=")[1])

    def test_multiappend_is_acknowledged_whole_and_survives_kill_9(self):
        c = self.connect()
        messages = [msg(f"m{i}", f"body {i}") for i in range(3)]
        command = b"a1 APPEND INBOX"
        for i, m in enumerate(messages):
            flags = b" (\\Seen)" if i == 1 else b""
            command += flags + b" {%d+}\r\n" % len(m) + m
        c.send(command + b"\r\n")
        _, tagged = c.read_tagged("a1")
        uid = re.match(rb"a1 OK \[APPENDUID (\d+) 1:3\]", tagged)
        self.assertIsNotNone(uid, tagged)
        self.assertEqual(self.fetch_bodies(c, "b"), messages)
        c.close()
        self.server.kill9()
        # A new process on the same data directory, as after a crash (new ports: the old
        # ones may linger).
        self.server = Server(self.server.data_dir, None, self.SHARDS).start()
        c = self.connect()
        self.assertEqual(self.fetch_bodies(c, "d"), messages)
        lines, tagged = c.command("e", "FETCH 2 FLAGS")
        self.assertTrue(any(b"\\Seen" in line for line in lines), lines)

    def test_a_synchronizing_literal_over_appendlimit_is_refused_unsent_and_nothing_stored(self):
        c = self.connect()
        limit = self.capability_limit(c)
        lines, tagged = c.command("s1", "STATUS INBOX (APPENDLIMIT)")
        self.assertEqual(lines, [b"* STATUS INBOX (APPENDLIMIT %d)\r\n" % limit])
        first = msg("first", "kept only if the whole command is")
        c.send(b"t1 APPEND INBOX {%d}\r\n" % len(first))
        self.assertTrue(c.line().startswith(b"+"))
        c.send(first + b" {%d}\r\n" % (limit + 1))
        # No continuation: the refusal comes at once, and the client never sends the bytes.
        self.assertTrue(c.line().startswith(b"t1 NO [TOOBIG]"))
        _, tagged = c.command("t2", "NOOP")
        self.assertTrue(tagged.startswith(b"t2 OK"), tagged)
        self.assertEqual(self.fetch_bodies(c, "t3"), [])

    def test_a_multiappend_past_appendlimit_in_total_is_refused_before_its_last_literal(self):
        c = self.connect()
        limit = self.capability_limit(c)
        half = limit // 2 + 1
        first = msg("big", "x" * (half - len(msg("big", ""))))
        self.assertEqual(len(first), half)
        c.send(b"t1 APPEND INBOX {%d}\r\n" % half)
        self.assertTrue(c.line().startswith(b"+"))
        c.send(first + b" {%d}\r\n" % half)
        # Each literal is within APPENDLIMIT; both together are not.
        self.assertTrue(c.line().startswith(b"t1 NO [TOOBIG]"))
        self.assertEqual(self.fetch_bodies(c, "t2"), [])

    def test_catenate_builds_a_message_from_a_stored_part_and_text(self):
        c = self.connect()
        original = msg("original", "the text to quote")
        c.send(b"a1 APPEND INBOX {%d+}\r\n" % len(original) + original + b"\r\n")
        _, tagged = c.read_tagged("a1")
        self.assertTrue(tagged.startswith(b"a1 OK"), tagged)
        text = b"> quoted above\r\n"
        c.send(b'a2 APPEND INBOX CATENATE (URL "/INBOX/;UID=1/;SECTION=HEADER" URL '
               b'"/INBOX/;UID=1/;SECTION=TEXT" TEXT {%d+}\r\n' % len(text) + text + b")\r\n")
        _, tagged = c.read_tagged("a2")
        self.assertTrue(tagged.startswith(b"a2 OK [APPENDUID "), tagged)
        bodies = self.fetch_bodies(c, "b")
        self.assertEqual(bodies, [original, original + text])
        _, tagged = c.command("a3", 'APPEND INBOX CATENATE (URL "/INBOX/;UID=9")')
        self.assertEqual(tagged, b"a3 NO [BADURL /INBOX/;UID=9] CATENATE URL cannot be used\r\n")


if __name__ == "__main__":
    unittest.main()
