"""TLS on the wire (issue 8): implicit TLS (IMAPS) and STARTTLS against the real binary with
real clients (Python's imaplib over OpenSSL, curl, openssl s_client), trusting the self-signed
certificate skua makes in its data dir on first start.

Bad input: garbage instead of a ClientHello, a stalled handshake, commands pipelined behind
STARTTLS in the same packet (the STARTTLS command-injection class: they must never run), and
STARTTLS twice. A TLS connection is handed over to its user's home shard at login and keeps
working there, in IDLE too.
"""

import imaplib
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import time
import unittest

from harness import HOST, ServerTest, lmtp_deliver, message


class TlsTest(ServerTest):
    # Four users over two shards: some log in on the shard that accepted them, some move.
    USERS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw", "dave": "dave-pw"}

    def certificate(self):
        return os.path.join(self.server.data_dir, "tls", "selfsigned.crt")

    def context(self):
        return ssl.create_default_context(cafile=self.certificate())

    def imaps(self, user=None):
        client = imaplib.IMAP4_SSL(HOST, self.server.imaps_port, ssl_context=self.context(),
                                   timeout=30)
        if user:
            client.login(user, self.USERS[user])
        return client

    def deliver(self, user, subject):
        lmtp = self.server.lmtp()
        try:
            replies = lmtp_deliver(lmtp, "sender@example.org", [f"{user}@localhost"],
                                   message(subject, f"body of {subject}"))
            self.assertEqual(replies[0][0], 250, replies)
        finally:
            lmtp.quit()

    def test_imaps_login_select_fetch_for_every_user(self):
        for user in self.USERS:
            self.deliver(user, f"hello {user}")
        for user in self.USERS:
            client = self.imaps(user)
            try:
                cipher = client.sock.cipher()
                self.assertIn(client.sock.version(), ("TLSv1.3", "TLSv1.2"), cipher)
                self.assertEqual(client.sock.selected_alpn_protocol(), None)
                typ, data = client.select("INBOX")
                self.assertEqual((typ, data), ("OK", [b"1"]))
                typ, data = client.fetch("1", "(BODY[])")
                self.assertEqual(typ, "OK")
                self.assertIn(f"body of hello {user}".encode(), data[0][1])
            finally:
                client.logout()

    def test_imaps_offers_alpn_imap(self):
        context = self.context()
        context.set_alpn_protocols(["imap"])
        with socket.create_connection((HOST, self.server.imaps_port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                self.assertEqual(tls.selected_alpn_protocol(), "imap")
                self.assertTrue(tls.recv(1024).startswith(b"* OK"))

    def test_starttls_upgrades_and_then_allows_login(self):
        client = imaplib.IMAP4(HOST, self.server.imap_port, timeout=30)
        try:
            self.assertIn("STARTTLS", client.capabilities)
            typ, _ = client.starttls(ssl_context=self.context())
            self.assertEqual(typ, "OK")
            self.assertNotIn("STARTTLS", client.capabilities)
            client.login("bob", "bob-pw")
            self.assertEqual(client.select("INBOX")[0], "OK")
            # A second STARTTLS, now over TLS, is a protocol error (sent raw: imaplib itself
            # refuses it in this state).
            client.send(b"t STARTTLS\r\n")
            answer = client.readline()
            self.assertTrue(answer.startswith(b"t BAD"), answer)
            self.assertEqual(client.noop()[0], "OK")
        finally:
            client.shutdown()

    def test_commands_pipelined_behind_starttls_never_run(self):
        raw = socket.create_connection((HOST, self.server.imap_port), timeout=10)
        try:
            self.assertTrue(raw.recv(4096).startswith(b"* OK"))
            # One packet: STARTTLS, then a LOGIN and a CREATE that an attacker slipped in.
            raw.sendall(b"s STARTTLS\r\nx LOGIN alice alice-pw\r\ny CREATE injected\r\n")
            answer = b""
            while not answer.endswith(b"\r\n"):
                answer += raw.recv(1)
            self.assertTrue(answer.startswith(b"s OK"), answer)
            tls = self.context().wrap_socket(raw, server_hostname="localhost")
            tls.sendall(b"n NOOP\r\n")
            reply = b""
            while b"n OK" not in reply:
                chunk = tls.recv(4096)
                self.assertTrue(chunk, f"closed after {reply!r}")
                reply += chunk
            self.assertNotIn(b"x OK", reply)
            self.assertNotIn(b"y ", reply)
            tls.sendall(b"c CAPABILITY\r\n")
            caps = tls.recv(4096)
            self.assertIn(b"AUTH=PLAIN", caps)  # still not logged in
            tls.close()
        finally:
            raw.close()
        # The injected CREATE never ran.
        client = self.imaps("alice")
        try:
            typ, data = client.list('""', "injected")
            self.assertEqual((typ, data), ("OK", [None]))
        finally:
            client.logout()

    def test_garbage_instead_of_a_client_hello_is_refused_and_others_go_on(self):
        with socket.create_connection((HOST, self.server.imaps_port), timeout=10) as raw:
            raw.sendall(b"a LOGIN alice alice-pw\r\n" * 100)
            answer = b""
            while True:
                chunk = raw.recv(4096)
                if not chunk:
                    break
                answer += chunk
            self.assertNotIn(b"* OK", answer)
        client = self.imaps("carol")
        client.logout()

    def test_a_stalled_handshake_does_not_hold_up_others(self):
        stalled = socket.create_connection((HOST, self.server.imaps_port), timeout=10)
        try:
            stalled.sendall(b"\x16\x03")  # half a record header, then nothing
            for user in ("alice", "dave"):
                client = self.imaps(user)
                self.assertEqual(client.noop()[0], "OK")
                client.logout()
        finally:
            stalled.close()

    def test_idle_over_tls_after_the_hand_off_sees_a_delivery(self):
        # Every user: at least one of them lives on the shard that did not accept it.
        for user in self.USERS:
            client = self.imaps(user)
            try:
                client.select("INBOX")
                tag = client._new_tag().decode()
                client.send(f"{tag} IDLE\r\n".encode())
                self.assertTrue(client.readline().startswith(b"+"))
                self.deliver(user, f"while idle {user}")
                line = client.readline()
                self.assertRegex(line, rb"^\* \d+ EXISTS")
                client.send(b"DONE\r\n")
                while not client.readline().startswith(tag.encode()):
                    pass
            finally:
                client.logout()

    def test_lmtp_starttls_delivers_and_drops_pipelined_commands(self):
        lmtp = smtplib.LMTP(HOST, self.server.lmtp_port, timeout=30)
        try:
            lmtp.ehlo_or_helo_if_needed()
            self.assertTrue(lmtp.has_extn("starttls"))
            code, _ = lmtp.starttls(context=self.context())
            self.assertEqual(code, 220)
            lmtp.ehlo_or_helo_if_needed()
            self.assertFalse(lmtp.has_extn("starttls"))
            replies = lmtp_deliver(lmtp, "sender@example.org", ["dave@localhost"],
                                   message("over tls", "body over tls"))
            self.assertEqual(replies[0][0], 250, replies)
        finally:
            lmtp.quit()
        client = self.imaps("dave")
        try:
            self.assertEqual(client.select("INBOX"), ("OK", [b"1"]))
        finally:
            client.logout()
        # STARTTLS with a whole transaction pipelined behind it in plain text: none of it runs.
        raw = socket.create_connection((HOST, self.server.lmtp_port), timeout=10)
        try:
            raw.recv(4096)
            raw.sendall(b"LHLO test\r\n")
            while b"250 " not in raw.recv(4096):
                pass
            raw.sendall(b"STARTTLS\r\nMAIL FROM:<x@example.org>\r\nRCPT TO:<dave@localhost>\r\n"
                        b"DATA\r\nSubject: injected\r\n\r\nx\r\n.\r\n")
            answer = raw.recv(4096)
            self.assertTrue(answer.startswith(b"220 "), answer)
            tls = self.context().wrap_socket(raw, server_hostname="localhost")
            tls.sendall(b"QUIT\r\n")
            self.assertTrue(tls.recv(4096).startswith(b"221"))
            tls.close()
        finally:
            raw.close()
        client = self.imaps("dave")
        try:
            self.assertEqual(client.select("INBOX"), ("OK", [b"1"]), "the injected DATA ran")
        finally:
            client.logout()

    @unittest.skipUnless(shutil.which("curl"), "curl is not installed")
    def test_curl_over_imaps_and_starttls(self):
        self.deliver("alice", "for curl")
        for url, extra in (
            (f"imaps://localhost:{self.server.imaps_port}/INBOX;UID=1", []),
            (f"imap://localhost:{self.server.imap_port}/INBOX;UID=1", ["--ssl-reqd"]),
        ):
            result = subprocess.run(
                ["curl", "-s", "--cacert", self.certificate(), "--user", "alice:alice-pw",
                 "--resolve", f"localhost:{self.server.imaps_port}:{HOST}",
                 "--resolve", f"localhost:{self.server.imap_port}:{HOST}", *extra, url],
                capture_output=True, timeout=60,
            )
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertIn(b"body of for curl", result.stdout)

    @unittest.skipUnless(shutil.which("openssl"), "openssl is not installed")
    def test_openssl_s_client_starttls_imap(self):
        result = subprocess.run(
            ["openssl", "s_client", "-starttls", "imap", "-connect",
             f"{HOST}:{self.server.imap_port}", "-servername", "localhost",
             "-CAfile", self.certificate(), "-verify_return_error", "-quiet"],
            input=b"a CAPABILITY\r\nb LOGOUT\r\n", capture_output=True, timeout=60,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(b"a OK", result.stdout)
        self.assertNotIn(b"STARTTLS", result.stdout.split(b"a OK")[0].split(b"* CAPABILITY")[-1])


if __name__ == "__main__":
    unittest.main()
