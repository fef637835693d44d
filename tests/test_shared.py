"""Shared folders across shards with imaplib: user0 (home shard 1) lets alice (home shard 0)
read his INBOX; alice lists the namespaces, selects `Other Users/user0/INBOX`, reads it, is
refused what the ACL does not give, and an IDLE on it hears a delivery to user0 on the other
shard. Every name trick for reaching his other mailboxes answers NONEXISTENT or NOPERM, and
`\\Seen` on his mailbox is alice's own."""

import threading
import unittest

from harness import Server, ServerTest, lmtp_deliver, message

SHARED = '"Other Users/user0/INBOX"'


class SharedFolderTest(ServerTest):
    # alice's home is shard 0 and user0's shard 1 (placement is stable; two shards).
    USERS = {"alice": "alice-pw", "user0": "pw0"}

    def deliver_to_user0(self, subject):
        lmtp = self.server.lmtp()
        replies = lmtp_deliver(lmtp, "s@example.org", ["user0@localhost"], message(subject, "hi"))
        lmtp.quit()
        self.assertEqual(replies[0][0], 250, replies)

    def grant(self, rights):
        owner = self.server.imap("user0", "pw0")
        typ, data = owner._simple_command("SETACL", "INBOX", "alice", rights)
        self.assertEqual(typ, "OK", data)
        owner.logout()

    def test_namespace_select_fetch_and_rights(self):
        self.deliver_to_user0("first")
        alice = self.server.imap("alice", "alice-pw")
        typ, data = alice.namespace()
        self.assertEqual(typ, "OK")
        self.assertIn(b'(("Other Users/" "/"))', data[0])
        # No rights yet: the mailbox does not exist for her.
        typ, data = alice.select(SHARED)
        self.assertEqual(typ, "NO")
        self.assertIn(b"NONEXISTENT", data[0])

        self.grant("lr")
        # `l r` only: SELECT opens it read-only (RFC 4314 §4).
        typ, data = alice._simple_command("SELECT", SHARED)
        self.assertEqual(typ, "OK", data)
        self.assertIn(b"[READ-ONLY]", data[0])
        alice.state = "SELECTED"
        alice.untagged_responses.pop("READ-ONLY", None)
        self.assertEqual(alice.untagged_responses.pop("EXISTS"), [b"1"])
        typ, data = alice.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertEqual(typ, "OK")
        self.assertIn(b"Subject: first", data[0][1])
        typ, data = alice.store("1", "+FLAGS", r"(\Flagged)")
        self.assertEqual(typ, "NO")
        alice.untagged_responses.pop("READ-ONLY", None)
        typ, data = alice._simple_command("MYRIGHTS", SHARED)
        self.assertEqual(typ, "OK")
        self.assertEqual(alice.untagged_responses.pop("MYRIGHTS"), [b'"Other Users/user0/INBOX" lr'])
        typ, data = alice._simple_command("GETACL", SHARED)
        self.assertEqual(typ, "NO")
        # Her own INBOX is hers, in between.
        typ, data = alice.status("INBOX", "(MESSAGES)")
        self.assertEqual(data, [b'INBOX (MESSAGES 0)'])
        alice.logout()

    def test_name_tricks_reach_nothing(self):
        self.grant("lr")
        alice = self.server.imap("alice", "alice-pw")
        owner = self.server.imap("user0", "pw0")
        owner.create("Private")
        owner.logout()
        for name in ['"Other Users/user0/Private"', '"Other Users/USER0/Private"',
                     '"Other Users/../user0/INBOX"', '"Other Users/user0/../Private"',
                     '"Other Users/nobody/INBOX"', '"Other Users/user0"', '"Other Users"',
                     '"other users/user0/INBOX"', '"Other Users/user0/INBOX/../Private"']:
            typ, data = alice.select(name)
            self.assertEqual(typ, "NO", name)
            self.assertIn(b"NONEXISTENT", data[0], name)
        for command, args in [("CREATE", ['"Other Users/user0/Mine"']),
                              ("DELETE", [SHARED]),
                              ("RENAME", ['"Other Users/user0/INBOX"', "Taken"])]:
            typ, data = alice._simple_command(command, *args)
            self.assertEqual(typ, "NO", command)
            self.assertIn(b"NOPERM", data[0], command)
        typ, _ = alice.select(SHARED, readonly=True)
        self.assertEqual(typ, "OK", "the granted one still opens")
        alice.logout()

    def test_idle_on_the_shared_folder_hears_the_owners_delivery(self):
        self.grant("lr")
        alice = self.server.imap("alice", "alice-pw")
        typ, data = alice.select(SHARED, readonly=True)
        self.assertEqual((typ, data), ("OK", [b"0"]))
        tag = alice._new_tag().decode()
        alice.send(f"{tag} IDLE\r\n".encode())
        self.assertTrue(alice.readline().startswith(b"+"))
        sender = threading.Thread(target=self.deliver_to_user0, args=("while idling",))
        sender.start()
        alice.sock.settimeout(20)
        line = alice.readline()
        sender.join()
        self.assertEqual(line, b"* 1 EXISTS\r\n")
        alice.send(b"DONE\r\n")
        while True:
            line = alice.readline()
            if line.startswith(tag.encode()):
                break
        self.assertIn(b"OK", line)
        typ, data = alice.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertIn(b"while idling", data[0][1])
        alice.logout()

    def test_seen_is_the_readers_own_across_shards(self):
        self.deliver_to_user0("read me")
        self.grant("lrs")
        alice = self.server.imap("alice", "alice-pw")
        typ, data = alice.select(SHARED)
        self.assertEqual((typ, data), ("OK", [b"1"]))
        typ, data = alice.fetch("1", "(BODY[])")
        self.assertEqual(typ, "OK")
        typ, data = alice.fetch("1", "(FLAGS)")
        self.assertIn(rb"\Seen", data[0])
        typ, data = alice.search(None, "UNSEEN")
        self.assertEqual(data, [b""])
        alice.logout()
        # The owner has not read it: his \Seen is his own.
        owner = self.server.imap("user0", "pw0")
        owner.select("INBOX", readonly=True)
        typ, data = owner.fetch("1", "(FLAGS)")
        self.assertNotIn(rb"\Seen", data[0])
        owner.logout()

    def test_copy_and_move_between_users_on_two_shards(self):
        self.deliver_to_user0("his")
        self.grant("lrsitew")
        alice = self.server.imap("alice", "alice-pw")
        alice.append("INBOX", r"(\Flagged)", None, message("hers", "x"))
        # Her INBOX (shard 0) into his (shard 1): the copy keeps \Flagged.
        alice.select("INBOX")
        typ, data = alice.copy("1", SHARED)
        self.assertEqual(typ, "OK", data)
        self.assertIn(b"COPYUID", data[0])
        # MOVE his first message into her INBOX: gone from his, in hers.
        typ, data = alice.select(SHARED)
        self.assertEqual((typ, data), ("OK", [b"2"]))
        typ, data = alice._simple_command("MOVE", "1", "INBOX")
        self.assertEqual(typ, "OK", data)
        typ, data = alice.status("INBOX", "(MESSAGES)")
        self.assertEqual(data, [b"INBOX (MESSAGES 2)"])
        typ, data = alice.fetch("1", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertIn(rb"\Flagged", data[0][0])
        self.assertIn(b"Subject: hers", data[0][1])
        alice.logout()
        owner = self.server.imap("user0", "pw0")
        owner.select("INBOX", readonly=True)
        typ, data = owner.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        subjects = [part[1] for part in data if isinstance(part, tuple)]
        self.assertEqual(len(subjects), 1, data)
        self.assertIn(b"Subject: hers", subjects[0])
        owner.logout()


    def test_list_shows_what_others_share_after_a_crash_too(self):
        owner = self.server.imap("user0", "pw0")
        owner.create("Projects")
        typ, data = owner._simple_command("SETACL", "Projects", "alice", "lr")
        self.assertEqual(typ, "OK", data)
        owner.logout()
        alice = self.server.imap("alice", "alice-pw")
        typ, data = alice.list('""', '*')
        self.assertEqual(typ, "OK")
        self.assertIn(b'(\\HasNoChildren) "/" "Other Users/user0/Projects"', data)
        alice.logout()
        # SETACL noted the grant in alice's store, durably, before answering.
        self.server.kill9()
        # A new process on the same data directory, as after a crash (new ports: the old
        # ones may linger).
        self.server = Server(self.server.data_dir, None, self.SHARDS).start()
        alice = self.server.imap("alice", "alice-pw")
        typ, data = alice.list('""', '"Other Users/*"')
        self.assertEqual(typ, "OK")
        self.assertIn(b'(\\HasNoChildren) "/" "Other Users/user0/Projects"', data)
        self.assertNotIn(b"INBOX", b" ".join(d for d in data if d), "his INBOX is not shared")
        alice.logout()


if __name__ == "__main__":
    unittest.main()
