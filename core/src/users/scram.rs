//! SCRAM keys (RFC 5802, RFC 7677): the passwd-file form Dovecot writes, the key derivation,
//! and the server's side of the proof check, all on `ring`.
//!
//! A SCRAM user's line stores no password and no password hash, only what the server needs:
//!
//! ```text
//! {SCRAM-SHA-256}iterations,salt_b64,storedkey_b64,serverkey_b64
//! {SCRAM-SHA-1}iterations,salt_b64,storedkey_b64,serverkey_b64
//! ```
//!
//! with standard base64 (with padding) and the RFC's formulas:
//!
//! ```text
//! SaltedPassword = Hi(password, salt, iterations)     (PBKDF2 with HMAC-H)
//! ClientKey      = HMAC(SaltedPassword, "Client Key")
//! StoredKey      = H(ClientKey)
//! ServerKey      = HMAC(SaltedPassword, "Server Key")
//! ```
//!
//! A SCRAM exchange needs only HMACs and one hash ([`ScramKeys::verify_proof`],
//! [`ScramKeys::server_signature`]): cheap enough for a shard's reactor. Checking a *password*
//! against such a line ([`ScramKeys::verify_password`], for PLAIN and LOGIN) runs PBKDF2 with
//! the stored iteration count: CPU-heavy, like every other password check, so off the reactor.
//!
//! Passwords are used as their UTF-8 bytes, without SASLprep (RFC 4013): a non-ASCII password
//! that SASLprep would change does not match a key made by a client that applies it.
//!
//! # No user enumeration
//!
//! A server must answer a SCRAM client-first message for an unknown user with a salt and
//! iteration count that look like a real user's and stay the same on every attempt, or
//! asking twice tells whether the user exists. [`ScramKeys::fake`] derives them from a server
//! secret ([`load_or_create_server_secret`](super::load_or_create_server_secret)) and the name
//! with HMAC, with the iteration count most real users have
//! ([`UserDb::scram_iterations_common`](super::UserDb::scram_iterations_common)); its keys are
//! random, so no proof ever matches them.

use std::fmt;
use std::num::NonZeroU32;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::{digest, hmac, pbkdf2};

use super::limits::{PASSWORD_BYTES_MAX, SCRAM_ITERATIONS_MAX, SCRAM_SALT_BYTES_MAX};
use super::scheme::equal_fixed_time;
use super::secret::Secret;

/// The iteration count new SCRAM keys get, and the one unknown users pretend to have:
/// Dovecot's default, the RFC 7677 minimum recommendation.
pub const SCRAM_ITERATIONS_DEFAULT: u32 = 4096;

/// Salt length of new SCRAM keys and of fakes.
pub const SCRAM_SALT_BYTES: usize = 16;

/// The hash a SCRAM mechanism is built on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScramAlgorithm {
    /// SCRAM-SHA-1 (RFC 5802). SHA-1 only as HMAC and key hash, as the RFC requires.
    Sha1,
    /// SCRAM-SHA-256 (RFC 7677).
    Sha256,
}

impl ScramAlgorithm {
    /// The SASL mechanism name without `-PLUS`, also the passwd-file scheme name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ScramAlgorithm::Sha1 => "SCRAM-SHA-1",
            ScramAlgorithm::Sha256 => "SCRAM-SHA-256",
        }
    }

    /// Length in bytes of the hash output (and of every key).
    #[must_use]
    pub fn output_bytes(self) -> usize {
        match self {
            ScramAlgorithm::Sha1 => 20,
            ScramAlgorithm::Sha256 => 32,
        }
    }

    fn hmac_algorithm(self) -> hmac::Algorithm {
        match self {
            ScramAlgorithm::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            ScramAlgorithm::Sha256 => hmac::HMAC_SHA256,
        }
    }

    fn pbkdf2_algorithm(self) -> pbkdf2::Algorithm {
        match self {
            ScramAlgorithm::Sha1 => pbkdf2::PBKDF2_HMAC_SHA1,
            ScramAlgorithm::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
        }
    }

    fn digest_algorithm(self) -> &'static digest::Algorithm {
        match self {
            ScramAlgorithm::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            ScramAlgorithm::Sha256 => &digest::SHA256,
        }
    }

    /// `HMAC(key, data)` with this algorithm's hash.
    #[must_use]
    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        let key = hmac::Key::new(self.hmac_algorithm(), key);
        hmac::sign(&key, data).as_ref().to_vec()
    }

    /// `H(data)`.
    #[must_use]
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest_algorithm(), data).as_ref().to_vec()
    }

    /// `Hi(password, salt, iterations)`: PBKDF2 with this algorithm's HMAC, one block.
    /// CPU-heavy in proportion to `iterations`.
    #[must_use]
    pub fn salted_password(
        self,
        password: &[u8],
        salt: &[u8],
        iterations: NonZeroU32,
    ) -> Secret<Vec<u8>> {
        let mut out = vec![0u8; self.output_bytes()];
        pbkdf2::derive(self.pbkdf2_algorithm(), iterations, salt, password, &mut out);
        Secret::new(out)
    }
}

/// What the server stores for one SCRAM user: salt, iteration count, StoredKey and ServerKey.
/// The keys are secrets (they allow offline guessing, and ServerKey lets one impersonate the
/// server to the user), so `Debug` redacts them and they are wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramKeys {
    algorithm: ScramAlgorithm,
    iterations: NonZeroU32,
    salt: Vec<u8>,
    stored_key: Secret<Vec<u8>>,
    server_key: Secret<Vec<u8>>,
}

impl fmt::Debug for ScramKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramKeys")
            .field("algorithm", &self.algorithm)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramKeys {
    /// Derives the keys for `password` (CPU-heavy: PBKDF2 with `iterations`).
    ///
    /// # Errors
    /// The reason, when `iterations` is 0 or above [`SCRAM_ITERATIONS_MAX`], the salt is empty
    /// or longer than [`SCRAM_SALT_BYTES_MAX`], or the password longer than
    /// [`PASSWORD_BYTES_MAX`].
    pub fn derive(
        algorithm: ScramAlgorithm,
        password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Result<ScramKeys, &'static str> {
        if password.len() > PASSWORD_BYTES_MAX {
            return Err("password too long");
        }
        let iterations = check_iterations(iterations)?;
        check_salt(salt)?;
        let salted = algorithm.salted_password(password, salt, iterations);
        let client_key = Secret::new(algorithm.hmac(salted.expose(), b"Client Key"));
        Ok(ScramKeys {
            algorithm,
            iterations,
            salt: salt.to_vec(),
            stored_key: Secret::new(algorithm.hash(client_key.expose())),
            server_key: Secret::new(algorithm.hmac(salted.expose(), b"Server Key")),
        })
    }

    /// Keys for a user who does not exist (or cannot use SCRAM): salt derived from `secret`
    /// and `name` (the same on every attempt), `iterations` (what real users have: the host
    /// passes its users' common count, [`SCRAM_ITERATIONS_DEFAULT`] unless it knows better),
    /// and random keys no proof can match. Cheap (two HMACs), so an unknown user's exchange
    /// costs what a known one's does.
    #[must_use]
    pub fn fake(
        algorithm: ScramAlgorithm,
        secret: &[u8],
        name: &str,
        iterations: NonZeroU32,
    ) -> ScramKeys {
        let mut input = b"skua scram fake salt\0".to_vec();
        input.extend_from_slice(algorithm.name().as_bytes());
        input.push(0);
        input.extend_from_slice(name.to_ascii_lowercase().as_bytes());
        let mut salt = ScramAlgorithm::Sha256.hmac(secret, &input);
        salt.truncate(SCRAM_SALT_BYTES);
        let random_key =
            || Secret::new((0..algorithm.output_bytes()).map(|_| rand::random::<u8>()).collect());
        ScramKeys {
            algorithm,
            iterations,
            salt,
            stored_key: random_key(),
            server_key: random_key(),
        }
    }

    /// Parses the part after `{SCRAM-SHA-…}`: `iterations,salt,storedkey,serverkey`.
    ///
    /// # Errors
    /// The reason the field is not usable.
    pub fn parse(algorithm: ScramAlgorithm, field: &str) -> Result<ScramKeys, String> {
        let name = algorithm.name();
        let mut parts = field.split(',');
        let (Some(iterations), Some(salt), Some(stored), Some(server), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("{name}: not iterations,salt,storedkey,serverkey"));
        };
        let iterations: u32 =
            iterations.parse().map_err(|_| format!("{name}: bad iteration count"))?;
        let iterations = check_iterations(iterations).map_err(|e| format!("{name}: {e}"))?;
        let decode = |what: &str, text: &str| {
            STANDARD.decode(text).map_err(|_| format!("{name}: {what} is not base64"))
        };
        let salt = decode("salt", salt)?;
        check_salt(&salt).map_err(|e| format!("{name}: {e}"))?;
        let stored_key = Secret::new(decode("StoredKey", stored)?);
        let server_key = Secret::new(decode("ServerKey", server)?);
        let length = algorithm.output_bytes();
        if stored_key.expose().len() != length || server_key.expose().len() != length {
            return Err(format!("{name}: keys are not {length} bytes"));
        }
        Ok(ScramKeys { algorithm, iterations, salt, stored_key, server_key })
    }

    /// The passwd-file form, with its `{SCHEME}` prefix.
    #[must_use]
    pub fn to_passwd_field(&self) -> String {
        format!("{{{}}}{}", self.algorithm.name(), self.passwd_body())
    }

    /// The passwd-file form without the `{SCHEME}` prefix.
    pub(super) fn passwd_body(&self) -> String {
        format!(
            "{},{},{},{}",
            self.iterations,
            STANDARD.encode(&self.salt),
            STANDARD.encode(self.stored_key.expose()),
            STANDARD.encode(self.server_key.expose()),
        )
    }

    /// The hash these keys are for.
    #[must_use]
    pub fn algorithm(&self) -> ScramAlgorithm {
        self.algorithm
    }

    /// The iteration count sent to the client (`i=`).
    #[must_use]
    pub fn iterations(&self) -> NonZeroU32 {
        self.iterations
    }

    /// The salt sent to the client (`s=`, base64 there).
    #[must_use]
    pub fn salt(&self) -> &[u8] {
        &self.salt
    }

    /// True when `proof` (the client's `p=`, decoded) proves knowledge of ClientKey for
    /// `auth_message`: `H(ClientProof XOR HMAC(StoredKey, AuthMessage)) == StoredKey`,
    /// compared in fixed time.
    #[must_use]
    pub fn verify_proof(&self, auth_message: &[u8], proof: &[u8]) -> bool {
        let signature = self.algorithm.hmac(self.stored_key.expose(), auth_message);
        if proof.len() != signature.len() {
            return false;
        }
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
        let client_key = Secret::new(client_key);
        let computed = self.algorithm.hash(client_key.expose());
        equal_fixed_time(&computed, self.stored_key.expose())
    }

    /// `ServerSignature = HMAC(ServerKey, AuthMessage)`, sent as `v=` in the server's final
    /// message so the client knows the server holds its keys.
    #[must_use]
    pub fn server_signature(&self, auth_message: &[u8]) -> Vec<u8> {
        self.algorithm.hmac(self.server_key.expose(), auth_message)
    }

    /// True when `password` derives these keys (for PLAIN and LOGIN against a SCRAM line).
    /// CPU-heavy: PBKDF2 with the stored iteration count. Both keys are compared, in fixed
    /// time.
    #[must_use]
    pub fn verify_password(&self, password: &[u8]) -> bool {
        if password.len() > PASSWORD_BYTES_MAX {
            return false;
        }
        let salted = self.algorithm.salted_password(password, &self.salt, self.iterations);
        let client_key = Secret::new(self.algorithm.hmac(salted.expose(), b"Client Key"));
        let stored_key = self.algorithm.hash(client_key.expose());
        let server_key = Secret::new(self.algorithm.hmac(salted.expose(), b"Server Key"));
        let stored_equal = equal_fixed_time(&stored_key, self.stored_key.expose());
        let server_equal = equal_fixed_time(server_key.expose(), self.server_key.expose());
        stored_equal & server_equal
    }
}

fn check_iterations(iterations: u32) -> Result<NonZeroU32, &'static str> {
    if iterations > SCRAM_ITERATIONS_MAX {
        return Err("iteration count above the limit");
    }
    NonZeroU32::new(iterations).ok_or("iteration count is zero")
}

fn check_salt(salt: &[u8]) -> Result<(), &'static str> {
    if salt.is_empty() {
        return Err("empty salt");
    }
    if salt.len() > SCRAM_SALT_BYTES_MAX {
        return Err("salt too long");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5802 §5: user "user", password "pencil", salt `QSXCR+Q6sek8bf92`, 4096 iterations.
    /// The RFC does not print the keys; they follow from its proof and signature, which
    /// `protocols/tests/sasl_scram.rs` checks end to end. Here: the stored form round-trips
    /// and the keys verify the password.
    #[test]
    fn derive_parse_verify_round_trip() {
        let salt = STANDARD.decode("QSXCR+Q6sek8bf92").unwrap();
        for algorithm in [ScramAlgorithm::Sha1, ScramAlgorithm::Sha256] {
            let keys = ScramKeys::derive(algorithm, b"pencil", &salt, 4096).unwrap();
            let field = keys.to_passwd_field();
            let prefix = format!("{{{}}}", algorithm.name());
            let parsed = ScramKeys::parse(algorithm, field.strip_prefix(&prefix).unwrap()).unwrap();
            assert_eq!(parsed, keys);
            assert!(parsed.verify_password(b"pencil"));
            assert!(!parsed.verify_password(b"pencim"));
            assert!(!parsed.verify_password(b""));
        }
    }

    #[test]
    fn malformed_fields_are_refused() {
        let good = ScramKeys::derive(ScramAlgorithm::Sha256, b"pw", b"salt", 4096).unwrap();
        let field = good.to_passwd_field();
        let body = field.strip_prefix("{SCRAM-SHA-256}").unwrap();
        assert!(ScramKeys::parse(ScramAlgorithm::Sha256, body).is_ok());
        // SHA-256 keys are 32 bytes, SHA-1 keys 20: the wrong algorithm does not parse.
        assert!(ScramKeys::parse(ScramAlgorithm::Sha1, body).is_err());
        for bad in [
            "",
            "4096",
            "4096,c2FsdA==,AAAA",
            "0,c2FsdA==,AAAA,AAAA",
            "x,c2FsdA==,AAAA,AAAA",
            "4096,,AAAA,AAAA",
            "4096,!!,AAAA,AAAA",
            "99999999999,c2FsdA==,AAAA,AAAA",
        ] {
            assert!(ScramKeys::parse(ScramAlgorithm::Sha256, bad).is_err(), "{bad:?}");
        }
        let extra = format!("{body},AAAA");
        assert!(ScramKeys::parse(ScramAlgorithm::Sha256, &extra).is_err());
    }

    const DEFAULT: NonZeroU32 = NonZeroU32::new(SCRAM_ITERATIONS_DEFAULT).unwrap();

    #[test]
    fn fakes_are_stable_per_name_and_match_no_proof() {
        let a = ScramKeys::fake(ScramAlgorithm::Sha256, b"server secret", "Nobody", DEFAULT);
        let b = ScramKeys::fake(ScramAlgorithm::Sha256, b"server secret", "nobody", DEFAULT);
        let c = ScramKeys::fake(ScramAlgorithm::Sha256, b"server secret", "someone", DEFAULT);
        let d = ScramKeys::fake(ScramAlgorithm::Sha256, b"other secret", "nobody", DEFAULT);
        assert_eq!(a.salt(), b.salt());
        assert_ne!(a.salt(), c.salt());
        assert_ne!(a.salt(), d.salt());
        assert_eq!(a.salt().len(), SCRAM_SALT_BYTES);
        assert_eq!(a.iterations().get(), SCRAM_ITERATIONS_DEFAULT);
        assert!(!a.verify_password(b""));
        assert!(!a.verify_proof(b"message", &[0; 32]));
    }

    #[test]
    fn debug_redacts_keys() {
        let keys = ScramKeys::derive(ScramAlgorithm::Sha1, b"pw", b"salt", 1).unwrap();
        let shown = format!("{keys:?}");
        assert!(shown.contains("Sha1") && !shown.contains("stored"), "{shown}");
    }
}
