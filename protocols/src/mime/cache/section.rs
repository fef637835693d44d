//! `BODY[section]` (RFC 9051 §6.4.5) resolved to bytes of the message, from the part table.
//!
//! Part numbers: the parts of a multipart are numbered 1..n; a message (the message itself or
//! an encapsulated one) that is not a multipart has one part, number 1, its own body; the parts
//! of a message/rfc822 part are those of the message it encapsulates. `HEADER`, `TEXT` and
//! `HEADER.FIELDS[.NOT]` after part numbers need a message/rfc822 part and refer to the
//! encapsulated message; `MIME` needs part numbers and is the part's own header.

use std::ops::Range;

use super::view::{CacheView, PartEntry};
use super::{KIND_MESSAGE, KIND_MULTIPART};
use crate::imap::types::SectionText;
use crate::mime::header::fields;

/// The bytes of a section: a range of the message (sent straight from the mapped spool) or,
/// for `HEADER.FIELDS`, a filtered copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SectionBytes {
    /// `message[range]`.
    Range(Range<usize>),
    /// Bytes built for this request.
    Owned(Vec<u8>),
}

impl SectionBytes {
    /// The section's bytes, given the message the range refers to.
    #[must_use]
    pub fn bytes<'a>(&'a self, message: &'a [u8]) -> &'a [u8] {
        match self {
            SectionBytes::Range(range) => message.get(range.clone()).unwrap_or_default(),
            SectionBytes::Owned(bytes) => bytes,
        }
    }

    /// Length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            SectionBytes::Range(range) => range.len(),
            SectionBytes::Owned(bytes) => bytes.len(),
        }
    }

    /// True when the section is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl PartEntry {
    fn header(&self) -> Range<usize> {
        let start = self.header_offset as usize;
        start..start + self.header_len as usize
    }

    fn body(&self) -> Range<usize> {
        let start = self.header().end;
        start..start + self.body_len as usize
    }
}

impl CacheView<'_> {
    /// The bytes of `BODY[part.text]` of `message` (the message this blob was built from).
    /// `None` when the section does not exist: a part number out of range, `MIME` without part
    /// numbers, `HEADER`/`TEXT` on a part that is not a message/rfc822, or a part table that
    /// does not fit `message`.
    #[must_use]
    pub fn section(
        &self,
        message: &[u8],
        part: &[u32],
        text: Option<&SectionText>,
    ) -> Option<SectionBytes> {
        if part.is_empty() {
            let root = self.entry(0)?;
            return match text {
                None => Some(SectionBytes::Range(0..message.len())),
                Some(SectionText::Mime) => None,
                Some(text) => message_section(message, root, text),
            };
        }
        let index = self.resolve(part)?;
        let entry = self.entry(index)?;
        match text {
            None => checked(message, entry.body()),
            Some(SectionText::Mime) => checked(message, entry.header()),
            Some(text) if entry.kind == KIND_MESSAGE => {
                message_section(message, self.entry(index + 1)?, text)
            }
            Some(_) => None,
        }
    }

    /// The part table index of part number `part` (non-empty).
    fn resolve(&self, part: &[u32]) -> Option<usize> {
        let mut index = 0;
        let mut as_part = false;
        for &number in part {
            let number = usize::try_from(number).ok()?.checked_sub(1)?;
            let entry = self.entry(index)?;
            if !as_part && entry.message_root && entry.kind != KIND_MULTIPART {
                // A non-multipart message: part 1 is the message's own body.
                if number != 0 {
                    return None;
                }
                as_part = true;
                continue;
            }
            as_part = true;
            let container = match entry.kind {
                KIND_MULTIPART => index,
                KIND_MESSAGE => {
                    let inner = self.entry(index + 1)?;
                    if inner.kind != KIND_MULTIPART {
                        if number != 0 {
                            return None;
                        }
                        index += 1;
                        continue;
                    }
                    index + 1
                }
                _ => return None,
            };
            index = self.child(container, number)?;
        }
        Some(index)
    }

    /// The table index of child `number` (0-based) of the multipart at `index`.
    fn child(&self, index: usize, number: usize) -> Option<usize> {
        let end = index + usize::from(self.entry(index)?.subtree);
        let mut child = index + 1;
        for _ in 0..number {
            child += usize::from(self.entry(child)?.subtree);
        }
        (child < end).then_some(child)
    }
}

/// The most a `HEADER.FIELDS` selection reserves up front; a bigger header grows as needed.
const HEADER_FIELDS_RESERVE_BYTES: usize = 8 * 1024;

/// `HEADER`, `TEXT`, `HEADER.FIELDS` or `HEADER.FIELDS.NOT` of the message entity `entry`.
fn message_section(message: &[u8], entry: PartEntry, text: &SectionText) -> Option<SectionBytes> {
    match text {
        SectionText::Header => checked(message, entry.header()),
        SectionText::Text => checked(message, entry.body()),
        SectionText::HeaderFields(names) => header_fields(message, entry.header(), names, true),
        SectionText::HeaderFieldsNot(names) => header_fields(message, entry.header(), names, false),
        SectionText::Mime => None,
    }
}

fn checked(message: &[u8], range: Range<usize>) -> Option<SectionBytes> {
    (range.end <= message.len()).then_some(SectionBytes::Range(range))
}

/// The header fields of `message[header]` whose name is (`keep`) or is not (`!keep`) in
/// `names`, ignoring case, each with its continuation lines, then the blank line CRLF.
fn header_fields(
    message: &[u8],
    header: Range<usize>,
    names: &[String],
    keep: bool,
) -> Option<SectionBytes> {
    if header.end > message.len() {
        return None;
    }
    // One allocation in the common case: the selection is at most the header (plus CRLFs).
    let mut out = Vec::with_capacity(header.len().min(HEADER_FIELDS_RESERVE_BYTES) + 2);
    for field in fields(message, header) {
        let listed = names.iter().any(|name| field.is(message, name.as_bytes()));
        if listed == keep {
            out.extend_from_slice(&message[field.start..field.next]);
            if !message[..field.next].ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    Some(SectionBytes::Owned(out))
}
