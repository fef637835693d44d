"""SASL clients written for the tests from the RFCs, shared by the tests/test_sasl*.py files.

- `Scram`: SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802 section 3, RFC 7677) with hashlib and hmac,
  with the `tls-exporter` channel binding of the -PLUS variants (RFC 9266) when given one.
- `Provider`: an identity provider with an Ed25519 key and a JWKS file, signing bearer tokens
  for OAUTHBEARER (needs the `cryptography` package; `Provider` is None without it). Its key can
  be rotated: the JWKS file is then replaced by one holding only the new key.
"""

import base64
import hashlib
import hmac
import json
import os
import time

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


def replace_file(path, text):
    """Writes `text` to a file beside `path` and renames it over `path`, as tools replace
    configuration files (a reader never sees a half-written file)."""
    temporary = f"{path}.new"
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(text)
    os.rename(temporary, path)
