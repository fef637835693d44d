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

use std::borrow::Cow;
#[cfg(test)]
use std::ops::Range;

use super::address::write_address_list;
use super::date::{SentDate, parse_date};
use super::header::Field;
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
const DATE: usize = 0;
const FROM: usize = 2;
const SENDER: usize = 3;
const REPLY_TO: usize = 4;

/// Writes the ENVELOPE of the header block `data[header]`; also returns its parsed Date.
#[cfg(test)]
pub(crate) fn envelope(data: &[u8], header: Range<usize>) -> (Vec<u8>, Option<SentDate>) {
    let mut envelope = Envelope::new(data);
    for field in super::header::fields(data, header) {
        envelope.add(&field);
    }
    envelope.finish()
}

/// The envelope of one header block, collected field by field during the pass that also
/// reads the MIME fields (so the header is scanned once), then written by [`Envelope::finish`].
/// Values are borrowed from the message unless folded; strings and address lists are written
/// straight into the output, and Sender/Reply-To that default to From copy From's bytes
/// instead of parsing it again.
pub(crate) struct Envelope<'a> {
    data: &'a [u8],
    /// The first value of each field of [`FIELD_NAMES`], unfolded.
    values: [Option<Cow<'a, [u8]>>; 10],
}

impl<'a> Envelope<'a> {
    /// An envelope with no fields yet, over the message `data`.
    pub fn new(data: &'a [u8]) -> Envelope<'a> {
        Envelope { data, values: Default::default() }
    }

    /// Takes `field` into account (the first occurrence of each envelope field counts).
    pub fn add(&mut self, field: &Field) {
        let name = field.name(self.data);
        if let Some(index) = FIELD_NAMES.iter().position(|n| n.eq_ignore_ascii_case(name))
            && self.values[index].is_none()
        {
            self.values[index] = Some(field.unfolded(self.data));
        }
    }

    /// The ENVELOPE bytes and the parsed Date: header.
    pub fn finish(self) -> (Vec<u8>, Option<SentDate>) {
        write(&self.values)
    }
}

/// Writes the ENVELOPE from the collected values (indexed as [`FIELD_NAMES`]).
fn write(values: &[Option<Cow<'_, [u8]>>; 10]) -> (Vec<u8>, Option<SentDate>) {
    let value = |index: usize| values[index].as_deref();
    let text_len: usize = values.iter().flatten().map(|v| v.len()).sum();
    let from_len = value(FROM).map_or(0, <[u8]>::len);
    let mut out = Vec::with_capacity(64 + text_len + 2 * from_len + 40 * 6);
    out.push(b'(');
    nstring(&mut out, value(DATE));
    out.push(b' ');
    nstring(&mut out, value(1));
    out.push(b' ');
    let from_start = out.len();
    address_list(&mut out, value(FROM));
    let from = from_start..out.len();
    for index in [SENDER, REPLY_TO] {
        out.push(b' ');
        if !value(index).is_some_and(|v| write_address_list(&mut out, v)) {
            out.extend_from_within(from.clone());
        }
    }
    for index in 5..8 {
        out.push(b' ');
        address_list(&mut out, value(index));
    }
    out.push(b' ');
    nstring(&mut out, value(8));
    out.push(b' ');
    nstring(&mut out, value(9));
    out.push(b')');
    let date = value(DATE).and_then(parse_date);
    (out, date)
}

/// `"(" 1*address ")" / nil`
fn address_list(out: &mut Vec<u8>, value: Option<&[u8]>) {
    if !value.is_some_and(|v| write_address_list(out, v)) {
        out.extend_from_slice(b"NIL");
    }
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
