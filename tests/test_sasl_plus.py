"""SCRAM-SHA-256-PLUS and SCRAM-SHA-1-PLUS end to end, against a TLS stack other than skua's.

The -PLUS mechanisms bind a SCRAM exchange to its TLS connection (RFC 5802 section 6): the
client sends the GS2 header `p=tls-exporter,,` and puts, in `c=`, that header followed by the
connection's RFC 9266 channel binding, 32 bytes exported with the label
"EXPORTER-Channel-Binding" and no context. Python's `ssl` module cannot export keying material,
so the client here runs on pyOpenSSL: OpenSSL computes the value on its side and rustls on the
server's, independently, and the login succeeds only when both agree.

Covered, over IMAPS and over STARTTLS on the plain listener: a -PLUS login with TLS 1.3 for
each algorithm the server offers (both, for these users), what TLS 1.2 gets, a channel binding
with one byte changed (refused, and the connection stays usable), and `y,,` (a client that could
bind but believes the server cannot, while -PLUS is offered: the downgrade RFC 5802 refuses).
LMTP offers no AUTH at all (RFC 2033: its clients are trusted MTAs), before or after STARTTLS.

Needs pyOpenSSL (Debian's python3-openssl, or `pip install pyopenssl`; .ci/run installs it);
skipped without it.
"""

import base64
import os
import smtplib
import socket
import ssl
import struct
import unittest

from harness import HOST, AbuseServer, run_cli
from sasl_support import SaslServerTest, Scram, b64

try:
    from OpenSSL import SSL
except ImportError:  # pragma: no cover - depends on the machine
    SSL = None

# Every socket operation of the client gives up after this long (kernel timeouts, which
# OpenSSL's blocking calls honour), so a server that never answers fails the test.
IO_TIMEOUT_S = 30
EXPORTER_LABEL = b"EXPORTER-Channel-Binding"
# skua's TLS layer gives SASL a channel binding on TLS 1.3 only (shard/src/conn_tls.rs,
# `TlsLayer::channel_binding`), though every TLS 1.2 session it accepts has the extended master
# secret (required since RFC 9266 allows tls-exporter there only with it). Should TLS 1.2 bind
# too, flip this: the TLS 1.2 test then runs the whole -PLUS check list there as well.
PLUS_ON_TLS12 = False

# (mechanism, user, password, hashlib name): one user per SCRAM algorithm.
SHA256 = ("SCRAM-SHA-256", "carol", "carol-pw", "sha256")
SHA1 = ("SCRAM-SHA-1", "dave", "dave-pw", "sha1")


class TlsImap:
    """An IMAP client on pyOpenSSL: commands out, lines in until the tagged reply.

    `starttls`: connect to the plain listener and upgrade with STARTTLS, else to the IMAPS
    one. `version`: the only TLS version offered. `source`: the local loopback address, so
    that failures from different tests do not share the failed-login brake's delay."""

    def __init__(self, server, starttls, version, source=HOST):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        timeout = struct.pack("ll", IO_TIMEOUT_S, 0)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeout)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeout)
        self.sock.bind((source, 0))
        self.sock.connect((HOST, server.imap_port if starttls else server.imaps_port))
        self.tls = None
        self.buffer = b""
        self.tags = (f"t{n}" for n in range(1, 1000))
        if starttls:
            self.expect_ok(self.line(), b"* OK")
            self.expect_ok(self.command("STARTTLS")[-1])
            self.assertion(self.buffer == b"", "nothing after the STARTTLS reply")
        context = SSL.Context(SSL.TLS_METHOD)
        context.set_min_proto_version(version)
        context.set_max_proto_version(version)
        context.load_verify_locations(os.path.join(server.data_dir, "tls", "selfsigned.crt"))
        context.set_verify(SSL.VERIFY_PEER, lambda _conn, _cert, _errno, _depth, ok: bool(ok))
        context.set_alpn_protos([b"imap"])
        self.tls = SSL.Connection(context, self.sock)
        self.tls.set_tlsext_host_name(b"localhost")
        self.tls.set_connect_state()
        self.tls.do_handshake()
        if not starttls:
            self.expect_ok(self.line(), b"* OK")

    @staticmethod
    def assertion(condition, message):
        if not condition:
            raise AssertionError(message)

    def expect_ok(self, line, prefix=None):
        self.assertion(line.startswith(prefix or line.split(b" ", 1)[0] + b" OK"), line)

    def version(self):
        return self.tls.get_protocol_version_name()

    def exporter(self):
        """This connection's tls-exporter channel binding, as OpenSSL computes it."""
        return self.tls.export_keying_material(EXPORTER_LABEL, 32)

    def send(self, data):
        if self.tls is None:
            self.sock.sendall(data)
        else:
            self.tls.sendall(data)

    def line(self):
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536) if self.tls is None else self.tls.recv(65536)
            self.assertion(chunk, f"connection closed (have {self.buffer!r})")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def command(self, text):
        """Sends `TAG text`; every line of the reply, the tagged one last."""
        tag = next(self.tags).encode()
        self.send(tag + b" " + text.encode() + b"\r\n")
        lines = [self.line()]
        while not lines[-1].startswith(tag + b" "):
            lines.append(self.line())
        return lines

    def capabilities(self):
        lines = self.command("CAPABILITY")
        self.expect_ok(lines[-1])
        untagged = [line for line in lines if line.startswith(b"* CAPABILITY ")]
        return set(untagged[0].decode().split()[2:])

    def authenticate(self, mechanism, scram):
        """AUTHENTICATE `mechanism` with `scram` answering the challenges; the tagged reply.
        A challenge the client does not expect (the exchange should have ended) fails."""
        tag = next(self.tags).encode()
        self.send(tag + b" AUTHENTICATE " + mechanism.encode() + b"\r\n")
        steps = iter([lambda _: scram.first(), scram.final, scram.check_server_final])
        while True:
            line = self.line()
            if line.startswith(tag + b" "):
                return line
            self.assertion(line.startswith(b"+"), line)
            challenge = base64.b64decode(line[2:])
            step = next(steps, None)
            self.assertion(step is not None, f"an unexpected challenge {challenge!r}")
            self.send(b64(step(challenge)).encode() + b"\r\n")

    def close(self):
        try:
            self.command("LOGOUT")
        except (AssertionError, OSError, SSL.Error):
            pass
        self.sock.close()


def flipped(binding):
    """`binding` with its first byte changed."""
    return bytes([binding[0] ^ 0x01]) + binding[1:]


@unittest.skipIf(SSL is None, "no pyOpenSSL (Debian's python3-openssl, or pip's pyopenssl)")
class ScramPlus(SaslServerTest):
    def setUp(self):
        super().setUp()
        for mechanism, user, password, _ in (SHA256, SHA1):
            run_cli("user", "add", "--scheme", mechanism, "--data-dir", self.data, user,
                    stdin=password + "\n")
        # carol has SHA-256 keys only and dave SHA-1 keys only: `auto` would offer neither.
        config = '[auth]\nscram = "always"\n'
        self.server = AbuseServer(self.data, shards=2, config=config).start()
        self.sources = (f"127.0.0.{n}" for n in range(2, 250))

    def connect(self, starttls, version=None):
        """A client from a loopback address of its own; TLS 1.3 unless told."""
        version = SSL.TLS1_3_VERSION if version is None else version
        client = TlsImap(self.server, starttls, version, source=next(self.sources))
        self.addCleanup(client.close)
        return client

    def assert_plus_login(self, client, algorithm):
        mechanism, user, password, digest = algorithm
        reply = client.authenticate(mechanism + "-PLUS",
                                    Scram(user, password, client.exporter(), digest=digest))
        self.assertIn(b" OK", reply)
        # The session is the user's.
        self.assertIn(b" OK", client.command("SELECT INBOX")[-1])

    def assert_refused(self, reply):
        self.assertIn(b" NO [AUTHENTICATIONFAILED]", reply)

    def test_plus_logins_over_imaps_and_starttls_with_tls13(self):
        for starttls in (False, True):
            for algorithm in (SHA256, SHA1):
                with self.subTest(starttls=starttls, mechanism=algorithm[0]):
                    client = self.connect(starttls)
                    self.assertEqual(client.version(), "TLSv1.3")
                    capabilities = client.capabilities()
                    self.assertIn(f"AUTH={algorithm[0]}-PLUS", capabilities)
                    self.assertIn(f"AUTH={algorithm[0]}", capabilities)
                    self.assert_plus_login(client, algorithm)
        for mechanism in ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS"):
            self.wait_for_log(f'mechanism="{mechanism}" user=', 2)

    def test_a_changed_channel_binding_is_refused_and_the_connection_stays_usable(self):
        for starttls in (False, True):
            with self.subTest(starttls=starttls):
                client = self.connect(starttls)
                mechanism, user, password, digest = SHA256
                scram = Scram(user, password, flipped(client.exporter()), digest=digest)
                self.assert_refused(client.authenticate(mechanism + "-PLUS", scram))
                self.assertIn(b" OK", client.command("NOOP")[-1])
                self.assert_plus_login(client, SHA256)
        self.wait_for_log("c= does not match this connection", 2)

    def test_a_client_only_flag_is_refused_where_plus_is_offered(self):
        for starttls, algorithm in ((False, SHA256), (True, SHA1)):
            with self.subTest(starttls=starttls, mechanism=algorithm[0]):
                client = self.connect(starttls)
                mechanism, user, password, digest = algorithm
                self.assertIn(f"AUTH={mechanism}-PLUS", client.capabilities())
                scram = Scram(user, password, gs2="y,,", digest=digest)
                self.assert_refused(client.authenticate(mechanism, scram))
                self.assertIn(b" OK", client.command("NOOP")[-1])
                # The same login without the false claim goes through.
                reply = client.authenticate(mechanism, Scram(user, password, digest=digest))
                self.assertIn(b" OK", reply)

    def test_tls12(self):
        for starttls in (False, True):
            with self.subTest(starttls=starttls):
                client = self.connect(starttls, SSL.TLS1_2_VERSION)
                self.assertEqual(client.version(), "TLSv1.2")
                capabilities = client.capabilities()
                offered = "AUTH=SCRAM-SHA-256-PLUS" in capabilities
                self.assertEqual(offered, PLUS_ON_TLS12, capabilities)
                self.assertEqual("AUTH=SCRAM-SHA-1-PLUS" in capabilities, PLUS_ON_TLS12)
                if PLUS_ON_TLS12:
                    self.assert_plus_login(client, SHA256)
                    continue
                # Not offered: refused as a mechanism the connection does not offer, and a
                # client saying it could bind (`y`) tells the truth about this server.
                mechanism, user, password, digest = SHA256
                reply = client.authenticate(mechanism + "-PLUS",
                                            Scram(user, password, client.exporter()))
                self.assertIn(b" NO [CANNOT]", reply)
                reply = client.authenticate(mechanism, Scram(user, password, gs2="y,,"))
                self.assertIn(b" OK", reply)

    def test_lmtp_offers_no_auth(self):
        lmtp = smtplib.LMTP(HOST, self.server.lmtp_port, timeout=IO_TIMEOUT_S)
        try:
            lmtp.ehlo_or_helo_if_needed()
            self.assertFalse(lmtp.has_extn("auth"), lmtp.esmtp_features)
            cafile = os.path.join(self.server.data_dir, "tls", "selfsigned.crt")
            lmtp.starttls(context=ssl.create_default_context(cafile=cafile))
            lmtp.ehlo()
            self.assertFalse(lmtp.has_extn("auth"), lmtp.esmtp_features)
            code, _ = lmtp.docmd("AUTH", "PLAIN " + b64(b"\0carol\0carol-pw"))
            self.assertEqual(code, 500)  # an unknown command
        finally:
            lmtp.quit()


if __name__ == "__main__":
    unittest.main()
