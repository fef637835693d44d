"""SASL in IMAP AUTHENTICATE and LOGIN against the real binary (issue 8, item 4).

Clients: imaplib's `authenticate` for PLAIN, LOGIN and EXTERNAL; the SCRAM-SHA-256 client of
sasl_support.py (written from RFC 5802 / RFC 7677 with hashlib and hmac); OAUTHBEARER with an
Ed25519 token signed in the test (with the `cryptography` package when it is installed, else
skipped); a client certificate from a CA made in the test with the openssl CLI (skipped without
it); a master user logging in as another user. Each failure path once: wrong password, wrong
SCRAM proof, a channel binding from elsewhere, `*` cancel, malformed base64, a mechanism not
offered, a bad token, a master user's wrong password. SCRAM-*-PLUS logins, which need the
client's own `tls-exporter` value (Python's `ssl` has none), are in test_sasl_plus.py; reloading
the master users and JWKS files in test_sasl_reload.py.
"""

import imaplib
import json
import os
import re
import shutil
import ssl
import subprocess
import time
import unittest

from harness import HOST, AbuseServer, RawImap, run_cli
from sasl_support import Provider, SaslServerTest, Scram, oauth_config


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_client_ca(directory):
    """A CA and a client certificate for CN=bob signed by it; None without the openssl CLI."""
    if shutil.which("openssl") is None:
        return None
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=skua test CA", cwd=directory)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "bob.key", "-out", "bob.csr", "-subj", "/CN=bob", cwd=directory)
    with open(os.path.join(directory, "ext.cnf"), "w", encoding="utf-8") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
                "extendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", "bob.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "bob.crt", "-days", "2", "-extfile", "ext.cnf",
            cwd=directory)
    return {name: os.path.join(directory, name) for name in ("ca.crt", "bob.crt", "bob.key")}


class SaslTest(SaslServerTest):
    USERS = {"alice": "alice-pw", "bob": "bob-pw"}

    def setUp(self):
        super().setUp()
        data = self.data
        masters = os.path.join(self.tmp, "masters")
        with open(masters, "w", encoding="utf-8") as f:
            f.write("support:{PLAIN}master-pw\n")
        run_cli("user", "add", "--scheme", "SCRAM-SHA-256", "--data-dir", data, "carol",
                stdin="carol-pw\n")
        self.ca = make_client_ca(self.tmp)
        self.provider = Provider(self.tmp) if Provider is not None else None
        # alice and bob have PLAIN lines, carol SCRAM keys: SCRAM is offered only when told.
        config = f'[auth]\nmaster_passwd_file = "{masters}"\nscram = "always"\n'
        config += oauth_config(self.provider)
        if self.ca is not None:
            config += f'[tls]\nclient_ca = "{self.ca["ca.crt"]}"\n'
        self.server = AbuseServer(data, self.USERS, shards=2, config=config).start()

    def imap(self):
        return imaplib.IMAP4(HOST, self.server.imap_port, timeout=30)

    def tls_context(self, client_certificate=False):
        cafile = os.path.join(self.server.data_dir, "tls", "selfsigned.crt")
        context = ssl.create_default_context(cafile=cafile)
        if client_certificate:
            context.load_cert_chain(self.ca["bob.crt"], self.ca["bob.key"])
        return context

    def imaps(self, client_certificate=False):
        return imaplib.IMAP4_SSL(HOST, self.server.imaps_port, timeout=30,
                                 ssl_context=self.tls_context(client_certificate))

    def assert_user(self, client, user):
        """The session is `user`'s: its INBOX opens and the user's own folder exists there."""
        self.assertEqual(client.select("INBOX")[0], "OK")
        self.assertEqual(client.create(f"made-by-{user}")[0], "OK")
        client.logout()
        check = self.server.imap(user, self.USERS[user]) if user in self.USERS else None
        if check is not None:
            names = b" ".join(check.list()[1])
            self.assertIn(f"made-by-{user}".encode(), names)
            check.logout()

    def test_capabilities_offer_what_the_connection_allows(self):
        client = self.imap()
        caps = client.capabilities
        client.logout()
        # Loopback is allowed plain text: passwords and SCRAM, no -PLUS, no EXTERNAL.
        self.assertIn("AUTH=SCRAM-SHA-256", caps)
        self.assertIn("AUTH=PLAIN", caps)
        self.assertNotIn("AUTH=SCRAM-SHA-256-PLUS", caps)
        self.assertNotIn("AUTH=EXTERNAL", caps)
        client = self.imaps()
        caps = client.capabilities
        client.logout()
        # Python's ssl negotiates TLS 1.3 with skua: a tls-exporter binding exists.
        self.assertIn("AUTH=SCRAM-SHA-256-PLUS", caps)
        if self.provider is not None:
            self.assertIn("AUTH=OAUTHBEARER", caps)

    def test_plain_and_login_with_imaplib(self):
        client = self.imap()
        client.authenticate("PLAIN", lambda _: b"\0alice\0alice-pw")
        self.assert_user(client, "alice")
        client = self.imap()
        answers = iter([b"bob", b"bob-pw"])
        client.authenticate("LOGIN", lambda _: next(answers))
        self.assert_user(client, "bob")
        # A wrong password.
        client = self.imap()
        with self.assertRaisesRegex(imaplib.IMAP4.error, "AUTHENTICATIONFAILED"):
            client.authenticate("PLAIN", lambda _: b"\0alice\0guess")
        client.logout()

    def test_scram_sha256(self):
        client = self.imap()
        client.authenticate("SCRAM-SHA-256", Scram("carol", "carol-pw").authobject())
        self.assertEqual(client.select("INBOX")[0], "OK")
        client.logout()
        # The passwd line holds SCRAM keys; PLAIN still works with the same password.
        client = self.imap()
        client.authenticate("PLAIN", lambda _: b"\0carol\0carol-pw")
        client.logout()
        # A wrong password, and an unknown user: the same NO at the proof. The proof is checked
        # in microseconds, yet each failure is answered after the brake's delay (1 s, doubling
        # per failure of the source): guessing with SCRAM costs what guessing with PLAIN does.
        for failures, (user, password) in enumerate((("carol", "guess"), ("nobody", "pw")), 1):
            client = self.imap()
            started = time.monotonic()
            with self.assertRaisesRegex(imaplib.IMAP4.error, "AUTHENTICATIONFAILED"):
                client.authenticate("SCRAM-SHA-256", Scram(user, password).authobject())
            took = time.monotonic() - started
            client.logout()
            self.assertGreaterEqual(took, 0.9 * 2 ** (failures - 1), (user, took))

    def test_scram_channel_binding_failures_and_the_bye_after_three(self):
        # Another connection's exporter value (what a relaying attacker would have).
        client = self.imaps()
        with self.assertRaisesRegex(imaplib.IMAP4.error, "AUTHENTICATIONFAILED"):
            client.authenticate("SCRAM-SHA-256-PLUS",
                                Scram("carol", "carol-pw", os.urandom(32)).authobject())
        # "y": the client could bind but believes the server cannot, while -PLUS was offered
        # on this connection: someone stripped the list (RFC 5802 section 6).
        with self.assertRaisesRegex(imaplib.IMAP4.error, "AUTHENTICATIONFAILED"):
            client.authenticate("SCRAM-SHA-256",
                                Scram("carol", "carol-pw", gs2="y,,").authobject())
        # The third failure on the connection ends it.
        with self.assertRaises((imaplib.IMAP4.error, imaplib.IMAP4.abort)):
            client.authenticate("SCRAM-SHA-256", Scram("carol", "guess").authobject())
        with self.assertRaises((imaplib.IMAP4.abort, OSError)):
            client.noop()
        client.shutdown()
        # Without TLS no -PLUS is offered, so "y" is honest there.
        client = self.imap()
        client.authenticate("SCRAM-SHA-256", Scram("carol", "carol-pw", gs2="y,,").authobject())
        client.logout()

    def test_external_with_a_client_certificate(self):
        if self.ca is None:
            self.skipTest("no openssl CLI to make a client certificate with")
        client = self.imaps(client_certificate=True)
        self.assertIn("AUTH=EXTERNAL", client.capabilities)
        client.authenticate("EXTERNAL", lambda _: b"")
        self.assert_user(client, "bob")
        # Without a certificate EXTERNAL is not offered, and refused.
        client = self.imaps()
        self.assertNotIn("AUTH=EXTERNAL", client.capabilities)
        with self.assertRaisesRegex(imaplib.IMAP4.error, "CANNOT"):
            client.authenticate("EXTERNAL", lambda _: b"")
        client.logout()

    def test_oauthbearer_with_a_token_signed_in_the_test(self):
        if self.provider is None:
            self.skipTest("the `cryptography` package is missing: no Ed25519 signer")
        token = self.provider.token("alice")
        message = f"n,a=alice,\x01auth=Bearer {token}\x01\x01".encode()
        client = self.imap()  # loopback: tokens allowed like passwords
        client.authenticate("OAUTHBEARER", lambda _: message)
        self.assert_user(client, "alice")
        # A token from another issuer: the JSON error challenge, then NO.
        bad = self.provider.token("alice", issuer="https://evil.example")
        challenges = []

        def answer(challenge):
            # imaplib sends no initial response: the first challenge is the empty one.
            challenges.append(challenge)
            if len(challenges) == 1:
                return f"n,a=alice,\x01auth=Bearer {bad}\x01\x01".encode()
            return b"\x01"

        client = self.imap()
        with self.assertRaisesRegex(imaplib.IMAP4.error, "AUTHENTICATIONFAILED"):
            client.authenticate("OAUTHBEARER", answer)
        client.logout()
        self.assertEqual(len(challenges), 2, challenges)
        self.assertEqual(json.loads(challenges[1])["status"], "invalid_token")
        # A good token for alice asking to be bob: the token proved alice, who may not act
        # as bob (RFC 5530 AUTHORIZATIONFAILED, not AUTHENTICATIONFAILED).
        message = f"n,a=bob,\x01auth=Bearer {token}\x01\x01".encode()
        client = self.imap()
        with self.assertRaisesRegex(imaplib.IMAP4.error, "AUTHORIZATIONFAILED"):
            client.authenticate("OAUTHBEARER", lambda c: b"\x01" if c else message)
        client.logout()

    def test_master_user_logs_in_as_another_and_is_logged(self):
        client = self.imap()
        client.authenticate("PLAIN", lambda _: b"alice\0support\0master-pw")
        self.assert_user(client, "alice")
        raw = RawImap(self.server.imap_port)
        try:
            raw.greeting()
            # `*` is a list wildcard, not an atom character: the name goes quoted.
            reply = raw.command("m1", 'LOGIN "bob*support" master-pw')
            self.assertTrue(reply[-1].startswith(b"m1 OK"), reply)
            reply = raw.command("m2", "LOGOUT")
        finally:
            raw.close()
        client = self.imap()
        with self.assertRaisesRegex(imaplib.IMAP4.error, "AUTHENTICATIONFAILED"):
            client.authenticate("PLAIN", lambda _: b"alice\0support\0guess")
        client.logout()
        log = re.sub(r"\x1b\[[0-9;]*m", "", self.server.log_text())
        self.assertIn('master login', log)
        self.assertIn('user="alice" authenticated_as="support"', log)
        self.assertIn('user="bob" authenticated_as="support"', log)

    def test_cancel_malformed_base64_and_unknown_mechanisms(self):
        client = self.imap()
        with self.assertRaisesRegex(imaplib.IMAP4.error, "cancelled"):
            client.authenticate("PLAIN", lambda _: None)  # imaplib sends `*`
        client.logout()
        raw = RawImap(self.server.imap_port)
        try:
            raw.greeting()
            raw.send(b"b1 AUTHENTICATE PLAIN\r\n")
            self.assertTrue(raw.line().startswith(b"+ "))
            raw.send(b"not base64!\r\n")
            self.assertTrue(raw.line().startswith(b"b1 BAD"))
            reply = raw.command("b2", "AUTHENTICATE GSSAPI")
            self.assertTrue(reply[-1].startswith(b"b2 NO [CANNOT]"), reply)
            reply = raw.command("b3", "AUTHENTICATE SCRAM-SHA-256-PLUS")
            self.assertTrue(reply[-1].startswith(b"b3 NO [CANNOT]"), reply)
        finally:
            raw.close()


if __name__ == "__main__":
    unittest.main()
