//! LOGIN and AUTHENTICATE PLAIN (RFC 9051 §6.2.2-3, RFC 4616, SASL-IR RFC 4959): the session
//! collects credentials and hands them to the shard ([`Step::Authenticate`]); the shard checks
//! them off the reactor and answers with [`ImapSession::auth_done`].
//!
//! [`Step::Authenticate`]: super::Step::Authenticate

use super::input::Frame;
use super::out::Out;
use super::{AUTH_FAILURES_MAX, AuthOutcome, ImapSession, Phase, caps};
use crate::imap::command;
use crate::imap::reply::{Code, Completion};
use crate::imap::types::{Secret, Tag};

impl ImapSession {
    /// The shard's answer to [`Step::Authenticate`].
    pub fn auth_done(&mut self, outcome: AuthOutcome) {
        let Phase::AuthPending { tag, .. } =
            std::mem::replace(&mut self.phase, Phase::NotAuthenticated)
        else {
            // auth_done without a pending authentication is the caller's bug; ignore it
            // rather than log somebody in.
            debug_assert!(false, "auth_done without Step::Authenticate");
            return;
        };
        let completion = match outcome {
            AuthOutcome::Success => {
                self.phase = Phase::Authenticated;
                self.input.set_limits(self.conn.config.frame_limits);
                let caps = caps::capabilities(&self.conn.config, true, self.conn.tls);
                Completion::ok("Logged in").with(Code::Capability(caps))
            }
            AuthOutcome::Failure => {
                self.auth_failures += 1;
                Completion::no("Invalid credentials").with(Code::AuthenticationFailed)
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
        self.phase = Phase::AuthPending { tag: tag.clone(), request: Some((user, password)) };
        None
    }

    /// Starts AUTHENTICATE PLAIN (with or without SASL-IR).
    pub(super) fn authenticate(
        &mut self,
        tag: &Tag,
        mechanism: &str,
        initial_response: Option<&Secret<String>>,
        out: &mut Out,
    ) -> Option<Completion> {
        if self.is_authenticated() {
            return Some(Completion::bad("Already logged in"));
        }
        if !mechanism.eq_ignore_ascii_case("PLAIN") {
            return Some(Completion::no("Unsupported mechanism").with(Code::Cannot));
        }
        if !caps::login_allowed(&self.conn.config, self.conn.tls) {
            return Some(
                Completion::no("Plaintext authentication needs TLS").with(Code::PrivacyRequired),
            );
        }
        match initial_response {
            Some(response) => self.sasl_response(tag.clone(), response.expose().as_bytes()),
            None => {
                out.put(b"+ \r\n");
                self.phase = Phase::SaslWaiting(tag.clone());
                None
            }
        }
    }

    /// Reads the SASL response line; false when more input is needed.
    pub(super) fn next_sasl(&mut self, out: &mut Out) -> bool {
        let Phase::SaslWaiting(tag) = &self.phase else {
            return false;
        };
        let tag = tag.clone();
        match self.input.next_frame() {
            Frame::NeedMore => false,
            Frame::Continue => {
                out.put(b"+ Ready for literal\r\n");
                true
            }
            Frame::Invalid { completion, fatal, .. } => {
                self.phase = Phase::NotAuthenticated;
                self.reply(Some(&tag), &completion, out);
                if fatal {
                    self.bye("Protocol error", out);
                }
                true
            }
            Frame::Line(line) => {
                self.phase = Phase::NotAuthenticated;
                if let Some(completion) = self.sasl_response(tag.clone(), line.as_bytes()) {
                    self.reply(Some(&tag), &completion, out);
                }
                true
            }
        }
    }

    /// Decodes a PLAIN response (`*` cancels) and hands the credentials to the shard.
    fn sasl_response(&mut self, tag: Tag, response: &[u8]) -> Option<Completion> {
        match command::auth::decode_plain(response) {
            Ok((user, password)) => {
                self.phase = Phase::AuthPending { tag, request: Some((user, password)) };
                None
            }
            Err(completion) => Some(completion),
        }
    }
}
