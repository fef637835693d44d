//! IMAP SEARCH over a raw message (RFC 9051 §6.4.4): `HEADER`, `FROM`/`TO`/`CC`/`BCC`/`SUBJECT`,
//! `BODY` and `TEXT`.
//!
//! Matching is a case-insensitive substring test (Unicode simple lower-casing on both sides)
//! over decoded text: header values with RFC 2047 encoded words decoded, and the bodies of
//! `text/*` parts with their transfer encoding undone and their charset converted to UTF-8
//! (by mail-parser's decoders). Parts are found with the same scanner as the FETCH cache, so
//! SEARCH and BODYSTRUCTURE agree on what the parts are, and the same limits apply.

use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::parsers::MessageStream;

use super::header::{Field, fields, header_block};
use super::tree::{Kind, Node, scan};

/// Lower-cases `text` for matching.
fn fold(text: &str) -> String {
    text.chars().flat_map(char::to_lowercase).collect()
}

/// A search key, lower-cased once and then matched against many texts.
struct Needle {
    folded: String,
}

impl Needle {
    fn new(text: &str) -> Self {
        Self { folded: fold(text) }
    }

    fn is_empty(&self) -> bool {
        self.folded.is_empty()
    }

    /// True when the lower-cased `haystack` contains the key. Most mail text is ASCII, whose
    /// lower-casing is ASCII and byte for byte, so that case is compared in place without
    /// building a folded copy (which cost more than the rest of SEARCH together).
    fn found_in(&self, haystack: &str) -> bool {
        if self.folded.is_empty() {
            return true;
        }
        if haystack.is_ascii() {
            // A folded ASCII text holds no non-ASCII character, so such a key cannot match.
            return self.folded.is_ascii()
                && ascii_contains_folded(haystack.as_bytes(), self.folded.as_bytes());
        }
        fold(haystack).contains(&self.folded)
    }
}

/// True when `haystack`, ASCII-lower-cased, contains `needle` (lower-case ASCII, not empty).
fn ascii_contains_folded(haystack: &[u8], needle: &[u8]) -> bool {
    let first = needle[0];
    let last_start = match haystack.len().checked_sub(needle.len()) {
        Some(last) => last,
        None => return false,
    };
    (0..=last_start).any(|start| {
        haystack[start].to_ascii_lowercase() == first
            && haystack[start + 1..start + needle.len()]
                .iter()
                .zip(&needle[1..])
                .all(|(h, n)| h.to_ascii_lowercase() == *n)
    })
}

/// A field's value with encoded words decoded and folding removed.
fn decoded_value(message: &[u8], field: &Field) -> String {
    // The decoder stops at the line ending that ends the field, so it needs one.
    let mut raw = message[field.value_start..field.next].to_vec();
    if field.next == field.value_end {
        raw.extend_from_slice(b"\r\n");
    }
    match MessageStream::new(&raw).parse_unstructured() {
        mail_parser::HeaderValue::Text(text) => text.into_owned(),
        _ => String::from_utf8_lossy(&field.unfolded(message)).into_owned(),
    }
}

/// True when the message header has a field `field_name` (any case) whose decoded value
/// contains `needle`, ignoring case. An empty needle matches any message that has the field
/// (`HEADER name ""`). Only the message's own header is searched.
#[must_use]
pub fn header_contains(message: &[u8], field_name: &str, needle: &str) -> bool {
    let needle = Needle::new(needle);
    let (header, _) = header_block(message, 0);
    fields(message, header)
        .filter(|field| field.is(message, field_name.as_bytes()))
        .any(|field| needle.is_empty() || needle.found_in(&decoded_value(message, &field)))
}

/// `FROM`, `TO`, `CC`, `BCC`: the address header's decoded text (display names decoded,
/// addresses as written) contains `needle`, ignoring case.
#[must_use]
pub fn address_header_contains(message: &[u8], field_name: &str, needle: &str) -> bool {
    header_contains(message, field_name, needle)
}

/// `BODY`: the decoded text of some `text/*` part contains `needle`, ignoring case.
#[must_use]
pub fn body_contains(message: &[u8], needle: &str) -> bool {
    body_contains_needle(message, &Needle::new(needle))
}

fn body_contains_needle(message: &[u8], needle: &Needle) -> bool {
    if needle.is_empty() {
        return true;
    }
    let tree = scan(message);
    tree.nodes
        .iter()
        .filter(|node| node.kind == Kind::Leaf && node.media.main == b"text")
        .any(|node| needle.found_in(&decoded_text(message, node)))
}

/// `TEXT`: the message header (raw or with encoded words decoded) or its body contains
/// `needle`, ignoring case.
#[must_use]
pub fn text_contains(message: &[u8], needle: &str) -> bool {
    let needle = Needle::new(needle);
    let (header, _) = header_block(message, 0);
    if needle.found_in(&String::from_utf8_lossy(&message[header.clone()])) {
        return true;
    }
    fields(message, header).any(|field| needle.found_in(&decoded_value(message, &field)))
        || body_contains_needle(message, &needle)
}

/// A text part's body: transfer encoding undone, converted to UTF-8 from its charset.
fn decoded_text(message: &[u8], node: &Node) -> String {
    let raw = message.get(node.body()).unwrap_or_default();
    let decoded = match node.fields.encoding.as_deref() {
        Some(b"base64") => base64_decode(raw),
        Some(b"quoted-printable") => quoted_printable_decode(raw),
        _ => None,
    };
    let bytes = decoded.as_deref().unwrap_or(raw);
    match node.media.parameter(b"charset").and_then(charset_decoder) {
        Some(decoder) => decoder(bytes),
        None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The in-place ASCII comparison answers exactly as folding both sides does.
        #[test]
        fn ascii_fast_path_agrees_with_full_folding(
            haystack in "[a-zA-Z0-9 K\u{212A}\u{130}\u{e9}\u{c9}]{0,40}",
            needle in "[a-zA-Z K\u{212A}\u{130}\u{e9}]{0,5}",
        ) {
            let slow = fold(&haystack).contains(&fold(&needle));
            prop_assert_eq!(Needle::new(&needle).found_in(&haystack), slow);
        }
    }

    #[test]
    fn a_non_ascii_key_that_folds_to_ascii_matches_ascii_text() {
        // KELVIN SIGN lower-cases to ASCII 'k'.
        assert!(Needle::new("\u{212A}ey").found_in("KEY"));
        assert!(!Needle::new("\u{e9}t\u{e9}").found_in("ete"));
    }

    const MESSAGE: &[u8] = b"From: =?ISO-8859-1?Q?J=F6rg?= <joerg@example.com>\r\n\
Subject: =?utf-8?B?R3LDvMOfZQ==?=\r\n  again\r\nX-Empty:\r\n\
Content-Type: multipart/alternative; boundary=x\r\n\r\n\
--x\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
Sch=F6ne Gr=FC=DFe\r\n--x\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n\
PGI+Qm9sZDwvYj4=\r\n--x\r\nContent-Type: image/png\r\n\r\nsecret\r\n--x--\r\n";

    #[test]
    fn headers_are_decoded() {
        assert!(
            header_contains(MESSAGE, "subject", "GRÜSSE AGAIN")
                || header_contains(MESSAGE, "subject", "grüße again")
        );
        assert!(header_contains(MESSAGE, "SUBJECT", "GRÜßE"));
        assert!(address_header_contains(MESSAGE, "from", "jörg"));
        assert!(address_header_contains(MESSAGE, "from", "JOERG@EXAMPLE"));
        assert!(header_contains(MESSAGE, "x-empty", ""));
        assert!(!header_contains(MESSAGE, "x-missing", ""));
        assert!(!header_contains(MESSAGE, "subject", "nope"));
    }

    #[test]
    fn bodies_are_decoded_and_only_text_parts_count() {
        assert!(body_contains(MESSAGE, "schöne grüße"));
        assert!(body_contains(MESSAGE, "<B>bold"));
        assert!(!body_contains(MESSAGE, "secret"));
        assert!(!body_contains(MESSAGE, "Subject"));
        assert!(text_contains(MESSAGE, "Subject"));
        assert!(text_contains(MESSAGE, "jörg"));
        assert!(text_contains(MESSAGE, "grüße"));
        assert!(!text_contains(MESSAGE, "secret"));
    }
}
