//! Hashing new passwords for the passwd-file, at production costs by default.
//!
//! New hashes are written in the forms Dovecot writes (`{SHA512-CRYPT}$6$...`,
//! `{BLF-CRYPT}$2y$...`, `{ARGON2ID}$argon2id$...`, `{SCRAM-SHA-256}4096,salt,...`), so the file stays usable by Dovecot.
//! Salts come from the thread's CSPRNG (`rand::random`, seeded from the OS).

use argon2::password_hash::SaltString;
use argon2::{Algorithm, Argon2, Params, Version};

use super::error::UsersError;
use super::limits::PASSWORD_BYTES_MAX;
use super::scheme::{
    CRYPT_ALPHABET, SHA512_ROUNDS_DEFAULT, SHA512_SALT_CHARS_MAX, Scheme, sha512_digest,
};
use super::scram::{SCRAM_ITERATIONS_DEFAULT, SCRAM_SALT_BYTES, ScramAlgorithm, ScramKeys};

/// The work factors for new hashes. [`HashCost::default`] is what a production server should
/// use; tests use [`HashCost::low`] so they stay fast.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashCost {
    /// SHA512-CRYPT rounds (glibc default and minimum-sensible value: 5000).
    pub sha512_rounds: u32,
    /// bcrypt cost, log2 of the rounds.
    pub bcrypt_cost: u32,
    /// Argon2 memory in KiB.
    pub argon2_memory_kib: u32,
    /// Argon2 passes.
    pub argon2_iterations: u32,
    /// Argon2 lanes.
    pub argon2_lanes: u32,
    /// SCRAM (PBKDF2) iterations.
    pub scram_iterations: u32,
}

impl Default for HashCost {
    /// Production costs: SHA512-CRYPT 5000 rounds (glibc's default), bcrypt cost 10, Argon2
    /// 64 MiB × 3 passes × 1 lane (about 0.2–0.4 s of one core per check: logins are checked
    /// off the reactor, on the shard's blocking pool), SCRAM 4096 iterations (Dovecot's).
    fn default() -> HashCost {
        HashCost {
            sha512_rounds: 5000,
            bcrypt_cost: 10,
            argon2_memory_kib: 64 * 1024,
            argon2_iterations: 3,
            argon2_lanes: 1,
            scram_iterations: SCRAM_ITERATIONS_DEFAULT,
        }
    }
}

impl HashCost {
    /// The lowest costs each algorithm allows: for tests only, never for real passwords.
    #[must_use]
    pub fn low() -> HashCost {
        HashCost {
            sha512_rounds: 1000,
            bcrypt_cost: 4,
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            argon2_lanes: 1,
            scram_iterations: 1,
        }
    }
}
/// Hashes `password` with `scheme` at the default (production) cost and returns the
/// passwd-file form, `{SCHEME}hash`.
///
/// CPU-heavy (up to a few hundred milliseconds): never call it on a shard's reactor thread.
///
/// # Errors
/// [`UsersError::Hash`] when the password is empty or longer than
/// [`PASSWORD_BYTES_MAX`], or, for `PLAIN`, holds bytes
/// the file cannot store (`:`, control characters, non-UTF-8).
pub fn hash_password(scheme: Scheme, password: &[u8]) -> Result<String, UsersError> {
    hash_password_with(scheme, password, &HashCost::default())
}

/// [`hash_password`] with explicit costs.
///
/// # Errors
/// As [`hash_password`], and [`UsersError::Hash`] when a cost is outside what the algorithm
/// accepts.
pub fn hash_password_with(
    scheme: Scheme,
    password: &[u8],
    cost: &HashCost,
) -> Result<String, UsersError> {
    if password.is_empty() {
        return Err(UsersError::Hash("empty password".into()));
    }
    if password.len() > PASSWORD_BYTES_MAX {
        return Err(UsersError::Hash(format!("password longer than {PASSWORD_BYTES_MAX} bytes")));
    }
    let hash = match scheme {
        Scheme::Sha512Crypt => sha512_hash(password, cost.sha512_rounds)?,
        Scheme::BlfCrypt => bcrypt::hash_with_salt(password, cost.bcrypt_cost, rand::random())
            .map_err(|e| UsersError::Hash(e.to_string()))?
            .format_for_version(bcrypt::Version::TwoY),
        Scheme::Argon2id => argon2_hash(Algorithm::Argon2id, password, cost)?,
        Scheme::Argon2i => argon2_hash(Algorithm::Argon2i, password, cost)?,
        Scheme::Plain => plain_storable(password)?,
        Scheme::ScramSha1 => scram_hash(ScramAlgorithm::Sha1, password, cost.scram_iterations)?,
        Scheme::ScramSha256 => scram_hash(ScramAlgorithm::Sha256, password, cost.scram_iterations)?,
    };
    Ok(format!("{{{}}}{hash}", scheme.name()))
}

fn plain_storable(password: &[u8]) -> Result<String, UsersError> {
    let text = std::str::from_utf8(password)
        .map_err(|_| UsersError::Hash("PLAIN password is not UTF-8".into()))?;
    if text.chars().any(|c| c == ':' || c.is_control()) {
        return Err(UsersError::Hash("PLAIN password holds ':' or a control character".into()));
    }
    Ok(text.to_owned())
}
fn scram_hash(
    algorithm: ScramAlgorithm,
    password: &[u8],
    iterations: u32,
) -> Result<String, UsersError> {
    let salt: [u8; SCRAM_SALT_BYTES] = rand::random();
    let keys = ScramKeys::derive(algorithm, password, &salt, iterations)
        .map_err(|e| UsersError::Hash(e.into()))?;
    Ok(keys.passwd_body())
}

fn sha512_hash(password: &[u8], rounds: u32) -> Result<String, UsersError> {
    let salt: String = (0..SHA512_SALT_CHARS_MAX)
        .map(|_| char::from(CRYPT_ALPHABET[usize::from(rand::random::<u8>() & 63)]))
        .collect();
    let digest = sha512_digest(password, &salt, rounds)?;
    if rounds == SHA512_ROUNDS_DEFAULT {
        Ok(format!("$6${salt}${digest}"))
    } else {
        Ok(format!("$6$rounds={rounds}${salt}${digest}"))
    }
}
fn argon2_hash(
    algorithm: Algorithm,
    password: &[u8],
    cost: &HashCost,
) -> Result<String, UsersError> {
    let params =
        Params::new(cost.argon2_memory_kib, cost.argon2_iterations, cost.argon2_lanes, None)
            .map_err(|e| UsersError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| UsersError::Hash(e.to_string()))?;
    let hasher = Argon2::new(algorithm, Version::V0x13, params);
    let hash = argon2::PasswordHasher::hash_password(&hasher, password, &salt)
        .map_err(|e| UsersError::Hash(e.to_string()))?;
    Ok(hash.to_string())
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::scheme::Credential;

    #[test]
    fn every_scheme_hashes_and_verifies() {
        for scheme in [
            Scheme::Sha512Crypt,
            Scheme::BlfCrypt,
            Scheme::Argon2id,
            Scheme::Argon2i,
            Scheme::Plain,
            Scheme::ScramSha1,
            Scheme::ScramSha256,
        ] {
            let stored = hash_password_with(scheme, b"pa55 word", &HashCost::low()).unwrap();
            assert!(stored.starts_with(&format!("{{{}}}", scheme.name())), "{stored}");
            let credential = Credential::parse(&stored);
            assert_eq!(credential.scheme(), Some(scheme), "{stored}");
            assert!(credential.verify(b"pa55 word"), "{stored}");
            assert!(!credential.verify(b"pa55 wore"), "{stored}");
            assert!(!credential.verify(b""), "{stored}");
        }
    }

    #[test]
    fn plain_refuses_unstorable_passwords() {
        for password in [&b"a:b"[..], b"a\nb", b"\xff", b""] {
            assert!(hash_password_with(Scheme::Plain, password, &HashCost::low()).is_err());
        }
        let long = vec![b'a'; PASSWORD_BYTES_MAX + 1];
        assert!(hash_password_with(Scheme::Argon2id, &long, &HashCost::low()).is_err());
    }
}
