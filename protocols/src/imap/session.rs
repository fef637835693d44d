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
//! user's store changed). After [`Step::Authenticate`], answer its [`AuthRequest`] (see there)
//! before `next` again. `store` must be the authenticated user's store once logged in.
//!
//! Each [`Step::Write`] holds the output of one or more pipelined commands; when any of them
//! mutated the store, `durable` carries the newest epoch the shard must see durable before
//! sending the write.

mod api;
pub(crate) mod caps;
mod compress;
mod idle;
mod input;
mod login;
pub(crate) mod notify;
pub(crate) mod out;
mod timing;

use std::sync::Arc;

use skua_core::disk::Disk;
use skua_core::store::UserStore;

pub use api::{AuthOutcome, AuthRequest, ElsewhereFailure, ImapConfig, OutChunk, Step};
pub use timing::{COMMAND_NAMES, COMMAND_OTHER, command_index};

use crate::imap::parser::{self, ParseOptions};
use crate::imap::reply::{Code, Completion};
use crate::imap::types::{Command, CommandBody, Tag};
use crate::imap::view::View;
use crate::imap::{command, framing};
use input::{Frame, Input};
use out::Out;

/// Consecutive BAD commands after which the server says BYE: a client that only sends
/// garbage is either broken or probing, and either way should not hold a connection.
pub const BAD_COMMANDS_MAX: u32 = 16;

/// Failed authentications after which the server says BYE: password guessing must cost a
/// new connection (and the shard's per-source throttle) every few tries.
pub const AUTH_FAILURES_MAX: u32 = 3;

/// Output batched from pipelined commands before it is handed to the shard.
const BATCH_BYTES_MAX: usize = 64 * 1024;

/// Pipelined commands run in one `next` call at most: the shard's other sessions get the core
/// back at least this often.
const BATCH_COMMANDS_MAX: u32 = 64;

/// Where the session is in the protocol.
#[derive(Debug)]
pub(crate) enum Phase {
    /// Before login.
    NotAuthenticated,
    /// AUTHENTICATE sent a challenge (`+ ...`); the next line is the client's SASL response.
    SaslWaiting(Box<login::Pending>),
    /// A login is with the shard: `request` is handed out once as `Step::Authenticate`, then
    /// the session waits for the answer (`auth_context`, `auth_answer` or `auth_done`).
    AuthPending(Box<login::Pending>),
    /// Logged in (Selected when `Conn::selected` is set).
    Authenticated,
    /// In IDLE, waiting for `DONE`.
    Idle(Tag),
    /// STARTTLS answered: once its OK is written, `Step::StartTls` until `tls_started`.
    StartTls,
    /// COMPRESS answered: once its OK is written, `Step::Compress` (then Authenticated).
    Compress,
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
    /// `ENABLE QRESYNC` (RFC 7162 §3.2.3): expunges are reported as `VANISHED`.
    pub qresync: bool,
    /// `ENABLE UIDONLY` (RFC 9586): no message sequence numbers either way.
    pub uidonly: bool,
    /// `ENABLE UTF8=ACCEPT` (RFC 6855, `command/utf8.rs`).
    pub utf8_accept: bool,
}

impl Enabled {
    /// Mailbox names are UTF-8 on the wire, both ways (IMAP4rev2 or UTF8=ACCEPT), not
    /// modified UTF-7.
    pub fn utf8_names(&self) -> bool {
        self.rev2 || self.utf8_accept
    }
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
    /// A command ended the session (BYE written): the session moves to Logout.
    pub closing: bool,
    /// The connection is encrypted (implicit TLS, or after STARTTLS).
    pub tls: bool,
    /// TLS 1.3 with an RFC 9266 `tls-exporter` value: the `-PLUS` SCRAM variants are offered.
    pub channel_binding: bool,
    /// The TLS client presented a verified certificate that maps to a user: EXTERNAL is
    /// offered.
    pub external: bool,
    /// Every user can pass SCRAM-SHA-1 / SCRAM-SHA-256 (see [`ImapSession::set_scram`]).
    pub scram_sha1: bool,
    /// See `scram_sha1`.
    pub scram_sha256: bool,
    /// Ends a paused command's slices early when other sessions wait (see
    /// [`ImapSession::set_interrupt`]).
    pub interrupt: Option<command::slice::Interrupt>,
    /// What NOTIFY SET asked for (RFC 5465), `None` without NOTIFY or after NOTIFY NONE.
    pub notify: Option<Box<notify::NotifyState>>,
    /// The logged-in user's canonical name (set by the runtime: [`ImapSession::set_user`]).
    pub user: Option<String>,
    /// Whose store this `next()` was given: `None` for the own user's, else another user's
    /// (a command on a shared folder, `command/route.rs`).
    pub store_owner: Option<String>,
    /// The selected view while the store at hand is not its owner's: set aside for this
    /// `next()`, so nothing compares its mailbox id with another store's.
    pub parked: Option<View>,
    /// The logged-in user is one of `ImapConfig::admins` (SETQUOTA, `command/quota.rs`).
    pub admin: bool,
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
    /// Failed authentications on this connection.
    auth_failures: u32,
    /// A command paused between slices (FETCH, SEARCH, LIST over much data): it runs on before
    /// any further input is looked at.
    running: Option<Box<command::Running>>,
    /// A command waiting for another user's store (`command/route.rs`): it runs when `next`
    /// is given that store.
    elsewhere: Option<Box<(Tag, CommandBody, Option<String>)>>,
    /// UNAUTHENTICATE ran since the runtime last asked ([`ImapSession::take_unauthenticated`]).
    unauthenticated: bool,
    /// COMPRESS DEFLATE runs on this connection (`session/compress.rs`).
    compressed: bool,
    /// Commands answered and since when they ran, for the runtime's latency metrics.
    clock: timing::CommandClock,
}

impl ImapSession {
    /// A new session for a fresh connection.
    #[must_use]
    pub fn new(config: Arc<ImapConfig>) -> ImapSession {
        ImapSession {
            input: Input::new(config.frame_limits.before_login()),
            phase: Phase::NotAuthenticated,
            conn: Conn {
                config,
                selected: None,
                enabled: Enabled::default(),
                closing: false,
                tls: false,
                channel_binding: false,
                external: false,
                scram_sha1: true,
                scram_sha256: true,
                interrupt: None,
                notify: None,
                user: None,
                store_owner: None,
                parked: None,
                admin: false,
            },
            pending: Vec::new(),
            bad_commands: 0,
            auth_failures: 0,
            running: None,
            elsewhere: None,
            unauthenticated: false,
            compressed: false,
            clock: timing::CommandClock::default(),
        }
    }

    /// Overrides [`ImapConfig::plaintext_login_allowed`] for this connection (the shard knows
    /// whether it is TLS or loopback). Call before [`ImapSession::greeting`].
    pub fn set_plaintext_login_allowed(&mut self, allowed: bool) {
        if self.conn.config.plaintext_login_allowed != allowed {
            Arc::make_mut(&mut self.conn.config).plaintext_login_allowed = allowed;
        }
    }

    /// Lets the slices of the commands that run next end early, once past
    /// [`SLICE_WORK_UNITS_MIN`](crate::imap::limits::SLICE_WORK_UNITS_MIN), when `interrupt`
    /// says another session is waiting (`None`: slices run their full budget). The shard gives
    /// one to commands that have run many slices already, so that a long command gives way to
    /// interactive ones at once while ordinary commands are not cut into more pieces.
    pub fn set_interrupt(&mut self, interrupt: Option<fn() -> bool>) {
        self.conn.interrupt = interrupt;
    }

    /// Which SCRAM algorithms this connection offers, besides `ImapConfig::scram` (the host
    /// knows whether every user has keys for them; both offered by default). Call before
    /// [`ImapSession::greeting`].
    pub fn set_scram(&mut self, sha1: bool, sha256: bool) {
        self.conn.scram_sha1 = sha1;
        self.conn.scram_sha256 = sha256;
    }

    /// The greeting to send first: `* OK [CAPABILITY ...] skua ready`.
    #[must_use]
    pub fn greeting(&self) -> Vec<u8> {
        let caps = caps::capabilities(&self.conn, false);
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

    /// True while a command is paused between slices of its work: after a [`Step::Write`]
    /// the shard yields to its other sessions before calling `next` again, so a long command
    /// never holds the core for more than one slice.
    #[must_use]
    pub fn in_progress(&self) -> bool {
        self.running.is_some()
    }

    /// True when part of a command has arrived but not all of it: the shard holds such a
    /// connection to a whole-command deadline, not only to a per-read timeout.
    #[must_use]
    pub fn has_partial_command(&self) -> bool {
        !self.input.is_idle()
    }

    /// True once logged in (the shard then passes the user's store to `next`).
    #[must_use]
    pub fn is_authenticated(&self) -> bool {
        matches!(self.phase, Phase::Authenticated | Phase::Idle(_) | Phase::Compress)
    }

    /// Runs until there is output to send or input is needed. See the module docs. `store` is
    /// the session's own user's (once logged in).
    pub fn next<D: Disk>(&mut self, store: Option<&mut UserStore<D>>) -> Step {
        self.next_on(None, store)
    }

    /// [`ImapSession::next`] with the store of `owner` (`None`: the session's own user), as
    /// [`Step::Elsewhere`] asked. Runs at most the commands that belong to that store: the
    /// first one that needs another ends the step with `Elsewhere` again.
    pub fn next_on<D: Disk>(
        &mut self,
        owner: Option<&str>,
        mut store: Option<&mut UserStore<D>>,
    ) -> Step {
        // On another user's store the session reads and writes `\Seen` as its own user's
        // (the owner's `seen.log`, `UserStore::set_reader`).
        let reader = owner.and(self.conn.user.clone());
        if let (Some(reader), Some(store)) = (reader.as_deref(), store.as_deref_mut())
            && let Err(error) = store.set_reader(Some(reader))
        {
            tracing::warn!(%error, "another user's seen.log cannot be read");
            self.elsewhere_failed(ElsewhereFailure::Unavailable);
            return Step::Elsewhere { owner: None };
        }
        let step = self.next_on_store(owner, store.as_deref_mut());
        if reader.is_some()
            && let Some(store) = store
        {
            let _ = store.set_reader(None);
        }
        step
    }

    /// `next_on` once the store's reader is set.
    fn next_on_store<D: Disk>(
        &mut self,
        owner: Option<&str>,
        store: Option<&mut UserStore<D>>,
    ) -> Step {
        self.conn.store_owner = owner.map(str::to_owned);
        // The selected view goes with the store it belongs to (see `Conn::parked`).
        let view = self.conn.selected.take().or_else(|| self.conn.parked.take());
        match view {
            Some(view) if command::route::same_owner(view.owner.as_deref(), owner) => {
                self.conn.selected = Some(view);
            }
            view => self.conn.parked = view,
        }
        self.next_here(store)
    }

    /// The logged-in user's canonical name; the runtime sets it when a login succeeds, before
    /// the next `next`. Names under `Other Users/<this user>/` are the user's own.
    pub fn set_user(&mut self, user: &str) {
        self.conn.user = Some(user.to_owned());
    }

    /// The owner of the selected mailbox when it is another user's (the runtime watches that
    /// user's changes while the session idles).
    #[must_use]
    pub fn selected_owner(&self) -> Option<&str> {
        self.conn.selected.as_ref().or(self.conn.parked.as_ref()).and_then(|v| v.owner.as_deref())
    }

    /// True while in IDLE (the runtime runs the session on the selected mailbox's store when
    /// that store changes).
    #[must_use]
    pub fn is_idling(&self) -> bool {
        matches!(self.phase, Phase::Idle(_))
    }

    /// The store asked for by [`Step::Elsewhere`] cannot be had: the command that waited for it
    /// is answered (`NO [NONEXISTENT]` for a user that does not exist, `NO [UNAVAILABLE]` when
    /// the owner's shard is busy or stopping) and nothing else changes.
    pub fn elsewhere_failed(&mut self, failure: ElsewhereFailure) {
        let completion = match failure {
            ElsewhereFailure::NoSuchUser => {
                Completion::no("No such mailbox").with(Code::Nonexistent)
            }
            ElsewhereFailure::Unavailable => {
                Completion::no("Mailbox unavailable, try again later").with(Code::Unavailable)
            }
        };
        let tag = match (self.elsewhere.take(), self.running.take()) {
            (Some(waiting), running) => {
                self.running = running;
                waiting.0
            }
            (None, Some(mut running)) => {
                if command::carry_on_without(&mut running, failure) {
                    // The paused command can do without that store (`carry_on_without`).
                    self.running = Some(running);
                    return;
                }
                running.tag
            }
            (None, None) => return,
        };
        let mut out = Out::starting_with(std::mem::take(&mut self.pending));
        self.complete(&tag, &completion, &mut out);
        self.pending = std::mem::take(out.buf());
    }

    /// The body of `next_on`, with the store at hand (`conn.store_owner`'s).
    fn next_here<D: Disk>(&mut self, mut store: Option<&mut UserStore<D>>) -> Step {
        let mut out = Out::starting_with(std::mem::take(&mut self.pending));
        // Pipelined commands share one write, and mutations one durability ticket (the newest
        // epoch): a burst of APPENDs waits for one flush, not one flush each. Replies are
        // released together, in order, once everything they depend on is durable.
        let mut commands = 0;
        loop {
            if commands >= BATCH_COMMANDS_MAX || out.total_bytes() >= BATCH_BYTES_MAX {
                // Not NeedInput: more commands may be buffered; the shard calls again.
                return write(out);
            }
            if let Some(waiting) = self.elsewhere.take() {
                let (tag, body, owner) = *waiting;
                if !command::route::same_owner(owner.as_deref(), self.conn.store_owner.as_deref()) {
                    self.elsewhere = Some(Box::new((tag, body, owner.clone())));
                    return flush_or_leave(out, owner);
                }
                commands += 1;
                self.command(Command { tag, body }, store.as_deref_mut(), &mut out);
                continue;
            }
            if let Some(running) = self.running.take() {
                if !command::route::same_owner(
                    running.owner.as_deref(),
                    self.conn.store_owner.as_deref(),
                ) {
                    let owner = running.owner.clone();
                    self.running = Some(running);
                    return flush_or_leave(out, owner);
                }
                if commands > 0 {
                    // A command paused in this turn: its next slice waits for the next turn,
                    // after the shard wrote this one's output and let others run.
                    self.running = Some(running);
                    return flush_or(out, Step::Yield);
                }
                commands += 1;
                self.resume(*running, store.as_deref_mut(), &mut out);
                continue;
            }
            if self.notify_fetch_pending()
                && self.conn.store_owner.is_none()
                && let Some(store) = store.as_deref_mut()
            {
                // NOTIFY's FETCH of new messages paused: it ends before the next command.
                command::notify::report(&mut self.conn, store, &mut out);
                return flush_or(out, Step::Yield);
            }
            match &mut self.phase {
                Phase::Logout => {
                    return if out.is_empty() { Step::Close } else { write(out) };
                }
                Phase::AuthPending(pending) => {
                    if !out.is_empty() {
                        return write(out);
                    }
                    return match pending.request.take() {
                        Some(request) => Step::Authenticate(request),
                        None => Step::NeedInput,
                    };
                }
                Phase::Idle(_) => return self.next_idle(store.as_deref_mut(), out),
                Phase::StartTls => return flush_or(out, Step::StartTls),
                Phase::Compress => {
                    if !out.is_empty() {
                        return write(out);
                    }
                    return self.compress_started();
                }
                Phase::SaslWaiting(_) => {
                    if !self.next_sasl(&mut out) {
                        return flush_or(out, Step::NeedInput);
                    }
                }
                Phase::NotAuthenticated | Phase::Authenticated => match self.input.next_frame() {
                    Frame::NeedMore => return self.wait_notifying(store.as_deref_mut(), out),
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
                    Frame::Line(frame) => {
                        commands += 1;
                        self.line(frame, store.as_deref_mut(), &mut out);
                    }
                },
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
            utf8_names: self.conn.enabled.utf8_names(),
        };
        let parsed = parser::parse_frame(frame, &options);
        self.clock.started(parsed.as_ref().map_or(COMMAND_OTHER, |c| command_index(&c.body)));
        match parsed {
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
        if self.conn.store_owner.is_some()
            && let command::route::Route::Elsewhere(owner) =
                command::route::route(&self.conn, &body)
        {
            // On another user's store only the commands that belong to it run; this one (a
            // CAPABILITY, a LOGOUT, a command on the own store...) waits for its own store.
            self.elsewhere = Some(Box::new((tag, body, owner)));
            return;
        }
        let completion = match body {
            CommandBody::Capability => {
                let caps = caps::capabilities(&self.conn, self.is_authenticated());
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
                self.authenticate(&tag, &mechanism, initial_response.as_ref())
            }
            CommandBody::StartTls => self.start_tls(),
            CommandBody::Unauthenticate if matches!(self.phase, Phase::Authenticated) => {
                Some(self.unauthenticate())
            }
            CommandBody::Compress if matches!(self.phase, Phase::Authenticated) => {
                Some(self.compress())
            }
            ref body
                if self.conn.config.require_tls
                    && !self.conn.tls
                    && !matches!(body, CommandBody::Noop) =>
            {
                Some(Completion::no("TLS is required: use STARTTLS").with(Code::PrivacyRequired))
            }
            body => self.command_store(&tag, body, store, out),
        };
        if let Some(completion) = completion {
            self.complete(&tag, &completion, out);
        }
        if self.conn.closing {
            self.phase = Phase::Logout;
        }
    }

    /// STARTTLS (RFC 9051 §6.2.1): refused once TLS runs, after login, or where no TLS is
    /// configured. Otherwise the OK is queued, and whatever the client sent behind the command
    /// is thrown away (the STARTTLS command-injection class: bytes that arrived in plain text
    /// must never run as if they came over TLS); `next` then asks for the handshake.
    fn start_tls(&mut self) -> Option<Completion> {
        if self.conn.tls {
            return Some(Completion::bad("TLS is already active"));
        }
        if self.is_authenticated() {
            return Some(Completion::bad("STARTTLS is only valid before login"));
        }
        if !self.conn.config.starttls {
            return Some(Completion::bad("STARTTLS is not available here"));
        }
        let discarded = self.input.take_unframed();
        if !discarded.is_empty() {
            tracing::debug!(bytes = discarded.len(), "discarded input pipelined after STARTTLS");
        }
        self.phase = Phase::StartTls;
        Some(Completion::ok("Begin TLS negotiation now"))
    }

    /// UNAUTHENTICATE (RFC 8437): back to the not-authenticated state on the same connection.
    /// The selected mailbox is closed without expunging, and what ENABLE turned on is off
    /// (it was the previous user's session); TLS and what it offers stay. The runtime learns
    /// of it from [`ImapSession::take_unauthenticated`] and lets the user's store go.
    fn unauthenticate(&mut self) -> Completion {
        self.conn.selected = None;
        self.conn.parked = None;
        self.conn.user = None;
        self.conn.enabled = Enabled::default();
        self.conn.admin = false;
        self.conn.notify = None;
        self.phase = Phase::NotAuthenticated;
        self.unauthenticated = true;
        Completion::ok("UNAUTHENTICATE completed")
    }

    /// True (once) after UNAUTHENTICATE: the session no longer needs the store it was given,
    /// and the next login may be another user's.
    pub fn take_unauthenticated(&mut self) -> bool {
        std::mem::take(&mut self.unauthenticated)
    }

    /// The TLS handshake asked for by [`Step::StartTls`] succeeded (or the connection began with
    /// implicit TLS: call this before [`ImapSession::greeting`]). The session is back at the
    /// start of the not-authenticated state, with plain-text passwords allowed and STARTTLS no
    /// longer announced.
    pub fn tls_started(&mut self) {
        self.conn.tls = true;
        if matches!(self.phase, Phase::StartTls) {
            self.phase = Phase::NotAuthenticated;
        }
    }

    /// Runs the next slice of a paused command; finishes it (tagged reply) when it is done.
    fn resume<D: Disk>(
        &mut self,
        running: command::Running,
        store: Option<&mut UserStore<D>>,
        out: &mut Out,
    ) {
        let tag = running.tag.clone();
        let Some(store) = store else {
            debug_assert!(false, "a paused command without the store");
            let completion = Completion::no("Store unavailable").with(Code::ServerBug);
            self.complete(&tag, &completion, out);
            return;
        };
        match command::resume(&mut self.conn, store, running, out) {
            command::Outcome::Paused(running) => self.running = Some(running),
            command::Outcome::Done(completion) => {
                self.complete(&tag, &completion, out);
                if self.conn.closing {
                    self.phase = Phase::Logout;
                }
            }
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
        match command::route::route(&self.conn, &body) {
            command::route::Route::Here => {}
            command::route::Route::Refuse(completion) => return Some(completion),
            command::route::Route::Elsewhere(owner) => {
                // `next_here` asks for the store before it runs anything else.
                self.elsewhere = Some(Box::new((tag.clone(), body, owner)));
                return None;
            }
        }
        if matches!(body, CommandBody::Idle) {
            out.put(b"+ idling\r\n");
            self.phase = Phase::Idle(tag.clone());
            command::sync(&mut self.conn, store, true, out);
            return None;
        }
        match command::run(&mut self.conn, store, tag, body, out) {
            command::Outcome::Done(completion) => Some(completion),
            command::Outcome::Paused(running) => {
                // The tagged reply comes with the last slice (see `resume`).
                self.running = Some(running);
                None
            }
        }
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
            if tag.is_some() {
                self.clock.answered();
            }
            completion.write(tag.map_or("*", Tag::as_str), out.buf());
        }
    }

    /// Writes a BAD (tagged, or untagged without a tag); too many in a row end the session.
    fn bad(&mut self, tag: Option<&Tag>, completion: &Completion, out: &mut Out) {
        if tag.is_some() {
            self.clock.answered();
        }
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

/// [`flush_or`] before the session leaves the store at hand (`Step::Elsewhere`): a write
/// also when `out` holds only a durability ticket, so that what the store wrote is durable
/// before a step on another store relies on it (a grant note, `command/acl_grant.rs`).
fn flush_or_leave(out: Out, owner: Option<String>) -> Step {
    if out.is_empty() && out.durable.is_none() { Step::Elsewhere { owner } } else { write(out) }
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
    fn plaintext_can_be_refused_per_connection() {
        let config = Arc::new(ImapConfig::new("mx.example"));
        let mut session = ImapSession::new(config.clone());
        session.set_plaintext_login_allowed(false);
        let greeting = String::from_utf8(session.greeting()).unwrap();
        assert!(greeting.contains("LOGINDISABLED"), "{greeting}");
        assert!(config.plaintext_login_allowed, "the shared config is untouched");
    }

    #[test]
    fn step_debug_redacts_the_password() {
        let step = Step::Authenticate(AuthRequest::Password {
            mechanism: None,
            authcid: "alice".into(),
            authzid: None,
            password: crate::imap::types::Secret::from("hunter2"),
        });
        let text = format!("{step:?}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}
