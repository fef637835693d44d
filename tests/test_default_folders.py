"""Default folders on a user's first login (issue 9, "folders"), against the real binary: a new
user finds Drafts, Sent, Trash, Junk and Archive with their SPECIAL-USE attributes (RFC 6154),
subscribed with INBOX; they are made once (a folder the user deletes stays deleted, across
logins and restarts); `[folders]` in the config renames them or leaves some out."""

import os
import re
import shutil
import tempfile
import unittest

from harness import AbuseServer, ServerTest

LINE = re.compile(rb'^\(([^)]*)\) "/" (.*)$')


def listing(client, *args):
    """{name: set of attributes} of a LIST (or LSUB) answer."""
    command = args[0] if args else "LIST"
    if command == "LSUB":
        typ, data = client.lsub()
    elif command == "SPECIAL-USE":
        typ, data = client._simple_command("LIST", '(SPECIAL-USE) "" "*"')
        typ, data = client._untagged_response(typ, data, "LIST")
    else:
        typ, data = client.list()
    assert typ == "OK", (typ, data)
    result = {}
    for line in data:
        if line is None:
            continue
        match = LINE.match(line)
        assert match, line
        name = match.group(2)
        if name.startswith(b'"'):
            name = name[1:-1]
        result[name.decode()] = set(match.group(1).decode().split())
    return result


DEFAULTS = {
    "Drafts": "\\Drafts",
    "Sent": "\\Sent",
    "Trash": "\\Trash",
    "Junk": "\\Junk",
    "Archive": "\\Archive",
}


class DefaultFolders(ServerTest):
    def test_first_login_makes_subscribed_special_use_folders_once(self):
        c = self.server.imap("alice", "alice-pw")
        found = listing(c)
        self.assertEqual(set(found), {"INBOX", *DEFAULTS})
        for name, attribute in DEFAULTS.items():
            self.assertIn(attribute, found[name], name)
        self.assertNotIn("\\Sent", found["INBOX"])
        self.assertEqual(set(listing(c, "LSUB")), {"INBOX", *DEFAULTS})
        only = listing(c, "SPECIAL-USE")
        self.assertEqual(set(only), set(DEFAULTS))
        # The user deletes Junk: the next login does not bring it back.
        self.assertEqual(c.delete("Junk")[0], "OK")
        c.logout()
        c = self.server.imap("alice", "alice-pw")
        self.assertEqual(set(listing(c)), {"INBOX", *DEFAULTS} - {"Junk"})
        c.logout()
        # Nor does a restart (the mark is in the user's mailbox log).
        self.assertEqual(self.server.stop(), 0)
        self.server.start()
        c = self.server.imap("alice", "alice-pw")
        self.assertEqual(set(listing(c)), {"INBOX", *DEFAULTS} - {"Junk"})
        c.logout()
        # Another user gets the whole set.
        c = self.server.imap("bob", "bob-pw")
        self.assertEqual(set(listing(c)), {"INBOX", *DEFAULTS})
        c.logout()


class ConfiguredFolders(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="skua-test-")
        self.server = None

    def tearDown(self):
        try:
            if self.server is not None and self.server.process is not None:
                self.assertEqual(self.server.stop(), 0, self.server.log_text())
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def test_names_and_set_come_from_the_config(self):
        config = '[folders]\nsent = "Sent Items"\njunk = ""\narchive = "Old/Archive"\n'
        self.server = AbuseServer(
            os.path.join(self.tmp, "data"), {"alice": "alice-pw"}, config=config
        ).start()
        c = self.server.imap("alice", "alice-pw")
        found = listing(c)
        self.assertEqual(
            set(found), {"INBOX", "Drafts", "Sent Items", "Trash", "Old", "Old/Archive"}
        )
        self.assertIn("\\Sent", found["Sent Items"])
        self.assertIn("\\Archive", found["Old/Archive"])
        self.assertIn("\\Drafts", found["Drafts"])
        self.assertFalse({"\\Archive", "\\Sent"} & found["Old"], "a superior has none")
        subscribed = listing(c, "LSUB")
        # LSUB lists the unsubscribed parent of a subscribed name as \Noselect.
        self.assertEqual(
            set(subscribed), {"INBOX", "Drafts", "Sent Items", "Trash", "Old", "Old/Archive"}
        )
        self.assertIn("\\Noselect", subscribed["Old"])
        c.logout()

    def test_an_invalid_name_stops_the_start(self):
        self.server = AbuseServer(
            os.path.join(self.tmp, "data"), {"alice": "alice-pw"},
            config='[folders]\ntrash = "a//b"\n',
        )
        with self.assertRaises(AssertionError) as refused:
            self.server.start()
        self.assertIn("folders.trash", str(refused.exception))
        self.server = None


if __name__ == "__main__":
    unittest.main()
