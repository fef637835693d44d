//! Unit tests for the response primitives.

use super::*;
use skua_core::types::Keywords;

fn written(f: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut out = Vec::new();
    f(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn strings_choose_their_form() {
    assert_eq!(written(|o| astring(o, b"INBOX")), "INBOX");
    assert_eq!(written(|o| astring(o, b"")), "\"\"");
    assert_eq!(written(|o| astring(o, b"nil")), "\"nil\"");
    assert_eq!(written(|o| astring(o, b"a b")), "\"a b\"");
    assert_eq!(written(|o| string(o, b"say \"hi\" \\o/")), r#""say \"hi\" \\o/""#);
    assert_eq!(written(|o| string(o, b"a\r\nb")), "{4}\r\na\r\nb");
    assert_eq!(written(|o| string(o, "\u{e9}".as_bytes())), "{2}\r\n\u{e9}");
    assert_eq!(written(|o| nstring(o, None)), "NIL");
    let long = vec![b'x'; QUOTED_BYTES_MAX + 1];
    assert!(written(|o| string(o, &long)).starts_with("{1025}\r\n"));
}

#[test]
fn numbers_and_sequence_sets() {
    assert_eq!(written(|o| number(o, 0)), "0");
    assert_eq!(written(|o| number(o, u64::MAX)), u64::MAX.to_string());
    assert_eq!(written(|o| sequence_set(o, &[1, 2, 3, 4, 5, 7, 9, 10])), "1:5,7,9:10");
    assert_eq!(written(|o| sequence_set(o, &[3, 3, 4, u32::MAX])), "3:4,4294967295");
    assert_eq!(written(|o| sequence_set(o, &[8])), "8");
    assert_eq!(written(|o| sequence_set(o, &[])), "");
    let mut out = b"UID 5 ".to_vec();
    sequence_set(&mut out, &[6, 7]);
    assert_eq!(out, b"UID 5 6:7");
}

#[test]
fn flags_render() {
    let list = [Flag::Seen, Flag::Keyword("$Junk".into()), Flag::Extension("Recent".into())];
    assert_eq!(written(|o| flag_list(o, &list)), "(\\Seen $Junk \\Recent)");
    assert_eq!(written(|o| flag_list(o, &[])), "()");
    let message = Flags {
        system: SystemFlags(SystemFlags::SEEN | SystemFlags::DELETED),
        keywords: Keywords(0b101),
    };
    let table = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
    assert_eq!(written(|o| flags(o, message, &table, false)), "(\\Seen \\Deleted a c)");
    assert_eq!(written(|o| flags(o, message, &table, true)), "(\\Seen \\Deleted \\Recent a c)");
    assert_eq!(written(|o| flags(o, Flags::default(), &table, false)), "()");
}

#[test]
fn dates_render() {
    let date = InternalDate { unix_seconds: 1_795_641_109, zone_minutes: 0 };
    assert_eq!(written(|o| internal_date(o, date)), "\"25-Nov-2026 21:11:49 +0000\"");
    let date = InternalDate { unix_seconds: 0, zone_minutes: -330 };
    assert_eq!(written(|o| internal_date(o, date)), "\"31-Dec-1969 18:30:00 -0530\"");
    assert_eq!(written(|o| search_date(o, 0)), "01-Jan-1970");
}

#[test]
fn mailboxes_render() {
    let rev1 = |name: &str| written(|o| mailbox(o, name, false));
    assert_eq!(rev1("INBOX"), "INBOX");
    assert_eq!(rev1("Entw\u{fc}rfe"), "Entw&APw-rfe");
    assert_eq!(rev1("R&D stuff"), "\"R&-D stuff\"");
    assert_eq!(rev1("a\u{1}"), "a&AAE-");
    // UTF-8 names (IMAP4rev2, UTF8=ACCEPT): quoted UTF-8, escaped like any quoted string.
    let utf8 = |name: &str| written(|o| mailbox(o, name, true));
    assert_eq!(utf8("Entw\u{fc}rfe"), "\"Entw\u{fc}rfe\"");
    assert_eq!(utf8("\u{fc} \"q\" \\"), "\"\u{fc} \\\"q\\\" \\\\\"");
    assert_eq!(utf8("R&D"), "R&D");
    assert_eq!(utf8("a\u{1}\u{fc}"), "{4}\r\na\u{1}\u{fc}", "a control character: literal");
    let long = "\u{fc}".repeat(600);
    assert_eq!(utf8(&long), format!("{{1200}}\r\n{long}"), "long: literal");
}

#[test]
fn sections_render() {
    let s = Section {
        part: vec![1, 2],
        text: Some(SectionText::HeaderFields(vec!["From".into(), "X Y".into()])),
    };
    assert_eq!(written(|o| section(o, &s)), "[1.2.HEADER.FIELDS (From \"X Y\")]");
    assert_eq!(written(|o| section(o, &Section { part: vec![], text: None })), "[]");
    let s = Section { part: vec![], text: Some(SectionText::Text) };
    assert_eq!(written(|o| section(o, &s)), "[TEXT]");
}

/// Issue 9: NUL bytes stored by a `literal8` APPEND were later sent inside a plain `{n}`
/// literal, which may not hold NUL (`CHAR8 = %x01-ff`).
#[test]
fn literals_never_carry_nul_and_literal8_may() {
    let mut out = Vec::new();
    literal(&mut out, b"a\0b\0");
    assert_eq!(out, b"{4}\r\na\x80b\x80");
    let mut out = Vec::new();
    string(&mut out, b"x\0");
    assert!(!out.contains(&0), "{out:?}");
    let mut out = Vec::new();
    literal8_header(&mut out, 12);
    assert_eq!(out, b"~{12}\r\n");
}
