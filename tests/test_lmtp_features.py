"""LMTP as MTA clusters use it (issue 10, item 6), through smtplib.LMTP and raw sockets,
checked through IMAP: +detail addressing, one copy per user per transaction, the DSN /
SMTPUTF8 / BINARYMIME parameters, Received and Delivered-To, bare line endings."""

import re
import socket
import unittest

from harness import HOST, ServerTest, lmtp_deliver, message
from test_imap import fetch_uid_map


def raw_lmtp(port, payload):
    """Sends `payload` after the greeting and LHLO, then QUIT; returns every reply line."""
    with socket.create_connection((HOST, port), timeout=10) as s:
        s.sendall(b"LHLO test.example\r\n" + payload + b"QUIT\r\n")
        data = b""
        while not data.endswith(b"closing connection\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.decode("utf-8", "replace").split("\r\n")


class LmtpFeatures(ServerTest):
    def bodies(self, user, mailbox):
        c = self.server.imap(user, f"{user}-pw")
        typ, _ = c.select(f'"{mailbox}"')
        self.assertEqual(typ, "OK", mailbox)
        bodies = list(fetch_uid_map(c).values())
        c.logout()
        return bodies

    def test_detail_goes_to_an_existing_folder_else_inbox(self):
        c = self.server.imap("alice", "alice-pw")
        self.assertEqual(c.create("Work")[0], "OK")
        self.assertEqual(c.create("Private")[0], "OK")
        # Anyone may post to Work (ACL `p`); nobody but alice to Private.
        self.assertEqual(c._simple_command("SETACL", "Work", "anyone", "p")[0], "OK")
        c.logout()
        lmtp = self.server.lmtp()
        self.assertEqual(lmtp_deliver(lmtp, "s@example.org", ["alice+Private@localhost"],
                                      message("private", "not posted here"))[0][0], 250)
        raw = message("detail", "for work")
        self.assertEqual(lmtp_deliver(lmtp, "s@example.org", ["alice+Work@localhost"], raw)[0][0], 250)
        raw2 = message("missing", "no such folder")
        replies = lmtp_deliver(lmtp, "s@example.org", ["alice+Nowhere@localhost"], raw2)
        self.assertEqual(replies[0][0], 250)
        lmtp.quit()
        work = self.bodies("alice", "Work")
        self.assertEqual(len(work), 1)
        self.assertTrue(work[0].endswith(raw))
        self.assertIn(b"\r\nDelivered-To: alice+Work@localhost\r\n", work[0])
        inbox = self.bodies("alice", "INBOX")
        self.assertEqual(len(inbox), 2, "alice+Nowhere and alice+Private")
        self.assertTrue(any(body.endswith(raw2) for body in inbox))
        self.assertEqual(self.bodies("alice", "Private"), [])
        c = self.server.imap("alice", "alice-pw")
        typ, listed = c.list()
        c.logout()
        self.assertFalse(any(b"Nowhere" in line for line in listed), "a detail creates nothing")

    def test_three_spellings_of_one_user_are_stored_once_with_three_250s(self):
        lmtp = self.server.lmtp()
        raw = message("three spellings", "stored once")
        replies = lmtp_deliver(lmtp, "s@example.org", ["alice", "ALICE", "alice@other.org"], raw)
        lmtp.quit()
        self.assertEqual([code for code, _ in replies], [250, 250, 250], replies)
        inbox = self.bodies("alice", "INBOX")
        self.assertEqual(len(inbox), 1, "one copy for one user")
        self.assertTrue(inbox[0].endswith(raw))

    def test_lhlo_announces_and_dsn_parameters_are_accepted_and_logged(self):
        lmtp = self.server.lmtp()
        for extension in ("dsn", "smtputf8", "binarymime", "chunking", "size"):
            self.assertTrue(lmtp.has_extn(extension), extension)
        self.assertEqual(lmtp.esmtp_features["size"], str(64 * 1024 * 1024))
        code, _ = lmtp.mail("s@example.org", ["RET=HDRS", "ENVID=env+2B1"])
        self.assertEqual(code, 250)
        code, text = lmtp.rcpt("bob@localhost", ["NOTIFY=BOGUS"])
        self.assertEqual((code, text[:5]), (501, b"5.5.4"))
        code, _ = lmtp.rcpt(
            "bob@localhost", ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;bob+2Bx@example.org"]
        )
        self.assertEqual(code, 250)
        code, _ = lmtp.data(message("dsn", "with DSN parameters"))
        self.assertEqual(code, 250)
        # A non-ASCII address needs SMTPUTF8 (RFC 6531); with it, it is only unknown here.
        self.assertEqual(lmtp.mail("s@example.org")[0], 250)
        lmtp.command_encoding = "utf-8"  # smtplib would not send it without SMTPUTF8
        self.assertEqual(lmtp.rcpt("b\u00f6b@localhost")[0], 553)
        lmtp.rset()
        self.assertEqual(lmtp.mail("s@example.org", ["SMTPUTF8"])[0], 250)
        self.assertEqual(lmtp.rcpt("b\u00f6b@localhost")[0], 550)
        lmtp.quit()
        self.assertEqual(len(self.bodies("bob", "INBOX")), 1)
        self.server.stop()
        log = [l for l in self.server.log_text().splitlines() if "lmtp delivery" in l]
        self.assertEqual(len(log), 1, log)
        for field in (r'envid="?env\+1', r'ret="?HDRS', r'notify="?SUCCESS,FAILURE',
                      r'orcpt="?rfc822;bob\+2Bx@example\.org', r'rcpt="?bob@localhost'):
            self.assertRegex(log[0], field)

    def test_received_and_delivered_to_are_fetched_over_imap(self):
        lmtp = self.server.lmtp()
        raw = message("trace", "trace fields")
        self.assertEqual(lmtp_deliver(lmtp, "s@example.org", ["carol@localhost"], raw)[0][0], 250)
        lmtp.quit()
        c = self.server.imap("carol", "carol-pw")
        c.select("INBOX")
        typ, data = c.fetch("1", "(BODY.PEEK[HEADER.FIELDS (RECEIVED DELIVERED-TO RETURN-PATH)])")
        c.logout()
        self.assertEqual(typ, "OK")
        header = data[0][1].decode()
        self.assertIn("Return-Path: <s@example.org>\r\n", header)
        self.assertIn("Delivered-To: carol@localhost\r\n", header)
        self.assertRegex(
            header,
            r"Received: from (\S+ \(\[127\.0\.0\.1\]\)|\[127\.0\.0\.1\])\r\n"
            r"\tby localhost \(skua\) with LMTP id [0-9a-f]+-[0-9a-f]+-[0-9a-f]+-1\r\n"
            r"\tfor <carol@localhost>; \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000\r\n",
        )

    def test_bare_lf_and_lone_cr_are_normalized(self):
        replies = raw_lmtp(
            self.server.lmtp_port,
            b"MAIL FROM:<s@example.org>\r\nRCPT TO:<alice>\r\nDATA\r\n"
            b"Subject: bare\nMessage-ID: <bare.1@test>\r\n\r\nline one\nline\rtwo\r\n.\r\n"
            b"MAIL FROM:<s@example.org> BODY=BINARYMIME\r\nRCPT TO:<alice>\r\n"
            b"BDAT 16 LAST\r\nSubject: b\n\nx\ry\n",
        )
        self.assertEqual(replies.count("250 2.0.0 <alice> Delivered"), 2, replies)
        bodies = self.bodies("alice", "INBOX")
        self.assertEqual(len(bodies), 2)
        first = bodies[0][bodies[0].index(b"Subject: bare"):]
        self.assertEqual(
            first, b"Subject: bare\r\nMessage-ID: <bare.1@test>\r\n\r\nline one\r\nline\r\ntwo\r\n"
        )
        self.assertIsNone(re.search(rb"[^\r]\n|\r[^\n]", bodies[0]), "only CRLF")
        # BINARYMIME (BDAT only) is stored exactly as sent.
        self.assertTrue(bodies[1].endswith(b"\r\nSubject: b\n\nx\ry\n"), bodies[1])


if __name__ == "__main__":
    unittest.main()
