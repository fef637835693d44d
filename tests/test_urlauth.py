"""URLAUTH (RFC 4467) and absolute URLs in CATENATE (RFC 4469) against the real binary
(issue 9, "append"): a URL from GENURLAUTH fetches after a clean restart and after kill -9
(the keys are on disk, durable before the URL was handed out); RESETKEY revokes it for good;
another user's session gets NIL; CATENATE takes `imap://` URLs of the user's own mailboxes.
The key file is the owner's alone, and neither it nor a token shows in the server's log."""

import glob
import os
import re
import stat
import unittest

from harness import RawImap, Server, ServerTest

# The server's host name (`hostname` in the config; "localhost" by default).
HOST_NAME = "localhost"

MESSAGE = (
    b"From: Fred <fred@example.org>\r\n"
    b"Subject: war and peace\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"Hello.\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"Si vis pacem, para bellum.\r\n"
    b"\r\n"
    b"--b1--\r\n"
)
PART = b"Si vis pacem, para bellum.\r\n"


class Urlauth(ServerTest):
    SHARDS = 2

    def connect(self, user="alice"):
        c = RawImap(self.server.imap_port)
        self.addCleanup(c.close)
        self.assertTrue(c.greeting().startswith(b"* OK"))
        return c.login(user, self.USERS[user])

    def restart(self, kill=False):
        if kill:
            self.server.kill9()
        else:
            self.assertEqual(self.server.stop(), 0, self.server.log_text())
        self.server = Server(self.server.data_dir, None, self.SHARDS).start()

    def append(self, c, tag, mailbox="INBOX"):
        c.send(b"%s APPEND %s {%d+}\r\n%s\r\n" % (tag.encode(), mailbox.encode(), len(MESSAGE), MESSAGE))
        _, tagged = c.read_tagged(tag)
        self.assertTrue(tagged.startswith(f"{tag} OK".encode()), tagged)

    def genurlauth(self, c, tag, rump):
        lines, tagged = c.command(tag, f'GENURLAUTH "{rump}" INTERNAL')
        self.assertEqual(tagged, f"{tag} OK GENURLAUTH completed\r\n".encode())
        m = re.fullmatch(rb'\* GENURLAUTH "(.*):internal:([0-9a-f]{66})"\r\n', lines[0])
        self.assertIsNotNone(m, lines)
        self.assertEqual(m.group(1).decode(), rump)
        return lines[0][len(b'* GENURLAUTH "'):-3].decode()

    def urlfetch(self, c, tag, url):
        lines, tagged = c.command(tag, f'URLFETCH "{url}"')
        self.assertEqual(tagged, f"{tag} OK URLFETCH completed\r\n".encode())
        head = f'* URLFETCH "{url}" '.encode()
        self.assertTrue(lines[0].startswith(head), lines)
        if lines[0] == head + b"NIL\r\n":
            return None
        self.assertRegex(lines[0], rb"\{\d+\}\r\n$")
        return lines[1]

    def test_urls_survive_restart_and_crash_until_resetkey(self):
        c = self.connect()
        lines, tagged = c.command("c1", "CAPABILITY")
        self.assertIn(b"URLAUTH", lines[0].split())
        self.append(c, "a1")
        part = self.genurlauth(
            c, "g1", f"imap://alice@{HOST_NAME}/INBOX/;uid=1/;section=2;urlauth=submit+alice"
        )
        whole = self.genurlauth(c, "g2", f"imap://alice@{HOST_NAME}/INBOX/;UID=1;URLAUTH=anonymous")
        self.assertEqual(self.urlfetch(c, "f1", part), PART)
        self.assertEqual(self.urlfetch(c, "f2", whole), MESSAGE)

        # The key file: owner-only; no key or token in the log.
        [keys] = glob.glob(os.path.join(self.server.data_dir, "users", "*", "alice", "urlauth.keys"))
        self.assertEqual(stat.S_IMODE(os.stat(keys).st_mode), 0o600)
        c.close()
        self.restart()
        c = self.connect()
        self.assertEqual(self.urlfetch(c, "f3", part), PART, "after a clean restart")
        c.close()
        self.restart(kill=True)
        c = self.connect()
        self.assertEqual(self.urlfetch(c, "f4", whole), MESSAGE, "after kill -9")

        # Another user's session: alice's store is not its own (issue 10), so NIL.
        b = self.connect("bob")
        self.assertIsNone(self.urlfetch(b, "b1", whole))

        # RESETKEY INBOX revokes both, also across a restart; a new URL works.
        _, tagged = c.command("r1", "RESETKEY INBOX")
        self.assertEqual(tagged, b"r1 OK [URLMECH INTERNAL] mechs\r\n")
        self.assertIsNone(self.urlfetch(c, "f5", part))
        fresh = self.genurlauth(c, "g3", f"imap://alice@{HOST_NAME}/INBOX/;UID=1;URLAUTH=authuser")
        c.close()
        self.restart(kill=True)
        c = self.connect()
        self.assertIsNone(self.urlfetch(c, "f6", whole))
        self.assertEqual(self.urlfetch(c, "f7", fresh), MESSAGE)
        _, tagged = c.command("r2", "RESETKEY")
        self.assertEqual(tagged, b"r2 OK All keys removed\r\n")
        self.assertIsNone(self.urlfetch(c, "f8", fresh))

        with open(keys, "rb") as f:
            key_bytes = f.read()
        log = self.server.log_text()
        for url in (part, whole, fresh):
            token = url.rsplit(":", 1)[1]
            self.assertNotIn(token, log)
        for offset in range(64 + 16, len(key_bytes), 64):
            self.assertNotIn(key_bytes[offset:offset + 32].hex(), log)

    def test_catenate_with_absolute_urls(self):
        c = self.connect()
        self.append(c, "a1")
        url = self.genurlauth(
            c, "g1", f"imap://alice@{HOST_NAME}/INBOX/;UID=1/;SECTION=2;URLAUTH=user+alice"
        )
        command = (
            f'c1 APPEND INBOX CATENATE (URL "imap://alice@{HOST_NAME}/INBOX/;UID=1/;SECTION=HEADER" '
            f'URL "{url}")\r\n'
        )
        c.send(command.encode())
        _, tagged = c.read_tagged("c1")
        self.assertRegex(tagged, rb"^c1 OK \[APPENDUID \d+ 2\]")
        c.command("s1", "EXAMINE INBOX")
        lines, tagged = c.command("f1", "FETCH 2 BODY.PEEK[TEXT]")
        self.assertEqual(lines[1], PART)
        # Another user's URL, or a tampered token: BADURL, nothing stored.
        for tag, bad in (
            ("c2", f"imap://bob@{HOST_NAME}/INBOX/;UID=1"),
            ("c3", url[:-1] + ("0" if url[-1] != "0" else "1")),
        ):
            _, tagged = c.command(tag, f'APPEND INBOX CATENATE (URL "{bad}")')
            self.assertEqual(tagged, f"{tag} NO [BADURL {bad}] CATENATE URL cannot be used\r\n".encode())
        lines, _ = c.command("s2", "STATUS INBOX (MESSAGES)")
        self.assertEqual(lines, [b"* STATUS INBOX (MESSAGES 2)\r\n"])


if __name__ == "__main__":
    unittest.main()
