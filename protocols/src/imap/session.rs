//! The IMAP session: a sans-IO state machine that turns client bytes into store operations and
//! response bytes.
//!
//! ```text
//!                 greeting
//!                    │
//!          ┌─────────▼──────────┐  LOGIN / AUTHENTICATE ──► Step::Authenticate
//!          │  NotAuthenticated  │◄──────── auth_done(Failure) ──┐
//!          └─────────┬──────────┘                               │
//!                    │ auth_done(Success)                        │
//!          ┌─────────▼──────────┐  SELECT/EXAMINE  ┌──────────┐ │
//!          │   Authenticated    ├─────────────────►│ Selected │ │
//!          │                    │◄─ CLOSE/UNSELECT─┤ (+ View) │ │
//!          └─────────┬──────────┘                  └────┬─────┘ │
//!                    │ LOGOUT (any state)               │ IDLE ... DONE
//!                    ▼                                  ▼
//!                 Logout ──► Step::Close            Step::Idle
//! ```
//!
//! Calling order: `greeting()` once; then `feed(bytes)` whenever bytes arrive and `next(store)`
//! until it returns [`Step::NeedInput`] (or [`Step::Idle`]: call again on input or when the
//! user's store changed). After [`Step::Authenticate`], call [`ImapSession::auth_done`] before
//! `next` again. `store` must be the authenticated user's store once logged in.
//!
//! Each [`Step::Write`] holds the output of one or more commands; when a command mutated the
//! store its tagged reply ends the write and `durable` carries the epoch the shard must see
//! durable before sending it.

mod caps;
mod input;
pub(crate) mod out;

use std::sync::Arc;

use skua_core::disk::{Bytes, Disk};
use skua_core::store::UserStore;
use skua_core::types::Epoch;

use crate::imap::parser::{self, ParseOptions};
use crate::imap::{command, framing};
use crate::imap::limits::{FrameLimits, ParseLimits};
use crate::imap::reply::{Code, Completion};
use crate::imap::types::{Command, CommandBody, Tag};
use crate::imap::view::View;
use input::{Frame, Input};
use out::Out;

/// Consecutive BAD commands after which the server says BYE: a client that only sends
/// garbage is either broken or probing, and either way should not hold a connection.
pub const BAD_COMMANDS_MAX: u32 = 16;

/// Output batched from pipelined read-only commands before it is handed to the shard.
const BATCH_BYTES_MAX: usize = 64 * 1024;

/// Session settings, shared by every session of a listener.
#[derive(Clone, Debug)]
pub struct ImapConfig {
    /// Host name used in the greeting.
    pub hostname: String,
    /// LOGIN and AUTHENTICATE PLAIN are allowed (TLS or loopback; the shard decides).
    pub plaintext_login_allowed: bool,
    /// Announce and honour CONDSTORE (RFC 7162).
    pub condstore: bool,
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
    /// Check these credentials (off the reactor) and call [`ImapSession::auth_done`].
    Authenticate {
        /// The user name as sent.
        user: String,
        /// The password as sent; never log it.
        password: String,
    },
    /// In IDLE: call `next` again when bytes arrive or the user's store changed.
    Idle,
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
            Step::Idle => f.write_str("Idle"),
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
}

/// Where the session is in the protocol.
#[derive(Debug)]
pub(crate) enum Phase {
    /// Before login.
    NotAuthenticated,
    /// AUTHENTICATE sent `+ `; the next line is the client's SASL response.
    SaslWaiting(Tag),
    /// Credentials given to the shard; `request` is handed out once, then we wait for
    /// `auth_done`.
    AuthPending {
        /// The command's tag.
        tag: Tag,
        /// Not yet returned as `Step::Authenticate`.
        request: Option<(String, String)>,
    },
    /// Logged in (Selected when `Conn::selected` is set).
    Authenticated,
    /// In IDLE, waiting for `DONE`.
    Idle(Tag),
    /// LOGOUT or a fatal error: everything written, then `Step::Close`.
    Logout,
}

/// Extensions the client turned on with ENABLE (or implicitly, as CONDSTORE by use).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Enabled {
    /// `ENABLE IMAP4rev2`
    pub rev2: bool,
    /// `ENABLE CONDSTORE` or a CONDSTORE-enabling command (RFC 7162 §3.1).
    pub condstore: bool,
}

/// The session state commands may read and change.
#[derive(Debug)]
pub(crate) struct Conn {
    /// Settings.
    pub config: Arc<ImapConfig>,
    /// The selected mailbox, if any.
    pub selected: Option<View>,
    /// Enabled extensions.
    pub enabled: Enabled,
}

/// One client connection's IMAP state machine. `Send`: it moves to the user's home shard.
pub struct ImapSession {
    input: Input,
    phase: Phase,
    conn: Conn,
    /// Output queued outside `next` (by `auth_done`), sent first.
    pending: Vec<u8>,
    /// Consecutive BAD replies.
    bad_commands: u32,
}

impl ImapSession {
    /// A new session for a fresh connection.
    #[must_use]
    pub fn new(config: Arc<ImapConfig>) -> ImapSession {
        ImapSession {
            input: Input::new(config.frame_limits),
            phase: Phase::NotAuthenticated,
            conn: Conn { config, selected: None, enabled: Enabled::default() },
            pending: Vec::new(),
            bad_commands: 0,
        }
    }

    /// The greeting to send first: `* OK [CAPABILITY ...] skua ready`.
    #[must_use]
    pub fn greeting(&self) -> Vec<u8> {
        let caps = caps::capabilities(&self.conn.config, false);
        let mut out = Vec::new();
        Completion::ok(format!("{} skua ready", self.conn.config.hostname))
            .with(Code::Capability(caps))
            .write("*", &mut out);
        out
    }

    /// Bytes from the client.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.input.feed(bytes);
    }

    /// True once logged in (the shard then passes the user's store to `next`).
    #[must_use]
    pub fn is_authenticated(&self) -> bool {
        matches!(self.phase, Phase::Authenticated | Phase::Idle(_))
    }

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
                let caps = caps::capabilities(&self.conn.config, true);
                Completion::ok("Logged in").with(Code::Capability(caps))
            }
            AuthOutcome::Failure => {
                Completion::no("Invalid credentials").with(Code::AuthenticationFailed)
            }
            AuthOutcome::Unavailable => {
                Completion::no("Authentication unavailable, try later").with(Code::Unavailable)
            }
        };
        completion.write(tag.as_str(), &mut self.pending);
    }

    /// Runs until there is output to send or input is needed. See the module docs.
    pub fn next<D: Disk>(&mut self, mut store: Option<&mut UserStore<D>>) -> Step {
        let mut out = Out::default();
        out.put(&std::mem::take(&mut self.pending));
        loop {
            if out.durable.is_some() || out.buf().len() >= BATCH_BYTES_MAX {
                return write(out);
            }
            match &mut self.phase {
                Phase::Logout => {
                    return if out.is_empty() { Step::Close } else { write(out) };
                }
                Phase::AuthPending { request, .. } => {
                    if !out.is_empty() {
                        return write(out);
                    }
                    return match request.take() {
                        Some((user, password)) => Step::Authenticate { user, password },
                        None => Step::NeedInput,
                    };
                }
                Phase::Idle(_) => return self.next_idle(store.as_deref_mut(), out),
                Phase::SaslWaiting(_) => {
                    if !self.next_sasl(&mut out) {
                        return flush_or(out, Step::NeedInput);
                    }
                }
                Phase::NotAuthenticated | Phase::Authenticated => {
                    match self.input.next_frame() {
                        Frame::NeedMore => return flush_or(out, Step::NeedInput),
                        Frame::Continue => {
                            out.put(b"+ Ready for literal\r\n");
                            return write(out);
                        }
                        Frame::Invalid { tag, completion, fatal } => {
                            self.reply(tag.as_ref(), &completion, &mut out);
                            if fatal {
                                self.bye("Protocol error", &mut out);
                            }
                        }
                        Frame::Line(frame) => self.line(frame, store.as_deref_mut(), &mut out),
                    }
                }
            }
        }
    }

    /// Parses and runs one command line.
    fn line<D: Disk>(
        &mut self,
        frame: framing::Frame,
        store: Option<&mut UserStore<D>>,
        out: &mut Out,
    ) {
        let options = ParseOptions {
            limits: self.conn.config.parse_limits,
            utf8_names: self.conn.enabled.rev2,
        };
        match parser::parse_frame(frame, &options) {
            Ok(command) => self.command(command, store, out),
            Err(error) => {
                let completion = Completion::bad(error.message);
                self.bad(error.tag.as_ref(), &completion, out);
            }
        }
    }

    /// Runs one parsed command.
    fn command<D: Disk>(
        &mut self,
        command: Command,
        store: Option<&mut UserStore<D>>,
        out: &mut Out,
    ) {
        let Command { tag, body } = command;
        let completion = match body {
            CommandBody::Capability => {
                let caps = caps::capabilities(&self.conn.config, self.is_authenticated());
                out.put(format!("* CAPABILITY {caps}\r\n").as_bytes());
                Some(Completion::ok("CAPABILITY completed"))
            }
            CommandBody::Logout => {
                out.put(b"* BYE Logging out\r\n");
                self.phase = Phase::Logout;
                Some(Completion::ok("LOGOUT completed"))
            }
            CommandBody::Login { user, password } => self.login(&tag, user, password),
            CommandBody::Authenticate { mechanism, initial_response } => {
                self.authenticate(&tag, &mechanism, initial_response.as_deref(), out)
            }
            CommandBody::StartTls => Some(Completion::bad("STARTTLS is not available here")),
            body => self.command_store(&tag, body, store, out),
        };
        if let Some(completion) = completion {
            self.complete(&tag, &completion, out);
        }
    }

    /// Commands that need the user's store.
    fn command_store<D: Disk>(
        &mut self,
        tag: &Tag,
        body: CommandBody,
        store: Option<&mut UserStore<D>>,
        out: &mut Out,
    ) -> Option<Completion> {
        if !matches!(self.phase, Phase::Authenticated) {
            return Some(match body {
                CommandBody::Noop | CommandBody::Id => command::misc::stateless(&body, out),
                _ => Completion::bad("Log in first"),
            });
        }
        let Some(store) = store else {
            // The shard must pass the store once logged in; refusing is all we can do.
            debug_assert!(false, "next() without a store after login");
            return Some(Completion::no("Store unavailable").with(Code::ServerBug));
        };
        if matches!(body, CommandBody::Idle) {
            out.put(b"+ idling\r\n");
            self.phase = Phase::Idle(tag.clone());
            command::sync(&mut self.conn, store, true, out);
            return None;
        }
        Some(command::run(&mut self.conn, store, tag, body, out))
    }

    /// Writes a tagged completion and keeps the count of consecutive BADs.
    fn complete(&mut self, tag: &Tag, completion: &Completion, out: &mut Out) {
        self.reply(Some(tag), completion, out);
    }

    /// Writes a completion (untagged without a tag) and keeps the count of consecutive BADs.
    fn reply(&mut self, tag: Option<&Tag>, completion: &Completion, out: &mut Out) {
        if completion.status == crate::imap::reply::Status::Bad {
            self.bad(tag, completion, out);
        } else {
            self.bad_commands = 0;
            completion.write(tag.map_or("*", Tag::as_str), out.buf());
        }
    }

    /// Writes a BAD (tagged, or untagged without a tag); too many in a row end the session.
    fn bad(&mut self, tag: Option<&Tag>, completion: &Completion, out: &mut Out) {
        completion.write(tag.map_or("*", Tag::as_str), out.buf());
        self.bad_commands += 1;
        if self.bad_commands >= BAD_COMMANDS_MAX {
            self.bye("Too many invalid commands", out);
        }
    }

    /// Writes `* BYE text` and ends the session.
    fn bye(&mut self, text: &str, out: &mut Out) {
        out.put(format!("* BYE {text}\r\n").as_bytes());
        self.phase = Phase::Logout;
    }

    /// Starts LOGIN: refused without a safe channel, else handed to the shard.
    fn login(&mut self, tag: &Tag, user: String, password: String) -> Option<Completion> {
        if self.is_authenticated() {
            return Some(Completion::bad("Already logged in"));
        }
        if !self.conn.config.plaintext_login_allowed {
            return Some(
                Completion::no("Plaintext login needs TLS").with(Code::PrivacyRequired),
            );
        }
        self.phase = Phase::AuthPending { tag: tag.clone(), request: Some((user, password)) };
        None
    }

    /// Starts AUTHENTICATE PLAIN (with or without SASL-IR).
    fn authenticate(
        &mut self,
        tag: &Tag,
        mechanism: &str,
        initial_response: Option<&str>,
        out: &mut Out,
    ) -> Option<Completion> {
        if self.is_authenticated() {
            return Some(Completion::bad("Already logged in"));
        }
        if !mechanism.eq_ignore_ascii_case("PLAIN") {
            return Some(Completion::no("Unsupported mechanism").with(Code::Cannot));
        }
        if !self.conn.config.plaintext_login_allowed {
            return Some(
                Completion::no("Plaintext authentication needs TLS").with(Code::PrivacyRequired),
            );
        }
        match initial_response {
            Some(response) => self.sasl_response(tag.clone(), response.as_bytes()),
            None => {
                out.put(b"+ \r\n");
                self.phase = Phase::SaslWaiting(tag.clone());
                None
            }
        }
    }

    /// Reads the SASL response line; false when more input is needed.
    fn next_sasl(&mut self, out: &mut Out) -> bool {
        let Phase::SaslWaiting(tag) = &self.phase else { return false };
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

    /// IDLE: `DONE` ends it; otherwise report what changed in the store.
    fn next_idle<D: Disk>(&mut self, store: Option<&mut UserStore<D>>, mut out: Out) -> Step {
        let Phase::Idle(tag) = &self.phase else { return flush_or(out, Step::NeedInput) };
        let tag = tag.clone();
        if let Some(store) = store {
            command::sync(&mut self.conn, store, true, &mut out);
        }
        let completion = match self.input.next_frame() {
            Frame::NeedMore => return flush_or(out, Step::Idle),
            Frame::Continue => {
                out.put(b"+ Ready for literal\r\n");
                return write(out);
            }
            Frame::Invalid { completion, fatal, .. } => {
                if fatal {
                    self.bye("Protocol error", &mut out);
                    return write(out);
                }
                completion
            }
            Frame::Line(line) if parser::parse_idle_done(line.as_bytes()).is_ok() => {
                Completion::ok("IDLE terminated")
            }
            Frame::Line(_) => Completion::bad("Expected DONE"),
        };
        self.phase = Phase::Authenticated;
        self.reply(Some(&tag), &completion, &mut out);
        write(out)
    }
}

/// A write step for `out`.
fn write(out: Out) -> Step {
    let (chunks, durable) = out.finish();
    Step::Write { chunks, durable }
}

/// `out` as a write if it holds anything, else `otherwise`.
fn flush_or(out: Out, otherwise: Step) -> Step {
    if out.is_empty() { otherwise } else { write(out) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn session_is_send() {
        // The shard moves a session to the user's home shard after login.
        assert_send::<ImapSession>();
    }

    #[test]
    fn greeting_names_capabilities() {
        let session = ImapSession::new(Arc::new(ImapConfig::new("mx.example")));
        let greeting = String::from_utf8(session.greeting()).unwrap();
        assert!(greeting.starts_with("* OK [CAPABILITY IMAP4rev1 IMAP4rev2 "), "{greeting}");
        assert!(greeting.ends_with("] mx.example skua ready\r\n"), "{greeting}");
    }

    #[test]
    fn step_debug_redacts_the_password() {
        let step = Step::Authenticate { user: "alice".into(), password: "hunter2".into() };
        let text = format!("{step:?}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}
