//! LMTP (RFC 2033): how mail arrives. A sans-IO session turns the MTA's bytes into recipient
//! look-ups and one delivery per message; the shard does the look-ups and deliveries and feeds
//! the answers back. Extensions: PIPELINING (RFC 2920), ENHANCEDSTATUSCODES (RFC 2034),
//! 8BITMIME (RFC 6152), SIZE (RFC 1870), CHUNKING and BINARYMIME (RFC 3030), SMTPUTF8
//! (RFC 6531) and DSN (RFC 3461: parameters accepted and recorded, see `envelope.rs`).
//!
//! Why LMTP and not SMTP: LMTP gives one reply *per recipient* after the message, so a
//! delivery that fails for one user (over quota) does not make the MTA resend it to the others,
//! and the server never queues: it answers `250` for a recipient only when that user's copy is
//! durable.
//!
//! * [`LmtpSession`] — the state machine (`session.rs`; its docs give the calling order).
//! * [`deliver`] — stores one user's copy (in the mailbox its `+detail` names, or INBOX), on
//!   the user's home shard, with its trace header fields ([`delivery`]).
//! * [`command`] — the command-line grammar; [`envelope`] its parameters, [`xtext`] their
//!   encoding; [`address`] the `+detail` split.
//!
//! A transaction, as the shard sees it:
//!
//! ```text
//! C: LHLO mx.example.org                    S: 250-... capabilities
//! C: MAIL FROM:<a@example.org>              S: 250 2.1.0
//! C: RCPT TO:<b@example.com>   ─► ResolveRecipient ─► recipient_resolved ─► S: 250 2.1.5
//! C: DATA ... .                ─► Deliver(Delivery { message, copies: [b] }) ─► delivery_done([Ok])
//!                                                                        ─► S: 250 2.0.0 <b>
//! ```

pub mod address;
pub mod command;
mod data;
mod deliver;
pub mod delivery;
pub mod envelope;
pub mod limits;
mod reply;
mod session;
#[cfg(test)]
mod workload;
pub mod xtext;

pub use deliver::{deliver, target_mailbox};
pub use delivery::{Delivery, Target, Trace, UserCopy};
pub use reply::{DeliveryFailure, delivery_code};
pub use session::{LmtpSession, LmtpStep, ResolvedRecipient};

/// What bare line endings (an LF without CR, a CR without LF) in a message become
/// (`[lmtp] bare_line_endings`). A `BODY=BINARYMIME` message is always stored as sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BareLineEndings {
    /// Each becomes CRLF (default), so IMAP clients only ever see CRLF.
    #[default]
    Normalize,
    /// The message is refused for every recipient with `550 5.6.2`.
    Refuse,
}

use command::ParseOptions;

/// Session settings, usually one per listener, shared in an `Arc`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LmtpConfig {
    /// Our host name, in the greeting, `LHLO` reply and `221`.
    pub hostname: String,
    /// Largest message accepted (announced in `SIZE`); see [`limits::MESSAGE_BYTES_MAX`].
    pub max_message_bytes: u64,
    /// Most recipients per transaction; see [`limits::RECIPIENTS_MAX`].
    pub max_recipients: usize,
    /// Longest command line, CRLF included; see [`limits::COMMAND_LINE_BYTES_MAX`].
    pub command_line_bytes_max: usize,
    /// Parser leniencies (all off by default).
    pub parse_options: ParseOptions,
    /// TLS can be started (STARTTLS is announced in the `LHLO` reply until it is).
    pub starttls: bool,
    /// The `+detail` separator (`[lmtp] detail_separator`); `None`: no detail addressing.
    /// Used by the shard's recipient look-up ([`address::split_detail`]).
    pub detail_separator: Option<char>,
    /// Prepend `Received:` to each stored message (`[lmtp] received_header`).
    pub received_header: bool,
    /// Prepend `Delivered-To:` to each stored message (`[lmtp] delivered_to_header`).
    pub delivered_to_header: bool,
    /// Bare CR / LF in `DATA` and non-BINARYMIME `BDAT` (`[lmtp] bare_line_endings`).
    pub bare_line_endings: BareLineEndings,
    /// A recipient over quota gets `452 4.2.2` (the MTA retries) instead of `552 5.2.2` (it
    /// bounces) (`[lmtp] overquota_temporary`).
    pub overquota_temporary: bool,
}

impl LmtpConfig {
    /// Default limits and a strict parser.
    #[must_use]
    pub fn new(hostname: &str) -> LmtpConfig {
        LmtpConfig {
            hostname: hostname.to_owned(),
            max_message_bytes: limits::MESSAGE_BYTES_MAX,
            max_recipients: limits::RECIPIENTS_MAX,
            command_line_bytes_max: limits::COMMAND_LINE_BYTES_MAX,
            parse_options: ParseOptions::default(),
            starttls: false,
            detail_separator: Some('+'),
            received_header: true,
            delivered_to_header: true,
            bare_line_endings: BareLineEndings::Normalize,
            overquota_temporary: false,
        }
    }
}
