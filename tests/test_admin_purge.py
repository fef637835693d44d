"""`skua ipurge` and `skua unexpunge` (issue 11) against a running and a stopped server.

ipurge expunges by internal date and/or size as an IMAP EXPUNGE would: a session selected on
the mailbox during an online purge sees the EXPUNGE responses on its next NOOP, quota usage
drops by the bytes reported, a dry run changes nothing, and another user's mail (even a
folder shared with the purged user) is not touched. unexpunge lists the expunged messages
still on disk and restores them under new UIDs with the very bytes they had, all or nothing:
a UID that cannot be restored is an error naming it. Unknown users, mailboxes and UIDs exit 1.
Every test ends with `skua check --all` (ServerTest's CHECK_AT_END).
"""

import imaplib
import json
import time
import unittest

from harness import Server, ServerTest, message, run_cli

DAY_S = 86_400


def internal_date(days_ago):
    return imaplib.Time2Internaldate(time.time() - days_ago * DAY_S)


class PurgeTest(ServerTest):
    def cli(self, *args, check=True):
        return run_cli(*args, "--data-dir", self.server.data_dir, check=check)

    def cli_json(self, *args):
        return json.loads(self.cli(*args, "--json").stdout)

    def append(self, client, mailbox, days_ago, subject, size=300):
        raw = message(subject, "x" * size)
        typ, _ = client.append(mailbox, None, internal_date(days_ago), raw)
        self.assertEqual(typ, "OK")
        return raw

    def alice_mail(self):
        """INBOX: UIDs 1-3 100 days old, 4-5 new (UID 5 is 20 KB); Archive: UID 1 old."""
        c = self.server.imap("alice", "alice-pw")
        c.create("Archive")
        for i in range(3):
            self.append(c, "INBOX", 100, f"old {i}")
        self.append(c, "INBOX", 0, "new 0")
        self.append(c, "INBOX", 0, "big new", size=20_000)
        self.append(c, "Archive", 100, "old archived")
        c.logout()

    def quota(self, user):
        return self.cli_json("quota", user)[0]

    def uids(self, client, mailbox):
        client.select(mailbox)
        typ, data = client.uid("SEARCH", "ALL")
        self.assertEqual(typ, "OK")
        return [int(u) for u in data[0].split()]

    def body(self, client, uid):
        typ, data = client.uid("FETCH", str(uid), "(BODY.PEEK[])")
        self.assertEqual(typ, "OK", data)
        return data[0][1]

    def test_online_ipurge_is_seen_by_a_selected_session_and_quota_drops(self):
        self.alice_mail()
        bob = self.server.imap("bob", "bob-pw")
        self.append(bob, "INBOX", 100, "bob's old")
        bob.setacl("INBOX", "alice", "lrswipkxtea")
        bob.logout()
        watcher = self.server.imap("alice", "alice-pw")
        watcher.select("INBOX")
        before = self.quota("alice")

        dry = self.cli_json("ipurge", "alice", "--days", "30", "--dry-run")
        self.assertEqual(len(dry), 1)
        self.assertTrue(dry[0]["dry_run"])
        self.assertEqual(dry[0]["messages"], 4)
        watcher.noop()
        self.assertEqual(watcher.response("EXPUNGE"), ("EXPUNGE", [None]), "a dry run")
        self.assertEqual(self.quota("alice"), before)

        report = self.cli_json("ipurge", "alice", "--days", "30")[0]
        by_name = {m["mailbox"]: m for m in report["mailboxes"]}
        self.assertEqual(by_name["INBOX"]["uids"], [1, 2, 3])
        self.assertEqual(by_name["Archive"]["uids"], [1])
        self.assertEqual(report["messages"], 4)
        self.assertEqual(report["bytes"], sum(m["bytes"] for m in report["mailboxes"]))
        self.assertEqual(dry[0]["mailboxes"], report["mailboxes"], "the dry run said the same")

        typ, _ = watcher.noop()
        self.assertEqual(typ, "OK")
        expunged = watcher.response("EXPUNGE")[1]
        self.assertEqual(len(expunged), 3, expunged)
        self.assertEqual(self.uids(watcher, "INBOX"), [4, 5])
        watcher.logout()

        after = self.quota("alice")
        self.assertEqual(after["messages"], before["messages"] - 4)
        self.assertEqual(after["storage_bytes"], before["storage_bytes"] - report["bytes"])
        self.assertEqual(after["storage_bytes"], after["recount_storage_bytes"])

        bob = self.server.imap("bob", "bob-pw")
        self.assertEqual(self.uids(bob, "INBOX"), [1], "bob's shared INBOX is not alice's")
        bob.logout()
        text = self.cli("ipurge", "alice", "--size", "10K").stdout
        self.assertIn("alice: expunged 1 messages", text)
        self.assertIn("INBOX: 1 messages", text)

    def test_offline_ipurge_by_size_in_one_mailbox_then_every_user(self):
        self.alice_mail()
        self.assertEqual(self.server.stop(), 0)
        report = self.cli_json("ipurge", "alice", "--size", "10K", "--mailbox", "inbox")[0]
        self.assertEqual(report["mailboxes"], [
            {"mailbox": "INBOX", "messages": 1, "bytes": report["bytes"], "uids": [5]}
        ])
        self.assertGreater(report["bytes"], 20_000)
        both = self.cli_json("ipurge", "--all", "--days", "30", "--size", "400")
        self.assertEqual([r["user"] for r in both], ["alice"], "bob and carol have no store")
        self.assertEqual(both[0]["messages"], 4, "old and over 400 bytes")
        self.server = Server(self.server.data_dir, None, self.SHARDS).start()
        c = self.server.imap("alice", "alice-pw")
        self.assertEqual(self.uids(c, "INBOX"), [4])
        self.assertEqual(self.uids(c, "Archive"), [])
        c.logout()

    def test_unexpunge_restores_the_same_bytes_online_and_offline(self):
        c = self.server.imap("alice", "alice-pw")
        raws = [self.append(c, "INBOX", 3, f"keep me {i}") for i in range(4)]
        c.select("INBOX")
        originals = {uid: self.body(c, uid) for uid in (2, 3)}
        c.uid("STORE", "2,3", "+FLAGS", r"(\Deleted \Flagged)")
        c.expunge()
        c.logout()

        listed = self.cli_json("unexpunge", "--list", "alice", "INBOX")
        self.assertEqual(listed["mailbox"], "INBOX")
        self.assertEqual(listed["retention_seconds"], 7 * DAY_S)
        self.assertEqual([m["uid"] for m in listed["messages"]], [2, 3])
        first = listed["messages"][0]
        self.assertEqual(first["subject"], "keep me 1")
        self.assertEqual(first["size"], len(raws[1]))
        self.assertEqual(first["retained_until"], first["expunged_at"] + 7 * DAY_S)
        self.assertIsNone(first["restored_as"])
        self.assertIn("keep me 2", self.cli("unexpunge", "--list", "alice", "INBOX").stdout)

        before = self.quota("alice")
        restored = self.cli_json("unexpunge", "--restore", "2", "alice", "inbox")
        self.assertEqual(restored["restored"], [{"old_uid": 2, "new_uid": 5, "size": len(raws[1])}])
        self.assertEqual(self.quota("alice")["storage_bytes"], before["storage_bytes"] + len(raws[1]))
        c = self.server.imap("alice", "alice-pw")
        c.select("INBOX")
        self.assertEqual(self.body(c, 5), originals[2])
        typ, data = c.uid("FETCH", "5", "(FLAGS)")
        self.assertIn(b"\\Flagged", data[0])
        self.assertNotIn(b"\\Deleted", data[0], "restored without \\Deleted")
        c.logout()

        self.assertEqual(self.server.stop(), 0)
        listed = self.cli_json("unexpunge", "--list", "alice", "INBOX")
        self.assertEqual([m["restored_as"] for m in listed["messages"]], [5, None])
        restored = self.cli_json("unexpunge", "--all-expunged", "alice", "INBOX")
        self.assertEqual([(r["old_uid"], r["new_uid"]) for r in restored["restored"]], [(3, 6)])
        self.server = Server(self.server.data_dir, None, self.SHARDS).start()
        c = self.server.imap("alice", "alice-pw")
        c.select("INBOX")
        self.assertEqual(self.uids(c, "INBOX"), [1, 4, 5, 6])
        self.assertEqual(self.body(c, 6), originals[3])
        c.logout()

    def test_unknown_user_mailbox_and_uid_are_errors_online_and_offline(self):
        c = self.server.imap("alice", "alice-pw")
        self.append(c, "INBOX", 0, "one")
        self.append(c, "INBOX", 0, "two")
        c.select("INBOX")
        c.uid("STORE", "1", "+FLAGS", r"(\Deleted)")
        c.expunge()
        c.logout()
        for state in ("running", "stopped"):
            with self.subTest(state):
                for args, said in (
                    (("ipurge", "nobody", "--days", "1"), "nobody has no store"),
                    (("ipurge", "alice", "--days", "1", "--mailbox", "Nowhere"), "Nowhere"),
                    (("unexpunge", "--list", "nobody", "INBOX"), "nobody has no store"),
                    (("unexpunge", "--list", "alice", "Nowhere"), "Nowhere"),
                    (("unexpunge", "--restore", "1,2,9", "alice", "INBOX"), "UID 2, 9"),
                ):
                    result = self.cli(*args, check=False)
                    self.assertEqual(result.returncode, 1, f"{args}: {result.stdout}")
                    self.assertIn(said, result.stderr, args)
                listed = self.cli_json("unexpunge", "--list", "alice", "INBOX")
                self.assertEqual([m["uid"] for m in listed["messages"]], [1], "nothing restored")
            if state == "running":
                self.assertEqual(self.server.stop(), 0)


if __name__ == "__main__":
    unittest.main()
