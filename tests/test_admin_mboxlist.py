"""`skua mboxlist dump|undump` (Cyrus's ctl_mboxlist) and `skua arbitron` (issue 11).

A dump of a running server, undumped into a new data dir (through its running server, and
again with it stopped), dumps the same but for ids, UIDs and counts: names, special-use,
ACLs, subscriptions (INBOX, which every store has, is left alone); the grantee of a shared folder sees it in LIST on the new server (the
undump noted the grant in the grantee's store first). A second undump and a dry run make
nothing. Arbitron names bob as the reader of alice's folder shared with him by SETACL once he
selected it and read a message, the same against a running and a stopped server, and says
that --days cannot filter. A line of an unknown user, a line that is not JSON, and a user
whose lines do not fit one admin request to a running server are errors (exit 1).
"""

import json
import os
import shutil
import tempfile
import unittest

from harness import Server, check_all, message, run_cli

SHARED = '"Other Users/alice/Team/Plans"'


def shape(lines):
    """What undump carries over, by user and mailbox. INBOX aside: every store has one, so
    undump leaves it alone like any existing mailbox (its subscription is not carried)."""
    return sorted(
        (line["user"], line["mailbox"], sorted(line["acl"].items()), line["special_use"],
         line["subscribed"])
        for line in lines
        if line["mailbox"] != "INBOX"
    )


class MboxlistTest(unittest.TestCase):
    USERS = {"alice": "alice-pw", "bob": "bob-pw"}

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="skua-mboxlist-")
        self.data = os.path.join(self.tmp, "data")
        self.server = Server(self.data, self.USERS, shards=2).start()
        self.other = None

    def tearDown(self):
        try:
            for server in (self.server, self.other):
                if server is not None and server.process is not None:
                    self.assertEqual(server.stop(), 0, server.log_text())
            check_all(self, self.data)
            if self.other is not None:
                check_all(self, self.other.data_dir)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def cli(self, *args, data=None, stdin=None, check=True):
        return run_cli(*args, "--data-dir", data or self.data, stdin=stdin, check=check)

    def share(self):
        """alice shares Team/Plans with bob, who selects it and reads its message."""
        alice = self.server.imap("alice", "alice-pw")
        alice.create("Team/Plans")
        alice.subscribe("Team/Plans")
        typ, _ = alice._simple_command("SETACL", "Team/Plans", "bob", "lrs")
        self.assertEqual(typ, "OK")
        typ, _ = alice.append("Team/Plans", None, None, message("plans", "the plan"))
        self.assertEqual(typ, "OK")
        alice.logout()
        bob = self.server.imap("bob", "bob-pw")
        typ, _ = bob.select(SHARED)
        self.assertEqual(typ, "OK")
        bob.fetch("1", "(BODY[])")
        bob.logout()

    def test_dump_undump_into_a_new_data_dir_and_arbitron(self):
        self.share()
        running = json.loads(self.cli("arbitron", "alice", "--json").stdout)
        plans = [m for m in running[0]["mailboxes"] if m["mailbox"] == "Team/Plans"]
        self.assertEqual(len(plans), 1, running)
        self.assertEqual(plans[0]["readers"], [{"reader": "bob", "seen_messages": 1}])
        self.assertEqual(plans[0]["acl_identifiers"], ["bob"])
        self.assertFalse(running[0]["read_times"])
        days = self.cli("arbitron", "--days", "7")
        self.assertIn("cannot filter", days.stderr)
        self.assertIn("bob (1 seen)", days.stdout)
        dump = self.cli("mboxlist", "dump", "--all").stdout
        lines = [json.loads(text) for text in dump.splitlines()]
        names = {(line["user"], line["mailbox"]) for line in lines}
        self.assertIn(("alice", "Team/Plans"), names)
        self.assertIn(("bob", "INBOX"), names)
        self.assertEqual(self.server.stop(), 0)
        self.assertEqual(json.loads(self.cli("arbitron", "alice", "--json").stdout), running)
        self.assertEqual(self.cli("mboxlist", "dump", "--all").stdout, dump, "offline the same")

        other_data = os.path.join(self.tmp, "other")
        self.other = Server(other_data, self.USERS, shards=2).start()
        dry = json.loads(self.cli("mboxlist", "undump", "--dry-run", "--json", data=other_data,
                                  stdin=dump).stdout)
        self.assertTrue(all(report["dry_run"] for report in dry))
        self.assertEqual(self.cli("mboxlist", "dump", data=other_data).stdout, "", "no stores yet")
        out = self.cli("mboxlist", "undump", "-", data=other_data, stdin=dump).stdout
        self.assertIn("alice: created", out)
        self.assertIn("1 existing left alone", out)
        again = self.cli("mboxlist", "dump", "--all", data=other_data).stdout
        self.assertEqual(shape(json.loads(t) for t in again.splitlines()), shape(lines))
        bob = self.other.imap("bob", "bob-pw")
        typ, listed = bob.list('""', "*")
        self.assertIn(b"Other Users/alice/Team/Plans", b"".join(listed), listed)
        bob.logout()
        self.assertEqual(self.other.stop(), 0)
        path = os.path.join(self.tmp, "dump.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            f.write(dump)
        reports = json.loads(self.cli("mboxlist", "undump", path, "--json", data=other_data).stdout)
        self.assertTrue(all(not report["created"] for report in reports), reports)

    def test_errors(self):
        for running in (True, False):
            with self.subTest(running=running):
                if not running:
                    self.assertEqual(self.server.stop(), 0)
                bad = '{"user":"nobody","mailbox":"X"}\n'
                result = self.cli("mboxlist", "undump", stdin=bad, check=False)
                self.assertEqual(result.returncode, 1)
                self.assertIn("nobody", result.stderr)
                result = self.cli("mboxlist", "undump", stdin="not json\n", check=False)
                self.assertEqual(result.returncode, 1)
                self.assertIn("line 1", result.stderr)
                line = '{"user":"alice","mailbox":"Y","special_use":["\\\\All"]}\n'
                result = self.cli("mboxlist", "undump", stdin=line, check=False)
                self.assertEqual(result.returncode, 1, result.stderr)
                self.assertIn("cannot be given", result.stderr)
                result = self.cli("mboxlist", "dump", "nobody", check=False)
                self.assertEqual(result.returncode, 1)
        self.server.start()
        many = "".join(
            json.dumps({"user": "alice", "mailbox": f"Folder/{i:05}"}) + "\n" for i in range(2000)
        )
        result = self.cli("mboxlist", "undump", stdin=many, check=False)
        self.assertEqual(result.returncode, 1)
        self.assertIn("stop the server", result.stderr)
        alice = self.server.imap("alice", "alice-pw")
        self.assertNotIn(b"Folder", b"".join(alice.list()[1]), "nothing made")
        alice.logout()


if __name__ == "__main__":
    unittest.main()
