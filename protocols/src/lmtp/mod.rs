//! LMTP (RFC 2033): how mail arrives. A sans-IO session turns the MTA's bytes into recipient
//! look-ups and one delivery per message; the shard does the look-ups and deliveries and feeds
//! the answers back. Extensions: PIPELINING (RFC 2920), ENHANCEDSTATUSCODES (RFC 2034),
//! 8BITMIME (RFC 6152), SIZE (RFC 1870) and CHUNKING (RFC 3030).
//!
//! Why LMTP and not SMTP: LMTP gives one reply *per recipient* after the message, so a
//! delivery that fails for one user (over quota) does not make the MTA resend it to the others,
//! and the server never queues: it answers `250` for a recipient only when that user's copy is
//! durable.
//!
//! * [`LmtpSession`] — the state machine (`session.rs`; its docs give the calling order).
//! * [`deliver`] — stores one copy in one user's INBOX, on the user's home shard.
//! * [`command`] — the command-line grammar.
//!
//! A transaction, as the shard sees it:
//!
//! ```text
//! C: LHLO mx.example.org                    S: 250-... capabilities
//! C: MAIL FROM:<a@example.org>              S: 250 2.1.0
//! C: RCPT TO:<b@example.com>   ─► ResolveRecipient ─► recipient_resolved ─► S: 250 2.1.5
//! C: DATA ... .                ─► Deliver { message, [b] } ─► delivery_done([Ok])
//!                                                                        ─► S: 250 2.0.0 <b>
//! ```

pub mod command;
mod data;
mod deliver;
pub mod limits;
mod reply;
mod session;
#[cfg(test)]
mod workload;

pub use deliver::deliver;
pub use reply::{DeliveryFailure, delivery_code};
pub use session::{LmtpSession, LmtpStep, ResolvedRecipient};

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
        }
    }
}
