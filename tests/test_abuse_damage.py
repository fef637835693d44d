"""Abuse suite, issue 7 defect 9: damage on disk fails only what it damaged.

Before the fix a flipped bit in the format-version field of a spool segment's or a mailbox
index's header read as "a newer format" (the version was checked before the header's CRC):
login gave `NO [UNAVAILABLE]`, LMTP 451 for ever, and `skua reconstruct` refused too. One
damaged spool record made `FETCH 1:* BODY[]` answer `NO [SERVERBUG]` with no data for the
healthy messages. The byte layouts used here are in core/FORMAT.md: every header has
`format_major` (u16 LE) at offset 8; a spool record is a 48-byte header (payload_len, u32 LE, at
offset 8; message_len, u32 LE, at 32), the payload, then zero padding to a multiple of 8.
"""

import glob
import imaplib
import os
import re
import shutil
import struct
import tempfile
import unittest

from harness import (
    check_at_end,
    AbuseServer, OtherUserProbe, lmtp_deliver, message, raw_login, run_cli,
)

USERS = {"alice": "alice-pw", "bob": "bob-pw"}
SEGMENT_HEADER_BYTES = 64
RECORD_HEADER_BYTES = 48
VERSION_OFFSET = 8


def flip_bit(path, offset, mask):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ mask]))


def spool_records(path):
    """[(offset, message_len, payload_len)] of the records in a segment."""
    with open(path, "rb") as f:
        data = f.read()
    records = []
    at = SEGMENT_HEADER_BYTES
    while at + RECORD_HEADER_BYTES <= len(data):
        kind = data[at]
        payload_len = struct.unpack_from("<I", data, at + 8)[0]
        if kind == 0 or payload_len == 0:
            break
        message_len = struct.unpack_from("<I", data, at + 32)[0]
        records.append((at, kind, message_len, payload_len))
        at += RECORD_HEADER_BYTES + payload_len
        at += -at % 8
    return records


class Damage(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="skua-abuse-damage-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        check_at_end(self, os.path.join(self.tmp, "data"))
        self.data = os.path.join(self.tmp, "data")
        self.server = AbuseServer(self.data, USERS).start()
        self.bodies = []
        lmtp = self.server.lmtp()
        for i in range(5):
            raw = message(f"m{i}", f"message {i}\r\n" + f"line {i} of the body\r\n" * 100)
            self.assertEqual(
                lmtp_deliver(lmtp, "s@example.org", ["alice@localhost", "bob@localhost"], raw)[0][0],
                250,
            )
            self.bodies.append(raw)
        lmtp.quit()
        self.assertEqual(self.server.stop(), 0)
        self.alice_dir = self.server.user_dir("alice")

    def tearDown(self):
        self.server.stop_quietly()

    def check_user_works_and_reconstructs(self, what):
        self.server.start()
        with OtherUserProbe(self.server, "bob", "bob-pw") as probe:
            try:
                c = self.server.imap("alice", "alice-pw")
            except imaplib.IMAP4.error as error:
                self.fail(f"{what}: alice cannot log in: {error}")
            typ, data = c.select("INBOX")
            self.assertEqual(typ, "OK", f"{what}: SELECT INBOX: {data}")
            c.logout()
            lmtp = self.server.lmtp()
            replies = lmtp_deliver(
                lmtp, "s@example.org", ["alice@localhost"], message("after damage", "x")
            )
            lmtp.quit()
            self.assertEqual([code for code, _ in replies], [250], f"{what}: LMTP: {replies}")
        probe.check(self, what)
        self.assertEqual(self.server.stop(), 0)
        result = run_cli("reconstruct", "alice", "--data-dir", self.data, check=False)
        self.assertEqual(
            result.returncode, 0, f"{what}: reconstruct exited {result.returncode}: {result.stderr}"
        )

    def test_a_flipped_version_bit_in_a_segment_header_does_not_lock_the_user_out(self):
        segment = sorted(glob.glob(os.path.join(self.alice_dir, "spool", "*.seg")))[0]
        flip_bit(segment, VERSION_OFFSET, 0x02)  # major 1 -> 3: "newer" unless the CRC is checked
        self.check_user_works_and_reconstructs("a segment header with a flipped version bit")

    def test_a_flipped_version_bit_in_an_index_header_does_not_lock_the_user_out(self):
        index = sorted(glob.glob(os.path.join(self.alice_dir, "mbox", "*.idx")))[0]
        flip_bit(index, VERSION_OFFSET, 0x02)
        self.check_user_works_and_reconstructs("an index header with a flipped version bit")

    def test_a_damaged_record_fails_only_its_message(self):
        self.CHECK_AT_END = False  # the damaged record stays damaged: that is the point
        # Move every index's checkpoint past the five messages (it moves once 16 MiB more of
        # spool is durable), so that the next open does not scan (and repair) their records:
        # the damage is then met by the FETCH, as damage at rest would be.
        self.server.start()
        c = self.server.imap("alice", "alice-pw")
        c.create("Filler")
        filler = message("filler", "f" * (4608 * 1024))
        for _ in range(4):
            self.assertEqual(c.append("Filler", None, None, filler)[0], "OK")
        for _ in range(3):  # mutations after the move, which write the headers
            self.assertEqual(c.append("Filler", None, None, message("small", "s"))[0], "OK")
            c.select("Filler")
            c.store("1:*", "+FLAGS", r"(\Seen)")
            c.noop()
        c.logout()
        self.assertEqual(self.server.stop(), 0)
        segment = sorted(glob.glob(os.path.join(self.alice_dir, "spool", "*.seg")))[0]
        messages = [r for r in spool_records(segment) if r[1] == 1][:5]
        self.assertEqual(len(messages), 5, messages)
        offset, _, message_len, _ = messages[1]
        flip_bit(segment, offset + RECORD_HEADER_BYTES + message_len // 2, 0x01)
        self.server.start()
        with OtherUserProbe(self.server, "bob", "bob-pw") as probe:
            c = raw_login(self.server.imap_port, "alice", "alice-pw")
            self.addCleanup(c.close)
            _, tagged = c.command("s", "SELECT INBOX")
            self.assertTrue(tagged.startswith(b"s OK"), tagged)
            lines, tagged = c.command("f", "FETCH 1:* (UID BODY[])", timeout=30)
            _, noop = c.command("n", "NOOP")
        probe.check(self, "a FETCH over a damaged record")
        fetched = {}
        for i, line in enumerate(lines):
            m = re.match(rb"\* (\d+) FETCH .*\{(\d+)\}\r\n$", line)
            if m and i + 1 < len(lines):
                fetched[int(m.group(1))] = lines[i + 1]
        self.assertTrue(tagged, "the connection was dropped instead of a tagged NO")
        self.assertTrue(
            tagged.startswith(b"f NO [CORRUPTION]"),
            f"FETCH 1:* over a damaged record must end in a tagged NO [CORRUPTION] (RFC 5530): "
            f"{tagged!r}",
        )
        self.assertTrue(noop.startswith(b"n OK"), noop)
        self.assertEqual(
            sorted(fetched), [1, 3, 4, 5],
            f"FETCH 1:* BODY[] must return the 4 healthy messages (got {sorted(fetched)}; "
            f"tagged {tagged!r})",
        )
        for msn in (1, 3, 4, 5):
            self.assertTrue(fetched[msn].endswith(self.bodies[msn - 1]), msn)
        # Bob's copies are in bob's own store: all five readable.
        b = raw_login(self.server.imap_port, "bob", "bob-pw")
        self.addCleanup(b.close)
        b.command("s", "SELECT INBOX")
        lines, tagged = b.command("f", "FETCH 1:* (BODY[])", timeout=30)
        self.assertTrue(tagged.startswith(b"f OK"), tagged)


if __name__ == "__main__":
    unittest.main()
