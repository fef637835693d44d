//! Bearer tokens for OAUTHBEARER and XOAUTH2: JSON Web Tokens (RFC 7519) signed by an
//! identity provider, checked against the provider's keys from a JWKS file (RFC 7517).
//!
//! A token is accepted when all of these hold, checked in this order (cheap and
//! signature-independent checks first would let an attacker probe claims without a key, so the
//! signature comes before any claim):
//!
//! 1. it is at most [`TOKEN_BYTES_MAX`] bytes and has the compact form `header.payload.sig`;
//! 2. the header's `alg` is `RS256`, `ES256` or `EdDSA` (never `none`, never HMAC: a public
//!    key must not double as a shared secret), it has no `crit` extension, and a key of the
//!    JWKS matches that algorithm (and the header's `kid`, when it has one);
//! 3. the signature verifies with one such key (`ring`);
//! 4. `iss` equals the policy's issuer and `aud` (a string or an array) holds its audience;
//! 5. `exp` is present and `now < exp + skew`, and `now + skew >= nbf` when `nbf` is present
//!    (skew bounded by [`TOKEN_SKEW_SECONDS_MAX`]);
//! 6. the user claim (default `sub`, often `email`) is a non-empty string: the user name.
//!
//! The host passes `now` (Unix seconds): nothing here reads a clock. Keys are loaded once;
//! reloading means making a new [`TokenVerifier`] (the server does when the file changes).
//! Verification is a signature check (RSA 2048 is ~50 µs): fine on a shard's reactor, though
//! the host may move it off.

use std::io::Read;
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, UnparsedPublicKey};
use serde_json::{Map, Value};

use super::limits::{JWKS_FILE_BYTES_MAX, JWKS_KEYS_MAX, TOKEN_BYTES_MAX, TOKEN_SKEW_SECONDS_MAX};

/// How tokens are checked; the config fills it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenPolicy {
    /// The JWKS file holding the provider's public keys.
    pub jwks_path: PathBuf,
    /// The `iss` every token must carry.
    pub issuer: String,
    /// The `aud` every token must name (this server's client id at the provider).
    pub audience: String,
    /// The claim holding the user name: `sub` by default, commonly `email`.
    pub user_claim: String,
    /// Clock skew allowed on `exp` and `nbf`, in seconds (at most
    /// [`TOKEN_SKEW_SECONDS_MAX`]).
    pub skew_seconds: u64,
}

impl TokenPolicy {
    /// A policy with the default user claim (`sub`) and 60 seconds of skew.
    #[must_use]
    pub fn new(jwks_path: PathBuf, issuer: String, audience: String) -> TokenPolicy {
        TokenPolicy { jwks_path, issuer, audience, user_claim: "sub".to_owned(), skew_seconds: 60 }
    }
}

/// Why a JWKS file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Larger than [`JWKS_FILE_BYTES_MAX`].
    #[error("{0}: JWKS file larger than {JWKS_FILE_BYTES_MAX} bytes")]
    TooLarge(PathBuf),
    /// Not a JSON object with a `keys` array.
    #[error("JWKS: {0}")]
    Malformed(String),
    /// No key skua can verify with (RSA, EC P-256, Ed25519).
    #[error("JWKS: no usable signing key")]
    NoUsableKey,
}

/// Why a token was refused (for logs; never holds the token).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    /// Longer than [`TOKEN_BYTES_MAX`].
    #[error("token too large")]
    Oversize,
    /// Not `header.payload.signature` of base64url JSON.
    #[error("malformed token")]
    Malformed,
    /// `alg` is not RS256, ES256 or EdDSA, or the header has `crit`.
    #[error("unsupported token algorithm")]
    UnsupportedAlgorithm,
    /// No JWKS key for the header's `alg` and `kid`.
    #[error("no key for the token")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad token signature")]
    BadSignature,
    /// `iss` is not the configured issuer.
    #[error("wrong token issuer")]
    WrongIssuer,
    /// `aud` does not name the configured audience.
    #[error("wrong token audience")]
    WrongAudience,
    /// `exp` missing or passed.
    #[error("token expired")]
    Expired,
    /// `nbf` not reached.
    #[error("token not yet valid")]
    NotYetValid,
    /// The user claim is missing, not a string, or empty.
    #[error("token has no user claim")]
    NoUser,
}

/// The signature algorithms accepted, each tied to one key type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Algorithm {
    Rs256,
    Es256,
    EdDsa,
}

impl Algorithm {
    fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "RS256" => Some(Algorithm::Rs256),
            "ES256" => Some(Algorithm::Es256),
            "EdDSA" => Some(Algorithm::EdDsa),
            _ => None,
        }
    }
}

/// One public key from the JWKS.
#[derive(Clone, Debug)]
struct Key {
    kid: Option<String>,
    algorithm: Algorithm,
    /// RSA: modulus and exponent. EC: the uncompressed point `04 || x || y`. Ed25519: `x`.
    material: Material,
}

#[derive(Clone, Debug)]
enum Material {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Point(Vec<u8>),
}

impl Key {
    fn verify(&self, message: &[u8], signature_bytes: &[u8]) -> bool {
        match (&self.material, self.algorithm) {
            (Material::Rsa { n, e }, Algorithm::Rs256) => {
                signature::RsaPublicKeyComponents { n, e }
                    .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, signature_bytes)
                    .is_ok()
            }
            (Material::Point(point), Algorithm::Es256) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature_bytes)
                    .is_ok()
            }
            (Material::Point(point), Algorithm::EdDsa) => {
                UnparsedPublicKey::new(&signature::ED25519, point)
                    .verify(message, signature_bytes)
                    .is_ok()
            }
            _ => false,
        }
    }
}

/// Checks tokens against a policy and the keys of its JWKS file. Immutable, `Send + Sync`.
#[derive(Debug)]
pub struct TokenVerifier {
    policy: TokenPolicy,
    keys: Vec<Key>,
}

impl TokenVerifier {
    /// Reads the policy's JWKS file.
    ///
    /// # Errors
    /// The file cannot be read, is too large, is not a JWKS, or holds no usable key. Keys
    /// skua cannot use (other types or curves, `"use": "enc"`) are skipped with a warning.
    pub fn load(policy: TokenPolicy) -> Result<TokenVerifier, JwksError> {
        let path = policy.jwks_path.clone();
        let io = |source| JwksError::Io { path: path.clone(), source };
        let file = std::fs::File::open(&path).map_err(io)?;
        let mut contents = Vec::new();
        file.take(JWKS_FILE_BYTES_MAX + 1).read_to_end(&mut contents).map_err(io)?;
        if contents.len() as u64 > JWKS_FILE_BYTES_MAX {
            return Err(JwksError::TooLarge(path));
        }
        TokenVerifier::from_jwks(policy, &contents)
    }

    /// As [`TokenVerifier::load`], with the JWKS given as bytes (the policy's path unread).
    ///
    /// # Errors
    /// As [`TokenVerifier::load`].
    pub fn from_jwks(policy: TokenPolicy, jwks: &[u8]) -> Result<TokenVerifier, JwksError> {
        let document: Value =
            serde_json::from_slice(jwks).map_err(|e| JwksError::Malformed(e.to_string()))?;
        let Some(Value::Array(entries)) = document.get("keys") else {
            return Err(JwksError::Malformed("no \"keys\" array".into()));
        };
        let mut keys = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            match parse_key(entry) {
                Ok(key) if keys.len() < JWKS_KEYS_MAX => keys.push(key),
                Ok(_) => {
                    tracing::warn!(
                        index,
                        max = JWKS_KEYS_MAX,
                        "JWKS: key beyond the limit skipped"
                    );
                }
                Err(reason) => tracing::warn!(index, reason, "JWKS: key skipped"),
            }
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey);
        }
        Ok(TokenVerifier { policy, keys })
    }

    /// The policy tokens are checked against.
    #[must_use]
    pub fn policy(&self) -> &TokenPolicy {
        &self.policy
    }

    /// How many keys of the JWKS file tokens can be signed with (at least one).
    #[must_use]
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Checks `token` at `now_unix_seconds` (see the module docs for the order of checks) and
    /// returns the user claim.
    ///
    /// # Errors
    /// The first check that fails.
    pub fn verify(&self, token: &str, now_unix_seconds: u64) -> Result<String, TokenRejection> {
        if token.len() > TOKEN_BYTES_MAX {
            return Err(TokenRejection::Oversize);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature_text), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenRejection::Malformed);
        };
        let header_json = decode_object(header)?;
        if header_json.contains_key("crit") {
            return Err(TokenRejection::UnsupportedAlgorithm);
        }
        let algorithm = header_json
            .get("alg")
            .and_then(Value::as_str)
            .and_then(Algorithm::from_name)
            .ok_or(TokenRejection::UnsupportedAlgorithm)?;
        let kid = header_json.get("kid").and_then(Value::as_str);
        let signature_bytes =
            URL_SAFE_NO_PAD.decode(signature_text).map_err(|_| TokenRejection::Malformed)?;
        let message = &token.as_bytes()[..header.len() + 1 + payload.len()];
        let mut candidates = self
            .keys
            .iter()
            .filter(|key| key.algorithm == algorithm)
            .filter(|key| kid.is_none() || key.kid.as_deref() == kid)
            .peekable();
        if candidates.peek().is_none() {
            return Err(TokenRejection::UnknownKey);
        }
        if !candidates.any(|key| key.verify(message, &signature_bytes)) {
            return Err(TokenRejection::BadSignature);
        }
        let claims = decode_object(payload)?;
        self.check_claims(&claims, now_unix_seconds)
    }

    fn check_claims(
        &self,
        claims: &Map<String, Value>,
        now: u64,
    ) -> Result<String, TokenRejection> {
        if claims.get("iss").and_then(Value::as_str) != Some(self.policy.issuer.as_str()) {
            return Err(TokenRejection::WrongIssuer);
        }
        let audience = self.policy.audience.as_str();
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => aud == audience,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        };
        if !audience_ok {
            return Err(TokenRejection::WrongAudience);
        }
        let skew = self.policy.skew_seconds.min(TOKEN_SKEW_SECONDS_MAX);
        let expiry = claims.get("exp").and_then(numeric_date).ok_or(TokenRejection::Expired)?;
        if now >= expiry.saturating_add(skew) {
            return Err(TokenRejection::Expired);
        }
        if let Some(not_before) = claims.get("nbf") {
            let not_before = numeric_date(not_before).ok_or(TokenRejection::Malformed)?;
            if now.saturating_add(skew) < not_before {
                return Err(TokenRejection::NotYetValid);
            }
        }
        match claims.get(&self.policy.user_claim).and_then(Value::as_str) {
            Some(user) if !user.is_empty() => Ok(user.to_owned()),
            _ => Err(TokenRejection::NoUser),
        }
    }
}

/// A NumericDate (RFC 7519 §2): seconds since the epoch, maybe fractional; negatives are 0.
fn numeric_date(value: &Value) -> Option<u64> {
    if let Some(seconds) = value.as_u64() {
        return Some(seconds);
    }
    let seconds = value.as_f64()?;
    if !seconds.is_finite() {
        return None;
    }
    // Truncation towards zero is what the comparison needs; the cast saturates.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some(seconds.max(0.0) as u64)
}

fn decode_object(part: &str) -> Result<Map<String, Value>, TokenRejection> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| TokenRejection::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(TokenRejection::Malformed),
    }
}

/// One JWK (RFC 7517 §4, RFC 7518 §6, RFC 8037): the fields skua needs, checked.
fn parse_key(entry: &Value) -> Result<Key, &'static str> {
    let field = |name: &str| entry.get(name).and_then(Value::as_str);
    let bytes = |name: &str| -> Result<Vec<u8>, &'static str> {
        let text = field(name).ok_or("a key parameter is missing")?;
        URL_SAFE_NO_PAD.decode(text).map_err(|_| "a key parameter is not base64url")
    };
    if field("use").is_some_and(|u| u != "sig") {
        return Err("not a signing key");
    }
    let (algorithm, material) = match (field("kty"), field("crv")) {
        (Some("RSA"), _) => {
            let n = strip_leading_zeros(bytes("n")?);
            let e = strip_leading_zeros(bytes("e")?);
            if n.len() < 256 || n.len() > 1024 {
                return Err("RSA modulus not 2048 to 8192 bits");
            }
            (Algorithm::Rs256, Material::Rsa { n, e })
        }
        (Some("EC"), Some("P-256")) => {
            let (x, y) = (bytes("x")?, bytes("y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err("P-256 coordinates are not 32 bytes");
            }
            let mut point = vec![4u8];
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            (Algorithm::Es256, Material::Point(point))
        }
        (Some("OKP"), Some("Ed25519")) => {
            let x = bytes("x")?;
            if x.len() != 32 {
                return Err("Ed25519 key is not 32 bytes");
            }
            (Algorithm::EdDsa, Material::Point(x))
        }
        _ => return Err("key type or curve not supported (RSA, EC P-256, OKP Ed25519)"),
    };
    if let Some(alg) = field("alg")
        && Algorithm::from_name(alg) != Some(algorithm)
    {
        return Err("the key's alg does not match its type");
    }
    Ok(Key { kid: field("kid").map(str::to_owned), algorithm, material })
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    bytes.drain(..zeros);
    bytes
}
