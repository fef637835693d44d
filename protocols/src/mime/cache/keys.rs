//! The SORT and THREAD keys of a message (format version 2's key section, `CACHE-FORMAT.md`):
//! computed once at delivery by [`SortKeys::extract`], written after the part table by
//! [`SortKeys::encode`], read back by [`SortKeys::decode`] so that SORT and THREAD never parse a
//! message again.
//!
//! What each key is (RFC 5256 §3, RFC 5957 §3): the base subject of the first Subject field
//! (encoded words decoded, `subject.rs`), the `addr-mailbox` of the first address of the first
//! From, To and Cc fields, the display names of the first From and To addresses (decoded; the
//! `local@domain` address when there is no name), the first Message-ID and In-Reply-To
//! message identifiers, and the References identifiers. Message identifiers are kept without
//! their angle brackets and without white space. Every string is bounded
//! ([`KEY_BYTES_MAX`], [`REFERENCES_MAX`]); a key that does not exist is the empty string.

use mail_parser::HeaderValue;
use mail_parser::parsers::MessageStream;

use super::view::CacheError;
use crate::mime::header::{Field, fields, header_block};
use crate::mime::subject::base_subject;

/// Longest key string kept, in bytes (cut at a character boundary): comparisons of longer
/// subjects or names are decided well before this.
pub const KEY_BYTES_MAX: usize = 1000;
/// Most References identifiers kept: the last ones (the closest ancestors).
pub const REFERENCES_MAX: usize = 64;

/// Key flag bit: the base subject came from a reply or forward (`Re:`, `Fwd:`, ...).
const KEY_FLAG_REPLY: u8 = 1 << 0;
/// Number of length-prefixed strings in the section.
const KEY_STRINGS: usize = 9;

/// The keys of one message, owned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SortKeys {
    /// RFC 5256 base subject.
    pub base_subject: String,
    /// The base subject was extracted from a reply or forward.
    pub subject_reply: bool,
    /// `addr-mailbox` of the first From address.
    pub from_mailbox: String,
    /// Display name of the first From address, or its address (RFC 5957).
    pub from_display: String,
    /// `addr-mailbox` of the first To address.
    pub to_mailbox: String,
    /// Display name of the first To address, or its address.
    pub to_display: String,
    /// `addr-mailbox` of the first Cc address.
    pub cc_mailbox: String,
    /// The first Message-ID identifier, brackets removed.
    pub message_id: String,
    /// The first In-Reply-To identifier.
    pub in_reply_to: String,
    /// The References identifiers, in order (the last [`REFERENCES_MAX`]).
    pub references: Vec<String>,
}

/// One string of the key section, in its order there (`CACHE-FORMAT.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyField {
    /// The base subject.
    BaseSubject = 0,
    /// The first From address's `addr-mailbox`.
    FromMailbox = 1,
    /// The first From address's display text.
    FromDisplay = 2,
    /// The first To address's `addr-mailbox`.
    ToMailbox = 3,
    /// The first To address's display text.
    ToDisplay = 4,
    /// The first Cc address's `addr-mailbox`.
    CcMailbox = 5,
}

impl KeyField {
    /// The field's bytes in a key section, borrowed: what SORT copies for each message, with
    /// no allocation and only the lengths before it read. Not checked as UTF-8 (SORT compares
    /// octets); [`SortKeys::decode`] checks the whole section.
    ///
    /// # Errors
    /// [`CacheError`] when the section is truncated or has reserved flag bits set.
    pub fn read(self, section: &[u8]) -> Result<&[u8], CacheError> {
        let (&flags, mut rest) = section.split_first().ok_or(CacheError::Truncated)?;
        if flags & !KEY_FLAG_REPLY != 0 {
            return Err(CacheError::Reserved);
        }
        for index in 0..=self as usize {
            let (length, tail) = rest.split_first_chunk::<2>().ok_or(CacheError::Truncated)?;
            let length = usize::from(u16::from_le_bytes(*length));
            let text = tail.get(..length).ok_or(CacheError::Truncated)?;
            if index == self as usize {
                return Ok(text);
            }
            rest = &tail[length..];
        }
        unreachable!("the loop returns at the field's index")
    }
}

impl SortKeys {
    /// Reads the keys from the message's own header.
    #[must_use]
    pub fn extract(message: &[u8]) -> SortKeys {
        let (header, _) = header_block(message, 0);
        let mut keys = SortKeys::default();
        let mut seen = [false; 7];
        for field in fields(message, header) {
            let name = field.name(message);
            let Some(index) = [
                &b"subject"[..],
                b"from",
                b"to",
                b"cc",
                b"message-id",
                b"in-reply-to",
                b"references",
            ]
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name)) else {
                continue;
            };
            if std::mem::replace(&mut seen[index], true) {
                continue;
            }
            keys.take(index, message, &field);
        }
        keys
    }

    fn take(&mut self, index: usize, message: &[u8], field: &Field) {
        let value = field.unfolded(message);
        match index {
            0 => {
                let base = base_subject(&decoded_text(message, field));
                self.base_subject = bounded(base.text);
                self.subject_reply = base.reply_or_forward;
            }
            1 => (self.from_mailbox, self.from_display) = first_address(message, field),
            2 => (self.to_mailbox, self.to_display) = first_address(message, field),
            3 => self.cc_mailbox = first_address(message, field).0,
            4 => self.message_id = message_ids(&value).next().unwrap_or_default(),
            5 => self.in_reply_to = message_ids(&value).next().unwrap_or_default(),
            _ => {
                let mut ids: Vec<String> = message_ids(&value).collect();
                let excess = ids.len().saturating_sub(REFERENCES_MAX);
                ids.drain(..excess);
                self.references = ids;
            }
        }
    }

    /// Appends the key section (without its length prefix).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(if self.subject_reply { KEY_FLAG_REPLY } else { 0 });
        let references = self.references.join(" ");
        for text in [
            &self.base_subject,
            &self.from_mailbox,
            &self.from_display,
            &self.to_mailbox,
            &self.to_display,
            &self.cc_mailbox,
            &self.message_id,
            &self.in_reply_to,
            &references,
        ] {
            let length = u16::try_from(text.len()).expect("key strings are bounded");
            out.extend_from_slice(&length.to_le_bytes());
            out.extend_from_slice(text.as_bytes());
        }
    }

    /// Reads a key section written by [`SortKeys::encode`].
    ///
    /// # Errors
    /// [`CacheError`] when it is truncated, has trailing bytes, reserved bits or non-UTF-8 text.
    pub fn decode(section: &[u8]) -> Result<SortKeys, CacheError> {
        let (&flags, mut rest) = section.split_first().ok_or(CacheError::Truncated)?;
        if flags & !KEY_FLAG_REPLY != 0 {
            return Err(CacheError::Reserved);
        }
        let mut strings: [&str; KEY_STRINGS] = [""; KEY_STRINGS];
        for slot in &mut strings {
            let (length, tail) = rest.split_first_chunk::<2>().ok_or(CacheError::Truncated)?;
            let length = usize::from(u16::from_le_bytes(*length));
            if tail.len() < length {
                return Err(CacheError::Truncated);
            }
            *slot = std::str::from_utf8(&tail[..length]).map_err(|_| CacheError::KeyText)?;
            rest = &tail[length..];
        }
        if !rest.is_empty() {
            return Err(CacheError::TrailingBytes);
        }
        let [subject, from, from_display, to, to_display, cc, id, in_reply_to, references] =
            strings;
        Ok(SortKeys {
            base_subject: subject.to_owned(),
            subject_reply: flags & KEY_FLAG_REPLY != 0,
            from_mailbox: from.to_owned(),
            from_display: from_display.to_owned(),
            to_mailbox: to.to_owned(),
            to_display: to_display.to_owned(),
            cc_mailbox: cc.to_owned(),
            message_id: id.to_owned(),
            in_reply_to: in_reply_to.to_owned(),
            references: references
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }
}

/// A field's value with encoded words decoded (RFC 2047) and folding removed.
fn decoded_text(message: &[u8], field: &Field) -> String {
    let mut raw = message[field.value_start..field.next].to_vec();
    if field.next == field.value_end {
        // The decoder stops at the line ending that ends the field, so it needs one.
        raw.extend_from_slice(b"\r\n");
    }
    match MessageStream::new(&raw).parse_unstructured() {
        HeaderValue::Text(text) => text.into_owned(),
        _ => String::from_utf8_lossy(&field.unfolded(message)).into_owned(),
    }
}

/// The `addr-mailbox` and the display text (RFC 5957 §3: the decoded display name, or the
/// address when the name is missing or empty) of the field's first address, as the ENVELOPE
/// lists addresses.
fn first_address(message: &[u8], field: &Field) -> (String, String) {
    let mut raw = message[field.value_start..field.next].to_vec();
    if field.next == field.value_end {
        raw.extend_from_slice(b"\r\n");
    }
    let value = MessageStream::new(&raw).parse_address();
    let HeaderValue::Address(address) = value else {
        return (String::new(), String::new());
    };
    // A group comes first as its start marker, whose addr-mailbox is the group's name and
    // whose host is NIL: both keys are that name (RFC 5957 §3's third case). Addresses outside
    // any group are a nameless group to mail-parser.
    if let mail_parser::Address::Group(groups) = &address
        && let Some(name) = groups.first().and_then(|g| g.name.as_deref()).map(str::trim)
        && !name.is_empty()
    {
        return (bounded(name.to_owned()), bounded(name.to_owned()));
    }
    let Some(first) = address.first() else {
        return (String::new(), String::new());
    };
    let address = first.address.as_deref().unwrap_or_default();
    let mailbox = address.rsplit_once('@').map_or(address, |(local, _)| local);
    let display = match first.name.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => name,
        _ => address,
    };
    (bounded(mailbox.to_owned()), bounded(display.to_owned()))
}

/// The message identifiers (`<...>`) of a header value, brackets and white space removed;
/// identifiers longer than [`KEY_BYTES_MAX`] are skipped.
fn message_ids(value: &[u8]) -> impl Iterator<Item = String> + '_ {
    let mut rest = value;
    std::iter::from_fn(move || {
        loop {
            let open = rest.iter().position(|&b| b == b'<')?;
            let close = rest[open..].iter().position(|&b| b == b'>')? + open;
            let inner = &rest[open + 1..close];
            rest = &rest[close + 1..];
            let id: Vec<u8> = inner.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
            if id.is_empty() || id.len() > KEY_BYTES_MAX {
                continue;
            }
            return Some(String::from_utf8_lossy(&id).into_owned());
        }
    })
}

/// `text` cut to at most [`KEY_BYTES_MAX`] bytes at a character boundary.
fn bounded(mut text: String) -> String {
    if text.len() > KEY_BYTES_MAX {
        let mut end = KEY_BYTES_MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_the_first_of_each_field() {
        let message = b"Subject: Re: [list] =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\
            Subject: second\r\n\
            From: \"Doe, Jane\" <jane@example.org>, bob@example.org\r\n\
            To: bob@example.org\r\n\
            Cc: Carol <carol@example.net>\r\n\
            Message-ID: <1@example.org>\r\n\
            In-Reply-To: <0@example.org> <x@y>\r\n\
            References: <a@b>\r\n <0@example.org>\r\n\r\nbody\r\n";
        let keys = SortKeys::extract(message);
        assert_eq!(keys.base_subject, "Grüße");
        assert!(keys.subject_reply);
        assert_eq!((keys.from_mailbox.as_str(), keys.from_display.as_str()), ("jane", "Doe, Jane"));
        assert_eq!(
            (keys.to_mailbox.as_str(), keys.to_display.as_str()),
            ("bob", "bob@example.org")
        );
        assert_eq!(keys.cc_mailbox, "carol");
        assert_eq!(keys.message_id, "1@example.org");
        assert_eq!(keys.in_reply_to, "0@example.org");
        assert_eq!(keys.references, vec!["a@b".to_owned(), "0@example.org".to_owned()]);
        let mut section = Vec::new();
        keys.encode(&mut section);
        assert_eq!(SortKeys::decode(&section), Ok(keys));
    }

    #[test]
    fn one_field_is_read_without_decoding_the_section() {
        let keys = SortKeys::extract(
            b"Subject: Fwd: plans\r\nFrom: Ann <ann@x.org>\r\nTo: bob@y.org\r\nCc: c@z.org\r\n\r\n",
        );
        let mut section = Vec::new();
        keys.encode(&mut section);
        let read = |field: KeyField| KeyField::read(field, &section).map(<[u8]>::to_vec);
        assert_eq!(read(KeyField::BaseSubject), Ok(b"plans".to_vec()));
        assert_eq!(read(KeyField::FromMailbox), Ok(b"ann".to_vec()));
        assert_eq!(read(KeyField::FromDisplay), Ok(b"Ann".to_vec()));
        assert_eq!(read(KeyField::ToMailbox), Ok(b"bob".to_vec()));
        assert_eq!(read(KeyField::ToDisplay), Ok(b"bob@y.org".to_vec()));
        assert_eq!(read(KeyField::CcMailbox), Ok(b"c".to_vec()));
        assert_eq!(KeyField::CcMailbox.read(&section[..8]), Err(CacheError::Truncated));
        assert_eq!(KeyField::BaseSubject.read(&[4]), Err(CacheError::Reserved));
        assert_eq!(KeyField::BaseSubject.read(&[]), Err(CacheError::Truncated));
    }

    #[test]
    fn a_group_is_first_as_its_start_marker() {
        let keys = SortKeys::extract(
            b"To: Friends: a@x.org, B <b@x.org>;, c@x.org\r\nCc: d@x.org, Team: e@x.org;\r\n\r\n",
        );
        assert_eq!((keys.to_mailbox.as_str(), keys.to_display.as_str()), ("Friends", "Friends"));
        assert_eq!(keys.cc_mailbox, "d");
    }

    #[test]
    fn missing_fields_are_empty_keys() {
        let keys = SortKeys::extract(b"X: y\r\n\r\n");
        assert_eq!(keys, SortKeys::default());
        let mut section = Vec::new();
        keys.encode(&mut section);
        assert_eq!(SortKeys::decode(&section), Ok(keys));
    }

    #[test]
    fn long_values_are_bounded() {
        let mut message = b"Subject: ".to_vec();
        message.extend(std::iter::repeat_n(b'x', 5000));
        message.extend_from_slice(b"\r\nReferences:");
        for i in 0..200 {
            message.extend_from_slice(format!(" <{i}@x>").as_bytes());
        }
        message.extend_from_slice(b"\r\n\r\n");
        let keys = SortKeys::extract(&message);
        assert_eq!(keys.base_subject.len(), KEY_BYTES_MAX);
        assert_eq!(keys.references.len(), REFERENCES_MAX);
        assert_eq!(keys.references.last().map(String::as_str), Some("199@x"));
    }

    #[test]
    fn damaged_sections_are_refused() {
        assert_eq!(SortKeys::decode(&[]), Err(CacheError::Truncated));
        assert_eq!(SortKeys::decode(&[2]), Err(CacheError::Reserved));
        let mut section = Vec::new();
        SortKeys::default().encode(&mut section);
        section.push(0);
        assert_eq!(SortKeys::decode(&section), Err(CacheError::TrailingBytes));
    }
}
