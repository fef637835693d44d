//! Password schemes: parsing a stored `{SCHEME}hash` and verifying a candidate against it
//! (new hashes are made in `hash.rs`).
//!
//! The stored forms are the ones Dovecot writes, so a Dovecot passwd-file works unchanged:
//!
//! | scheme | stored form | verified by |
//! | --- | --- | --- |
//! | `SHA512-CRYPT` | `$6$[rounds=N$]salt$hash` | `sha-crypt` (bytes password, our parse) |
//! | `BLF-CRYPT` | `$2y$NN$salt+hash` (also `$2a$`, `$2b$`, `$2x$`) | `bcrypt` |
//! | `ARGON2ID`, `ARGON2I` | PHC string `$argon2id$v=19$m=..,t=..,p=..$salt$hash` | `argon2` |
//! | `PLAIN` (alias `CLEAR`) | the password itself | fixed-time comparison |
//! | `SCRAM-SHA-1`, `SCRAM-SHA-256` | `iterations,salt,storedkey,serverkey` (base64) | PBKDF2, keys compared in fixed time ([`scram`](super::scram)) |
//! | `CRYPT` or no `{SCHEME}` | any of the crypt forms above, told apart by their prefix | |
//!
//! A stored hash is parsed once, when the file is loaded, so a malformed or unknown one is
//! reported then (and the user simply cannot log in) rather than at every login. Stored costs
//! are bounded (see [`limits`](super::limits)) so a hostile or mistaken line cannot make a
//! single login take minutes of CPU or gigabytes of memory.
use std::fmt;
use std::str::FromStr;

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::{Argon2, Params};

use super::error::UsersError;
use super::limits::{
    ARGON2_MEMORY_KIB_MAX, BCRYPT_COST_MAX, PASSWORD_BYTES_MAX, SHA512_CRYPT_ROUNDS_MAX,
};
use super::scram::{ScramAlgorithm, ScramKeys};

/// A password scheme skua can verify and produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `SHA512-CRYPT`: glibc's `$6$` crypt.
    Sha512Crypt,
    /// `BLF-CRYPT`: bcrypt, `$2y$`.
    BlfCrypt,
    /// `ARGON2ID`: Argon2id in a PHC string.
    Argon2id,
    /// `ARGON2I`: Argon2i in a PHC string.
    Argon2i,
    /// `PLAIN` (or `CLEAR`): the password stored as is. For tests and migrations only.
    Plain,
    /// `SCRAM-SHA-1`: SCRAM keys (RFC 5802), usable by SCRAM-SHA-1(-PLUS) and by PLAIN/LOGIN.
    ScramSha1,
    /// `SCRAM-SHA-256`: SCRAM keys (RFC 7677), usable by SCRAM-SHA-256(-PLUS) and by
    /// PLAIN/LOGIN.
    ScramSha256,
}

impl Scheme {
    /// The name written between braces in the passwd-file.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Sha512Crypt => "SHA512-CRYPT",
            Scheme::BlfCrypt => "BLF-CRYPT",
            Scheme::Argon2id => "ARGON2ID",
            Scheme::Argon2i => "ARGON2I",
            Scheme::Plain => "PLAIN",
            Scheme::ScramSha1 => "SCRAM-SHA-1",
            Scheme::ScramSha256 => "SCRAM-SHA-256",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scheme {
    type Err = UsersError;

    /// Parses a scheme name, ASCII case-insensitively; `CLEAR` is `PLAIN`.
    fn from_str(name: &str) -> Result<Scheme, UsersError> {
        let scheme = match name.to_ascii_uppercase().as_str() {
            "SHA512-CRYPT" => Scheme::Sha512Crypt,
            "BLF-CRYPT" => Scheme::BlfCrypt,
            "ARGON2ID" => Scheme::Argon2id,
            "ARGON2I" => Scheme::Argon2i,
            "PLAIN" | "CLEAR" => Scheme::Plain,
            "SCRAM-SHA-1" => Scheme::ScramSha1,
            "SCRAM-SHA-256" => Scheme::ScramSha256,
            _ => return Err(UsersError::InvalidHash("unknown password scheme")),
        };
        Ok(scheme)
    }
}
/// The alphabet of crypt(3) salts and digests.
pub(super) const CRYPT_ALPHABET: &[u8; 64] =
    b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// glibc's default rounds: when a hash has this many, `rounds=` is left out.
pub(super) const SHA512_ROUNDS_DEFAULT: u32 = 5000;
/// glibc clamps smaller round counts up to this.
pub(super) const SHA512_ROUNDS_MIN: u32 = 1000;
/// glibc uses at most 16 salt characters.
pub(super) const SHA512_SALT_CHARS_MAX: usize = 16;
/// The crypt-base64 digest of SHA512-CRYPT for `password`, `salt` and `rounds`.
pub(super) fn sha512_digest(
    password: &[u8],
    salt: &str,
    rounds: u32,
) -> Result<String, UsersError> {
    let rounds = usize::try_from(rounds).map_err(|_| UsersError::Hash("rounds".into()))?;
    let params =
        sha_crypt::Sha512Params::new(rounds).map_err(|e| UsersError::Hash(format!("{e:?}")))?;
    sha_crypt::sha512_crypt_b64(password, salt.as_bytes(), &params)
        .map_err(|e| UsersError::Hash(format!("{e:?}")))
}
/// A stored credential, parsed and checked once at load.
#[derive(Clone)]
pub(crate) enum Credential {
    /// `$6$`: rounds (already clamped as glibc does), salt (at most 16 chars), digest.
    Sha512Crypt { rounds: u32, salt: String, digest: String },
    /// A whole `$2?$` string.
    BlfCrypt(String),
    /// A whole PHC string, whose algorithm matches the scheme.
    Argon2 { scheme: Scheme, phc: String },
    /// The password itself.
    Plain(Vec<u8>),
    /// SCRAM keys; their algorithm tells the scheme.
    Scram(ScramKeys),
    /// Cannot be verified: nobody can log in with it. The reason is for the log.
    Unusable(String),
}

impl fmt::Debug for Credential {
    /// Redacts everything but the scheme: hashes are secrets too (offline guessing).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scheme() {
            Some(scheme) => write!(f, "Credential({scheme}, <redacted>)"),
            None => write!(f, "Credential(unusable)"),
        }
    }
}

impl Credential {
    /// Parses the password field of a passwd-file line.
    pub(crate) fn parse(field: &str) -> Credential {
        match Credential::try_parse(field) {
            Ok(credential) => credential,
            Err(reason) => Credential::Unusable(reason),
        }
    }

    fn try_parse(field: &str) -> Result<Credential, String> {
        if field.is_empty() {
            return Err("no password".into());
        }
        let Some(rest) = field.strip_prefix('{') else {
            return Credential::parse_crypt(field);
        };
        let (name, hash) = rest.split_once('}').ok_or("unterminated {SCHEME}")?;
        if name.eq_ignore_ascii_case("CRYPT") {
            return Credential::parse_crypt(hash);
        }
        let scheme = Scheme::from_str(name).map_err(|_| format!("unknown scheme {{{name}}}"))?;
        let credential = match scheme {
            Scheme::Plain => Credential::parse_plain(hash)?,
            Scheme::ScramSha1 => Credential::Scram(ScramKeys::parse(ScramAlgorithm::Sha1, hash)?),
            Scheme::ScramSha256 => {
                Credential::Scram(ScramKeys::parse(ScramAlgorithm::Sha256, hash)?)
            }
            _ => Credential::parse_crypt(hash)?,
        };
        if credential.scheme() != Some(scheme) {
            return Err(format!("{{{name}}} hash is not in {scheme} form"));
        }
        Ok(credential)
    }

    fn parse_plain(password: &str) -> Result<Credential, String> {
        if password.is_empty() {
            // An empty password would let anyone in who knows the name.
            return Err("empty PLAIN password".into());
        }
        if password.len() > PASSWORD_BYTES_MAX {
            return Err(format!("PLAIN password longer than {PASSWORD_BYTES_MAX} bytes"));
        }
        Ok(Credential::Plain(password.as_bytes().to_vec()))
    }

    /// A crypt(3)-style hash, told apart by its prefix.
    fn parse_crypt(hash: &str) -> Result<Credential, String> {
        if hash.starts_with("$6$") {
            parse_sha512(hash)
        } else if ["$2y$", "$2b$", "$2a$", "$2x$"].iter().any(|p| hash.starts_with(p)) {
            parse_bcrypt(hash)
        } else if hash.starts_with("$argon2id$") {
            parse_argon2(Scheme::Argon2id, hash)
        } else if hash.starts_with("$argon2i$") {
            parse_argon2(Scheme::Argon2i, hash)
        } else {
            Err("unsupported hash form (neither $6$, $2y$ nor $argon2i[d]$)".into())
        }
    }

    /// The scheme, or `None` for an unusable credential.
    pub(crate) fn scheme(&self) -> Option<Scheme> {
        match self {
            Credential::Sha512Crypt { .. } => Some(Scheme::Sha512Crypt),
            Credential::BlfCrypt(_) => Some(Scheme::BlfCrypt),
            Credential::Argon2 { scheme, .. } => Some(*scheme),
            Credential::Plain(_) => Some(Scheme::Plain),
            Credential::Scram(keys) => Some(match keys.algorithm() {
                ScramAlgorithm::Sha1 => Scheme::ScramSha1,
                ScramAlgorithm::Sha256 => Scheme::ScramSha256,
            }),
            Credential::Unusable(_) => None,
        }
    }

    /// True when `password` matches. CPU-heavy for every scheme but `PLAIN`.
    pub(crate) fn verify(&self, password: &[u8]) -> bool {
        if password.len() > PASSWORD_BYTES_MAX {
            return false;
        }
        match self {
            Credential::Sha512Crypt { rounds, salt, digest } => {
                sha512_digest(password, salt, *rounds)
                    .is_ok_and(|computed| equal_fixed_time(computed.as_bytes(), digest.as_bytes()))
            }
            Credential::BlfCrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            Credential::Argon2 { phc, .. } => PasswordHash::new(phc)
                .is_ok_and(|hash| Argon2::default().verify_password(password, &hash).is_ok()),
            Credential::Plain(stored) => equal_fixed_time(stored, password),
            Credential::Scram(keys) => keys.verify_password(password),
            Credential::Unusable(_) => false,
        }
    }
}

/// `$6$[rounds=N$]salt$digest`, with glibc's reading of the rounds (clamped to at least 1000)
/// and salt (first 16 characters).
fn parse_sha512(hash: &str) -> Result<Credential, String> {
    let body = &hash[3..];
    let (rounds, body) = match body.strip_prefix("rounds=") {
        Some(rest) => {
            let (number, rest) = rest.split_once('$').ok_or("SHA512-CRYPT: no salt")?;
            let rounds: u32 = number.parse().map_err(|_| "SHA512-CRYPT: bad rounds")?;
            (rounds.max(SHA512_ROUNDS_MIN), rest)
        }
        None => (SHA512_ROUNDS_DEFAULT, body),
    };
    if rounds > SHA512_CRYPT_ROUNDS_MAX {
        return Err(format!("SHA512-CRYPT rounds above {SHA512_CRYPT_ROUNDS_MAX}"));
    }
    let (salt, digest) = body.split_once('$').ok_or("SHA512-CRYPT: no digest")?;
    let in_alphabet = |s: &str| s.bytes().all(|b| CRYPT_ALPHABET.contains(&b));
    if digest.len() != 86 || !in_alphabet(digest) {
        return Err("SHA512-CRYPT: digest is not 86 crypt characters".into());
    }
    if salt.contains('$') || salt.contains(':') {
        return Err("SHA512-CRYPT: bad salt".into());
    }
    let salt: String = salt.chars().take(SHA512_SALT_CHARS_MAX).collect();
    Ok(Credential::Sha512Crypt { rounds, salt, digest: digest.to_owned() })
}

fn parse_bcrypt(hash: &str) -> Result<Credential, String> {
    let parts: bcrypt::HashParts = hash.parse().map_err(|_| "BLF-CRYPT: malformed hash")?;
    if parts.get_cost() > BCRYPT_COST_MAX {
        return Err(format!("BLF-CRYPT cost above {BCRYPT_COST_MAX}"));
    }
    Ok(Credential::BlfCrypt(hash.to_owned()))
}

fn parse_argon2(scheme: Scheme, phc: &str) -> Result<Credential, String> {
    let hash = PasswordHash::new(phc).map_err(|e| format!("{scheme}: {e}"))?;
    let params = Params::try_from(&hash).map_err(|e| format!("{scheme}: {e}"))?;
    if params.m_cost() > ARGON2_MEMORY_KIB_MAX {
        return Err(format!("{scheme} memory above {ARGON2_MEMORY_KIB_MAX} KiB"));
    }
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err(format!("{scheme}: no salt or no hash"));
    }
    Ok(Credential::Argon2 { scheme, phc: phc.to_owned() })
}

/// Compares two byte strings of at most [`PASSWORD_BYTES_MAX`] bytes in time that depends on
/// neither their contents nor their lengths: both are copied into zero-padded buffers of that
/// fixed size, every byte of which is compared, and the lengths are compared alongside.
pub(super) fn equal_fixed_time(left: &[u8], right: &[u8]) -> bool {
    if left.len() > PASSWORD_BYTES_MAX || right.len() > PASSWORD_BYTES_MAX {
        return false;
    }
    let mut left_padded = [0u8; PASSWORD_BYTES_MAX];
    let mut right_padded = [0u8; PASSWORD_BYTES_MAX];
    left_padded[..left.len()].copy_from_slice(left);
    right_padded[..right.len()].copy_from_slice(right);
    let mut difference = left.len() ^ right.len();
    for (a, b) in left_padded.iter().zip(right_padded.iter()) {
        difference |= usize::from(std::hint::black_box(a ^ b));
    }
    std::hint::black_box(difference) == 0
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_fixed_time_compares_content_and_length() {
        assert!(equal_fixed_time(b"secret", b"secret"));
        assert!(equal_fixed_time(b"", b""));
        assert!(!equal_fixed_time(b"secret", b"secreT"));
        assert!(!equal_fixed_time(b"secret", b"secret\0"));
        assert!(!equal_fixed_time(b"", b"\0"));
        assert!(!equal_fixed_time(
            &[b'a'; PASSWORD_BYTES_MAX + 1],
            &[b'a'; PASSWORD_BYTES_MAX + 1]
        ));
    }

    #[test]
    fn scheme_names_round_trip() {
        for scheme in [
            Scheme::Sha512Crypt,
            Scheme::BlfCrypt,
            Scheme::Argon2id,
            Scheme::Argon2i,
            Scheme::Plain,
            Scheme::ScramSha1,
            Scheme::ScramSha256,
        ] {
            assert_eq!(Scheme::from_str(scheme.name()).unwrap(), scheme);
        }
        assert_eq!(Scheme::from_str("clear").unwrap(), Scheme::Plain);
        assert!(Scheme::from_str("MD5-CRYPT").is_err());
    }

    #[test]
    fn sha512_known_vector_from_openssl() {
        // `openssl passwd -6 -salt saltstring 'Hello world!'`
        let stored = "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4O\
                      TLiBFdcbYEdFCoEOfaS35inz1";
        let credential = Credential::parse(&format!("{{SHA512-CRYPT}}{stored}"));
        assert_eq!(credential.scheme(), Some(Scheme::Sha512Crypt));
        assert!(credential.verify(b"Hello world!"));
        assert!(!credential.verify(b"Hello world"));
    }

    #[test]
    fn sha512_rounds_are_clamped_and_salt_truncated_like_glibc() {
        // libxcrypt: crypt("Hello world!", "$6$rounds=1000$abcdefgh")
        let stored = "$6$rounds=1000$abcdefgh$Myo.Jps3.QItTLCKDMjeNrmplxrmGFn6DhVH.3XdtFePKQmLbUX\
                      rSdmJRXaEK.xf0rG9FIXaspJsTUeK0Ub7v.";
        assert!(Credential::parse(stored).verify(b"Hello world!"));
        // rounds=10 means 1000 to glibc; a longer salt means its first 16 characters.
        let clamped = stored.replace("rounds=1000", "rounds=10");
        assert!(Credential::parse(&clamped).verify(b"Hello world!"));
    }

    #[test]
    fn bcrypt_known_vectors_from_libxcrypt() {
        let bcrypt_b = "$2b$05$abcdefghijklmnopqrstuuHNbAKRhpaujgo33bRWs.NLUTJO3lOy2";
        let bcrypt_y = "$2y$05$abcdefghijklmnopqrstuuHNbAKRhpaujgo33bRWs.NLUTJO3lOy2";
        for stored in [format!("{{BLF-CRYPT}}{bcrypt_y}"), bcrypt_b.to_owned()] {
            let credential = Credential::parse(&stored);
            assert_eq!(credential.scheme(), Some(Scheme::BlfCrypt));
            assert!(credential.verify(b"correct horse"));
            assert!(!credential.verify(b"correct horsf"));
        }
    }

    #[test]
    fn mismatched_or_unknown_forms_are_unusable() {
        for field in [
            "",
            "{MD5-CRYPT}$1$abc$def",
            "{SHA512-CRYPT}$2y$05$abcdefghijklmnopqrstuuHNbAKRhpaujgo33bRWs.NLUTJO3lOy2",
            "{ARGON2I}$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo",
            "$1$abc$def",
            "{SHA512-CRYPT",
            "{PLAIN}",
            "$6$salt$short",
            "{BLF-CRYPT}$2y$31$abcdefghijklmnopqrstuuHNbAKRhpaujgo33bRWs.NLUTJO3lOy2",
        ] {
            let credential = Credential::parse(field);
            assert!(credential.scheme().is_none(), "{field:?} parsed as {credential:?}");
            assert!(!credential.verify(b""));
        }
    }

    #[test]
    fn debug_redacts_the_hash() {
        let credential = Credential::parse("{PLAIN}hunter2");
        assert!(!format!("{credential:?}").contains("hunter2"));
    }
}
