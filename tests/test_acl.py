"""ACL (RFC 4314, RIGHTS=texk) and LIST-MYRIGHTS (RFC 8440) against the real server through
Python's imaplib (its getacl/setacl/deleteacl/listrights/myrights): entries set, read back,
following RENAME and vanishing with DELETE; the owner's rights that never go; malformed
identifiers and rights refused with BAD; the per-mailbox limit; and every ACL read back after
a clean restart and after a SIGKILL right after the OK (a SETACL is acknowledged only once
durable)."""

import imaplib
import unittest

from harness import Server, ServerTest


def acl(c, mailbox):
    """GETACL: the entries of the one ACL response, as a list of (identifier, rights)."""
    typ, data = c.getacl(mailbox)
    assert typ == "OK", data
    words = data[0].split()
    # `mailbox *(identifier rights)`; the names used here need no quoting.
    return [(words[i].decode(), words[i + 1].decode()) for i in range(1, len(words), 2)]


class Acl(ServerTest):
    def ok(self, result):
        typ, data = result
        self.assertEqual(typ, "OK", data)
        return data

    def test_acls_follow_rename_survive_restarts_and_vanish_with_delete(self):
        c = self.server.imap("alice", "alice-pw")
        caps = c.capability()[1][0].split()
        for cap in (b"ACL", b"RIGHTS=texk", b"LIST-MYRIGHTS"):
            self.assertIn(cap, caps)
        self.assertEqual(acl(c, "INBOX"), [("alice", "lrswipkxteacd")])
        self.ok(c.create("Team"))
        self.ok(c.setacl("Team", "Bob", "lrsp"))
        self.ok(c.setacl("Team", "-anyone", "w"))
        self.ok(c.setacl("Team", "carol", "+lrd"))
        self.ok(c.setacl("Team", "carol", "-x"))
        team = [
            ("alice", "lrswipkxteacd"),
            ("bob", "lrsp"),
            ("-anyone", "w"),
            ("carol", "lrted"),
        ]
        self.assertEqual(acl(c, "Team"), team)
        self.ok(c.rename("Team", "Crew"))
        self.assertEqual(acl(c, "Crew"), team, "RENAME keeps the ACL")
        # The owner keeps l k x a: the SETACL succeeds and the entry keeps them.
        self.ok(c.setacl("INBOX", "alice", "r"))
        self.assertEqual(acl(c, "INBOX"), [("alice", "lrkxacd")])
        data = self.ok(c.myrights("INBOX"))
        self.assertEqual(data[0].split(), [b"INBOX", b"lrkxacd"])
        # imaplib has no listrights(): xatom, then the untagged LISTRIGHTS response.
        self.ok(c.xatom("LISTRIGHTS", "INBOX", "Alice"))
        typ, data = c.response("LISTRIGHTS")
        self.assertEqual(data[0].split(), b"INBOX Alice lkxa r s w i p t e d".split())
        # LIST-MYRIGHTS: a MYRIGHTS response after each listed mailbox.
        self.ok(c._simple_command("LIST", '""', '"*"', "RETURN", "(MYRIGHTS)"))
        typ, lines = c.response("MYRIGHTS")
        listed = dict(bytes(line).split() for line in lines if line)
        self.assertEqual(listed[b"INBOX"], b"lrkxacd")
        # "-anyone w" takes w from the owner too (RFC 4314 §2); l k x a never go.
        self.assertEqual(listed[b"Crew"], b"lrsipkxteacd")
        self.assertEqual(listed[b"Drafts"], b"lrswipkxteacd", "a default folder's default ACL")
        c.logout()

        want = {"INBOX": [("alice", "lrkxacd")], "Crew": team}

        def check():
            c = self.server.imap("alice", "alice-pw")
            for mailbox, entries in want.items():
                self.assertEqual(acl(c, mailbox), entries, mailbox)
            return c

        self.assertEqual(self.server.stop(), 0)
        self.server.start()
        c = check()
        # Acknowledged means durable: SIGKILL right after the OK loses nothing.
        self.ok(c.deleteacl("Crew", "-anyone"))
        want["Crew"] = [e for e in team if e[0] != "-anyone"]
        self.server.kill9()
        c.shutdown()
        self.server = Server(self.server.data_dir, None, self.SHARDS).start()
        c = check()
        # DELETE drops the ACL: a new mailbox of the same name starts with the default.
        self.ok(c.delete("Crew"))
        self.ok(c.create("Crew"))
        self.assertEqual(acl(c, "Crew"), [("alice", "lrswipkxteacd")])
        c.logout()

    def test_malformed_identifiers_and_rights_are_bad_and_change_nothing(self):
        c = self.server.imap("alice", "alice-pw")
        for identifier, rights in [
            ("bob", "lrZ"),  # a right skua does not know (RFC 4314 §3.1)
            ("bob", "LR"),  # rights are lowercase
            ("bob", "+l9"),
            ("", "lr"),  # empty identifier
            ("-", "lr"),
            ("x" * 300, "lr"),  # over-long
            ("a b", "lr"),  # not a user name
            ("--bob", "lr"),
        ]:
            with self.assertRaises(imaplib.IMAP4.error, msg=(identifier, rights)):
                c.setacl("INBOX", identifier, rights)
        with self.assertRaises(imaplib.IMAP4.error):
            c.deleteacl("INBOX", "")
        # An 8-bit identifier, sent as UTF-8 in a quoted string.
        with self.assertRaisesRegex(imaplib.IMAP4.error, "BAD"):
            c._simple_command("SETACL", "INBOX", '"j\u00fcrgen"'.encode(), "lr")
        self.assertEqual(acl(c, "INBOX"), [("alice", "lrswipkxteacd")])
        typ, data = c.getacl("Nowhere")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[NONEXISTENT]", data[0])
        c.logout()

    def test_an_acl_has_at_most_64_entries(self):
        c = self.server.imap("alice", "alice-pw")
        for i in range(1, 64):
            self.ok(c.setacl("INBOX", f"user{i}", "lr"))
        typ, data = c.setacl("INBOX", "one-more", "lr")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[LIMIT]", data[0])
        self.assertEqual(len(acl(c, "INBOX")), 64)
        # Changing an entry still works at the limit.
        self.ok(c.setacl("INBOX", "user1", "+w"))
        c.logout()


if __name__ == "__main__":
    unittest.main()
