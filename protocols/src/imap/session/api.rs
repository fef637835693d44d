//! The session's public vocabulary: its configuration, the steps it asks the shard to take,
//! its output chunks and the shard's verdict on credentials.

use skua_core::disk::Bytes;
use skua_core::types::Epoch;
use skua_core::users::Secret;
use skua_core::users::scram::ScramAlgorithm;

use crate::sasl::{FailureReason, Mechanism};

use crate::imap::limits::{FrameLimits, ParseLimits};

/// Session settings, shared by every session of a listener.
#[derive(Clone, Debug)]
pub struct ImapConfig {
    /// Host name used in the greeting.
    pub hostname: String,
    /// LOGIN and AUTHENTICATE PLAIN are allowed (TLS or loopback; the shard decides).
    pub plaintext_login_allowed: bool,
    /// Offer SCRAM-SHA-1 and SCRAM-SHA-256 (and their `-PLUS` variants on TLS 1.3). SCRAM
    /// never shows the password to the network, so it is offered with or without TLS.
    pub scram: bool,
    /// A token policy is configured: offer OAUTHBEARER and XOAUTH2 where passwords may be
    /// sent (a bearer token replays like a password, RFC 7628 §5).
    pub tokens: bool,
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
    /// The server's `/shared/admin` METADATA entry (RFC 5464 §3.2.1.1): how to reach the
    /// administrator, a URI such as `mailto:postmaster@example.org`; `None`: not announced.
    pub admin_contact: Option<String>,
    /// The namespaces other than the personal one (RFC 2342): other users' mailboxes and the
    /// public ones (`namespace.rs`).
    pub namespaces: crate::imap::namespace::Namespaces,
    /// `[imap] admins`: users who may SETQUOTA (RFC 9208), compared ASCII case-insensitively
    /// with the user a login opens.
    pub admins: Vec<String>,
}

impl ImapConfig {
    /// Defaults: plaintext login allowed, CONDSTORE on, default limits.
    #[must_use]
    pub fn new(hostname: &str) -> ImapConfig {
        ImapConfig {
            hostname: hostname.to_owned(),
            plaintext_login_allowed: true,
            scram: true,
            tokens: false,
            condstore: true,
            starttls: false,
            require_tls: false,
            frame_limits: FrameLimits::default(),
            parse_limits: ParseLimits::default(),
            admin_contact: None,
            namespaces: crate::imap::namespace::Namespaces::default(),
            admins: Vec::new(),
        }
    }
}

/// A piece of output: owned bytes, or a slice of the mapped spool sent without a copy.
#[derive(Clone, Debug)]
pub enum OutChunk {
    /// Response bytes.
    Owned(Vec<u8>),
    /// Message bytes, straight from the spool, inside a plain `{n}` literal, which cannot hold
    /// NUL: the host sends them through [`OutChunk::without_nul`] once they are in memory. Whether a
    /// message holds NUL is not known without reading it all, and reading it in the session's
    /// step could stall the shard on a cold page (issue 7); after the page-in, `memchr` over
    /// resident bytes is cheap, and a copy is made only when a NUL is there.
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

    /// The spool bytes of this chunk, if it has any (for the host's page-in).
    #[must_use]
    pub fn spool(&self) -> Option<&Bytes> {
        match self {
            OutChunk::Owned(_) => None,
            OutChunk::Spool(b) => Some(b),
        }
    }

    /// A [`OutChunk::Spool`] holding NUL as owned bytes with each NUL written as
    /// [`NUL_REPLACEMENT`](crate::imap::encode::NUL_REPLACEMENT) (same length); every other
    /// chunk as it is. Call once the bytes are in memory.
    #[must_use]
    pub fn without_nul(self) -> OutChunk {
        match self {
            OutChunk::Spool(bytes) if memchr::memchr(0, &bytes).is_some() => {
                let mut owned = Vec::with_capacity(bytes.len());
                crate::imap::encode::extend_without_nul(&mut owned, &bytes);
                OutChunk::Owned(owned)
            }
            chunk => chunk,
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
    /// A login needs the shard: see [`AuthRequest`] for what to do and which call answers.
    Authenticate(AuthRequest),
    /// In IDLE: call `next` again when bytes arrive or the user's store changed.
    Idle,
    /// STARTTLS was answered (the OK is already written): run the TLS handshake as the server
    /// before reading anything else, then call [`ImapSession::tls_started`] (or close the
    /// connection when the handshake fails). Bytes the client pipelined after STARTTLS were
    /// discarded by the session; none is ever taken as a command.
    ///
    /// [`ImapSession::tls_started`]: super::ImapSession::tls_started
    StartTls,
    /// COMPRESS was answered (the OK is already written): compress everything written from
    /// here on and inflate everything read (RFC 4978 DEFLATE, under TLS if it runs), then
    /// call `next` again. The session saw no input after the command (it refuses COMPRESS
    /// with commands pipelined behind it), so every byte read from now on is compressed.
    Compress,
    /// Close the connection (after writing everything returned before).
    Close,
    /// The next command needs another store (a shared folder: `command/route.rs`): call
    /// [`ImapSession::next_on`] with `owner`'s store on `owner`'s home shard, or, for `None`,
    /// `next` with the session's own store. Output the session had is returned first (as a
    /// `Write`); this step comes with none.
    ///
    /// [`ImapSession::next_on`]: super::ImapSession::next_on
    Elsewhere {
        /// The user whose store is needed (as the client spelled it: the shard resolves it),
        /// or `None` for the session's own.
        owner: Option<String>,
    },
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::NeedInput => f.write_str("NeedInput"),
            Step::Write { chunks, durable } => {
                let bytes: usize = chunks.iter().map(|c| c.as_bytes().len()).sum();
                write!(f, "Write({} chunks, {bytes} bytes, durable {durable:?})", chunks.len())
            }
            Step::Authenticate(request) => write!(f, "Authenticate({request:?})"),
            Step::Yield => f.write_str("Yield"),
            Step::Idle => f.write_str("Idle"),
            Step::StartTls => f.write_str("StartTls"),
            Step::Compress => f.write_str("Compress"),
            Step::Close => f.write_str("Close"),
            Step::Elsewhere { owner } => write!(f, "Elsewhere({owner:?})"),
        }
    }
}

/// Why the store a [`Step::Elsewhere`] asked for cannot be had
/// ([`ImapSession::elsewhere_failed`](super::ImapSession::elsewhere_failed)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElsewhereFailure {
    /// No user of that name.
    NoSuchUser,
    /// The owner's shard refused (busy) or is stopping.
    Unavailable,
}

/// What a login asks of the shard ([`Step::Authenticate`]). Each request is answered by one
/// call before `next` is called again: [`ImapSession::auth_context`] for `Context`,
/// [`ImapSession::auth_answer`] for `Password`, `ScramCredentials`, `Token` and `External`,
/// [`ImapSession::auth_done`] for `LogIn` and `Failed`. `auth_done` may also answer any
/// request early (a throttled source, a shard shutting down): the login then ends with it.
///
/// [`ImapSession::auth_context`]: super::ImapSession::auth_context
/// [`ImapSession::auth_answer`]: super::ImapSession::auth_answer
/// [`ImapSession::auth_done`]: super::ImapSession::auth_done
#[derive(Debug)]
pub enum AuthRequest {
    /// AUTHENTICATE named a mechanism this connection offers: give the exchange a fresh
    /// [`Context`](crate::sasl::Context) (random nonce, server secret, the connection's
    /// `tls-exporter` value).
    Context {
        /// The mechanism.
        mechanism: Mechanism,
    },
    /// Check a password, off the reactor and through the failed-login brake
    /// (`Logins::check_password`): LOGIN (`mechanism` `None`), AUTHENTICATE PLAIN and LOGIN.
    Password {
        /// The SASL mechanism, or `None` for the LOGIN command.
        mechanism: Option<Mechanism>,
        /// The login name, maybe `target*master`.
        authcid: String,
        /// PLAIN's authorization id, if any.
        authzid: Option<String>,
        /// The password (its Debug is redacted).
        password: Secret<String>,
    },
    /// Look up SCRAM keys (`Logins::scram_credentials`); cheap, but the source's turn in the
    /// brake comes first.
    ScramCredentials {
        /// The SCRAM user name, maybe `target*master`.
        authcid: String,
        /// The SCRAM `a=`, if any.
        authzid: Option<String>,
        /// The hash whose keys are needed.
        algorithm: ScramAlgorithm,
    },
    /// Verify a bearer token and authorize its user as `authzid` (OAUTHBEARER, XOAUTH2).
    Token {
        /// Which of the two.
        mechanism: Mechanism,
        /// The token (its Debug is redacted).
        token: Secret<String>,
        /// OAUTHBEARER's `a=` or XOAUTH2's `user=`.
        authzid: Option<String>,
    },
    /// Map the verified TLS client certificate to a user, authorized as `authzid` (EXTERNAL).
    External {
        /// The authorization id asked for, if any.
        authzid: Option<String>,
    },
    /// The exchange succeeded: log in as `user` (here or on its home shard) and answer
    /// [`AuthOutcome::Success`], or why not.
    LogIn {
        /// The mechanism, or `None` for the LOGIN command.
        mechanism: Option<Mechanism>,
        /// The user the session opens (canonical name).
        user: String,
        /// Who authenticated, as the client named it (differs from `user` for a master
        /// login or a certificate/token mapping).
        authcid: String,
        /// False when no brake turn saw this login yet (SCRAM, tokens, EXTERNAL): the shard
        /// counts the success so that it clears this source's failures against the user.
        counted: bool,
    },
    /// The exchange failed in a way that counts as a failed login (see the table in
    /// [`crate::sasl`]): log it, count it in the brake unless `counted`, wait the brake's
    /// delay, then answer [`AuthOutcome::Failure`].
    Failed {
        /// The mechanism, or `None` for the LOGIN command.
        mechanism: Option<Mechanism>,
        /// The name the client tried, when it got that far.
        authcid: Option<String>,
        /// Why (safe for logs).
        reason: FailureReason,
        /// True when a password check already counted this failure in the brake.
        counted: bool,
    },
}

/// The shard's verdict on a login ([`Step::Authenticate`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthOutcome {
    /// The password is right; `next` will now be given the user's store.
    Success,
    /// Wrong user or password.
    Failure,
    /// The identity was proved (a token, a certificate) but may not act as the user asked
    /// for: `NO [AUTHORIZATIONFAILED]` (RFC 5530); a failed attempt like `Failure`.
    NotAuthorized,
    /// The check could not be made (store unavailable, too many attempts...): try later.
    Unavailable,
    /// The password is right but the user has as many sessions as allowed: `NO [LIMIT]`.
    Limit,
    /// Not checked: the client's address failed too often lately. `NO [UNAVAILABLE]`, and it
    /// counts as a failed attempt on this connection (BYE after a few).
    Throttled,
}
