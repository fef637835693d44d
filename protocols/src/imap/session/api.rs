//! The session's public vocabulary: its configuration, the steps it asks the shard to take,
//! its output chunks and the shard's verdict on credentials.

use skua_core::disk::Bytes;
use skua_core::types::Epoch;
use skua_core::users::Secret;

use crate::imap::limits::{FrameLimits, ParseLimits};

/// Session settings, shared by every session of a listener.
#[derive(Clone, Debug)]
pub struct ImapConfig {
    /// Host name used in the greeting.
    pub hostname: String,
    /// LOGIN and AUTHENTICATE PLAIN are allowed (TLS or loopback; the shard decides).
    pub plaintext_login_allowed: bool,
    /// Announce and honour CONDSTORE (RFC 7162).
    pub condstore: bool,
    /// TLS can be started on this connection (STARTTLS is announced until it is).
    pub starttls: bool,
    /// Before TLS, refuse everything but CAPABILITY, NOOP, LOGOUT and STARTTLS
    /// (`[imap] require_tls`).
    pub require_tls: bool,
    /// Framer limits (line, literal and command sizes).
    pub frame_limits: FrameLimits,
    /// Parser limits (nesting, list lengths).
    pub parse_limits: ParseLimits,
}

impl ImapConfig {
    /// Defaults: plaintext login allowed, CONDSTORE on, default limits.
    #[must_use]
    pub fn new(hostname: &str) -> ImapConfig {
        ImapConfig {
            hostname: hostname.to_owned(),
            plaintext_login_allowed: true,
            condstore: true,
            starttls: false,
            require_tls: false,
            frame_limits: FrameLimits::default(),
            parse_limits: ParseLimits::default(),
        }
    }
}

/// A piece of output: owned bytes, or a slice of the mapped spool sent without a copy.
#[derive(Clone, Debug)]
pub enum OutChunk {
    /// Response bytes.
    Owned(Vec<u8>),
    /// Message bytes, straight from the spool.
    Spool(Bytes),
}

impl OutChunk {
    /// The bytes of this chunk.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            OutChunk::Owned(v) => v,
            OutChunk::Spool(b) => b,
        }
    }
}

/// What the shard must do next for this session.
///
/// `#[must_use]`: dropping a step loses output or leaves a paused command hanging.
#[must_use]
pub enum Step {
    /// Wait for more bytes from the client, then `feed` and `next`.
    NeedInput,
    /// Send these chunks in order, after `durable` (if any) is durable; then call `next` again.
    Write {
        /// The output.
        chunks: Vec<OutChunk>,
        /// The epoch that must be durable before the chunks go out.
        durable: Option<Epoch>,
    },
    /// A long command did a bounded slice of its work and paused: let the shard's other
    /// sessions run (an unconditional yield), then call `next` again. No input is needed.
    Yield,
    /// Check these credentials (off the reactor) and call [`ImapSession::auth_done`].
    Authenticate {
        /// The user name as sent.
        user: String,
        /// The password as sent (its Debug is redacted).
        password: Secret<String>,
    },
    /// In IDLE: call `next` again when bytes arrive or the user's store changed.
    Idle,
    /// STARTTLS was answered (the OK is already written): run the TLS handshake as the server
    /// before reading anything else, then call [`ImapSession::tls_started`] (or close the
    /// connection when the handshake fails). Bytes the client pipelined after STARTTLS were
    /// discarded by the session; none is ever taken as a command.
    ///
    /// [`ImapSession::tls_started`]: super::ImapSession::tls_started
    StartTls,
    /// Close the connection (after writing everything returned before).
    Close,
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::NeedInput => f.write_str("NeedInput"),
            Step::Write { chunks, durable } => {
                let bytes: usize = chunks.iter().map(|c| c.as_bytes().len()).sum();
                write!(f, "Write({} chunks, {bytes} bytes, durable {durable:?})", chunks.len())
            }
            Step::Authenticate { user, .. } => write!(f, "Authenticate({user:?}, <redacted>)"),
            Step::Yield => f.write_str("Yield"),
            Step::Idle => f.write_str("Idle"),
            Step::StartTls => f.write_str("StartTls"),
            Step::Close => f.write_str("Close"),
        }
    }
}

/// The shard's verdict on the credentials of a [`Step::Authenticate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthOutcome {
    /// The password is right; `next` will now be given the user's store.
    Success,
    /// Wrong user or password.
    Failure,
    /// The check could not be made (store unavailable, too many attempts...): try later.
    Unavailable,
    /// The password is right but the user has as many sessions as allowed: `NO [LIMIT]`.
    Limit,
    /// Not checked: the client's address failed too often lately. `NO [UNAVAILABLE]`, and it
    /// counts as a failed attempt on this connection (BYE after a few).
    Throttled,
}
