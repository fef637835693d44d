//! The IMAP ENVELOPE (RFC 9051 §7.5.2) of a message header, as response bytes:
//!
//! ```text
//! envelope = "(" env-date SP env-subject SP env-from SP env-sender SP env-reply-to SP env-to
//!            SP env-cc SP env-bcc SP env-in-reply-to SP env-message-id ")"
//! ```
//!
//! The first occurrence of each field counts. Text fields are the unfolded header value as sent
//! (encoded words are not decoded: clients decode them); an absent field is NIL, a present but
//! empty one `""`. An address list that is absent or holds no address is NIL; Sender and
//! Reply-To default to From when absent or empty, as §7.5.2 requires.

use std::ops::Range;

use super::address::{Address, parse_address_list};
use super::date::{SentDate, parse_date};
use super::header::fields;
use super::imap_text::nstring;

/// The envelope's fields, in ENVELOPE order.
const FIELD_NAMES: [&[u8]; 10] = [
    b"date",
    b"subject",
    b"from",
    b"sender",
    b"reply-to",
    b"to",
    b"cc",
    b"bcc",
    b"in-reply-to",
    b"message-id",
];
const FROM: usize = 2;
const SENDER: usize = 3;
const REPLY_TO: usize = 4;

/// Writes the ENVELOPE of the header block `data[header]`; also returns its parsed Date.
pub(crate) fn envelope(data: &[u8], header: Range<usize>) -> (Vec<u8>, Option<SentDate>) {
    let mut values: [Option<Vec<u8>>; 10] = Default::default();
    for field in fields(data, header) {
        let name = field.name(data);
        if let Some(index) = FIELD_NAMES.iter().position(|n| n.eq_ignore_ascii_case(name))
            && values[index].is_none()
        {
            values[index] = Some(field.unfolded(data));
        }
    }
    let addresses = |index: usize| -> Vec<Address> {
        values[index].as_deref().map(parse_address_list).unwrap_or_default()
    };
    let from = addresses(FROM);
    let mut sender = addresses(SENDER);
    if sender.is_empty() {
        sender.clone_from(&from);
    }
    let mut reply_to = addresses(REPLY_TO);
    if reply_to.is_empty() {
        reply_to.clone_from(&from);
    }
    let mut out = Vec::with_capacity(256);
    out.push(b'(');
    nstring(&mut out, values[0].as_deref());
    out.push(b' ');
    nstring(&mut out, values[1].as_deref());
    for list in [&from, &sender, &reply_to, &addresses(5), &addresses(6), &addresses(7)] {
        out.push(b' ');
        address_list(&mut out, list);
    }
    out.push(b' ');
    nstring(&mut out, values[8].as_deref());
    out.push(b' ');
    nstring(&mut out, values[9].as_deref());
    out.push(b')');
    let date = values[0].as_deref().and_then(parse_date);
    (out, date)
}

/// `"(" 1*address ")" / nil`
fn address_list(out: &mut Vec<u8>, list: &[Address]) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for address in list {
        out.push(b'(');
        nstring(out, address.name.as_deref());
        out.push(b' ');
        nstring(out, address.adl.as_deref());
        out.push(b' ');
        nstring(out, address.mailbox.as_deref());
        out.push(b' ');
        nstring(out, address.host.as_deref());
        out.push(b')');
    }
    out.push(b')');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(header: &[u8]) -> String {
        String::from_utf8(envelope(header, 0..header.len()).0).expect("ascii")
    }

    #[test]
    fn sender_and_reply_to_default_to_from() {
        let header = b"From: Terry Gray <gray@cac.washington.edu>\r\nSubject: IMAP4rev2\r\n\
Sender:\r\nTo: imap@cac.washington.edu\r\n\r\n";
        assert_eq!(
            text(header),
            "(NIL \"IMAP4rev2\" ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
((NIL NIL \"imap\" \"cac.washington.edu\")) NIL NIL NIL NIL)"
        );
    }

    #[test]
    fn empty_header_is_all_nil() {
        assert_eq!(text(b""), "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
    }
}
