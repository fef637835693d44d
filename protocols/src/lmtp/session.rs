//! The LMTP session: a sans-IO state machine from client bytes to recipient look-ups,
//! deliveries and reply bytes.
//!
//! ```text
//!   greeting ─► Command ◄──────────────────────────────────────────────┐
//!                 │ RCPT ──► Step::ResolveRecipient ─ recipient_resolved ┤
//!                 │ DATA ──► Data (dot-unstuffing) ─┐                    │
//!                 │ BDAT ──► Chunk (raw n octets) ──┤ LAST / end of data │
//!                 │                                 ▼                    │
//!                 │              Step::Deliver ─ delivery_done ──────────┘
//!                 │       (one Delivery: the message once, one copy per user)
//!                 │ QUIT / too many errors
//!                 ▼
//!              Step::Close
//! ```
//!
//! Calling order: send [`LmtpSession::greeting`] once; then [`LmtpSession::feed`] the bytes
//! read from the socket and call [`LmtpSession::next`] until it returns
//! [`LmtpStep::NeedInput`] (read again) or [`LmtpStep::Close`]. After
//! [`LmtpStep::ResolveRecipient`] call [`LmtpSession::recipient_resolved`], after
//! [`LmtpStep::Deliver`] call [`LmtpSession::delivery_done`], before `next` again.
//!
//! Replies of pipelined commands are gathered into one [`LmtpStep::Write`], in command order;
//! pending replies are always written before the session waits for input, asks for a
//! delivery or closes, so a client that waits for a reply always gets it.

use std::net::IpAddr;
use std::sync::Arc;

use crate::lmtp::LmtpConfig;
use crate::lmtp::command::{self, ParseError};
use crate::lmtp::data::{DotReader, MessageBuffer};
use crate::lmtp::delivery::Delivery;
use crate::lmtp::envelope::{MailParameters, RcptParameters};
use crate::lmtp::limits::{ERRORS_MAX, OUTPUT_BATCH_BYTES_MAX};
use crate::lmtp::reply::{self, DeliveryFailure};

/// What the shard must do next for this session.
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub enum LmtpStep {
    /// Read more bytes from the client, [`LmtpSession::feed`] them, call `next` again.
    NeedInput,
    /// Send these bytes to the client, then call `next` again.
    Write(Vec<u8>),
    /// Look the recipient up (whole address, then local part: `UserDb::resolve_recipient`)
    /// and answer with [`LmtpSession::recipient_resolved`].
    ResolveRecipient {
        /// The address, without angle brackets.
        address: String,
    },
    /// Store each of the delivery's copies (each on its user's home shard, with
    /// `lmtp::deliver`), wait until each is durable, and answer with
    /// [`LmtpSession::delivery_done`], one result per copy, in order. A user is in one copy
    /// however many `RCPT`s reached it (see `delivery.rs`).
    Deliver(Arc<Delivery>),
    /// `220` to STARTTLS was written: run the TLS handshake as the server before reading
    /// anything else, then call [`LmtpSession::tls_started`] (or close when it fails). Bytes
    /// the client pipelined behind STARTTLS were discarded.
    StartTls,
    /// Close the connection (after writing everything returned before).
    Close,
}

/// The shard's answer to [`LmtpStep::ResolveRecipient`]: whose mailbox the address reaches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedRecipient {
    /// The canonical user name (as the passwd-file spells it).
    pub user: String,
    /// The `+detail` the address carried (see `address::split_detail`), if any.
    pub detail: Option<String>,
}

impl ResolvedRecipient {
    /// An address that reaches `user` with no detail.
    #[must_use]
    pub fn user(user: impl Into<String>) -> ResolvedRecipient {
        ResolvedRecipient { user: user.into(), detail: None }
    }
}

/// An accepted recipient: its address and the copy it joined.
#[derive(Debug)]
struct Recipient {
    address: String,
    copy: usize,
}

/// A `RCPT` waiting for its look-up.
#[derive(Debug)]
pub(super) struct PendingRecipient {
    address: String,
    parameters: RcptParameters,
}

/// A mail transaction, from `MAIL` to the end of the message or `RSET`.
#[derive(Debug)]
struct Transaction {
    return_path: String,
    mail: MailParameters,
    recipients: Vec<Recipient>,
    /// One per distinct user, in the order of their first `RCPT`.
    copies: Vec<crate::lmtp::delivery::UserCopy>,
    /// Set by the first `BDAT`.
    message: Option<MessageBuffer>,
    /// A `BDAT` chunk failed: later chunks are read and refused until `RSET` (RFC 3030 §2).
    failed: bool,
}

/// What the session is doing with its input.
#[derive(Debug)]
enum Mode {
    /// Reading command lines.
    Command,
    /// Skipping the rest of a command line that was too long.
    DiscardLine,
    /// Reading `DATA` content.
    Data(DotReader, MessageBuffer),
    /// Reading `remaining` octets of a `BDAT` chunk.
    Chunk { remaining: u64, last: bool, size: u64 },
    /// A delivery is ready; it is handed out once pending replies are written.
    DeliverReady(Arc<[u8]>),
    /// Waiting for [`LmtpSession::recipient_resolved`].
    AwaitResolve(Box<PendingRecipient>),
    /// Waiting for [`LmtpSession::delivery_done`].
    AwaitDelivery,
    /// STARTTLS answered: once the `220` is written, `StartTls` until `tls_started`.
    StartTls,
    /// Write what is pending, then close.
    Closing,
    /// Closed.
    Closed,
}

/// One LMTP connection's protocol state. `Send`: it may be built on one thread and run on
/// another.
#[derive(Debug)]
pub struct LmtpSession {
    config: Arc<LmtpConfig>,
    input: Vec<u8>,
    /// Bytes of `input` already consumed (compacted on `feed`).
    input_start: usize,
    out: Vec<u8>,
    mode: Mode,
    greeted: bool,
    transaction: Option<Transaction>,
    errors: u32,
    /// The connection is encrypted.
    tls: bool,
    /// The `LHLO` argument, for `Received:`.
    lhlo: String,
    /// The client's address, for `Received:`, when the shard gave it.
    peer: Option<IpAddr>,
    /// The session's id (from the shard), for `Received:`'s `id` clause.
    id: String,
    /// Transactions handed out for delivery so far (numbers each one's `id`).
    deliveries: u64,
    /// Transactions begun (`MAIL`) so far: the shard ties quota reservations to one.
    transactions: u64,
}

impl LmtpSession {
    /// A new session. Takes an `LmtpConfig` or an `Arc` of one shared by a listener.
    pub fn new(config: impl Into<Arc<LmtpConfig>>) -> LmtpSession {
        LmtpSession {
            config: config.into(),
            input: Vec::new(),
            input_start: 0,
            out: Vec::new(),
            mode: Mode::Command,
            greeted: false,
            transaction: None,
            errors: 0,
            tls: false,
            lhlo: String::new(),
            peer: None,
            id: "0".to_owned(),
            deliveries: 0,
            transactions: 0,
        }
    }

    /// Sets what `Received:` says about the connection: the client's address and an id
    /// unique to this session (an RFC 5322 `atom`; the transaction's number is appended).
    ///
    /// # Panics
    /// If `id` is not an atom (empty, or holding a space, a special or a control character).
    #[must_use]
    pub fn with_connection(mut self, peer: Option<IpAddr>, id: &str) -> LmtpSession {
        let atext = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b);
        assert!(!id.is_empty() && id.bytes().all(atext), "a session id is an atom");
        self.peer = peer;
        id.clone_into(&mut self.id);
        self
    }

    /// The `220` greeting, to send when the connection opens.
    #[must_use]
    pub fn greeting(&self) -> Vec<u8> {
        format!("220 {} LMTP skua ready\r\n", self.config.hostname).into_bytes()
    }

    /// Adds bytes read from the client. Call [`LmtpSession::next`] until `NeedInput` before
    /// reading more, so the buffered input stays bounded by one read.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.input_start > 0 {
            self.input.drain(..self.input_start);
            self.input_start = 0;
        }
        self.input.extend_from_slice(bytes);
    }

    /// True while a command is partly received: part of a command line, a line being
    /// discarded for its length, or `DATA` / `BDAT` content not yet complete. The shard holds
    /// such a connection to a whole-command deadline, not only to a per-read timeout.
    #[must_use]
    pub fn has_partial_command(&self) -> bool {
        match self.mode {
            Mode::Command => !self.pending_input().is_empty(),
            Mode::DiscardLine | Mode::Data(..) | Mode::Chunk { .. } => true,
            Mode::DeliverReady(_)
            | Mode::AwaitResolve(_)
            | Mode::AwaitDelivery
            | Mode::StartTls
            | Mode::Closing
            | Mode::Closed => false,
        }
    }

    /// Runs until the session needs something from the shard.
    ///
    /// # Panics
    /// If called while a [`LmtpStep::ResolveRecipient`] or [`LmtpStep::Deliver`] is
    /// unanswered: that is a bug in the caller.
    // Not an `Iterator`: it never ends, and the caller must answer some steps in between.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> LmtpStep {
        loop {
            if self.out.len() >= OUTPUT_BATCH_BYTES_MAX {
                return self.flush();
            }
            let step = match &mut self.mode {
                Mode::AwaitResolve(_) | Mode::AwaitDelivery => {
                    panic!("LmtpSession::next called before the pending request was answered")
                }
                Mode::Closed => return LmtpStep::Close,
                Mode::Closing => Some(self.next_closing()),
                Mode::StartTls => Some(self.flush_or(LmtpStep::StartTls)),
                Mode::DeliverReady(_) => Some(self.next_deliver()),
                Mode::Command => self.next_command(),
                Mode::DiscardLine => self.next_discard(),
                Mode::Data(..) => self.next_data(),
                Mode::Chunk { .. } => self.next_chunk(),
            };
            if let Some(step) = step {
                return step;
            }
        }
    }

    /// Answers [`LmtpStep::ResolveRecipient`]: `None` when the address reaches nobody.
    ///
    /// # Panics
    /// If no resolution was asked for.
    pub fn recipient_resolved(&mut self, resolved: Option<ResolvedRecipient>) {
        let Mode::AwaitResolve(pending) = std::mem::replace(&mut self.mode, Mode::Command) else {
            panic!("recipient_resolved without a pending ResolveRecipient");
        };
        let PendingRecipient { address, parameters } = *pending;
        let transaction = self.transaction.as_mut().expect("RCPT is resolved inside a transaction");
        if let Some(ResolvedRecipient { user, detail }) = resolved {
            let copy = transaction.join_copy(user, address.clone(), detail, parameters);
            transaction.recipients.push(Recipient { address, copy });
            reply::fixed(&mut self.out, reply::RECIPIENT_OK);
        } else {
            // A normal outcome, not a client error: it does not count towards `ERRORS_MAX`.
            let text = format!("5.1.1 <{address}>: user unknown");
            reply::line(&mut self.out, "550", &text);
        }
    }

    /// The message size `MAIL ... SIZE=` declared for the open transaction (RFC 1870), if any:
    /// the shard reserves that much of each recipient's quota at `RCPT`.
    #[must_use]
    pub fn declared_size(&self) -> Option<u64> {
        self.transaction.as_ref().and_then(|transaction| transaction.mail.size)
    }

    /// The open transaction's number (a new one at each `MAIL`), `None` outside one: what the
    /// shard reserved for a transaction that is no longer open is given back.
    #[must_use]
    pub fn transaction(&self) -> Option<u64> {
        self.transaction.as_ref().map(|_| self.transactions)
    }

    /// Answers a pending [`LmtpStep::ResolveRecipient`]: the user exists but the declared size
    /// does not fit their quota (`552 5.2.2`, or `452 4.2.2` with
    /// `LmtpConfig::overquota_temporary`). The recipient is not added.
    ///
    /// # Panics
    /// If no look-up is pending.
    pub fn recipient_over_quota(&mut self) {
        let Mode::AwaitResolve(pending) = std::mem::replace(&mut self.mode, Mode::Command) else {
            panic!("recipient_over_quota without a pending ResolveRecipient");
        };
        let (code, status) =
            if self.config.overquota_temporary { ("452", "4.2.2") } else { ("552", "5.2.2") };
        let text = format!("{status} <{}>: mailbox over quota", pending.address);
        reply::line(&mut self.out, code, &text);
    }

    /// Answers a pending [`LmtpStep::ResolveRecipient`]: the user exists but the operator
    /// denied them mail (`skua deny --services lmtp`): `550 5.2.1` mailbox disabled (RFC
    /// 3463). The recipient is not added.
    ///
    /// # Panics
    /// If no resolution was asked for.
    pub fn recipient_disabled(&mut self) {
        let Mode::AwaitResolve(pending) = std::mem::replace(&mut self.mode, Mode::Command) else {
            panic!("recipient_disabled without a pending ResolveRecipient");
        };
        let text = format!("5.2.1 <{}>: mailbox disabled", pending.address);
        reply::line(&mut self.out, "550", &text);
    }

    /// Answers [`LmtpStep::Deliver`] with one result per copy, in the order given; each
    /// recipient is answered, in `RCPT` order, with its copy's result.
    ///
    /// # Panics
    /// If no delivery was asked for, or the number of results is not the number of copies.
    pub fn delivery_done(&mut self, results: Vec<Result<(), DeliveryFailure>>) {
        assert!(matches!(self.mode, Mode::AwaitDelivery), "delivery_done without a Deliver");
        let transaction = self.transaction.take().expect("a delivery belongs to a transaction");
        let copies = transaction.recipients.iter().map(|r| r.copy + 1).max().unwrap_or(0);
        assert_eq!(results.len(), copies, "one result per copy");
        for recipient in &transaction.recipients {
            let temporary = self.config.overquota_temporary;
            reply::delivery(&mut self.out, &recipient.address, &results[recipient.copy], temporary);
        }
        self.mode = Mode::Command;
    }

    /// The TLS handshake asked for by [`LmtpStep::StartTls`] succeeded: the session starts
    /// over (RFC 3207 §4.2: the client must send LHLO again, and nothing learnt before counts).
    pub fn tls_started(&mut self) {
        self.tls = true;
        self.greeted = false;
        self.transaction = None;
        if matches!(self.mode, Mode::StartTls) {
            self.mode = Mode::Command;
        }
    }

    /// True once the connection runs TLS.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// `STARTTLS`: `220`, and every byte already received behind it thrown away (bytes sent in
    /// plain text must never be taken as commands sent over TLS).
    pub(crate) fn start_tls(&mut self) {
        if self.tls {
            self.command_failed(("503", "5.5.1 TLS is already active"));
            return;
        }
        if !self.config.starttls {
            self.command_failed(("502", "5.5.1 STARTTLS is not available here"));
            return;
        }
        let discarded = self.input.len() - self.input_start;
        if discarded > 0 {
            tracing::debug!(bytes = discarded, "discarded input pipelined after STARTTLS");
        }
        self.input_start = self.input.len();
        reply::line(&mut self.out, "220", "2.0.0 Ready to start TLS");
        self.mode = Mode::StartTls;
    }

    /// Pending replies first, then `step`.
    fn flush_or(&mut self, step: LmtpStep) -> LmtpStep {
        if self.out.is_empty() { step } else { LmtpStep::Write(std::mem::take(&mut self.out)) }
    }

    /// Hands out pending replies, or asks for input.
    fn flush(&mut self) -> LmtpStep {
        if self.out.is_empty() {
            LmtpStep::NeedInput
        } else {
            LmtpStep::Write(std::mem::take(&mut self.out))
        }
    }

    fn pending_input(&self) -> &[u8] {
        &self.input[self.input_start..]
    }

    fn next_closing(&mut self) -> LmtpStep {
        if !self.out.is_empty() {
            return self.flush();
        }
        self.mode = Mode::Closed;
        LmtpStep::Close
    }

    fn next_deliver(&mut self) -> LmtpStep {
        if !self.out.is_empty() {
            return self.flush();
        }
        let Mode::DeliverReady(message) = std::mem::replace(&mut self.mode, Mode::AwaitDelivery)
        else {
            unreachable!("checked by the caller");
        };
        self.deliveries += 1;
        let trace = crate::lmtp::delivery::Trace {
            lhlo: self.lhlo.clone(),
            peer: self.peer,
            hostname: self.config.hostname.clone(),
            tls: self.tls,
            id: format!("{}-{}", self.id, self.deliveries),
            received: self.config.received_header,
            delivered_to: self.config.delivered_to_header,
        };
        let transaction = self.transaction.as_mut().expect("a delivery belongs to a transaction");
        // The copies go with the delivery; the recipients stay to be answered in order.
        LmtpStep::Deliver(Arc::new(Delivery {
            message,
            return_path: transaction.return_path.clone(),
            mail: transaction.mail.clone(),
            trace,
            copies: std::mem::take(&mut transaction.copies),
        }))
    }

    fn next_command(&mut self) -> Option<LmtpStep> {
        let limit = self.config.command_line_bytes_max;
        let pending = self.pending_input();
        let Some(newline) = pending.iter().position(|&b| b == b'\n') else {
            if pending.len() > limit {
                self.input_start = self.input.len();
                self.mode = Mode::DiscardLine;
                return None;
            }
            return Some(self.flush());
        };
        let line = &pending[..newline + 1];
        if line.len() > limit {
            self.input_start += newline + 1;
            self.command_failed(reply::LINE_TOO_LONG);
            return None;
        }
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let parsed = command::parse(line, self.config.parse_options);
        self.input_start += newline + 1;
        match parsed {
            Ok(command) => return self.execute(command),
            Err(ParseError::Unknown) => self.command_failed(reply::UNKNOWN),
            Err(ParseError::Syntax(detail)) => {
                self.command_failed(("501", &format!("5.5.4 {detail}")));
            }
            Err(ParseError::Parameter(detail)) => {
                self.command_failed(("555", &format!("5.5.4 {detail}")));
            }
            Err(ParseError::NeedsSmtpUtf8) => self.command_failed(reply::NEEDS_SMTPUTF8),
        }
        None
    }

    fn next_discard(&mut self) -> Option<LmtpStep> {
        let pending = self.pending_input();
        if let Some(newline) = pending.iter().position(|&b| b == b'\n') {
            self.input_start += newline + 1;
            self.mode = Mode::Command;
            self.command_failed(reply::LINE_TOO_LONG);
            None
        } else {
            self.input_start = self.input.len();
            Some(self.flush())
        }
    }

    fn next_data(&mut self) -> Option<LmtpStep> {
        let Mode::Data(reader, message) = &mut self.mode else {
            unreachable!("checked by the caller");
        };
        let (used, finished) = reader.consume(&self.input[self.input_start..], message);
        self.input_start += used;
        if !finished {
            return Some(self.flush());
        }
        let Mode::Data(_, message) = std::mem::replace(&mut self.mode, Mode::Command) else {
            unreachable!("matched above");
        };
        self.message_complete(message);
        None
    }

    fn next_chunk(&mut self) -> Option<LmtpStep> {
        let Mode::Chunk { remaining, last, size } = &mut self.mode else {
            unreachable!("checked by the caller");
        };
        let available = self.input.len() - self.input_start;
        let take = usize::try_from(*remaining).unwrap_or(usize::MAX).min(available);
        let bytes = &self.input[self.input_start..self.input_start + take];
        *remaining -= take as u64;
        let (done, last, size) = (*remaining == 0, *last, *size);
        let transaction =
            self.transaction.as_mut().filter(|t| !t.failed && !t.recipients.is_empty());
        if let Some(message) = transaction.and_then(|t| t.message.as_mut()) {
            message.push(bytes);
        }
        self.input_start += take;
        if !done {
            return Some(self.flush());
        }
        self.mode = Mode::Command;
        self.chunk_complete(last, size);
        None
    }

    /// Records a failed command; too many in a row end the session.
    fn command_failed(&mut self, failure: (&str, &str)) {
        reply::line(&mut self.out, failure.0, failure.1);
        self.errors += 1;
        if self.errors >= ERRORS_MAX {
            let text =
                format!("4.7.0 {} Too many errors, closing connection", self.config.hostname);
            reply::line(&mut self.out, "421", &text);
            self.mode = Mode::Closing;
        }
    }

    fn command_succeeded(&mut self, success: (&str, &str)) {
        reply::line(&mut self.out, success.0, success.1);
        self.errors = 0;
    }
}

mod transaction;

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(session: &mut LmtpSession) {
        loop {
            match session.next() {
                LmtpStep::NeedInput => return,
                LmtpStep::Write(_) => {}
                LmtpStep::ResolveRecipient { .. } => {
                    session.recipient_resolved(Some(ResolvedRecipient::user("u")));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn a_partial_line_or_unfinished_data_is_a_partial_command() {
        let mut session = LmtpSession::new(LmtpConfig::new("test"));
        drain(&mut session);
        assert!(!session.has_partial_command(), "nothing received");
        session.feed(b"LHLO x\r\nMAIL FROM:<a@b>\r\nRC");
        drain(&mut session);
        assert!(session.has_partial_command(), "half a RCPT line");
        session.feed(b"PT TO:<u@b>\r\n");
        drain(&mut session);
        assert!(!session.has_partial_command(), "every line complete");
        session.feed(b"DATA\r\n");
        drain(&mut session);
        assert!(session.has_partial_command(), "DATA begun: the message is the command");
        session.feed(b"Subject: x\r\n\r\nbody\r\n");
        drain(&mut session);
        assert!(session.has_partial_command(), "no final dot yet");
    }

    /// `skua deny --services lmtp`: a denied recipient gets `550 5.2.1`, is not added, and
    /// the transaction goes on for the others.
    #[test]
    fn a_disabled_recipient_is_refused_and_the_others_go_on() {
        let mut session = LmtpSession::new(LmtpConfig::new("test"));
        drain(&mut session);
        session.feed(b"LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<off@b>\r\n");
        let mut written = Vec::new();
        loop {
            match session.next() {
                LmtpStep::Write(bytes) => written.extend(bytes),
                LmtpStep::ResolveRecipient { .. } => session.recipient_disabled(),
                LmtpStep::NeedInput => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        let text = String::from_utf8(written).unwrap();
        assert!(text.ends_with("550 5.2.1 <off@b>: mailbox disabled\r\n"), "{text}");
        session.feed(b"DATA\r\n");
        let mut written = Vec::new();
        while let LmtpStep::Write(bytes) = session.next() {
            written.extend(bytes);
        }
        assert!(
            written.starts_with(b"503"),
            "no valid recipients: {:?}",
            String::from_utf8_lossy(&written)
        );
    }
}
