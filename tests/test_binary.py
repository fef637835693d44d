"""FETCH BINARY (RFC 3516) and PREVIEW (RFC 8970) through Python's imaplib against the real
server: a base64 attachment fetched with BINARY[2] is the original bytes (NUL included, so
it comes as a literal8), BINARY.SIZE[2] is its length, a large attachment arrives whole
over many slices, and PREVIEW is the decoded first text part."""

import base64
import os
import re
import unittest

from harness import ServerTest, lmtp_deliver


def with_attachment(data, text="Hello from the first part.", subject="attached"):
    """A multipart message: a quoted-printable text part, then `data` as base64."""
    encoded = base64.encodebytes(data).replace(b"\n", b"\r\n")
    head = (
        "From: Sender <sender@example.org>\r\n"
        "To: alice@localhost\r\n"
        f"Subject: {subject}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=sep\r\n"
        "\r\n"
        "--sep\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        f"{text}\r\n"
        "--sep\r\n"
        "Content-Type: application/octet-stream\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "Content-Disposition: attachment; filename=data.bin\r\n"
        "\r\n"
    ).encode()
    return head + encoded + b"--sep--\r\n"


def literal_of(data, label):
    """The bytes of the literal whose response prefix contains `label`."""
    for item in data:
        if isinstance(item, tuple) and label in item[0]:
            return item[0], item[1]
    raise AssertionError(f"no {label!r} in {data!r}")


class Binary(ServerTest):
    def deliver(self, raw):
        lmtp = self.server.lmtp()
        replies = lmtp_deliver(lmtp, "sender@example.org", ["alice@localhost"], raw)
        lmtp.quit()
        self.assertEqual(replies[0][0], 250, replies)

    def test_capabilities_name_binary_and_preview(self):
        c = self.server.imap("alice", "alice-pw")
        typ, data = c.capability()
        self.assertEqual(typ, "OK", data)
        names = data[0].split()
        self.assertIn(b"BINARY", names)
        self.assertIn(b"PREVIEW", names)
        c.logout()

    def test_binary_part_is_the_original_bytes(self):
        small = bytes(range(256)) * 3 + b"\0tail"
        large = os.urandom(3 * 1024 * 1024 + 5)
        self.deliver(with_attachment(small, subject="small"))
        self.deliver(with_attachment(large, subject="large"))
        c = self.server.imap("alice", "alice-pw")
        c.select("INBOX")
        for number, original in (("1", small), ("2", large)):
            typ, data = c.fetch(number, "(BINARY.SIZE[2])")
            self.assertEqual(typ, "OK", data)
            size = int(re.search(rb"BINARY\.SIZE\[2\] (\d+)", data[0]).group(1))
            self.assertEqual(size, len(original))
            typ, data = c.fetch(number, "(BINARY.PEEK[2])")
            self.assertEqual(typ, "OK", data)
            prefix, body = literal_of(data, b"BINARY[2]")
            # NUL in the decoded bytes: a literal8 (RFC 3516).
            self.assertIn(b"BINARY[2] ~{", prefix)
            self.assertEqual(len(body), len(original))
            self.assertTrue(body == original, f"message {number}: decoded bytes differ")
            typ, data = c.fetch(number, "(BINARY.PEEK[2]<1000.77>)")
            self.assertEqual(literal_of(data, b"BINARY[2]")[1], original[1000:1077])
        # PEEK left the messages unseen; BINARY[2] sets \Seen like BODY[] does.
        typ, data = c.fetch("1", "(FLAGS)")
        self.assertNotIn(rb"\Seen", data[0])
        typ, data = c.fetch("1", "(BINARY[2])")
        self.assertEqual(typ, "OK", data)
        typ, data = c.fetch("1", "(FLAGS)")
        self.assertIn(rb"\Seen", data[0])
        # The text part decodes from quoted-printable.
        typ, data = c.fetch("1", "(BINARY.PEEK[1])")
        self.assertEqual(literal_of(data, b"BINARY[1]")[1], b"Hello from the first part.")
        # BODY[] of the same message never carries NUL in its {n} literal.
        typ, data = c.fetch("1", "(BODY.PEEK[2])")
        self.assertNotIn(b"\0", literal_of(data, b"BODY[2]")[1])
        c.logout()

    def test_preview_is_the_first_text_part(self):
        text = "Gr=C3=BC=C3=9Fe aus K=C3=B6ln,=\r\n   bis morgen!"
        self.deliver(with_attachment(b"\x89PNG", text=text))
        c = self.server.imap("alice", "alice-pw")
        c.select("INBOX")
        for item in ("(PREVIEW)", "(PREVIEW (LAZY))"):
            typ, data = c.fetch("1", item)
            self.assertEqual(typ, "OK", data)
            prefix, preview = literal_of(data, b"PREVIEW")
            self.assertEqual(preview.decode("utf-8"), "Grüße aus Köln, bis morgen!")
        c.logout()


if __name__ == "__main__":
    unittest.main()
