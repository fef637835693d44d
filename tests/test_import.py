"""`skua import maildir` and `skua import mbox` (migration in): a Dovecot-style Maildir++ tree
(dovecot-uidlist UIDs, dovecot-keywords, flags in file names, folders) and an mbox file go
into a user's store with their UIDs, flags, keywords and internal dates; a second run
changes nothing. Each works with the server running (the messages go through the admin socket
and the server writes them) and stopped, and a run in one mode after a run in the other changes
nothing: both modes keep the same UIDs and skip the same messages."""

import json

import imaplib
import os
import re
import time
import unittest

from harness import Server, ServerTest, run_cli

MAILDIR_UIDLIST = """3 V1700000000 N12 Gabcdef
3 :1700000001.M1.host
7 W120 :1700000002.M2.host
11 :1700000003.M3.host
"""


def write(path, data, mtime=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def mail(subject):
    return f"From: a@example.org\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n".encode()


class ImportTest(ServerTest):
    def maildir(self):
        root = os.path.join(self.tmp, "Maildir")
        write(os.path.join(root, "cur", "1700000001.M1.host:2,S"), mail("one"), 1_700_000_001)
        write(os.path.join(root, "cur", "1700000002.M2.host:2,FRa"), mail("two"), 1_700_000_002)
        write(os.path.join(root, "new", "1700000003.M3.host"), mail("three"), 1_700_000_003)
        write(os.path.join(root, "dovecot-uidlist"), MAILDIR_UIDLIST.encode())
        write(os.path.join(root, "dovecot-keywords"), b"0 Work\n1 Home\n")
        write(os.path.join(root, ".Archive.2026", "cur", "1600000000.M9.host:2,ST"), mail("old"))
        os.makedirs(os.path.join(root, ".Archive.2026", "new"))
        write(os.path.join(root, ".Entw&APw-rfe", "cur", "1600000001.M8.host:2,D"), mail("draft"))
        return root

    def cli(self, *args, check=True):
        return run_cli(*args, "--data-dir", self.server.data_dir, check=check)

    def import_json(self, *args):
        return json.loads(self.cli("import", *args, "--json").stdout)

    def test_maildir_keeps_uids_flags_keywords_dates_and_runs_twice(self):
        root = self.maildir()
        # alice: into the running server, then again with it stopped; bob the other way round.
        watcher = self.server.imap("alice", "alice-pw")
        watcher.select("INBOX")
        report = self.import_json("maildir", root, "--user", "alice")
        self.assertEqual(report["messages_imported"], 5)
        self.assertEqual(report["uids_kept"], 3)
        self.assertEqual(report["mailboxes_created"], 2)
        watcher.noop()
        self.assertEqual(watcher.response("EXISTS")[1][-1], b"3", "a selected session sees them")
        watcher.logout()
        report = self.import_json("maildir", root, "--user", "alice")
        self.assertEqual((report["messages_imported"], report["messages_skipped"]), (0, 5))
        self.server.stop()
        report = self.import_json("maildir", root, "--user", "alice")
        self.assertEqual((report["messages_imported"], report["messages_skipped"]), (0, 5))
        report = self.import_json("maildir", root, "--user", "bob")
        self.assertEqual((report["messages_imported"], report["uids_kept"]), (5, 3))
        self.server.start()
        report = self.import_json("maildir", root, "--user", "bob")
        self.assertEqual((report["messages_imported"], report["messages_skipped"]), (0, 5))
        for user in ("alice", "bob"):
            with self.subTest(user=user):
                self.check_maildir_import(user)

    def check_maildir_import(self, user):
        imap = self.server.imap(user, f"{user}-pw")
        typ, data = imap.select("INBOX")
        self.assertEqual(data, [b"3"])
        typ, data = imap.uid("FETCH", "1:*", "(FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        lines = [part[0] for part in data if isinstance(part, tuple)]
        self.assertEqual(len(lines), 3)
        self.assertIn(b"UID 3 ", lines[0])
        self.assertIn(rb"\Seen", lines[0])
        self.assertIn(b"UID 7 ", lines[1])
        for flag in (rb"\Flagged", rb"\Answered", b"Work"):
            self.assertIn(flag, lines[1])
        self.assertIn(b"UID 11 ", lines[2])
        self.assertNotIn(rb"\Seen", lines[2])
        self.assertIn(b'"14-Nov-2023 22:13:21 +0000"', lines[0])
        typ, data = imap.list('""', "*")
        names = b" ".join(data)
        self.assertIn(b'"/" Archive/2026', names)
        self.assertIn(b'"/" Entw&APw-rfe', names, "Entwürfe, in modified UTF-7 on the wire")
        imap.select("Archive/2026")
        typ, data = imap.fetch("1", "(FLAGS)")
        self.assertIn(rb"\Deleted", data[0])
        imap.logout()

    def test_mbox_into_a_mailbox_once(self):
        path = os.path.join(self.tmp, "mbox")
        write(path, b"From a@example.org Mon Dec  7 10:00:00 2026\n"
                    b"Subject: first\nStatus: RO\nX-Status: F\n\nbody\n>From escaped\n\n"
                    b"From b@example.org Tue Dec  8 10:00:00 2026\nSubject: second\n\nsecond\n")
        # Into the running server (no UIDs in this mbox: each gets the next), then stopped.
        out = self.cli("import", "mbox", path, "--user", "bob", "--mailbox", "Old").stdout
        self.assertIn("imported 2 messages", out)
        bad = self.cli("import", "mbox", path, "--user", "nobody", check=False)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("no user nobody", bad.stderr)
        self.server.stop()
        out = self.cli("import", "mbox", path, "--user", "bob", "--mailbox", "Old").stdout
        self.assertIn("imported 0 messages into bob (2 skipped", out)
        self.server.start()
        imap = self.server.imap("bob", "bob-pw")
        typ, data = imap.select("Old")
        self.assertEqual(data, [b"2"])
        typ, data = imap.fetch("1", "(FLAGS INTERNALDATE BODY[TEXT])")
        self.assertIn(rb"\Seen", data[0][0])
        self.assertIn(rb"\Flagged", data[0][0])
        self.assertIn(b'"07-Dec-2026 10:00:00 +0000"', data[0][0])
        self.assertEqual(data[0][1], b"body\nFrom escaped\n")
        imap.logout()

    def test_imap_account_from_another_server(self):
        source = Server(os.path.join(self.tmp, "source"), {"old": "old-pw"}).start()
        try:
            imap = source.imap("old", "old-pw")
            imap.create("Projects/2026")
            date = imaplib.Time2Internaldate(1_790_000_000)
            for subject, flags in [("a", r"(\Seen)"), ("b", "()"), ("c", r"(\Flagged $Work)")]:
                imap.append("INBOX", flags, date, mail(subject))
            imap.append("Projects/2026", r"(\Answered)", date, mail("plan"))
            imap.select("INBOX")
            imap.store("2", "+FLAGS", r"(\Deleted)")
            imap.expunge()
            imap.logout()
            url = f"imap://old:old-pw@127.0.0.1:{source.imap_port}"
            out = self.cli("import", "imap", url, "--user", "carol").stdout  # server running
            self.assertIn("imported 3 messages", out)
            self.server.stop()
            again = self.import_json("imap", url, "--user", "carol")
            self.assertEqual((again["messages_imported"], again["messages_skipped"]), (0, 3))
            wrong = self.cli("import", "imap", url.replace("old-pw", "nope"), "--user", "carol",
                             check=False)
            self.assertNotEqual(wrong.returncode, 0)
            self.assertIn("logging in", wrong.stderr)
        finally:
            source.stop()
        self.server.start()
        imap = self.server.imap("carol", "carol-pw")
        imap.select("INBOX")
        typ, data = imap.uid("FETCH", "1:*", "(FLAGS INTERNALDATE)")
        self.assertEqual(len(data), 2, data)
        self.assertTrue(data[0].startswith(b"1 (UID 1 ") or b"UID 1 " in data[0], data)
        self.assertIn(rb"\Seen", data[0])
        self.assertIn(b"UID 3 ", data[1], "the source's UIDs, gap included")
        self.assertIn(rb"\Flagged", data[1])
        self.assertIn(b"$Work", data[1])
        expected_date = imaplib.Time2Internaldate(1_790_000_000).strip('"')[:20].encode()
        self.assertIn(expected_date, data[0])
        typ, data = imap.select("Projects/2026")
        self.assertEqual((typ, data), ("OK", [b"1"]))
        typ, data = imap.fetch("1", "(FLAGS)")
        self.assertIn(rb"\Answered", data[0])
        imap.logout()


if __name__ == "__main__":
    unittest.main()
