//! Server-side SASL (RFC 4422) as a sans-IO exchange, shared by IMAP AUTHENTICATE, LMTP AUTH
//! and later POP3 AUTH and ManageSieve AUTHENTICATE.
//!
//! An [`Exchange`] holds one authentication attempt. It never touches a socket, a clock, a
//! random source, a file or a password hash: the protocol carries its challenges and the
//! client's answers (base64, `*` cancellation and line framing are the protocol's), and the
//! host (the shard) does everything slow or secret-holding when the exchange asks for it in
//! a [`Step`]. So a whole exchange runs in a unit test, and password hashing stays off the
//! reactor.
//!
//! Mechanisms: PLAIN, LOGIN, SCRAM-SHA-1(-PLUS), SCRAM-SHA-256(-PLUS) with `tls-exporter`
//! channel binding, EXTERNAL, OAUTHBEARER and XOAUTH2 ([`Mechanism`]).
//!
//! Which mechanisms a connection offers: [`Offer`] (TLS or not, plain-text policy, SCRAM,
//! client certificate, token policy); a client naming one outside the offer is refused before
//! an exchange starts.
//!
//! # Calling order
//!
//! ```text
//!   Exchange::start(mechanism, context)
//!        │
//!        ▼
//!   begin(initial response or None) ──► Step ◄──────────────────────────────┐
//!                                         │                                 │
//!      Challenge(bytes) ── send "+ base64(bytes)"; read a line;             │
//!                          "*" → cancel() and reply failure (protocol's);   │
//!                          bad base64 → the protocol's BAD;                 │
//!                          else respond(decoded) ───────────────────────────┤
//!      VerifyPassword / ScramCredentials / VerifyToken / External           │
//!                       ── do the check (off the reactor for passwords);    │
//!                          answer(HostAnswer) ──────────────────────────────┘
//!      Success(..)      ── log in as `success.user`; the exchange is over
//!      Failure(..)      ── reply failure, log `failure.reason`; over
//! ```
//!
//! `begin` is called once, first; `respond` only right after a `Challenge`; `answer` only
//! right after a request step; nothing after `Success` or `Failure`. A call out of that
//! order is the host's bug: it fails the exchange ([`FailureReason::OutOfOrder`]) and asserts
//! in debug builds. `initial` is SASL-IR's initial response (`Some(b"")` for `=`); without one,
//! client-first mechanisms send an empty challenge and LOGIN sends `Username:`.
//!
//! # What the host answers
//!
//! | step | host does (`skua_core::users`) | answer |
//! | --- | --- | --- |
//! | `VerifyPassword` | `master::Logins::check_password` on the blocking pool | `Accepted{user}` / `Refused(reason)` |
//! | `ScramCredentials` | `master::Logins::scram_credentials` (cheap) | `ScramKeys(Some((keys, user)))` / `ScramKeys(None)` |
//! | `VerifyToken` | `jwt::TokenVerifier::verify`, then `Logins::authorize(claim, authzid)` | `Accepted` / `Refused` |
//! | `External` | certificate → user, then `Logins::authorize(user, authzid)` | `Accepted` / `Refused` |
//!
//! Any of them may be answered `Unavailable`. An unknown SCRAM user is answered
//! `ScramKeys(None)`: the exchange continues with fake keys derived from
//! [`Context::fake_secret`] and fails at the proof, exactly like a wrong password. Success data
//! (SCRAM's `v=`) goes out as one more challenge answered by an empty response
//! ([`SuccessData::AsChallenge`], right for IMAP, SMTP/LMTP and POP3) or in
//! [`Success::final_data`]. OAUTHBEARER and XOAUTH2 answer a refused token with their JSON
//! error challenge first; the client's acknowledgement then ends in the failure.
//!
//! # Replies
//!
//! | outcome | IMAP | SMTP/LMTP AUTH | counts as a failed login |
//! | --- | --- | --- | --- |
//! | `Success` | `OK` | `235 2.7.0` | no |
//! | `BadProof`, `Refused` | `NO [AUTHENTICATIONFAILED]` | `535 5.7.8` | yes |
//! | `Malformed`, `Oversize`, `Unsupported`, `NonceMismatch`, `ChannelBinding`, `Downgrade` | `NO [AUTHENTICATIONFAILED]` | `535 5.7.8` | yes (a guesser can send garbage) |
//! | `Unavailable` | `NO [UNAVAILABLE]` | `454 4.7.0` | no |
//! | `Cancelled` (client `*`) | `BAD` (RFC 9051 §6.2.2) | `501 5.7.0` | no |
//!
//! # Example: a host driving PLAIN
//!
//! ```
//! use skua_core::users::master::Logins;
//! use skua_core::users::{Secret, UserDb};
//! use skua_protocols::sasl::{Context, Exchange, HostAnswer, Mechanism, Step};
//!
//! let users = UserDb::parse(b"alice:{PLAIN}wonderland\n", "example");
//! let logins = Logins::new(&users);
//! // Fresh random bytes and the server's long-lived secret, in a real host.
//! let context = Context::new([0; 18], Secret::new(b"server secret".to_vec()));
//! let mut exchange = Exchange::start(Mechanism::Plain, context);
//! let mut step = exchange.begin(Some(b"\0alice\0wonderland")); // SASL-IR
//! let user = loop {
//!     step = match step {
//!         Step::VerifyPassword { authcid, authzid, password } => {
//!             // In the shard: on the blocking pool, through the failed-login brake.
//!             let answer = match logins.check_password(&authcid, authzid.as_deref(), &password) {
//!                 Ok(identity) => HostAnswer::Accepted { user: identity.user },
//!                 Err(refusal) => HostAnswer::Refused(refusal.to_string()),
//!             };
//!             exchange.answer(answer)
//!         }
//!         Step::Success(success) => break Some(success.user),
//!         Step::Failure(_) => break None,
//!         other => unreachable!("PLAIN with an initial response: {other:?}"),
//!     };
//! };
//! assert_eq!(user.as_deref(), Some("alice"));
//! ```
//!
//! # Secrets
//!
//! Passwords and tokens leave the exchange only in [`Secret`](skua_core::users::Secret)s; keys
//! stay in `ScramKeys`, which redacts and wipes. [`FailureReason`]'s text never holds client
//! data beyond what the mechanism grammar names, so it is safe for logs (fail2ban matches
//! on it).

mod gs2;
pub mod limits;
mod oauth;
mod offer;
mod password;
mod scram;
mod types;

pub use offer::Offer;
pub use types::{
    Context, Failure, FailureReason, HostAnswer, Mechanism, Step, Success, SuccessData,
};

use limits::CLIENT_MESSAGE_BYTES_MAX;
use oauth::{Flavor, OAuth};
use password::{External, Login, Plain, out_of_order};
use scram::Scram;

/// One SASL authentication attempt (see the module docs for the calling order).
#[derive(Debug)]
pub struct Exchange {
    mechanism: Mechanism,
    context: Context,
    state: State,
    expect: Expect,
}

/// The mechanism's own state.
#[derive(Debug)]
enum State {
    Plain(Plain),
    Login(Login),
    Scram(Scram),
    External(External),
    OAuth(OAuth),
}

/// Which call comes next.
#[derive(Debug)]
enum Expect {
    Begin,
    Client,
    Host,
    /// The success data went out as a challenge; an empty response yields this success.
    SuccessAcknowledgement(Success),
    Done,
}

impl Exchange {
    /// Starts an exchange for `mechanism`. Call [`Exchange::begin`] next.
    #[must_use]
    pub fn start(mechanism: Mechanism, context: Context) -> Exchange {
        let state = match mechanism {
            Mechanism::Plain => State::Plain(Plain::AwaitMessage),
            Mechanism::Login => State::Login(Login::User),
            Mechanism::External => State::External(External::AwaitMessage),
            Mechanism::OAuthBearer => State::OAuth(OAuth::AwaitMessage(Flavor::OAuthBearer)),
            Mechanism::XOAuth2 => State::OAuth(OAuth::AwaitMessage(Flavor::XOAuth2)),
            Mechanism::ScramSha1
            | Mechanism::ScramSha1Plus
            | Mechanism::ScramSha256
            | Mechanism::ScramSha256Plus => {
                let (algorithm, plus) = mechanism.scram().expect("a SCRAM mechanism");
                State::Scram(Scram::new(algorithm, plus))
            }
        };
        Exchange { mechanism, context, state, expect: Expect::Begin }
    }

    /// The mechanism.
    #[must_use]
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// True once a `Success` or `Failure` was returned.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        matches!(self.expect, Expect::Done)
    }

    /// The first step, with SASL-IR's initial response if the client sent one.
    pub fn begin(&mut self, initial: Option<&[u8]>) -> Step {
        if !matches!(self.expect, Expect::Begin) {
            return self.finish(out_of_order());
        }
        if initial.is_some_and(|data| data.len() > CLIENT_MESSAGE_BYTES_MAX) {
            return self.finish(Step::fail(FailureReason::Oversize));
        }
        let context = &self.context;
        let step = match &mut self.state {
            State::Plain(plain) => plain.begin(initial),
            State::Login(login) => login.begin(initial),
            State::External(external) => external.begin(initial),
            State::Scram(scram) => scram.begin(initial, context),
            State::OAuth(oauth) => oauth.begin(initial, context),
        };
        self.finish(step)
    }

    /// The client's answer to the last [`Step::Challenge`], base64-decoded.
    pub fn respond(&mut self, client: &[u8]) -> Step {
        match std::mem::replace(&mut self.expect, Expect::Done) {
            Expect::Client => {}
            Expect::SuccessAcknowledgement(success) => {
                return if client.is_empty() {
                    self.finish(Step::Success(success))
                } else {
                    self.finish(Step::malformed("response to the server's final data"))
                };
            }
            Expect::Begin | Expect::Host | Expect::Done => return self.finish(out_of_order()),
        }
        if client.len() > CLIENT_MESSAGE_BYTES_MAX {
            return self.finish(Step::fail(FailureReason::Oversize));
        }
        let context = &self.context;
        let step = match &mut self.state {
            State::Plain(plain) => plain.respond(client),
            State::Login(login) => login.respond(client),
            State::External(external) => external.respond(client),
            State::Scram(scram) => scram.respond(client, context),
            State::OAuth(oauth) => oauth.respond(client, context),
        };
        self.finish(step)
    }

    /// The host's answer to the last request step.
    pub fn answer(&mut self, answer: HostAnswer) -> Step {
        if !matches!(std::mem::replace(&mut self.expect, Expect::Done), Expect::Host) {
            return self.finish(out_of_order());
        }
        let context = &self.context;
        let step = match &mut self.state {
            State::Plain(plain) => plain.answer(answer),
            State::Login(login) => login.answer(answer),
            State::External(external) => external.answer(answer),
            State::Scram(scram) => scram.answer(answer, context),
            State::OAuth(oauth) => oauth.answer(answer, context),
        };
        self.finish(step)
    }

    /// The client cancelled (`*`): the exchange is over; the failure is for the log.
    pub fn cancel(&mut self) -> Failure {
        self.expect = Expect::Done;
        Failure { reason: FailureReason::Cancelled }
    }

    /// Records what the step makes the exchange wait for, and turns success data into a last
    /// challenge when the protocol needs that.
    fn finish(&mut self, step: Step) -> Step {
        let (expect, step) = match step {
            Step::Challenge(data) => (Expect::Client, Step::Challenge(data)),
            Step::Success(mut success)
                if self.context.success_data == SuccessData::AsChallenge
                    && success.final_data.is_some() =>
            {
                let data = success.final_data.take().unwrap_or_default();
                (Expect::SuccessAcknowledgement(success), Step::Challenge(data))
            }
            Step::Success(success) => (Expect::Done, Step::Success(success)),
            Step::Failure(failure) => (Expect::Done, Step::Failure(failure)),
            request => (Expect::Host, request),
        };
        self.expect = expect;
        step
    }
}
