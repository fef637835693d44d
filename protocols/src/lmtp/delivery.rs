//! What one finished LMTP transaction asks the shard to store: the message once, the
//! envelope, the connection's trace data, and one [`UserCopy`] per distinct user.
//!
//! **One copy per user.** Recipients that resolve to the same user (`user1`, `USER1`,
//! `user1@other.org`, `user1+Work`) join that user's copy as [`Target`]s; at delivery the home
//! shard picks each target's mailbox (`deliver.rs`) and stores one message per distinct
//! mailbox, so the three spellings of one user to one folder are stored once. Every `RCPT`
//! still gets its own reply, in order (the copy's outcome).
//!
//! **Trace header fields, per stored message.** Each stored message starts with
//!
//! ```text
//! Return-Path: <reverse-path>                          (RFC 5321 §4.4, always)
//! Delivered-To: rcpt-address                           (RFC 9228; [lmtp] delivered_to_header)
//! Received: from lhlo-name ([peer-ip])                 (RFC 5321 §4.4; [lmtp] received_header)
//!         by hostname (skua) with LMTP[S] id session-id-n
//!         for <rcpt-address>; date-time
//! ```
//!
//! where `rcpt-address` is the `RCPT TO` address of the first target stored in that mailbox
//! (the final recipient, with its `+detail`). `ORCPT`, `NOTIFY`, `RET`, `ENVID` and `BODY` go
//! to the delivery log line, not into the message: the original recipient is the sender
//! side's business, and the `RCPT` address is what the user's filters expect. The header
//! fields are a few hundred bytes built per stored message; the message body is shared
//! (`Arc<[u8]>`) and copied once into the store's record.

use std::net::IpAddr;
use std::sync::Arc;

use skua_core::types::InternalDate;

use crate::imap::parser::date::{MONTH_NAMES, civil_from_days};
use crate::lmtp::envelope::{MailParameters, RcptParameters};

/// A finished transaction, shared by every copy's delivery (`Send + Sync`, owned data only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The client's message bytes (dot-unstuffed, line endings per the policy).
    pub message: Arc<[u8]>,
    /// The reverse path of `MAIL FROM`, empty for `<>`.
    pub return_path: String,
    /// The `MAIL` parameters.
    pub mail: MailParameters,
    /// What the `Received:` field says about the connection.
    pub trace: Trace,
    /// One per distinct user, in the order of their first `RCPT`.
    pub copies: Vec<UserCopy>,
}

/// The connection facts of a `Received:` field and which trace fields to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    /// The `LHLO` argument (a domain or address literal).
    pub lhlo: String,
    /// The client's address, when the shard gave it.
    pub peer: Option<IpAddr>,
    /// Our host name.
    pub hostname: String,
    /// The connection runs TLS (`with LMTPS`, RFC 3848).
    pub tls: bool,
    /// The `id` clause: the session's id and the transaction's number in it.
    pub id: String,
    /// Write `Received:`.
    pub received: bool,
    /// Write `Delivered-To:`.
    pub delivered_to: bool,
}

/// One user's copy: the recipients that reached this user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserCopy {
    /// The canonical user name (as the passwd-file spells it).
    pub user: String,
    /// The recipients, in `RCPT` order.
    pub targets: Vec<Target>,
}

/// One accepted `RCPT` of a copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The address as given in `RCPT TO`.
    pub address: String,
    /// The `+detail` of the address, naming a mailbox (see `deliver::target_mailbox`).
    pub detail: Option<String>,
    /// The `RCPT` parameters.
    pub parameters: RcptParameters,
}

impl Delivery {
    /// The header fields that start the message stored for `target` (see the module doc),
    /// dated `date` (the delivery's time, from the shard's clock).
    #[must_use]
    pub fn header_fields(&self, target: &Target, date: InternalDate) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_FIELDS_BYTES_TYPICAL);
        self.write_header_fields(&mut out, target, date);
        out
    }

    /// The message stored for `target`: its header fields, then the client's bytes, in one
    /// buffer sized once.
    #[must_use]
    pub fn message_for(&self, target: &Target, date: InternalDate) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_FIELDS_BYTES_TYPICAL + self.message.len());
        self.write_header_fields(&mut out, target, date);
        out.extend_from_slice(&self.message);
        out
    }

    /// Appends the header fields (plain appends: `fmt` cost more than the fields' bytes).
    fn write_header_fields(&self, out: &mut Vec<u8>, target: &Target, date: InternalDate) {
        push(out, &["Return-Path: <", &self.return_path, ">\r\n"]);
        if self.trace.delivered_to {
            push(out, &["Delivered-To: ", &target.address, "\r\n"]);
        }
        if self.trace.received {
            self.trace.write_received(out, &target.address, date);
        }
    }
}

/// What the header fields usually take, so a message's buffer is allocated once.
const HEADER_FIELDS_BYTES_TYPICAL: usize = 512;

/// Appends each of `parts`.
fn push(out: &mut Vec<u8>, parts: &[&str]) {
    for part in parts {
        out.extend_from_slice(part.as_bytes());
    }
}

impl Trace {
    /// `Time-stamp-line` (RFC 5321 §4.4), folded at its clauses:
    ///
    /// ```text
    /// Stamp = From-domain By-domain Opt-info [CFWS] ";" FWS date-time
    /// From-domain = "FROM" FWS Extended-Domain
    /// Extended-Domain = Domain / ( Domain FWS "(" TCP-info ")" ) / ...
    /// TCP-info = address-literal / ( Domain FWS address-literal )
    /// By-domain = CFWS "BY" FWS Extended-Domain
    /// With = CFWS "WITH" FWS Protocol      ID = CFWS "ID" FWS ( Atom / msg-id )
    /// For = CFWS "FOR" FWS ( Path / Mailbox )
    /// ```
    ///
    /// `(skua)` after the by-domain is a comment (the CFWS before `WITH`). An `LHLO` name that
    /// is not a domain or address literal is left out of the `from` clause, which then names
    /// the peer's address literal (or `unknown`, as a domain, without one).
    fn write_received(&self, out: &mut Vec<u8>, recipient: &str, date: InternalDate) {
        let peer = self.peer.map(address_literal);
        let lhlo = Some(self.lhlo.as_str()).filter(|name| is_domain_or_literal(name));
        match (lhlo, &peer) {
            (Some(name), Some(peer)) => push(out, &["Received: from ", name, " (", peer, ")\r\n"]),
            (Some(name), None) => push(out, &["Received: from ", name, "\r\n"]),
            (None, Some(peer)) => push(out, &["Received: from ", peer, "\r\n"]),
            (None, None) => push(out, &["Received: from unknown\r\n"]),
        }
        let protocol = if self.tls { "LMTPS" } else { "LMTP" };
        push(out, &["\tby ", &self.hostname, " (skua) with ", protocol, " id ", &self.id, "\r\n"]);
        push(out, &["\tfor <", recipient, ">; "]);
        write_date_time(out, date);
        out.extend_from_slice(b"\r\n");
    }
}

/// `address-literal` (RFC 5321 §4.1.3): `[192.0.2.1]` or `[IPv6:2001:db8::1]`.
fn address_literal(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("[{v4}]"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("[{v4}]"),
            None => format!("[IPv6:{v6}]"),
        },
    }
}

/// A `Domain` (letters, digits, hyphens, dot-separated labels) or an address literal in
/// brackets; anything else the client sent in `LHLO` stays out of the header.
fn is_domain_or_literal(name: &str) -> bool {
    if let Some(inner) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        return !inner.is_empty()
            && inner.bytes().all(|b| b.is_ascii_alphanumeric() || b":.".contains(&b));
    }
    !name.is_empty()
        && name.len() <= 255
        && name.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// RFC 5322 §3.3 `date-time`, e.g. `Mon, 07 Dec 2026 07:15:17 +0000`, in the date's zone.
fn write_date_time(out: &mut Vec<u8>, date: InternalDate) {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let local = date.unix_seconds + i64::from(date.zone_minutes) * 60;
    let days = local.div_euclid(86_400);
    let seconds = u32::try_from(local.rem_euclid(86_400)).expect("0..86400");
    let (year, month, day) = civil_from_days(days);
    let weekday = WEEKDAYS[usize::try_from(days.rem_euclid(7)).expect("0..7")];
    let month = MONTH_NAMES[usize::try_from(month - 1).expect("1..=12")];
    push(out, &[weekday, ", "]);
    two_digits(out, day);
    push(out, &[" ", month, " "]);
    if (0..=9999).contains(&year) {
        let year = u32::try_from(year).expect("checked");
        two_digits(out, year / 100);
        two_digits(out, year % 100);
    } else {
        out.extend_from_slice(year.to_string().as_bytes());
    }
    out.push(b' ');
    two_digits(out, seconds / 3600);
    out.push(b':');
    two_digits(out, seconds / 60 % 60);
    out.push(b':');
    two_digits(out, seconds % 60);
    out.push(b' ');
    out.push(if date.zone_minutes < 0 { b'-' } else { b'+' });
    let zone = u32::from(date.zone_minutes.unsigned_abs());
    two_digits(out, zone / 60 % 100);
    two_digits(out, zone % 60);
}

/// Appends `n` (below 100) as two digits.
fn two_digits(out: &mut Vec<u8>, n: u32) {
    debug_assert!(n < 100);
    let n = u8::try_from(n % 100).expect("below 100");
    out.extend_from_slice(&[b'0' + n / 10, b'0' + n % 10]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(trace: Trace) -> Delivery {
        Delivery {
            message: Arc::from(&b"Subject: x\r\n\r\nbody\r\n"[..]),
            return_path: "s@example.org".into(),
            mail: MailParameters::default(),
            trace,
            copies: Vec::new(),
        }
    }

    fn trace() -> Trace {
        Trace {
            lhlo: "mx.example.org".into(),
            peer: Some("192.0.2.7".parse().unwrap()),
            hostname: "store.example.com".into(),
            tls: false,
            id: "18f3a-2-1".into(),
            received: true,
            delivered_to: true,
        }
    }

    fn target(address: &str) -> Target {
        Target { address: address.into(), detail: None, parameters: RcptParameters::default() }
    }

    #[test]
    fn every_trace_field_in_order() {
        // 2026-12-07 07:15:17 UTC was a Monday.
        let date = InternalDate { unix_seconds: 1_796_627_717, zone_minutes: 0 };
        let message = delivery(trace()).message_for(&target("u+Work@example.com"), date);
        assert_eq!(
            String::from_utf8(message).unwrap(),
            "Return-Path: <s@example.org>\r\n\
             Delivered-To: u+Work@example.com\r\n\
             Received: from mx.example.org ([192.0.2.7])\r\n\
             \tby store.example.com (skua) with LMTP id 18f3a-2-1\r\n\
             \tfor <u+Work@example.com>; Mon, 07 Dec 2026 07:15:17 +0000\r\n\
             Subject: x\r\n\r\nbody\r\n"
        );
    }

    #[test]
    fn fields_can_be_turned_off_and_odd_names_stay_out() {
        let date = InternalDate { unix_seconds: 0, zone_minutes: -90 };
        let off = Trace { received: false, delivered_to: false, ..trace() };
        assert_eq!(
            delivery(off).header_fields(&target("u"), date),
            b"Return-Path: <s@example.org>\r\n"
        );
        let odd = Trace {
            lhlo: "bad(name)".into(),
            peer: Some("::1".parse().unwrap()),
            tls: true,
            delivered_to: false,
            ..trace()
        };
        let fields = String::from_utf8(delivery(odd).header_fields(&target("u"), date)).unwrap();
        assert_eq!(
            fields,
            "Return-Path: <s@example.org>\r\nReceived: from [IPv6:::1]\r\n\
             \tby store.example.com (skua) with LMTPS id 18f3a-2-1\r\n\
             \tfor <u>; Wed, 31 Dec 1969 22:30:00 -0130\r\n"
        );
    }

    proptest::proptest! {
        /// The hand-written date matches one written with `format!`.
        #[test]
        fn date_time_matches_formatting(
            unix_seconds in -62_135_596_800i64..253_402_300_799,
            zone_minutes in -1439i16..=1439,
        ) {
            let date = InternalDate { unix_seconds, zone_minutes };
            let mut out = Vec::new();
            write_date_time(&mut out, date);
            let local = unix_seconds + i64::from(zone_minutes) * 60;
            let days = local.div_euclid(86_400);
            let seconds = local.rem_euclid(86_400);
            let (year, month, day) = civil_from_days(days);
            let weekdays = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
            let zone = zone_minutes.unsigned_abs();
            let expected = format!(
                "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} {}{:02}{:02}",
                weekdays[usize::try_from(days.rem_euclid(7)).unwrap()],
                MONTH_NAMES[usize::try_from(month - 1).unwrap()],
                seconds / 3600,
                seconds / 60 % 60,
                seconds % 60,
                if zone_minutes < 0 { '-' } else { '+' },
                zone / 60,
                zone % 60,
            );
            proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }

    #[test]
    fn lhlo_names() {
        for good in ["mx", "mx.example.org", "a-b.c", "[127.0.0.1]", "[IPv6:::1]"] {
            assert!(is_domain_or_literal(good), "{good}");
        }
        for bad in ["", "a..b", "-a.b", "a_b", "[]", "a(b)", "x;y", "[1.2.3.4"] {
            assert!(!is_domain_or_literal(bad), "{bad}");
        }
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(address_literal(mapped), "[192.0.2.1]");
    }
}
