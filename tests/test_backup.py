"""`skua backup` and `skua restore` (issue 11): a snapshot of a user's store appended to an
archive from a running server (through the admin socket's frames) and from a stopped one; a
second backup adds only the new bodies; a restore of the first snapshot into a fresh user
gives exactly the first state (bytes, flags, keywords, internal dates, UIDs, over IMAP);
re-running a restore changes nothing; a damaged or cut archive is reported and the snapshots
before the damage stay usable; a wrong user is an error."""

import imaplib
import json
import os
import re
import socket
import time
import unittest

from harness import ServerTest, lmtp_deliver, message, run_cli

FETCH = re.compile(rb"UID (\d+)|FLAGS \(([^)]*)\)|INTERNALDATE \"([^\"]+)\"")


def quoted(name):
    return '"' + name + '"'


def mailbox_state(imap):
    """Every mailbox and, in each, every message as (uid, flags without \\Recent, internal
    date, bytes), read over IMAP."""
    typ, listed = imap.list('""', "*")
    assert typ == "OK", listed
    names = sorted(re.search(rb'\) "." "?([^"]*)"?$', line).group(1).decode() for line in listed)
    state = {}
    for name in names:
        typ, data = imap.select(quoted(name), readonly=True)
        assert typ == "OK", (name, data)
        messages = []
        if int(data[0]) > 0:
            typ, data = imap.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE BODY.PEEK[])")
            for part in data:
                if not isinstance(part, tuple):
                    continue
                uid = flags = date = None
                for found in FETCH.finditer(part[0]):
                    uid = found.group(1) or uid
                    flags = found.group(2) if found.group(2) is not None else flags
                    date = found.group(3) or date
                kept = frozenset(f for f in flags.split() if f != rb"\Recent")
                messages.append((int(uid), kept, date, part[1]))
        state[name] = sorted(messages)
    return state


class BackupTest(ServerTest):
    def cli(self, *args, check=True):
        return run_cli(*args, "--data-dir", self.server.data_dir, check=check)

    def json_cli(self, *args):
        return json.loads(self.cli(*args, "--json").stdout)

    def deliver(self, subject, to="alice@localhost"):
        lmtp = self.server.lmtp()
        replies = lmtp_deliver(lmtp, "s@example.org", [to], message(subject, f"body of {subject}"))
        lmtp.quit()
        self.assertEqual(replies[0][0], 250, replies)

    def fill_alice(self):
        """Three deliveries, a mailbox with a flagged message of a given date and keyword, a
        subscription and flags on INBOX."""
        for n in range(3):
            self.deliver(f"first {n}")
        imap = self.server.imap("alice", "alice-pw")
        imap.create("Work")
        imap.subscribe("Work")
        when = imaplib.Time2Internaldate(1_600_000_000)
        typ, _ = imap.append("Work", r"(\Flagged project)", when, message("work", "at work"))
        self.assertEqual(typ, "OK")
        imap.select("INBOX")
        imap.uid("STORE", "2", "+FLAGS", r"(\Seen \Answered $Label1)")
        imap.logout()

    def archive(self, name="alice.skb"):
        return os.path.join(self.tmp, name)

    def test_online_backups_share_bodies_and_a_restore_gives_the_first_state_back(self):
        self.fill_alice()
        imap = self.server.imap("alice", "alice-pw")
        first_state = mailbox_state(imap)
        imap.logout()
        first = self.json_cli("backup", "alice", "--to", self.archive())
        self.assertEqual((first["snapshot"], first["messages"], first["bodies_added"]), (1, 4, 4))
        self.assertEqual(first["archive_bytes"], os.path.getsize(self.archive()))
        # Change things: expunge one, flag another, deliver two more.
        imap = self.server.imap("alice", "alice-pw")
        imap.select("INBOX")
        imap.uid("STORE", "1", "+FLAGS", r"(\Deleted)")
        imap.expunge()
        imap.uid("STORE", "3", "+FLAGS", r"(\Flagged)")
        imap.logout()
        self.deliver("second 0")
        self.deliver("second 1")
        imap = self.server.imap("alice", "alice-pw")
        imap.select("INBOX", readonly=True)
        typ, data = imap.uid("FETCH", "4:*", "(RFC822.SIZE)")
        new_bytes = sum(int(re.search(rb"RFC822.SIZE (\d+)", d).group(1)) for d in data)
        imap.logout()
        second = self.json_cli("backup", "alice", "--to", self.archive())
        self.assertEqual((second["snapshot"], second["messages"]), (2, 5))
        self.assertEqual(second["bodies_added"], 2, "only the new deliveries' bodies")
        self.assertEqual(second["body_bytes_added"], new_bytes)
        metadata = second["archive_bytes_added"] - new_bytes
        self.assertLess(metadata, 2048, f"the rest is metadata and references: {second}")
        listed = self.json_cli("restore", self.archive(), "--list")
        self.assertIsNone(listed["damage"])
        times = [s["time_unix_millis"] for s in listed["snapshots"]]
        self.assertEqual(len(times), 2)
        self.assertLess(times[0], times[1])
        # The first snapshot, into a user who has no store yet, through the running server.
        at = f"{times[0] / 1000:.3f}"
        restored = self.json_cli(
            "restore", self.archive(), "--user", "alice", "--at", at, "--to-user", "bob"
        )
        self.assertEqual((restored["user"], restored["messages_restored"]), ("bob", 4))
        self.assertEqual(restored["uids_kept"], 4)
        self.assertEqual(restored["snapshot_unix_millis"], times[0])
        imap = self.server.imap("bob", "bob-pw")
        self.assertEqual(mailbox_state(imap), first_state)
        typ, subscribed = imap.lsub('""', "Work")
        self.assertTrue(subscribed and subscribed[0], "Work subscribed")
        imap.logout()
        again = self.json_cli(
            "restore", self.archive(), "--user", "alice", "--at", at, "--to-user", "bob"
        )
        self.assertEqual((again["messages_restored"], again["messages_skipped"]), (0, 4))
        self.assertEqual(again["mailboxes_created"], 0)
        imap = self.server.imap("bob", "bob-pw")
        self.assertEqual(mailbox_state(imap), first_state, "a second restore changes nothing")
        imap.logout()
        # The latest snapshot back into alice herself: the expunged message comes back.
        back = self.json_cli("restore", self.archive(), "--user", "alice")
        self.assertEqual((back["messages_restored"], back["messages_skipped"]), (0, 5))
        back = self.json_cli("restore", self.archive(), "--user", "alice", "--at", at)
        self.assertEqual((back["messages_restored"], back["messages_skipped"]), (1, 3))

    def test_offline_backup_and_restore_give_the_same_state(self):
        self.fill_alice()
        imap = self.server.imap("alice", "alice-pw")
        state = mailbox_state(imap)
        imap.logout()
        self.server.stop()
        report = self.json_cli("backup", "alice", "--to", self.archive())
        self.assertEqual((report["messages"], report["bodies_added"]), (4, 4))
        restored = self.json_cli("restore", self.archive(), "--user", "alice", "--to-user", "carol")
        self.assertEqual(restored["messages_restored"], 4)
        only_work = self.json_cli(
            "restore", self.archive(), "--user", "alice", "--to-user", "bob", "--mailbox", "Work"
        )
        self.assertEqual(only_work["messages_restored"], 1)
        self.server.start()
        imap = self.server.imap("carol", "carol-pw")
        self.assertEqual(mailbox_state(imap), state)
        imap.logout()
        imap = self.server.imap("bob", "bob-pw")
        self.assertEqual(mailbox_state(imap)["Work"], state["Work"])
        imap.logout()
        # A second online backup into the archive the offline one made adds no body.
        online = self.json_cli("backup", "alice", "--to", self.archive())
        self.assertEqual((online["snapshot"], online["bodies_added"]), (2, 0))

    def test_a_cut_archive_is_resumed_and_a_damaged_one_is_reported(self):
        self.fill_alice()
        self.json_cli("backup", "alice", "--to", self.archive())
        size = os.path.getsize(self.archive())
        self.deliver("later")
        self.json_cli("backup", "alice", "--to", self.archive())
        # Cut inside the second snapshot: the first stays usable, the next backup resumes.
        with open(self.archive(), "r+b") as f:
            f.truncate(size + 100)
        listed = self.cli("restore", self.archive(), "--list", "--json")
        self.assertEqual(len(json.loads(listed.stdout)["snapshots"]), 1)
        self.assertIn("truncated", json.loads(listed.stdout)["damage"])
        self.assertIn("damaged or cut short", listed.stderr)
        resumed = self.cli("backup", "alice", "--to", self.archive(), "--json")
        self.assertIn("cut back", resumed.stderr)
        self.assertEqual(json.loads(resumed.stdout)["snapshot"], 2)
        self.assertEqual(json.loads(resumed.stdout)["bodies_added"], 1)
        listed = self.json_cli("restore", self.archive(), "--list")
        self.assertEqual((len(listed["snapshots"]), listed["damage"]), (2, None))
        # One flipped byte inside the second snapshot: reported, nothing appended.
        with open(self.archive(), "r+b") as f:
            f.seek(size + 40)
            byte = f.read(1)
            f.seek(size + 40)
            f.write(bytes([byte[0] ^ 0x10]))
        listed = self.json_cli("restore", self.archive(), "--list")
        self.assertEqual(len(listed["snapshots"]), 1)
        self.assertIn("damaged", listed["damage"])
        refused = self.cli("backup", "alice", "--to", self.archive(), check=False)
        self.assertEqual(refused.returncode, 1)
        self.assertIn("nothing is appended", refused.stderr)
        restored = self.json_cli("restore", self.archive(), "--user", "alice", "--to-user", "bob")
        self.assertEqual(restored["messages_restored"], 4, "the first snapshot")
        # Not an archive at all.
        with open(self.archive("junk.skb"), "wb") as f:
            f.write(b"not an archive\n" * 10)
        for args in (("backup", "alice", "--to"), ("restore", "--list")):
            junk = self.cli(*args, self.archive("junk.skb"), check=False)
            self.assertEqual(junk.returncode, 1)
            self.assertIn("not a skua backup archive", junk.stderr)

    def test_wrong_users_and_times_are_errors_online_and_offline(self):
        self.deliver("one")
        self.json_cli("backup", "alice", "--to", self.archive())
        for running in (True, False):
            if not running:
                self.server.stop()
            nobody = self.cli("backup", "nobody", "--to", self.archive("x.skb"), check=False)
            self.assertEqual(nobody.returncode, 1, nobody.stderr)
            self.assertIn("nobody", nobody.stderr)
            unknown = self.cli(
                "restore", self.archive(), "--user", "alice", "--to-user", "nobody", check=False
            )
            self.assertEqual(unknown.returncode, 1)
            self.assertIn("no user nobody", unknown.stderr)
            early = self.cli(
                "restore", self.archive(), "--user", "alice", "--at", "2001-01-01T00:00:00Z",
                check=False,
            )
            self.assertEqual(early.returncode, 1)
            self.assertIn("no snapshot of alice", early.stderr)
            nobox = self.cli(
                "restore", self.archive(), "--user", "alice", "--mailbox", "Nope", check=False
            )
            self.assertEqual(nobox.returncode, 1)
            self.assertIn("no mailbox", nobox.stderr)

    def test_the_server_refuses_a_damaged_restore_stream(self):
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(os.path.join(self.server.data_dir, "admin.sock"))
        stream = b"\x89SKB\r\n\x1a\n" + b"\0" * 56
        sock.sendall(b'{"op":"restore","users":["bob"]}\n' + f'{{"data":{len(stream)}}}\n'.encode())
        sock.sendall(stream + b'{"end":{"bytes":64}}\n')
        answer = sock.makefile("rb").readline()
        sock.close()
        self.assertIn(b'"bad-request"', answer)
        self.assertIn(b"not a skua backup archive", answer)
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(os.path.join(self.server.data_dir, "admin.sock"))
        sock.sendall(b'{"op":"restore","users":["bob"]}\n{"data":2000000}\n')
        answer = sock.makefile("rb").readline()
        sock.close()
        self.assertIn(b"data frame of 2000000 bytes", answer)


if __name__ == "__main__":
    unittest.main()
