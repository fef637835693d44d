//! `CacheView::section`: BODY[section] byte ranges per RFC 9051 §6.4.5, over the messages in
//! `mime_fixtures/`.

mod mime_fixtures;

use mime_fixtures::{ALTERNATIVE, MIXED, SIMPLE};
use skua_protocols::imap::types::SectionText;
use skua_protocols::mime::cache::{CacheView, SectionBytes, build};

fn section(message: &[u8], part: &[u32], text: Option<&SectionText>) -> Option<Vec<u8>> {
    let blob = build(message);
    let view = CacheView::parse(&blob).expect("parses");
    view.section(message, part, text).map(|s| s.bytes(message).to_vec())
}

fn text(message: &[u8], part: &[u32], text_spec: Option<&SectionText>) -> String {
    String::from_utf8(section(message, part, text_spec).expect("section exists")).expect("utf-8")
}

fn fields(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_string()).collect()
}

#[test]
fn single_part_message_sections() {
    let header_len = SIMPLE.len() - 26;
    assert_eq!(section(SIMPLE, &[], None).expect("whole"), SIMPLE);
    assert_eq!(
        section(SIMPLE, &[], Some(&SectionText::Header)).expect("header"),
        &SIMPLE[..header_len]
    );
    assert_eq!(text(SIMPLE, &[], Some(&SectionText::Text)), "Hello world\r\nsecond line\r\n");
    assert_eq!(text(SIMPLE, &[1], None), "Hello world\r\nsecond line\r\n");
    assert_eq!(
        section(SIMPLE, &[1], Some(&SectionText::Mime)).expect("mime"),
        &SIMPLE[..header_len]
    );
    assert_eq!(section(SIMPLE, &[2], None), None);
    assert_eq!(section(SIMPLE, &[0], None), None);
    assert_eq!(section(SIMPLE, &[1, 1], None), None);
    assert_eq!(section(SIMPLE, &[1], Some(&SectionText::Header)), None);
    assert_eq!(section(SIMPLE, &[], Some(&SectionText::Mime)), None);
}

#[test]
fn header_fields_filter_keeps_folding_and_ends_with_blank_line() {
    let message =
        b"Subject: a\r\n folded\r\nFrom: x@y\r\nX-Other: 1\r\nsubject: second\r\n\r\nbody";
    assert_eq!(
        text(message, &[], Some(&SectionText::HeaderFields(fields(&["SUBJECT", "nope"])))),
        "Subject: a\r\n folded\r\nsubject: second\r\n\r\n"
    );
    assert_eq!(
        text(message, &[], Some(&SectionText::HeaderFieldsNot(fields(&["subject"])))),
        "From: x@y\r\nX-Other: 1\r\n\r\n"
    );
    assert_eq!(text(message, &[], Some(&SectionText::HeaderFields(fields(&["missing"])))), "\r\n");
    let unterminated = b"From: x@y";
    assert_eq!(
        text(unterminated, &[], Some(&SectionText::HeaderFields(fields(&["from"])))),
        "From: x@y\r\n\r\n"
    );
    let blob = build(message);
    let view = CacheView::parse(&blob).expect("parses");
    assert!(matches!(
        view.section(message, &[], Some(&SectionText::HeaderFields(fields(&["from"])))),
        Some(SectionBytes::Owned(_))
    ));
    assert!(matches!(view.section(message, &[1], None), Some(SectionBytes::Range(_))));
}

#[test]
fn multipart_sections() {
    assert_eq!(text(ALTERNATIVE, &[1], None), "plain");
    assert_eq!(text(ALTERNATIVE, &[2], None), "<p>html</p>");
    assert_eq!(
        text(ALTERNATIVE, &[2], Some(&SectionText::Mime)),
        "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    );
    assert_eq!(section(ALTERNATIVE, &[3], None), None);
    assert_eq!(section(ALTERNATIVE, &[1], Some(&SectionText::Header)), None);
    assert_eq!(section(ALTERNATIVE, &[1, 1], None), None);
    assert!(text(ALTERNATIVE, &[], Some(&SectionText::Text)).starts_with("--XX\r\n"));
}

#[test]
fn nested_message_sections() {
    let inner_header = "From: Inner <inner@example.org>\r\nSubject: inner subject\r\n\
Content-Type: multipart/alternative; boundary=inner\r\n\r\n";
    let inner_body = "--inner\r\n\r\ninner text\r\n--inner\r\nContent-Type: text/html\r\n\r\n<b>x</b>\r\n--inner--";
    assert_eq!(text(MIXED, &[1], None), "see attached");
    assert_eq!(text(MIXED, &[2], None), "JVBERi0xLjQK\r\nAAAA");
    assert_eq!(text(MIXED, &[3], None), format!("{inner_header}{inner_body}"));
    assert_eq!(text(MIXED, &[3], Some(&SectionText::Mime)), "Content-Type: message/rfc822\r\n\r\n");
    assert_eq!(text(MIXED, &[3], Some(&SectionText::Header)), inner_header);
    assert_eq!(text(MIXED, &[3], Some(&SectionText::Text)), inner_body);
    assert_eq!(
        text(MIXED, &[3], Some(&SectionText::HeaderFields(fields(&["subject"])))),
        "Subject: inner subject\r\n\r\n"
    );
    assert_eq!(text(MIXED, &[3, 1], None), "inner text");
    assert_eq!(text(MIXED, &[3, 2], None), "<b>x</b>");
    assert_eq!(text(MIXED, &[3, 2], Some(&SectionText::Mime)), "Content-Type: text/html\r\n\r\n");
    assert_eq!(section(MIXED, &[3, 3], None), None);
    assert_eq!(section(MIXED, &[4], None), None);
    assert_eq!(section(MIXED, &[2], Some(&SectionText::Text)), None);
}

#[test]
fn single_part_encapsulated_message() {
    let message = b"Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\ninner body\r\n";
    assert_eq!(text(message, &[1], None), "Subject: in\r\n\r\ninner body\r\n");
    assert_eq!(text(message, &[1], Some(&SectionText::Header)), "Subject: in\r\n\r\n");
    assert_eq!(text(message, &[1], Some(&SectionText::Text)), "inner body\r\n");
    assert_eq!(text(message, &[1, 1], None), "inner body\r\n");
    assert_eq!(text(message, &[1, 1], Some(&SectionText::Mime)), "Subject: in\r\n\r\n");
    assert_eq!(section(message, &[1, 2], None), None);
    assert_eq!(section(message, &[1, 1, 1], None), None);
}

#[test]
fn sections_of_a_shorter_message_are_refused() {
    let blob = build(MIXED);
    let view = CacheView::parse(&blob).expect("parses");
    let short = &MIXED[..100];
    assert_eq!(view.section(short, &[3], None), None);
    assert_eq!(view.section(short, &[3], Some(&SectionText::Header)), None);
}
