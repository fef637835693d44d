"""What the tests/test_sasl*.py files share: SASL clients written from the RFCs, and a test
case owning a temporary directory and the server started in it.

- `Scram`: SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802 section 3, RFC 7677) with hashlib and hmac,
  with the `tls-exporter` channel binding of the -PLUS variants (RFC 9266) when given one.
- `Provider`: an identity provider with an Ed25519 key and a JWKS file, signing bearer tokens
  for OAUTHBEARER (needs the `cryptography` package; `Provider` is None without it). Its key can
  be rotated: the JWKS file is then replaced by one holding only the new key.
  `oauth_config` is the `[auth.oauth]` section that trusts it.
- `SaslServerTest`: `self.tmp`, `self.data` (a data dir in it) and `self.server` (made by the
  test), stopped with exit code 0 expected and removed after each test, and a bounded wait
  for a line in the server's log.
"""

import base64
import hashlib
import hmac
import json
import os
import shutil
import tempfile
import time
import unittest

try:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
except ImportError:  # pragma: no cover - depends on the machine
    Ed25519PrivateKey = None

ISSUER = "https://id.example.org"
AUDIENCE = "skua-test"


def b64(data):
    return base64.b64encode(data).decode()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Scram:
    """A SCRAM client (RFC 5802 section 3). `binding`: the tls-exporter bytes for -PLUS, or
    None; `gs2`: a GS2 header to send instead of the one that goes with `binding`; `digest`:
    "sha256" (SCRAM-SHA-256) or "sha1" (SCRAM-SHA-1)."""

    def __init__(self, user, password, binding=None, gs2=None, digest="sha256"):
        self.user = user
        self.password = password
        self.binding = binding
        self.digest = digest
        self.nonce = b64(os.urandom(18))
        self.gs2 = gs2 or ("p=tls-exporter,," if binding is not None else "n,,")
        self.first_bare = f"n={user},r={self.nonce}"
        self.server_signature = None

    def hmac(self, key, message):
        return hmac.new(key, message, self.digest).digest()

    def first(self):
        return (self.gs2 + self.first_bare).encode()

    def final(self, server_first):
        attributes = dict(item.split("=", 1) for item in server_first.decode().split(","))
        nonce, salt, iterations = attributes["r"], attributes["s"], int(attributes["i"])
        assert nonce.startswith(self.nonce), "the server nonce extends the client's"
        salted = hashlib.pbkdf2_hmac(self.digest, self.password.encode(),
                                     base64.b64decode(salt), iterations)
        client_key = self.hmac(salted, b"Client Key")
        stored_key = hashlib.new(self.digest, client_key).digest()
        channel = self.gs2.encode() + (self.binding or b"")
        without_proof = f"c={b64(channel)},r={nonce}"
        auth_message = f"{self.first_bare},{server_first.decode()},{without_proof}".encode()
        signature = self.hmac(stored_key, auth_message)
        proof = bytes(k ^ s for k, s in zip(client_key, signature))
        self.server_signature = self.hmac(self.hmac(salted, b"Server Key"), auth_message)
        return f"{without_proof},p={b64(proof)}".encode()

    def authobject(self):
        """An imaplib authobject: client-first, client-final, then an empty answer to v=."""
        steps = iter([lambda _: self.first(), self.final, self.check_server_final])
        return lambda challenge: next(steps)(challenge)

    def check_server_final(self, server_final):
        assert server_final == b"v=" + b64(self.server_signature).encode(), server_final
        return b""


class Provider:
    """An identity provider with an Ed25519 key whose public half is in `self.jwks`."""

    def __init__(self, directory):
        self.jwks = os.path.join(directory, "provider.jwks")
        self.rotate()

    def rotate(self):
        """A new key; the JWKS file, replaced in one rename, holds only the new one."""
        self.key = Ed25519PrivateKey.generate()
        raw = self.key.public_key().public_bytes(serialization.Encoding.Raw,
                                                 serialization.PublicFormat.Raw)
        replace_file(self.jwks, json.dumps(
            {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}]}))

    def token(self, user, issuer=ISSUER):
        header = b64url(json.dumps({"alg": "EdDSA"}).encode())
        claims = {"iss": issuer, "aud": AUDIENCE, "sub": user, "exp": int(time.time()) + 600}
        signed = f"{header}.{b64url(json.dumps(claims).encode())}"
        return f"{signed}.{b64url(self.key.sign(signed.encode()))}"


if Ed25519PrivateKey is None:  # pragma: no cover - depends on the machine
    Provider = None  # noqa: F811 - no signer without `cryptography`


def oauth_config(provider):
    """The `[auth.oauth]` section trusting `provider`'s keys; empty without a provider."""
    if provider is None:
        return ""
    return (f'[auth.oauth]\njwks_file = "{provider.jwks}"\n'
            f'issuer = "{ISSUER}"\naudience = "{AUDIENCE}"\n')


class SaslServerTest(unittest.TestCase):
    """A test with a temporary directory and the server it starts there (`self.server`)."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="skua-sasl-")
        self.data = os.path.join(self.tmp, "data")
        os.makedirs(self.data)
        self.server = None

    def wait_for_log(self, text, count=1, timeout_s=10):
        """Waits until `text` is in the server's log `count` times (lines reach the file from
        a writer thread of the server: a line may follow what it tells of by a moment)."""
        deadline = time.monotonic() + timeout_s
        while self.server.log_text().count(text) < count:
            self.assertLess(time.monotonic(), deadline,
                            f"no {count}x {text!r}:\n{self.server.log_text()[-3000:]}")
            time.sleep(0.02)

    def tearDown(self):
        try:
            if self.server is not None and self.server.process is not None:
                self.assertEqual(self.server.stop(), 0, self.server.log_text()[-3000:])
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


def replace_file(path, text):
    """Writes `text` to a file beside `path` and renames it over `path`, as tools replace
    configuration files (a reader never sees a half-written file)."""
    temporary = f"{path}.new"
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(text)
    os.rename(temporary, path)
