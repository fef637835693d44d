//! Bounds of a SASL exchange, each checked before the bytes are looked at.

/// Longest client message an exchange accepts (decoded). An OAuth bearer token is the largest
/// thing a client sends (a JWT with many claims is a few KiB); passwords and SCRAM messages
/// are far smaller. Dovecot's auth line limit is 16 KiB of base64, about 12 KiB decoded.
pub const CLIENT_MESSAGE_BYTES_MAX: usize = 12 * 1024;

/// Longest user name or authorization id taken from a client message.
pub const IDENTITY_BYTES_MAX: usize = 1024;

/// Longest SCRAM client nonce (clients send 18 to 32 random bytes as base64).
pub const CLIENT_NONCE_BYTES_MAX: usize = 256;

/// Random bytes in SCRAM's server nonce part (144 bits; base64 makes them 24 characters).
pub const SERVER_NONCE_BYTES: usize = 18;

/// Most key/value pairs in an OAUTHBEARER message (`auth`, `host`, `port`, and a few more).
pub const OAUTH_PAIRS_MAX: usize = 16;

const _: () = assert!(IDENTITY_BYTES_MAX < CLIENT_MESSAGE_BYTES_MAX);
const _: () = assert!(CLIENT_NONCE_BYTES_MAX < CLIENT_MESSAGE_BYTES_MAX);
const _: () = assert!(
    skua_core::users::limits::TOKEN_BYTES_MAX < CLIENT_MESSAGE_BYTES_MAX,
    "a token the verifier accepts must fit in a client message"
);
