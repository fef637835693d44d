"""COMPRESS=DEFLATE (RFC 4978, issue 9) against the real binary: Python's imaplib with a raw
DEFLATE stream each way (zlib with wbits=-15, as RFC 4978 asks: no zlib header), over plain
TCP and over IMAPS (deflate under TLS). A session logs in, compresses, selects, fetches a large
delivered message and appends another (its bytes read back exactly), and logs out; the
server's bytes on the wire are counted to show they were compressed.

Bad input: COMPRESS before login, with another algorithm, twice, and with a command pipelined
behind it; a decompression bomb (a few hundred KiB that inflate to a 64 MiB line) ends in the
line limit, not in the server's heap; invalid DEFLATE closes the connection.

A Debian client that speaks COMPRESS: offlineimap3 (imaplib2) with `usecompression = yes`
syncs INBOX both ways over a compressed connection, and a second run changes nothing. Its
messages stay under 32 KiB: imaplib2 3.05 inflates at most 32 KiB per wake-up of its reader
and then waits on the socket with the rest in its decompressor (`unconsumed_tail`), so a
larger response that compresses well stalls it until the server sends something else (any
server: the rest is already in the client). (Debian
bookworm's neomutt 20220429 is built without zlib: it has no `imap_deflate` and never sends
COMPRESS; mbsync and curl do not implement it.)
"""

import imaplib
import os
import shutil
import socket
import ssl
import subprocess
import threading
import unittest
import zlib

from harness import HOST, RawImap, ServerTest, lmtp_deliver, message, proc_memory_kib


# imaplib refuses commands it does not know; COMPRESS is valid once authenticated.
imaplib.Commands.setdefault("COMPRESS", ("AUTH", "SELECTED"))


class DeflateMixin:
    """imaplib with COMPRESS=DEFLATE: after the tagged OK, everything sent is compressed and
    sync-flushed, and everything read is inflated."""

    def compress(self):
        typ, data = self._simple_command("COMPRESS", "DEFLATE")
        if typ == "OK":
            self._deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
            self._inflater = zlib.decompressobj(-15)
            self._plain = b""
            self.compressed_in = 0
            self.plaintext_in = 0
        return typ, data

    def _compressing(self):
        return getattr(self, "_deflater", None) is not None

    def send(self, data):
        if self._compressing():
            data = self._deflater.compress(data) + self._deflater.flush(zlib.Z_SYNC_FLUSH)
        super().send(data)

    def _fill(self):
        # The OK was the last uncompressed line: nothing else was buffered behind it.
        raw = self.file.read1(65536)
        if not raw:
            raise imaplib.IMAP4.abort("socket closed")
        self.compressed_in += len(raw)
        plain = self._inflater.decompress(raw)
        self.plaintext_in += len(plain)
        self._plain += plain

    def read(self, size):
        if not self._compressing():
            return super().read(size)
        while len(self._plain) < size:
            self._fill()
        data, self._plain = self._plain[:size], self._plain[size:]
        return data

    def readline(self):
        if not self._compressing():
            return super().readline()
        while b"\n" not in self._plain:
            self._fill()
        end = self._plain.index(b"\n") + 1
        line, self._plain = self._plain[:end], self._plain[end:]
        return line


class DeflateIMAP4(DeflateMixin, imaplib.IMAP4):
    pass


class DeflateIMAP4_SSL(DeflateMixin, imaplib.IMAP4_SSL):
    pass


def big_body(lines):
    return "".join(f"line {i:06d} of a long message, mostly the same words\r\n"
                   for i in range(lines))


class CompressTest(ServerTest):
    # alice's home is shard 0 and user0's shard 1 (placement is stable; two shards).
    USERS = {"alice": "alice-pw", "user0": "pw0"}

    def context(self):
        cert = os.path.join(self.server.data_dir, "tls", "selfsigned.crt")
        return ssl.create_default_context(cafile=cert)

    def session(self, tls):
        if tls == "imaps":
            return DeflateIMAP4_SSL(HOST, self.server.imaps_port, ssl_context=self.context(),
                                    timeout=60)
        client = DeflateIMAP4(HOST, self.server.imap_port, timeout=60)
        if tls == "starttls":
            self.assertEqual(client.starttls(ssl_context=self.context())[0], "OK")
        return client

    def round_trip(self, tls, user):
        body = big_body(40000)  # about 2 MB
        lmtp = self.server.lmtp()
        try:
            replies = lmtp_deliver(lmtp, "sender@example.org", [f"{user}@localhost"],
                                   message("big", body, to=f"{user}@localhost"))
            self.assertEqual(replies[0][0], 250, replies)
        finally:
            lmtp.quit()
        client = self.session(tls)
        try:
            client.login(user, self.USERS[user])
            typ, _ = client._simple_command("CAPABILITY")
            self.assertEqual(typ, "OK")
            self.assertIn(b"COMPRESS=DEFLATE", client.untagged_responses["CAPABILITY"][-1])
            typ, data = client.compress()
            self.assertEqual((typ, data), ("OK", [b"DEFLATE active"]))
            typ, data = client.select("INBOX")
            self.assertEqual((typ, data), ("OK", [b"1"]))
            typ, data = client.fetch("1", "(BODY.PEEK[TEXT])")
            self.assertEqual(typ, "OK")
            self.assertEqual(data[0][1], (body + "\r\n").encode())
            # Upload through the compressed stream, and read it back exactly.
            appended = (f"From: {user}@localhost\r\nSubject: up\r\n\r\n" + big_body(20000))
            typ, data = client.append("INBOX", None, None, appended.encode())
            self.assertEqual(typ, "OK", data)
            typ, data = client.fetch("2", "(BODY.PEEK[])")
            self.assertEqual(typ, "OK")
            self.assertEqual(data[0][1], appended.encode())
            typ, data = client._simple_command("COMPRESS", "DEFLATE")
            self.assertEqual(typ, "NO")
            self.assertIn(b"[COMPRESSIONACTIVE]", data[0])
            typ, _ = client.noop()
            self.assertEqual(typ, "OK")
            # What came over the wire was compressed: far fewer bytes than the plaintext.
            self.assertGreater(client.plaintext_in, 3_000_000)
            self.assertLess(client.compressed_in, client.plaintext_in / 5,
                            (client.compressed_in, client.plaintext_in))
        finally:
            typ, _ = client.logout()
        self.assertEqual(typ, "BYE")

    def test_plain_login_compress_select_fetch_append_logout(self):
        self.round_trip(None, "alice")

    def test_imaps_login_compress_select_fetch_append_logout(self):
        # Users on both shards: a connection accepted on the other shard moves to the user's
        # home at login, before COMPRESS, with its TLS session.
        self.round_trip("imaps", "alice")
        self.round_trip("imaps", "user0")

    def test_starttls_login_compress_select_fetch_append_logout(self):
        self.round_trip("starttls", "alice")

    def test_refusals_before_login_other_algorithms_and_pipelining(self):
        c = RawImap(self.server.imap_port)
        try:
            self.assertTrue(c.greeting().startswith(b"* OK"))
            _, tagged = c.command("a1", "COMPRESS DEFLATE")
            self.assertTrue(tagged.startswith(b"a1 BAD"), tagged)
            c.login("alice", "alice-pw")
            _, tagged = c.command("a2", "COMPRESS LZMA")
            self.assertTrue(tagged.startswith(b"a2 BAD"), tagged)
            # A command pipelined behind COMPRESS: refused, and the NOOP runs uncompressed.
            c.send(b"a3 COMPRESS DEFLATE\r\na4 NOOP\r\n")
            self.assertTrue(c.read_tagged("a3")[1].startswith(b"a3 BAD"))
            self.assertTrue(c.read_tagged("a4")[1].startswith(b"a4 OK"))
            _, tagged = c.command("a5", "LOGOUT")
            self.assertTrue(tagged.startswith(b"a5 OK"), tagged)
        finally:
            c.close()

    def raw_compressed(self):
        """A raw socket, logged in and compressed: (socket, compressor, inflater)."""
        sock = socket.create_connection((HOST, self.server.imap_port), timeout=30)
        sock.recv(4096)
        sock.sendall(b"l LOGIN alice alice-pw\r\n")
        reply = b""
        while b"l OK" not in reply:
            reply += sock.recv(4096)
        sock.sendall(b"c COMPRESS DEFLATE\r\n")
        reply = b""
        while not reply.endswith(b"\r\n"):
            reply += sock.recv(4096)
        self.assertEqual(reply, b"c OK DEFLATE active\r\n")
        return sock, zlib.compressobj(9, zlib.DEFLATED, -15), zlib.decompressobj(-15)

    def read_until_closed(self, sock, inflater):
        plain = b""
        while True:
            try:
                raw = sock.recv(65536)
            except ConnectionResetError:
                break
            if not raw:
                break
            plain += inflater.decompress(raw)
        return plain

    def test_a_decompression_bomb_meets_the_line_limit_not_the_heap(self):
        # 64 MiB of one line, a few hundred KiB compressed, then a NOOP.
        before = proc_memory_kib(self.server.process.pid)
        sock, deflater, inflater = self.raw_compressed()
        try:
            prefix = deflater.compress(b"x NOOP ")
            chunk = b"a" * (1024 * 1024)
            bomb = b"".join(deflater.compress(chunk) for _ in range(64))
            bomb += deflater.compress(b"\r\ny NOOP\r\n") + deflater.flush(zlib.Z_SYNC_FLUSH)
            self.assertLess(len(bomb), 1024 * 1024)

            def send():
                try:
                    sock.sendall(prefix + bomb)
                except OSError:
                    pass  # the server may close before taking it all

            # Read while sending: the answer must not wait behind a full send buffer.
            sender = threading.Thread(target=send)
            sender.start()
            answer = b""
            while b"y OK" not in answer:
                raw = sock.recv(65536)
                self.assertTrue(raw, answer)
                answer += inflater.decompress(raw)
            sender.join()
        finally:
            sock.close()
        # The line limit refused the command (its bytes skipped as they came, a read at a
        # time), and the session went on.
        self.assertTrue(answer.startswith(b"x BAD "), answer)
        self.assertTrue(answer.endswith(b"y OK NOOP completed\r\n"), answer)
        after = proc_memory_kib(self.server.process.pid)
        # 64 MiB inflated would show; the server holds no more than a few MiB extra.
        self.assertLess(after["VmRSS"] - before["VmRSS"], 16 * 1024, (before, after))
        # And it goes on serving.
        client = self.server.imap("alice", "alice-pw")
        self.assertEqual(client.noop()[0], "OK")
        client.logout()

    def test_invalid_deflate_closes_the_connection(self):
        sock, _, inflater = self.raw_compressed()
        try:
            # BTYPE 11 is reserved (RFC 1951 section 3.2.3).
            sock.sendall(b"\xff\xff\xff\xff")
            self.read_until_closed(sock, inflater)
        finally:
            sock.close()
        client = self.server.imap("alice", "alice-pw")
        self.assertEqual(client.noop()[0], "OK")
        client.logout()

    def test_unauthenticate_then_a_login_on_another_shard_keeps_compressing(self):
        # The hand-off carries the DEFLATE layer with the socket (it once dropped it: the
        # client's stream broke on the other shard). Moving back to the first shard checks that
        # its compressor does not take up the stream's old history, which the client's window
        # no longer holds after the other shard wrote.
        sock, deflater, inflater = self.raw_compressed()

        def command(tag, text):
            sock.sendall(deflater.compress(f"{tag} {text}\r\n".encode())
                         + deflater.flush(zlib.Z_SYNC_FLUSH))
            answer = b""
            while f"{tag} ".encode() not in answer:
                raw = sock.recv(65536)
                self.assertTrue(raw, answer)
                answer += inflater.decompress(raw)
            return answer

        try:
            self.assertIn(b"u OK", command("u", "UNAUTHENTICATE"))
            self.assertIn(b"l OK", command("l", "LOGIN user0 pw0"))
            self.assertIn(b"n OK", command("n", "NOOP"))
            listing = command("x", 'LIST "" "*"')
            self.assertIn(b"x OK", listing)
            self.assertIn(b"u2 OK", command("u2", "UNAUTHENTICATE"))
            self.assertIn(b"l2 OK", command("l2", "LOGIN alice alice-pw"))
            self.assertEqual(command("x2", 'LIST "" "*"').count(b"* LIST"), listing.count(b"* LIST"))
        finally:
            sock.close()

    @unittest.skipUnless(shutil.which("offlineimap"), "offlineimap (offlineimap3) not installed")
    def test_offlineimap_syncs_both_ways_over_a_compressed_connection(self):
        client = self.server.imap("alice", "alice-pw")
        client.append("INBOX", None, None, message("from the server", big_body(300)))
        client.logout()
        root = os.path.join(self.tmp, "offlineimap")
        mail = os.path.join(root, "mail")
        os.makedirs(os.path.join(root, "meta"))
        config = os.path.join(root, "config")
        with open(config, "w", encoding="utf-8") as f:
            f.write(f"""[general]
accounts = test
metadata = {root}/meta
[Account test]
localrepository = local
remoterepository = remote
[Repository local]
type = Maildir
localfolders = {mail}
[Repository remote]
type = IMAP
remotehost = {HOST}
remoteport = {self.server.imap_port}
remoteuser = alice
remotepass = alice-pw
ssl = no
starttls = no
usecompression = yes
folderfilter = lambda folder: folder == 'INBOX'
""")

        def sync():
            run = subprocess.run(["offlineimap", "-c", config, "-o", "-u", "basic"],
                                 capture_output=True, text=True, timeout=120, check=False)
            self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
            return run.stdout + run.stderr

        out = sync()
        self.assertIn("remote:INBOX -> local:INBOX", out)
        files = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(mail, "INBOX"))
                 for f in fs]
        self.assertEqual(len(files), 1, out)
        with open(files[0], "rb") as f:
            # Maildir holds LF line ends.
            self.assertTrue(big_body(300).replace("\r\n", "\n").encode() in f.read())
        upload = b"From: me@localhost\r\nSubject: up\r\nMessage-ID: <up@localhost>\r\n\r\n"
        upload += big_body(1000).encode()
        with open(os.path.join(mail, "INBOX", "new", "1800000000.up.localhost:2,"), "wb") as f:
            f.write(upload)
        out = sync()
        self.assertIn("local:INBOX -> remote:INBOX", out)
        out = sync()
        self.assertNotIn("Copy message", out)
        client = self.server.imap("alice", "alice-pw")
        try:
            self.assertEqual(client.select("INBOX"), ("OK", [b"2"]))
            typ, data = client.fetch("2", "(BODY.PEEK[])")
            self.assertEqual(typ, "OK")
            self.assertTrue(data[0][1] == upload, "the uploaded message differs")
        finally:
            client.logout()
        # Every offlineimap connection was compressed (the close line says so).
        closes = [line for line in self.server.log_text().splitlines()
                  if "connection closed" in line and 'user="alice"' in line]
        self.assertGreaterEqual(sum("compress=true" in line for line in closes), 3, closes)


if __name__ == "__main__":
    unittest.main()
