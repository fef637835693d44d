//! LOGIN and AUTHENTICATE (RFC 9051 §6.2.2-3, SASL-IR RFC 4959): the session runs the SASL
//! exchange ([`crate::sasl::Exchange`]) and hands the shard what needs it as typed
//! [`AuthRequest`]s; the shard answers with [`ImapSession::auth_context`],
//! [`ImapSession::auth_answer`] and [`ImapSession::auth_done`].
//!
//! ```text
//!  AUTHENTICATE m [ir] ─ m not offered ─► NO [CANNOT] / NO [PRIVACYREQUIRED]
//!         │ bad base64 in ir ─► BAD
//!         ▼
//!  Context{m} ── auth_context ──► exchange.begin(ir) ─► step ◄─────────────────────┐
//!      step Challenge ─► "+ base64" ─► line: "*" ─► BAD; bad base64 ─► BAD;        │
//!                                      else exchange.respond ──────────────────────┤
//!      step VerifyPassword/ScramCredentials/VerifyToken/External                    │
//!            ─► Password/ScramCredentials/Token/External ── auth_answer ───────────┘
//!      step Success ─► LogIn ── auth_done(Success | Limit | Unavailable)
//!      step Failure ─► Cancelled: BAD; Unavailable: NO [UNAVAILABLE];
//!                      else Failed ── auth_done(Failure) ─► NO [AUTHENTICATIONFAILED]
//!  LOGIN u p ─► Password ── auth_answer ─► LogIn / Failed (as above)
//! ```
//!
//! Every failure that counts (see the table in [`crate::sasl`]) goes to the shard as
//! [`AuthRequest::Failed`], so that the failed-login brake sees guesses made with any
//! mechanism, and the BYE after [`AUTH_FAILURES_MAX`] failures applies to all of them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::input::Frame;
use super::out::Out;
use super::{AUTH_FAILURES_MAX, AuthOutcome, AuthRequest, ImapSession, Phase, caps};
use crate::imap::parser::{self, SaslResponse};
use crate::imap::reply::{Code, Completion};
use crate::imap::types::{Secret, Tag};
use crate::sasl::{Context, Exchange, FailureReason, HostAnswer, Mechanism, Step as SaslStep};

/// A login in progress: the command's tag, the exchange (none for the LOGIN command), and
/// the request not yet handed to the shard.
#[derive(Debug)]
pub(crate) struct Pending {
    tag: Tag,
    /// The mechanism, or `None` for the LOGIN command.
    mechanism: Option<Mechanism>,
    exchange: Option<Exchange>,
    /// SASL-IR's decoded initial response, kept until the exchange begins.
    initial: Option<Secret<Vec<u8>>>,
    /// Handed out once by `next` as `Step::Authenticate`.
    pub(super) request: Option<AuthRequest>,
    /// The name the client tried, once known (for the shard's log line).
    authcid: Option<String>,
    /// A password check (which goes through the brake itself) answered in this exchange.
    counted: bool,
    /// The user the exchange logs in as is one of `ImapConfig::admins`.
    admin: bool,
}

impl ImapSession {
    /// What the TLS layer established, after [`ImapSession::tls_started`]: whether the
    /// connection has an RFC 9266 `tls-exporter` channel binding (TLS 1.3; offers the
    /// `-PLUS` mechanisms) and a verified client certificate that maps to a user (offers
    /// EXTERNAL).
    pub fn set_tls_identity(&mut self, channel_binding: bool, external: bool) {
        self.conn.channel_binding = channel_binding;
        self.conn.external = external;
    }

    /// The shard's answer to [`AuthRequest::Context`]: a fresh context for the exchange.
    /// `plus_advertised` is set here from what this connection offers.
    pub fn auth_context(&mut self, mut context: Context) {
        let Some(mut pending) = self.take_pending() else { return };
        let Some(mechanism) = pending.mechanism.filter(|_| pending.exchange.is_none()) else {
            debug_assert!(false, "auth_context answers AuthRequest::Context only");
            return self.end_login(&pending.tag, AuthOutcome::Unavailable);
        };
        context.plus_advertised = caps::offer(&self.conn).plus_advertised();
        let mut exchange = Exchange::start(mechanism, context);
        let initial = pending.initial.take();
        let step = exchange.begin(initial.as_ref().map(|data| data.expose().as_slice()));
        pending.exchange = Some(exchange);
        let mut out = std::mem::take(&mut self.pending);
        self.sasl_step(pending, step, &mut out);
        self.pending = out;
    }

    /// The shard's answer to [`AuthRequest::Password`], [`AuthRequest::ScramCredentials`],
    /// [`AuthRequest::Token`] or [`AuthRequest::External`].
    pub fn auth_answer(&mut self, answer: HostAnswer) {
        let Some(mut pending) = self.take_pending() else { return };
        let mut out = std::mem::take(&mut self.pending);
        if let Some(exchange) = pending.exchange.as_mut() {
            let step = exchange.answer(answer);
            self.sasl_step(pending, step, &mut out);
        } else {
            // The LOGIN command: no exchange, the answer is the verdict.
            let step = match answer {
                HostAnswer::Accepted { user } => SaslStep::Success(crate::sasl::Success {
                    user,
                    authcid: pending.authcid.clone().unwrap_or_default(),
                    authzid: None,
                    final_data: None,
                }),
                HostAnswer::Refused(reason) => failure(FailureReason::Refused(reason)),
                HostAnswer::NotAuthorized(reason) => failure(FailureReason::NotAuthorized(reason)),
                HostAnswer::Unavailable | HostAnswer::ScramKeys(_) => {
                    failure(FailureReason::Unavailable)
                }
            };
            self.sasl_step(pending, step, &mut out);
        }
        self.pending = out;
    }

    /// The shard's verdict: answers [`AuthRequest::LogIn`] and [`AuthRequest::Failed`], or
    /// ends any pending login early (throttled, shutting down).
    pub fn auth_done(&mut self, outcome: AuthOutcome) {
        let Some(pending) = self.take_pending() else { return };
        self.end_login(&pending.tag, outcome);
        self.conn.admin = pending.admin && self.is_authenticated();
    }

    /// Answers a pending login whose credentials were right but whose user the operator
    /// denied (`skua deny`): `NO [CONTACTADMIN] message` (RFC 5530), the session stays not
    /// authenticated. Not counted as a failed attempt: the client proved who it is.
    pub fn auth_disabled(&mut self, message: &str) {
        let Some(pending) = self.take_pending() else { return };
        self.clock.answered();
        let text: String = message.chars().filter(|c| (' '..='~').contains(c)).collect();
        Completion::no(text)
            .with(Code::ContactAdmin)
            .write(pending.tag.as_str(), &mut self.pending);
    }

    /// The pending login, leaving the session not authenticated; `None` (and a debug assert)
    /// when there is none: an answer without a request is the caller's bug, and is ignored
    /// rather than allowed to log somebody in.
    fn take_pending(&mut self) -> Option<Box<Pending>> {
        match std::mem::replace(&mut self.phase, Phase::NotAuthenticated) {
            Phase::AuthPending(pending) if pending.request.is_none() => Some(pending),
            other => {
                debug_assert!(false, "an authentication answer without a request: {other:?}");
                self.phase = other;
                None
            }
        }
    }

    /// Writes the tagged reply that ends a login.
    fn end_login(&mut self, tag: &Tag, outcome: AuthOutcome) {
        let completion = match outcome {
            AuthOutcome::Success => {
                self.phase = Phase::Authenticated;
                self.input.set_limits(self.conn.config.frame_limits);
                let caps = caps::capabilities(&self.conn, true);
                Completion::ok("Logged in").with(Code::Capability(caps))
            }
            AuthOutcome::Failure => {
                self.auth_failures += 1;
                Completion::no("Invalid credentials").with(Code::AuthenticationFailed)
            }
            AuthOutcome::NotAuthorized => {
                self.auth_failures += 1;
                Completion::no("Not authorized to log in as that user")
                    .with(Code::AuthorizationFailed)
            }
            AuthOutcome::Unavailable => {
                Completion::no("Authentication unavailable, try later").with(Code::Unavailable)
            }
            AuthOutcome::Throttled => {
                self.auth_failures += 1;
                Completion::no("Too many failed logins from this address, try later")
                    .with(Code::Unavailable)
            }
            AuthOutcome::Limit => {
                Completion::no("Too many sessions for this user").with(Code::Limit)
            }
        };
        self.clock.answered();
        completion.write(tag.as_str(), &mut self.pending);
        if self.auth_failures >= AUTH_FAILURES_MAX {
            self.pending.extend_from_slice(b"* BYE Too many failed authentications\r\n");
            self.phase = Phase::Logout;
        }
    }

    /// Starts LOGIN: refused without a safe channel, else handed to the shard.
    pub(super) fn login(
        &mut self,
        tag: &Tag,
        user: String,
        password: Secret<String>,
    ) -> Option<Completion> {
        if self.is_authenticated() {
            return Some(Completion::bad("Already logged in"));
        }
        if !caps::login_allowed(&self.conn.config, self.conn.tls) {
            return Some(Completion::no("Plaintext login needs TLS").with(Code::PrivacyRequired));
        }
        let request = AuthRequest::Password {
            mechanism: None,
            authcid: user.clone(),
            authzid: None,
            password,
        };
        self.phase = Phase::AuthPending(Box::new(Pending {
            tag: tag.clone(),
            mechanism: None,
            exchange: None,
            initial: None,
            request: Some(request),
            authcid: Some(user),
            counted: true,
            admin: false,
        }));
        None
    }

    /// Starts AUTHENTICATE: the mechanism must be one this connection offers; the shard is
    /// then asked for the exchange's context.
    pub(super) fn authenticate(
        &mut self,
        tag: &Tag,
        name: &str,
        initial_response: Option<&Secret<String>>,
    ) -> Option<Completion> {
        if self.is_authenticated() {
            return Some(Completion::bad("Already logged in"));
        }
        let offer = caps::offer(&self.conn);
        let Some(mechanism) = Mechanism::from_name(name.as_bytes()) else {
            return Some(Completion::no("Unsupported mechanism").with(Code::Cannot));
        };
        if !offer.allows(mechanism) {
            let sends_secret = mechanism.sends_password()
                || matches!(mechanism, Mechanism::OAuthBearer | Mechanism::XOAuth2);
            return Some(
                if sends_secret && !caps::login_allowed(&self.conn.config, self.conn.tls) {
                    Completion::no("Plaintext authentication needs TLS").with(Code::PrivacyRequired)
                } else {
                    Completion::no("Mechanism not available on this connection").with(Code::Cannot)
                },
            );
        }
        let initial = match initial_response {
            None => None,
            Some(text) => match parser::decode_initial_response(text.expose()) {
                Ok(data) => Some(Secret::new(data)),
                Err(_) => return Some(Completion::bad("Invalid base64 in initial response")),
            },
        };
        self.phase = Phase::AuthPending(Box::new(Pending {
            tag: tag.clone(),
            mechanism: Some(mechanism),
            exchange: None,
            initial,
            request: Some(AuthRequest::Context { mechanism }),
            authcid: None,
            counted: false,
            admin: false,
        }));
        None
    }

    /// Reads the client's answer to a challenge; false when more input is needed.
    pub(super) fn next_sasl(&mut self, out: &mut Out) -> bool {
        if !matches!(self.phase, Phase::SaslWaiting(_)) {
            return false;
        }
        let frame = self.input.next_frame();
        if matches!(frame, Frame::NeedMore) {
            return false;
        }
        let Phase::SaslWaiting(mut pending) =
            std::mem::replace(&mut self.phase, Phase::NotAuthenticated)
        else {
            unreachable!("checked above");
        };
        let tag = pending.tag.clone();
        match frame {
            Frame::NeedMore => unreachable!("checked above"),
            Frame::Continue => {
                // A literal in a SASL response: not in the grammar; the framer asks for it.
                out.put(b"+ Ready for literal\r\n");
                self.phase = Phase::SaslWaiting(pending);
            }
            Frame::Invalid { completion, fatal, .. } => {
                self.reply(Some(&tag), &completion, out);
                if fatal {
                    self.bye("Protocol error", out);
                }
            }
            Frame::Line(line) => {
                let exchange = pending.exchange.as_mut().expect("a challenge came from one");
                match parser::parse_sasl_response(line.as_bytes().trim_ascii_end()) {
                    Ok(SaslResponse::Cancel) => {
                        let _ = exchange.cancel();
                        let completion = Completion::bad("Authentication cancelled");
                        self.reply(Some(&tag), &completion, out);
                    }
                    Ok(SaslResponse::Data(data)) => {
                        let data = Secret::new(data);
                        let step = exchange.respond(data.expose());
                        self.sasl_step(pending, step, out.buf());
                    }
                    Err(_) => {
                        let completion = Completion::bad("Invalid base64 in SASL response");
                        self.reply(Some(&tag), &completion, out);
                    }
                }
            }
        }
        true
    }

    /// Acts on an exchange's step: a challenge to the client, a request to the shard, or the
    /// end of the exchange.
    fn sasl_step(&mut self, mut pending: Box<Pending>, step: SaslStep, out: &mut Vec<u8>) {
        let request = match step {
            SaslStep::Challenge(data) => {
                out.extend_from_slice(b"+ ");
                out.extend_from_slice(STANDARD.encode(data).as_bytes());
                out.extend_from_slice(b"\r\n");
                self.phase = Phase::SaslWaiting(pending);
                return;
            }
            SaslStep::VerifyPassword { authcid, authzid, password } => {
                pending.authcid = Some(authcid.clone());
                pending.counted = true;
                AuthRequest::Password { mechanism: pending.mechanism, authcid, authzid, password }
            }
            SaslStep::ScramCredentials { authcid, authzid, algorithm } => {
                pending.authcid = Some(authcid.clone());
                AuthRequest::ScramCredentials { authcid, authzid, algorithm }
            }
            SaslStep::VerifyToken { token, authzid } => AuthRequest::Token {
                mechanism: pending.mechanism.unwrap_or(Mechanism::OAuthBearer),
                token,
                authzid,
            },
            SaslStep::External { authzid } => AuthRequest::External { authzid },
            SaslStep::Success(success) => {
                // Decided where the user is known; applied on `AuthOutcome::Success`.
                let admins = &self.conn.config.admins;
                pending.admin = admins.iter().any(|a| a.eq_ignore_ascii_case(&success.user));
                AuthRequest::LogIn {
                    mechanism: pending.mechanism,
                    user: success.user,
                    authcid: success.authcid,
                    counted: pending.counted,
                }
            }
            SaslStep::Failure(failure) => match failure.reason {
                FailureReason::Cancelled => {
                    self.clock.answered();
                    Completion::bad("Authentication cancelled").write(pending.tag.as_str(), out);
                    return;
                }
                FailureReason::Unavailable => {
                    self.clock.answered();
                    Completion::no("Authentication unavailable, try later")
                        .with(Code::Unavailable)
                        .write(pending.tag.as_str(), out);
                    return;
                }
                reason => AuthRequest::Failed {
                    mechanism: pending.mechanism,
                    authcid: pending.authcid.clone(),
                    reason,
                    counted: pending.counted,
                },
            },
        };
        pending.request = Some(request);
        self.phase = Phase::AuthPending(pending);
    }
}

/// A failure step for the LOGIN command's verdicts.
fn failure(reason: FailureReason) -> SaslStep {
    SaslStep::Failure(crate::sasl::Failure { reason })
}
