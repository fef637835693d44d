//! IMAP SEARCH over a raw message (RFC 9051 §6.4.4): `HEADER`, `FROM`/`TO`/`CC`/`BCC`/`SUBJECT`,
//! `BODY` and `TEXT`.
//!
//! Matching is a case-insensitive substring test (Unicode simple lower-casing on both sides)
//! over decoded text: header values with RFC 2047 encoded words decoded, and the bodies of
//! `text/*` parts with their transfer encoding undone and their charset converted to UTF-8
//! (by mail-parser's decoders). Parts are read from the message's cache blob when the caller
//! has it (`*_cached`: the part table, each text part's own header parsed, attachments never
//! read; `cache/text_leaves.rs`), or else found with the scanner that builds the blob: either
//! way SEARCH and BODYSTRUCTURE agree on what the parts are, and the same limits apply.

use std::borrow::Cow;

use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::parsers::MessageStream;

use super::cache::{TextLeaf, for_each_text_leaf};
use super::header::{Field, fields, header_block};
use super::tree::{Kind, scan};

/// Lower-cases `text` for matching.
fn fold(text: &str) -> String {
    text.chars().flat_map(char::to_lowercase).collect()
}

/// A search key, lower-cased once and then matched against many texts.
struct Needle {
    folded: String,
    /// The folded key is ASCII (whatever the key was: KELVIN SIGN folds to `k`).
    ascii: bool,
}

impl Needle {
    fn new(text: &str) -> Self {
        let folded = fold(text);
        let ascii = folded.is_ascii();
        Self { folded, ascii }
    }

    fn is_empty(&self) -> bool {
        self.folded.is_empty()
    }

    /// True when the lower-cased `haystack` contains the key. Most mail text is ASCII, whose
    /// lower-casing is ASCII and byte for byte, so that case is compared in place without
    /// building a folded copy (which cost more than the rest of SEARCH together). So is an
    /// ASCII key in any text without a character that lower-cases to ASCII
    /// ([`has_char_folding_to_ascii`]): every other character folds to non-ASCII ones only,
    /// so an ASCII match in the folded text is a match of the text's own ASCII bytes.
    fn found_in(&self, haystack: &str) -> bool {
        if self.folded.is_empty() {
            return true;
        }
        if haystack.is_ascii() {
            // A folded ASCII text holds no non-ASCII character, so such a key cannot match.
            return self.ascii
                && ascii_contains_folded(haystack.as_bytes(), self.folded.as_bytes());
        }
        if self.ascii && !has_char_folding_to_ascii(haystack) {
            return ascii_contains_folded(haystack.as_bytes(), self.folded.as_bytes());
        }
        fold(haystack).contains(&self.folded)
    }
}

/// True when `text` holds one of the two non-ASCII characters whose lower-case form holds an
/// ASCII one: U+0130 (to `i` and a combining dot) and U+212A KELVIN SIGN (to `k`). A test walks
/// every `char` to keep this list whole.
fn has_char_folding_to_ascii(text: &str) -> bool {
    let bytes = text.as_bytes();
    memchr::memmem::find(bytes, "\u{130}".as_bytes()).is_some()
        || memchr::memmem::find(bytes, "\u{212A}".as_bytes()).is_some()
}

/// True when `haystack`, ASCII-lower-cased, contains `needle` (lower-case ASCII, not empty).
///
/// The haystack is lower-cased [`FOLD_CHUNK_BYTES`] at a time into a buffer on the stack and
/// searched there with a SIMD substring finder; consecutive chunks overlap by the needle's
/// length less one, so a match across a chunk border is found. This runs at several GB/s where
/// a byte-by-byte comparison ran at well under one (a `SEARCH TEXT` over 200 KB messages spent
/// about 250 µs per message in it, and a slice cannot stop inside a message).
fn ascii_contains_folded(haystack: &[u8], needle: &[u8]) -> bool {
    if haystack.len() < needle.len() {
        return false;
    }
    if needle.len() > FOLD_CHUNK_BYTES / 2 {
        // A key this long is rare; compare in place.
        return haystack.windows(needle.len()).any(|window| window.eq_ignore_ascii_case(needle));
    }
    let finder = memchr::memmem::Finder::new(needle);
    let mut folded = [0u8; FOLD_CHUNK_BYTES];
    let mut start = 0;
    loop {
        let end = (start + FOLD_CHUNK_BYTES).min(haystack.len());
        let chunk = &haystack[start..end];
        for (to, from) in folded.iter_mut().zip(chunk) {
            *to = from.to_ascii_lowercase();
        }
        if finder.find(&folded[..chunk.len()]).is_some() {
            return true;
        }
        if end == haystack.len() {
            return false;
        }
        // Pair assertion: the needle is at most half a chunk, so each step moves on.
        debug_assert!(needle.len() - 1 < chunk.len());
        start = end - (needle.len() - 1);
    }
}

/// See [`ascii_contains_folded`]: bytes lower-cased and searched at a time.
const FOLD_CHUNK_BYTES: usize = 8 * 1024;

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

/// The first `Message-ID` field's value in the message's own header, unfolded, at most
/// [`MESSAGE_ID_LOG_BYTES_MAX`] bytes of it (lossy UTF-8): for log lines.
#[must_use]
pub fn message_id_for_log(message: &[u8]) -> Option<String> {
    let (header, _) = header_block(message, 0);
    let field = fields(message, header).find(|field| field.is(message, b"Message-ID"))?;
    let value = field.unfolded(message);
    let value = &value[..value.len().min(MESSAGE_ID_LOG_BYTES_MAX)];
    Some(String::from_utf8_lossy(value).into_owned())
}

/// See [`message_id_for_log`].
pub const MESSAGE_ID_LOG_BYTES_MAX: usize = 256;

/// `FROM`, `TO`, `CC`, `BCC`: the address header's decoded text (display names decoded,
/// addresses as written) contains `needle`, ignoring case, or one of its addresses does in
/// its plain `local@domain` form: an address written with comments, spaces or quotes inside
/// (`user (x) @ example.org`, `"user"@example.org`) is found by the address a user types.
#[must_use]
pub fn address_header_contains(message: &[u8], field_name: &str, needle: &str) -> bool {
    if header_contains(message, field_name, needle) {
        return true;
    }
    let needle = Needle::new(needle);
    let (header, _) = header_block(message, 0);
    fields(message, header).filter(|field| field.is(message, field_name.as_bytes())).any(|field| {
        let mut found = false;
        super::address::for_each_plain_address(&field.unfolded(message), |address| {
            found = found || needle.found_in(&String::from_utf8_lossy(address));
        });
        found
    })
}

/// `BODY`: the decoded text of some `text/*` part contains `needle`, ignoring case. The parts
/// are found by scanning the message; [`body_contains_cached`] reads them from its cache blob.
#[must_use]
pub fn body_contains(message: &[u8], needle: &str) -> bool {
    body_contains_needle(message, None, &Needle::new(needle))
}

/// [`body_contains`], the parts read from `blob`, the message's cache blob
/// ([`cache::build`](super::cache::build)), so only the headers and bodies of the text parts
/// are read. The same answer in every case: a blob that does not fit the message, or whose
/// structure was truncated at a limit, is not used and the message is scanned.
#[must_use]
pub fn body_contains_cached(message: &[u8], blob: &[u8], needle: &str) -> bool {
    body_contains_needle(message, Some(blob), &Needle::new(needle))
}

fn body_contains_needle(message: &[u8], blob: Option<&[u8]>, needle: &Needle) -> bool {
    if needle.is_empty() {
        return true;
    }
    let mut found_in_leaf = |leaf: &TextLeaf<'_>| needle.found_in(&decoded_text(message, leaf));
    if let Some(found) = blob.and_then(|blob| for_each_text_leaf(message, blob, &mut found_in_leaf))
    {
        return found;
    }
    let tree = scan(message);
    tree.nodes.iter().filter(|node| node.kind == Kind::Leaf && node.media.main == b"text").any(
        |node| {
            found_in_leaf(&TextLeaf {
                body: node.body(),
                encoding: node.fields.encoding.as_deref(),
                charset: node.media.parameter(b"charset"),
            })
        },
    )
}

/// `TEXT`: the message header (raw or with encoded words decoded) or its body contains
/// `needle`, ignoring case.
#[must_use]
pub fn text_contains(message: &[u8], needle: &str) -> bool {
    text_contains_needle(message, None, &Needle::new(needle))
}

/// [`text_contains`], the body's parts read from the cache blob as [`body_contains_cached`]
/// does; the same answer.
#[must_use]
pub fn text_contains_cached(message: &[u8], blob: &[u8], needle: &str) -> bool {
    text_contains_needle(message, Some(blob), &Needle::new(needle))
}

fn text_contains_needle(message: &[u8], blob: Option<&[u8]>, needle: &Needle) -> bool {
    let (header, _) = header_block(message, 0);
    if needle.found_in(&String::from_utf8_lossy(&message[header.clone()])) {
        return true;
    }
    fields(message, header).any(|field| needle.found_in(&decoded_value(message, &field)))
        || body_contains_needle(message, blob, needle)
}

/// A text part's body: transfer encoding undone, converted to UTF-8 from its charset. Borrowed
/// from the message when it needs neither (most 8-bit and 7-bit text), so searching it copies
/// nothing; decoded UTF-8 is kept in the buffer it was decoded into.
fn decoded_text<'m>(message: &'m [u8], leaf: &TextLeaf<'_>) -> Cow<'m, str> {
    let raw = message.get(leaf.body.clone()).unwrap_or_default();
    let decoded = match leaf.encoding {
        Some(b"base64") => base64_decode(raw),
        Some(b"quoted-printable") => quoted_printable_decode(raw),
        _ => None,
    };
    let charset = leaf.charset;
    let bytes = decoded.as_deref().unwrap_or(raw);
    if charset.is_none_or(is_utf8_or_ascii)
        || (bytes.is_ascii() && charset.is_some_and(is_ascii_superset))
    {
        // No conversion to do: ASCII reads the same in UTF-8 and in every charset that
        // extends ASCII (a per-character decoder took three quarters of a SEARCH TEXT).
        return match decoded {
            None => utf8_lossy(raw),
            Some(decoded) => String::from_utf8(decoded)
                .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
                .into(),
        };
    }
    match charset.and_then(charset_decoder) {
        Some(decoder) => decoder(bytes).into(),
        None => String::from_utf8_lossy(bytes).into_owned().into(),
    }
}

/// `bytes` as UTF-8, invalid sequences replaced. Valid text (nearly all) is checked by the
/// standard library's fast validator and borrowed; the lossy conversion's chunk iterator, far
/// slower, runs only on text that needs it.
fn utf8_lossy(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.into(),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Charsets whose text is UTF-8 as it stands (ASCII is).
fn is_utf8_or_ascii(charset: &[u8]) -> bool {
    [&b"utf-8"[..], b"utf8", b"us-ascii", b"ascii"].iter().any(|c| charset.eq_ignore_ascii_case(c))
}

/// Charsets whose first 128 code points are ASCII, one byte each, so that ASCII bytes decode to
/// themselves. (Not UTF-7, UTF-16 or EBCDIC, whose ASCII-looking bytes mean something else.)
fn is_ascii_superset(charset: &[u8]) -> bool {
    let lower = charset.to_ascii_lowercase();
    [
        "iso-8859-",
        "iso8859-",
        "windows-125",
        "cp125",
        "koi8-",
        "latin",
        "gb2312",
        "gbk",
        "gb18030",
        "big5",
        "euc-",
        "shift_jis",
        "tis-620",
    ]
    .iter()
    .any(|prefix| lower.starts_with(prefix.as_bytes()))
}

#[cfg(test)]
#[path = "search_cache_tests.rs"]
pub(crate) mod cache_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Issue 9: `SEARCH FROM user-from@domain.org` missed messages whose From wrote the address
    /// with a comment, spaces or quotes inside it.
    #[test]
    fn an_address_is_found_however_it_is_written() {
        for from in [
            "\"User From\" <user-from@domain.org>",
            "user-from@domain.org (User From)",
            "User From <user-from (comment) @ domain.org>",
            "user-from(comment)@domain.org",
            "\"User From\" <\"user-from\"@domain.org>",
            "=?utf-8?q?User_From?= <USER-FROM@Domain.Org>",
            "friends: a@b.example, user-from @ domain.org;",
        ] {
            let message = format!("From: {from}\r\nTo: x@y.example\r\n\r\nbody\r\n");
            let found = |needle| address_header_contains(message.as_bytes(), "From", needle);
            assert!(found("user-from@domain.org"), "{from}");
            assert!(found("domain.org"), "{from}");
            assert!(!found("other@domain.org"), "{from}");
            assert!(!address_header_contains(message.as_bytes(), "To", "domain.org"), "{from}");
        }
        let display = "From: =?utf-8?q?J=C3=B6rg?= <j@x.example>\r\n\r\n";
        assert!(address_header_contains(display.as_bytes(), "From", "jörg"));
    }

    proptest! {
        /// The in-place ASCII comparison answers exactly as folding both sides does.
        #[test]
        fn ascii_fast_path_agrees_with_full_folding(
            haystack in "[a-zA-Z0-9 K\u{212A}\u{130}\u{e9}\u{c9}\u{1E9E}\u{3A3}\u{307}]{0,40}",
            needle in "[a-zA-Z K\u{212A}\u{130}\u{e9}\u{307}]{0,5}",
        ) {
            let slow = fold(&haystack).contains(&fold(&needle));
            prop_assert_eq!(Needle::new(&needle).found_in(&haystack), slow);
        }
    }

    proptest! {
        /// The chunked search finds a key wherever it lies, across chunk borders too, and
        /// answers as a plain comparison of every window does.
        #[test]
        fn chunked_search_agrees_with_every_window(
            len in 0usize..3 * FOLD_CHUNK_BYTES,
            at in 0usize..3 * FOLD_CHUNK_BYTES,
            needle in "[a-cA-C]{1,12}",
            plant in any::<bool>(),
        ) {
            let mut haystack: Vec<u8> = (0..len).map(|i| b"abcABC xyz"[i % 10]).collect();
            if plant && at + needle.len() <= haystack.len() {
                haystack[at..at + needle.len()].copy_from_slice(needle.as_bytes());
            }
            let folded = needle.to_ascii_lowercase();
            let expected = haystack.windows(folded.len()).any(|w| w.eq_ignore_ascii_case(folded.as_bytes()));
            prop_assert_eq!(ascii_contains_folded(&haystack, folded.as_bytes()), expected);
        }
    }

    #[test]
    fn the_message_id_for_the_log_is_the_unfolded_first_one() {
        let message = b"Return-Path: <a@b>\r\nMessage-ID:\r\n <x@y>\r\nMessage-ID: <z@w>\r\n\r\nb";
        assert_eq!(message_id_for_log(message).as_deref(), Some("<x@y>"));
        assert_eq!(message_id_for_log(b"Subject: none\r\n\r\nbody"), None);
    }

    #[test]
    fn ascii_text_in_an_ascii_superset_charset_is_searched_as_is_and_other_text_decoded() {
        let part = |charset: &str, body: &[u8]| {
            let mut m = format!("Content-Type: text/plain; charset={charset}\r\n\r\n").into_bytes();
            m.extend_from_slice(body);
            m
        };
        assert!(body_contains(&part("iso-8859-1", b"plain words"), "WORDS"));
        assert!(body_contains(&part("iso-8859-1", b"Gr\xfc\xdfe"), "gr\u{fc}\u{df}e"));
        // UTF-7 is not an ASCII superset: "+AOk-" is an e with an acute accent.
        assert!(body_contains(&part("utf-7", b"caf+AOk-"), "caf\u{e9}"));
        assert!(!body_contains(&part("utf-7", b"caf+AOk-"), "aok"));
    }

    #[test]
    fn a_key_across_a_chunk_border_is_found() {
        for offset in 1..6 {
            let mut haystack = vec![b'-'; 2 * FOLD_CHUNK_BYTES];
            let start = FOLD_CHUNK_BYTES - offset;
            haystack[start..start + 6].copy_from_slice(b"NeEdLe");
            assert!(ascii_contains_folded(&haystack, b"needle"), "offset {offset}");
        }
        assert!(!ascii_contains_folded(&[b'-'; 3 * FOLD_CHUNK_BYTES], b"needle"));
    }

    /// [`has_char_folding_to_ascii`] names every character outside ASCII whose lower-case
    /// form holds an ASCII one: the in-place comparison of an ASCII key relies on it.
    #[test]
    fn only_two_non_ascii_characters_fold_to_ascii() {
        let folding: Vec<char> = (0..=u32::from(char::MAX))
            .filter_map(char::from_u32)
            .filter(|c| !c.is_ascii() && c.to_lowercase().any(|l| l.is_ascii()))
            .collect();
        assert_eq!(folding, vec!['\u{130}', '\u{212A}']);
        for c in folding {
            assert!(has_char_folding_to_ascii(&format!("x{c}y")));
        }
        assert!(!has_char_folding_to_ascii("\u{e9}t\u{e9} \u{131}"));
    }

    #[test]
    fn an_ascii_key_is_found_in_text_with_other_characters() {
        assert!(Needle::new("CAFE AU").found_in("caf\u{e9} cafe au lait"));
        assert!(!Needle::new("cafe au").found_in("caf\u{e9} au lait"));
        // U+0130 folds to `i` and a combining dot, U+212A to `k`.
        assert!(Needle::new("k b").found_in("\u{e9}\u{212A} B"));
        assert!(Needle::new("i").found_in("\u{130}\u{e9}"));
        assert!(!Needle::new("ik").found_in("\u{130}\u{212A}"));
        assert!(Needle::new("i\u{307}k").found_in("\u{130}\u{212A}"));
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
