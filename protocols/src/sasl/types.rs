//! The values that cross between a SASL exchange and its host: mechanism names, the context
//! the host fills, the steps the exchange asks for, the host's answers, and the outcome.

use std::fmt;
use std::num::NonZeroU32;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use skua_core::users::Secret;
use skua_core::users::scram::{SCRAM_ITERATIONS_DEFAULT, ScramAlgorithm, ScramKeys};

use super::limits::SERVER_NONCE_BYTES;

/// A SASL mechanism skua implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// PLAIN (RFC 4616), with an optional authorization id.
    Plain,
    /// LOGIN (draft-murchison-sasl-login): user name, then password.
    Login,
    /// SCRAM-SHA-1 (RFC 5802).
    ScramSha1,
    /// SCRAM-SHA-1-PLUS: with `tls-exporter` channel binding (RFC 9266).
    ScramSha1Plus,
    /// SCRAM-SHA-256 (RFC 7677).
    ScramSha256,
    /// SCRAM-SHA-256-PLUS: with `tls-exporter` channel binding (RFC 9266).
    ScramSha256Plus,
    /// EXTERNAL (RFC 4422 appendix A): the identity the TLS layer established.
    External,
    /// OAUTHBEARER (RFC 7628).
    OAuthBearer,
    /// XOAUTH2 (Google's and Microsoft's bearer-token mechanism).
    XOAuth2,
}

impl Mechanism {
    /// Every mechanism, in the order a server usually advertises them (strongest first).
    pub const ALL: [Mechanism; 9] = [
        Mechanism::ScramSha256Plus,
        Mechanism::ScramSha256,
        Mechanism::ScramSha1Plus,
        Mechanism::ScramSha1,
        Mechanism::External,
        Mechanism::OAuthBearer,
        Mechanism::XOAuth2,
        Mechanism::Plain,
        Mechanism::Login,
    ];

    /// The registered name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::ScramSha1Plus => "SCRAM-SHA-1-PLUS",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha256Plus => "SCRAM-SHA-256-PLUS",
            Mechanism::External => "EXTERNAL",
            Mechanism::OAuthBearer => "OAUTHBEARER",
            Mechanism::XOAuth2 => "XOAUTH2",
        }
    }

    /// The mechanism a client named (ASCII case-insensitive), or `None` for one skua lacks.
    #[must_use]
    pub fn from_name(name: &[u8]) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name().as_bytes().eq_ignore_ascii_case(name))
    }

    /// For SCRAM mechanisms: the hash and whether channel binding is required.
    #[must_use]
    pub fn scram(self) -> Option<(ScramAlgorithm, bool)> {
        match self {
            Mechanism::ScramSha1 => Some((ScramAlgorithm::Sha1, false)),
            Mechanism::ScramSha1Plus => Some((ScramAlgorithm::Sha1, true)),
            Mechanism::ScramSha256 => Some((ScramAlgorithm::Sha256, false)),
            Mechanism::ScramSha256Plus => Some((ScramAlgorithm::Sha256, true)),
            _ => None,
        }
    }

    /// True for mechanisms that send the password itself (PLAIN, LOGIN): the host refuses
    /// them on a connection that is neither encrypted nor allowed plain text.
    #[must_use]
    pub fn sends_password(self) -> bool {
        matches!(self, Mechanism::Plain | Mechanism::Login)
    }

    /// True for the `-PLUS` mechanisms, which need [`Context::tls_exporter`]: advertise them
    /// only on TLS connections.
    #[must_use]
    pub fn needs_channel_binding(self) -> bool {
        self.scram().is_some_and(|(_, plus)| plus)
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a protocol carries the server's data that comes with success (SCRAM's `v=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SuccessData {
    /// As one more challenge, answered by an empty client response, before
    /// [`Step::Success`] (IMAP, LMTP/SMTP AUTH, POP3: their success replies carry no data).
    #[default]
    AsChallenge,
    /// In [`Success::final_data`] (ManageSieve's `OK (SASL "...")`).
    WithSuccess,
}

/// What the host tells an exchange when it starts. Owned, so the exchange can travel with its
/// session.
#[derive(Clone, Debug)]
pub struct Context {
    /// SCRAM's server nonce part: printable ASCII without `,` (RFC 5802 `printable`), fresh
    /// per exchange. [`Context::new`] makes it the base64 of random bytes the host drew from
    /// its CSPRNG; the exchange reads no randomness itself, so tests replay exactly.
    pub server_nonce: String,
    /// The server secret unknown SCRAM users' fake salts are derived from
    /// ([`ScramKeys::fake`]); the same across restarts keeps fakes stable.
    pub fake_secret: Secret<Vec<u8>>,
    /// The iteration count unknown SCRAM users pretend to have: set it to what the users file
    /// mostly holds, or an unknown user stands out ([`Context::new`]:
    /// [`SCRAM_ITERATIONS_DEFAULT`], Dovecot's and `skua user add`'s).
    pub scram_fake_iterations: NonZeroU32,
    /// The connection's RFC 9266 `tls-exporter` channel-binding value (32 bytes from the
    /// `EXPORTER-Channel-Binding` label), or `None` when not on TLS.
    pub tls_exporter: Option<Secret<Vec<u8>>>,
    /// True when this connection's mechanism list holds `-PLUS` variants; a non-PLUS SCRAM
    /// client that says it would have bound (`y`) is then under a downgrade attack (RFC 5802
    /// §6) and is refused.
    pub plus_advertised: bool,
    /// How success data is sent.
    pub success_data: SuccessData,
    /// The provider's OpenID discovery URL, put in OAUTHBEARER's error challenge
    /// (`openid-configuration`, RFC 7628 §3.2.2) when set.
    pub openid_configuration: Option<String>,
}

impl Context {
    /// A context without TLS: no channel binding, no `-PLUS` advertised, success data as a
    /// challenge.
    #[must_use]
    pub fn new(random: [u8; SERVER_NONCE_BYTES], fake_secret: Secret<Vec<u8>>) -> Context {
        Context {
            server_nonce: STANDARD.encode(random),
            fake_secret,
            scram_fake_iterations: NonZeroU32::new(SCRAM_ITERATIONS_DEFAULT)
                .expect("a non-zero constant"),
            tls_exporter: None,
            plus_advertised: false,
            success_data: SuccessData::AsChallenge,
            openid_configuration: None,
        }
    }

    /// The same, on a TLS connection with this `tls-exporter` value and `-PLUS` advertised.
    #[must_use]
    pub fn with_tls_exporter(mut self, exporter: Secret<Vec<u8>>) -> Context {
        self.tls_exporter = Some(exporter);
        self.plus_advertised = true;
        self
    }
}

/// What an exchange needs next. Every step must be acted on (see the module docs for the
/// calling order).
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes to the client (the protocol base64s them; empty is `+ `), then call
    /// [`Exchange::respond`](super::Exchange::respond) with its answer.
    Challenge(Vec<u8>),
    /// Check a password off the reactor (`skua_core::users::master::Logins::check_password`),
    /// then call [`Exchange::answer`](super::Exchange::answer). PLAIN and LOGIN.
    VerifyPassword {
        /// The authentication id: the login name, maybe `target*master`.
        authcid: String,
        /// PLAIN's authorization id, when the client sent a non-empty one.
        authzid: Option<String>,
        /// The password.
        password: Secret<String>,
    },
    /// Look up SCRAM keys (`Logins::scram_credentials`) and answer
    /// [`HostAnswer::ScramKeys`]. Cheap: no need to leave the reactor.
    ScramCredentials {
        /// The SCRAM user name (`n=`), unescaped.
        authcid: String,
        /// The authorization id (`a=`), when present.
        authzid: Option<String>,
        /// The hash whose keys are needed.
        algorithm: ScramAlgorithm,
    },
    /// Check a bearer token (`skua_core::users::jwt::TokenVerifier::verify`) and whether its
    /// user may act as `authzid` (`Logins::authorize`), then answer. OAUTHBEARER and XOAUTH2.
    VerifyToken {
        /// The bearer token.
        token: Secret<String>,
        /// OAUTHBEARER's `a=`, or XOAUTH2's `user=` (always present there: the token's user
        /// must be that user).
        authzid: Option<String>,
    },
    /// Map the TLS client certificate to a user and check it may act as `authzid`, then
    /// answer. EXTERNAL.
    External {
        /// The authorization id the client asked for; `None` means "whoever the certificate
        /// says".
        authzid: Option<String>,
    },
    /// Authenticated: the exchange is over.
    Success(Success),
    /// Refused: the exchange is over.
    Failure(Failure),
}

/// The host's answer to a request step.
#[derive(Debug)]
pub enum HostAnswer {
    /// To [`Step::VerifyPassword`], [`Step::VerifyToken`] or [`Step::External`]: the login is
    /// good, for `user` (the canonical name the session opens).
    Accepted {
        /// The user the session is for.
        user: String,
    },
    /// To the same steps: refused; the reason goes into [`FailureReason::Refused`] (for
    /// logs; never a secret).
    Refused(String),
    /// To [`Step::VerifyToken`] or [`Step::External`]: the identity was proved (a token, a
    /// certificate) but may not act as the authorization identity the client asked for
    /// (RFC 5530 `AUTHORIZATIONFAILED`); the reason as for `Refused`.
    NotAuthorized(String),
    /// To any request: the check could not be made (overload, a failing file).
    Unavailable,
    /// To [`Step::ScramCredentials`]: the keys and the user they log in as, or `None` for an
    /// unknown user (the exchange then goes on with fake keys and fails at the proof).
    ScramKeys(Option<(ScramKeys, String)>),
}

/// A successful exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Success {
    /// The user the session is for, as the host named it.
    pub user: String,
    /// Who authenticated (the name the client sent).
    pub authcid: String,
    /// The authorization id the client asked for, if any.
    pub authzid: Option<String>,
    /// Data to send with the success ([`SuccessData::WithSuccess`] only; SCRAM's `v=`).
    pub final_data: Option<Vec<u8>>,
}

/// A failed exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Why, for logs.
    pub reason: FailureReason,
}

/// Why an exchange failed. `Display` gives a short log phrase that never holds a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FailureReason {
    /// The client's mechanism data does not follow the mechanism's grammar.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A client message longer than the limit.
    #[error("client message too large")]
    Oversize,
    /// The client asked for something skua does not do (a SCRAM `m=` extension, a channel
    /// binding type other than `tls-exporter`).
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// SCRAM: the client's proof is wrong (wrong password, or unknown user).
    #[error("bad proof")]
    BadProof,
    /// SCRAM: the final message's nonce is not the combined nonce.
    #[error("nonce mismatch")]
    NonceMismatch,
    /// SCRAM: the channel binding is missing, not possible here, or not this connection's.
    #[error("channel binding: {0}")]
    ChannelBinding(&'static str),
    /// SCRAM: the client could have bound but thinks the server cannot: someone removed the
    /// `-PLUS` mechanisms on the way (RFC 5802 §6).
    #[error("downgrade: client supports channel binding the server advertised")]
    Downgrade,
    /// The host refused the credentials; its reason.
    #[error("refused: {0}")]
    Refused(String),
    /// The identity was proved but may not act as the authorization identity asked for.
    #[error("not authorized: {0}")]
    NotAuthorized(String),
    /// The host could not check.
    #[error("check unavailable")]
    Unavailable,
    /// The client cancelled (`*`), as reported by [`Exchange::cancel`](super::Exchange::cancel).
    #[error("cancelled by the client")]
    Cancelled,
    /// The host called the exchange out of order (its bug; see the module docs).
    #[error("exchange driven out of order")]
    OutOfOrder,
}

impl Step {
    /// A failure step.
    pub(super) fn fail(reason: FailureReason) -> Step {
        Step::Failure(Failure { reason })
    }

    /// A malformed-message failure.
    pub(super) fn malformed(what: &'static str) -> Step {
        Step::fail(FailureReason::Malformed(what))
    }
}
