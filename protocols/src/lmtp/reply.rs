//! LMTP reply lines, with RFC 3463 enhanced status codes (RFC 2034), and the outcome of one
//! recipient's delivery.
//!
//! Every reply the session sends is built here, so the codes can be read in one place.

use std::fmt;

/// Why one recipient's copy was not delivered. The shard (or [`super::deliver`]) produces it;
/// the session turns it into that recipient's reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryFailure {
    /// The user's quota is exhausted: `552 5.2.2` (the MTA bounces), or `452 4.2.2` when
    /// `LmtpConfig::overquota_temporary` asks the MTA to retry after the user made room.
    OverQuota,
    /// The message is larger than this user's store accepts: `552 5.3.4`.
    TooLarge,
    /// The disk is full: `452 4.3.1`.
    StorageFull,
    /// Anything else that may succeed later (store cannot be opened, I/O error, the home
    /// shard is gone): `451 4.3.0`. The reason is for the log, never sent to the client.
    Temporary(String),
}

impl DeliveryFailure {
    /// A [`DeliveryFailure::Temporary`] with a reason for the log.
    #[must_use]
    pub fn temporary(reason: impl Into<String>) -> DeliveryFailure {
        DeliveryFailure::Temporary(reason.into())
    }
}

impl fmt::Display for DeliveryFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeliveryFailure::OverQuota => f.write_str("mailbox over quota"),
            DeliveryFailure::TooLarge => f.write_str("message too large"),
            DeliveryFailure::StorageFull => f.write_str("insufficient storage"),
            DeliveryFailure::Temporary(reason) => write!(f, "temporary failure: {reason}"),
        }
    }
}

/// Appends the reply for one recipient's delivery outcome.
pub(crate) fn delivery(
    out: &mut Vec<u8>,
    address: &str,
    outcome: &Result<(), DeliveryFailure>,
    overquota_temporary: bool,
) {
    let (code, text) = delivery_code(outcome, overquota_temporary);
    out.extend_from_slice(format!("{code} <{address}> {text}\r\n").as_bytes());
}

/// The reply code (with its enhanced status code) and text of a delivery's outcome: what the
/// client is told, and what the shard's per-recipient log line says. Over quota is permanent
/// (`552 5.2.2`: the MTA bounces) unless the config asks for a temporary failure (`452
/// 4.2.2`: the MTA keeps the message and retries, for sites that expect users to make room).
#[must_use]
pub fn delivery_code(
    outcome: &Result<(), DeliveryFailure>,
    overquota_temporary: bool,
) -> (&'static str, &'static str) {
    match outcome {
        Ok(()) => ("250 2.0.0", "Delivered"),
        Err(DeliveryFailure::OverQuota) if overquota_temporary => {
            ("452 4.2.2", "Mailbox over quota")
        }
        Err(DeliveryFailure::OverQuota) => ("552 5.2.2", "Mailbox over quota"),
        Err(DeliveryFailure::TooLarge) => ("552 5.3.4", "Message too big"),
        Err(DeliveryFailure::StorageFull) => ("452 4.3.1", "Insufficient system storage"),
        Err(DeliveryFailure::Temporary(_)) => ("451 4.3.0", "Temporary failure, try again later"),
    }
}

/// Appends one recipient's reply that is not a delivery outcome: `code SP status SP <address>
/// SP text CRLF`, with `reply.1` as `"status text"`.
pub(crate) fn recipient_line(out: &mut Vec<u8>, reply: (&str, &str), address: &str) {
    let (status, text) = reply.1.split_once(' ').expect("a status and a text");
    out.extend_from_slice(format!("{} {status} <{address}> {text}\r\n", reply.0).as_bytes());
}

/// Appends one single-line reply: `code SP text CRLF`.
pub(crate) fn line(out: &mut Vec<u8>, code: &str, text: &str) {
    out.extend_from_slice(code.as_bytes());
    out.push(b' ');
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `250 2.0.0 Ok`
pub(crate) const OK: (&str, &str) = ("250", "2.0.0 Ok");
/// After `MAIL`.
pub(crate) const SENDER_OK: (&str, &str) = ("250", "2.1.0 Sender ok");
/// After an accepted `RCPT`.
pub(crate) const RECIPIENT_OK: (&str, &str) = ("250", "2.1.5 Recipient ok");
/// After `DATA`.
pub(crate) const START_DATA: (&str, &str) = ("354", "Start mail input; end with <CRLF>.<CRLF>");
/// `VRFY` is not answered (RFC 5321 §3.5.3 allows 252; user lists are private).
pub(crate) const VRFY: (&str, &str) =
    ("252", "2.5.0 Cannot VRFY user, but will accept message and attempt delivery");
/// `HELO`/`EHLO`.
pub(crate) const USE_LHLO: (&str, &str) = ("500", "5.5.1 This is LMTP: use LHLO");
/// Unknown verb.
pub(crate) const UNKNOWN: (&str, &str) = ("500", "5.5.1 Unknown command");
/// A command line over the limit.
pub(crate) const LINE_TOO_LONG: (&str, &str) = ("500", "5.5.2 Line too long");
/// Before `LHLO`.
pub(crate) const NEED_LHLO: (&str, &str) = ("503", "5.5.1 Send LHLO first");
/// `MAIL` inside a transaction.
pub(crate) const NESTED_MAIL: (&str, &str) = ("503", "5.5.1 MAIL already given");
/// `RCPT`/`DATA`/`BDAT` outside a transaction.
pub(crate) const NEED_MAIL: (&str, &str) = ("503", "5.5.1 Send MAIL first");
/// `DATA`/`BDAT LAST` without an accepted recipient (RFC 2033 §4.2).
pub(crate) const NO_RECIPIENTS: (&str, &str) = ("503", "5.5.1 No valid recipients");
/// `DATA` after `BDAT` in one transaction, or `RCPT` after `BDAT` started the message.
pub(crate) const MIXED_DATA: (&str, &str) = ("503", "5.5.1 Message transfer already started");
/// `BDAT` after a failed chunk (RFC 3030 §2: the client must `RSET`).
pub(crate) const TRANSACTION_FAILED: (&str, &str) =
    ("503", "5.5.1 Transaction failed earlier; send RSET");
/// A `SIZE=` or a chunk over the limit.
pub(crate) const TOO_BIG: (&str, &str) = ("552", "5.3.4 Message too big for system");
/// A non-ASCII address in a transaction without `SMTPUTF8` (RFC 6531 §3.6.2).
pub(crate) const NEEDS_SMTPUTF8: (&str, &str) = ("553", "5.6.7 Non-ASCII address needs SMTPUTF8");
/// `DATA` in a `BODY=BINARYMIME` transaction (RFC 3030 §3: `BDAT` only).
pub(crate) const BINARYMIME_NEEDS_BDAT: (&str, &str) =
    ("503", "5.5.1 BODY=BINARYMIME requires BDAT");
/// Per recipient, a message with a bare CR or LF under `bare_line_endings = "refuse"`: the
/// message would need a conversion the config forbids (RFC 3463 X.6.2); a policy refusal after
/// the data, which RFC 5321 §4.3.2 answers with 550.
pub(crate) const BARE_LINE_ENDING: (&str, &str) =
    ("550", "5.6.2 Bare CR or LF in the message is not allowed");
/// Recipient limit reached.
pub(crate) const TOO_MANY_RECIPIENTS: (&str, &str) = ("452", "4.5.3 Too many recipients");

/// Appends one of the constant replies above.
pub(crate) fn fixed(out: &mut Vec<u8>, reply: (&str, &str)) {
    line(out, reply.0, reply.1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_replies() {
        let mut out = Vec::new();
        delivery(&mut out, "a@b", &Ok(()), false);
        delivery(&mut out, "a@b", &Err(DeliveryFailure::OverQuota), false);
        delivery(&mut out, "a@b", &Err(DeliveryFailure::OverQuota), true);
        delivery(&mut out, "a@b", &Err(DeliveryFailure::temporary("disk on fire")), false);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "250 2.0.0 <a@b> Delivered\r\n552 5.2.2 <a@b> Mailbox over quota\r\n\
             452 4.2.2 <a@b> Mailbox over quota\r\n\
             451 4.3.0 <a@b> Temporary failure, try again later\r\n"
        );
    }
}
