"""METADATA and METADATA-SERVER (RFC 5464) and LIST-METADATA (RFC 9590) against the real
server through Python's imaplib: server and mailbox entries set, read back, removed; entries
following RENAME; all of them read back after a clean restart and after a SIGKILL right after
the OK (a SETMETADATA is acknowledged only once durable)."""

import imaplib
import unittest

from harness import Server, ServerTest


def metadata(c, mailbox, *entries, options=None):
    """GETMETADATA: {entry: value or None} of the one METADATA response."""
    args = ([options] if options else []) + [mailbox, "(" + " ".join(entries) + ")"]
    try:
        typ, data = c.xatom("GETMETADATA", *args)
    except imaplib.IMAP4.error as error:
        return "BAD", str(error)
    if typ != "OK":
        return typ, data
    typ, lines = c.response("METADATA")
    found = {}
    for line in lines:
        if line is None:
            continue
        found.update(parse_entries(line))
    return "OK", found


def parse_entries(line):
    """`mailbox (entry value ...)` with quoted values or NIL (what these tests set)."""
    body = line[line.index(b"(") + 1 : line.rindex(b")")]
    out, rest = {}, body.strip()
    while rest:
        name, _, rest = rest.partition(b" ")
        if rest.startswith(b"NIL"):
            out[name.decode()] = None
            rest = rest[3:].lstrip()
            continue
        assert rest.startswith(b'"'), rest
        end = rest.index(b'"', 1)
        out[name.decode()] = rest[1:end].decode()
        rest = rest[end + 1 :].lstrip()
    return out


class Metadata(ServerTest):
    def setmetadata(self, c, mailbox, pairs):
        typ, data = c.xatom("SETMETADATA", mailbox, "(" + pairs + ")")
        self.assertEqual(typ, "OK", data)

    def test_entries_survive_restarts_and_a_kill(self):
        c = self.server.imap("alice", "alice-pw")
        typ, data = c.capability()
        for cap in (b"METADATA", b"METADATA-SERVER", b"LIST-METADATA"):
            self.assertIn(cap, data[0].split())
        self.assertEqual(c.create("Projects")[0], "OK")
        self.setmetadata(c, '""', '/shared/comment "the server" /private/vendor/x/theme "dark"')
        self.setmetadata(c, "Projects", '/shared/comment "all projects"')
        self.setmetadata(c, "INBOX", '/private/comment "mine" /shared/comment "ours"')
        self.setmetadata(c, "INBOX", "/shared/comment NIL")
        self.assertEqual(c.rename("Projects", "Work")[0], "OK")
        self.assertEqual(
            metadata(c, "Work", "/shared/comment"), ("OK", {"/shared/comment": "all projects"})
        )
        # LIST-METADATA: a METADATA response per listed mailbox.
        typ, data = c._simple_command(
            "LIST", '""', '"*"', "RETURN", "(METADATA (/shared/comment /private/comment))"
        )
        self.assertEqual(typ, "OK", data)
        typ, lines = c.response("METADATA")
        listed = {bytes(l.split(b" ", 1)[0]): parse_entries(l) for l in lines if l}
        self.assertEqual(listed[b"Work"], {"/shared/comment": "all projects", "/private/comment": None})
        self.assertEqual(listed[b"INBOX"], {"/shared/comment": None, "/private/comment": "mine"})
        c.logout()

        want = {
            '""': {"/shared/comment": "the server", "/private/vendor/x/theme": "dark"},
            "Work": {"/shared/comment": "all projects"},
            "INBOX": {"/private/comment": "mine", "/shared/comment": None},
        }

        def check():
            c = self.server.imap("alice", "alice-pw")
            for mailbox, entries in want.items():
                typ, got = metadata(c, mailbox, *entries)
                self.assertEqual((typ, got), ("OK", entries), mailbox)
            return c

        self.assertEqual(self.server.stop(), 0)
        self.server.start()
        c = check()
        # Acknowledged means durable: SIGKILL right after the OK loses nothing.
        self.setmetadata(c, "Work", '/private/comment "after the restart"')
        want["Work"]["/private/comment"] = "after the restart"
        self.server.kill9()
        c.shutdown()
        # A new process on the same data directory, as after a crash (new ports: the old
        # ones may linger).
        self.server = Server(self.server.data_dir, None, self.SHARDS).start()
        c = check()
        # DEPTH infinity over the server entries shows every one of them.
        typ, got = metadata(c, '""', "/private", options="(DEPTH infinity)")
        self.assertEqual(typ, "BAD", "/private alone is not an entry name")
        typ, got = metadata(c, '""', "/private/vendor", options="(DEPTH infinity)")
        self.assertEqual(got, {"/private/vendor/x/theme": "dark"})
        c.logout()


if __name__ == "__main__":
    unittest.main()
