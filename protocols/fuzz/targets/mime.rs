//! Target `mime`: bytes as a message through MIME analysis (`mime::cache::build`), the cache
//! blob read back (`CacheView`), every section the part table names, and the SEARCH helpers;
//! then the same bytes as a cache blob read against a fixed message.
//!
//! Expectations: never panics; every blob `build` makes parses; ENVELOPE, BODYSTRUCTURE and
//! BODY are well-formed IMAP lists (balanced, quoted strings closed and 7-bit, literals of the
//! length announced); every section lies inside the message; the blob is bounded (linear in
//! the message, plus a constant per part up to `PARTS_MAX`); a blob that did not come from
//! `build` either is refused or yields only sections inside the message.

use skua_protocols::imap::types::SectionText;
use skua_protocols::mime::cache::{CacheView, SectionBytes, build};
use skua_protocols::mime::limits::PARTS_MAX;
use skua_protocols::mime::search;

/// The message the blob decoder is tried against.
const FIXED_MESSAGE: &[u8] = b"Subject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\none\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n\
Subject: inner\r\n\r\ntwo\r\n--b--\r\n";

/// Checks `text` is one parenthesised IMAP list.
fn assert_imap_list(text: &[u8]) {
    assert_eq!(text.first(), Some(&b'('), "{:?}", String::from_utf8_lossy(text));
    let mut depth = 0usize;
    let mut at = 0;
    while at < text.len() {
        match text[at] {
            b'(' => depth += 1,
            b')' => {
                depth = depth.checked_sub(1).expect("balanced parentheses");
                if depth == 0 {
                    assert_eq!(at + 1, text.len(), "text after the list");
                }
            }
            b'"' => {
                at += 1;
                while text[at] != b'"' {
                    assert!(!matches!(text[at], b'\r' | b'\n' | 0) && text[at] < 0x80);
                    at += if text[at] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' => {
                let close = at + text[at..].iter().position(|&b| b == b'}').expect("}");
                let digits = std::str::from_utf8(&text[at + 1..close]).expect("digits");
                let length: usize = digits.parse().expect("a literal length");
                assert_eq!(&text[close + 1..close + 3], b"\r\n");
                assert!(close + 3 + length <= text.len(), "literal past the end");
                at = close + 2 + length;
            }
            b' ' | b'N' | b'I' | b'L' | b'0'..=b'9' => {}
            other => panic!("byte {other:#x} in {:?}", String::from_utf8_lossy(text)),
        }
        at += 1;
    }
    assert_eq!(depth, 0, "unclosed list");
}

const SPECS: [Option<SectionText>; 4] =
    [None, Some(SectionText::Header), Some(SectionText::Text), Some(SectionText::Mime)];

/// Part numbers to try: every top-level part, and a few levels below the first parts.
fn part_numbers(parts: usize) -> Vec<Vec<u32>> {
    let top = u32::try_from(parts.min(8) + 1).expect("small");
    let mut numbers = vec![vec![], vec![0], vec![u32::MAX]];
    for a in 1..=top {
        numbers.push(vec![a]);
        for b in 1..=3 {
            numbers.push(vec![a, b]);
            numbers.push(vec![a, b, 1]);
        }
    }
    numbers
}

fn sections_inside(view: &CacheView<'_>, message: &[u8]) {
    for part in part_numbers(view.part_count()) {
        for spec in &SPECS {
            if let Some(SectionBytes::Range(range)) = view.section(message, &part, spec.as_ref()) {
                assert!(range.start <= range.end && range.end <= message.len(), "{part:?}");
            }
        }
        let fields = SectionText::HeaderFields(vec!["subject".into(), "from".into()]);
        if let Some(section) = view.section(message, &part, Some(&fields)) {
            // The fields copied, a CRLF ending the last one if the message lacked it, and the
            // blank line.
            assert!(section.len() <= message.len() + 4);
        }
    }
}

/// The target.
pub fn target(data: &[u8]) {
    let blob = build(data);
    assert!(blob.len() <= 8 * data.len() + 256 * PARTS_MAX, "blob of {} bytes", blob.len());
    let view = CacheView::parse(&blob).expect("every blob from build parses");
    assert_imap_list(view.envelope());
    assert_imap_list(view.body_structure());
    assert_imap_list(view.body());
    assert!(view.header_len() as usize <= data.len());
    assert!(view.part_count() <= PARTS_MAX);
    sections_inside(&view, data);
    let _ = search::header_contains(data, "subject", "x");
    let _ = search::address_header_contains(data, "from", "a@b");
    let body = search::body_contains(data, "text");
    assert_eq!(search::body_contains_cached(data, &blob, "text"), body);
    let text = search::text_contains(data, "ü");
    assert_eq!(search::text_contains_cached(data, &blob, "ü"), text);

    if let Ok(view) = CacheView::parse(data) {
        sections_inside(&view, FIXED_MESSAGE);
    }
    let _ = search::body_contains_cached(FIXED_MESSAGE, data, "text");
}
