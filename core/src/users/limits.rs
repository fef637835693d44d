//! Bounds for the passwd-file, SCRAM keys and tokens, each enforced before memory is spent.

/// Largest passwd-file [`UserDb::load`](super::UserDb::load) reads. Ten million users at
/// ~150 bytes a line fit; anything larger is more likely a wrong path than a user list.
pub const PASSWD_FILE_BYTES_MAX: u64 = 2 << 30;

/// Longest line accepted. A line holds a name, a hash (an Argon2 PHC string is ~100 bytes) and
/// optional Dovecot extra fields, which is where any length comes from.
pub const LINE_BYTES_MAX: usize = 64 * 1024;

/// Longest user name. Long enough for any mail address (RFC 5321 caps a path at 256 octets).
pub const NAME_BYTES_MAX: usize = 256;

/// Longest password [`UserEntry::verify`](super::UserEntry::verify) considers. Longer
/// candidates are refused without hashing, so a client cannot make us hash megabytes. Also the
/// fixed length over which `{PLAIN}` passwords are compared, so the comparison takes the same
/// time whatever the lengths.
pub const PASSWORD_BYTES_MAX: usize = 1024;

/// Largest Argon2 memory cost (KiB) a stored hash may ask for: 1 GiB. A hash asking for more
/// would let one login take a whole machine's memory; such a user cannot log in.
pub const ARGON2_MEMORY_KIB_MAX: u32 = 1 << 20;

/// Largest SHA512-CRYPT rounds a stored hash may ask for (glibc accepts up to 999,999,999,
/// which is minutes of CPU per login).
pub const SHA512_CRYPT_ROUNDS_MAX: u32 = 10_000_000;

/// Largest bcrypt cost a stored hash may ask for (2^20 rounds: seconds per login).
pub const BCRYPT_COST_MAX: u32 = 20;

/// Largest SCRAM iteration count a stored key may have. A PLAIN or LOGIN check against a SCRAM
/// line runs PBKDF2 that many times (about 0.3 s of one core at this bound), and a SCRAM client
/// is told to; Dovecot's default is 4096.
pub const SCRAM_ITERATIONS_MAX: u32 = 1_000_000;

/// Longest SCRAM salt a stored key may have (Dovecot writes 16 bytes).
pub const SCRAM_SALT_BYTES_MAX: usize = 64;

/// Longest token (JWT) [`TokenVerifier::verify`](super::jwt::TokenVerifier::verify) looks at:
/// real access tokens are one or two KiB; a bound keeps base64 and JSON work small.
pub const TOKEN_BYTES_MAX: usize = 8 * 1024;

/// Largest JWKS file read, and most keys kept from it.
pub const JWKS_FILE_BYTES_MAX: u64 = 1024 * 1024;
/// Most keys kept from a JWKS file (providers publish a handful while rotating).
pub const JWKS_KEYS_MAX: usize = 64;

/// Largest clock skew tolerated on `exp` and `nbf`, whatever the policy asks for.
pub const TOKEN_SKEW_SECONDS_MAX: u64 = 600;

const _: () = assert!(NAME_BYTES_MAX < LINE_BYTES_MAX);
const _: () = assert!(PASSWORD_BYTES_MAX < LINE_BYTES_MAX);
