//! UTF-8 in quoted strings (RFC 9051 `QUOTED-CHAR`, RFC 6855 §3, issue 9's UTF8=ACCEPT row),
//! as properties of the public parser and encoder:
//!
//! - any text without NUL, CR or LF, quoted (with `"` and `\` escaped), parses back to itself,
//!   as a search string and as a mailbox name, whether or not UTF-8 names are on;
//! - a quoted string whose 8-bit bytes are not UTF-8 is refused (`BAD`) as an encoding error,
//!   wherever it appears, in both session forms;
//! - a mailbox name written for a session (modified UTF-7 for IMAP4rev1, quoted UTF-8 after
//!   `ENABLE UTF8=ACCEPT`) parses back to the same name in that session's form, and the
//!   IMAP4rev1 form is 7-bit.

use proptest::prelude::*;
use skua_protocols::imap::encode;
use skua_protocols::imap::parser::{ParseErrorKind, ParseOptions, parse_command_with};
use skua_protocols::imap::types::{CommandBody, SearchKey};

fn options(utf8_names: bool) -> ParseOptions {
    ParseOptions { utf8_names, ..ParseOptions::default() }
}

/// `value` as a quoted string, escaping only `"` and `\` (so 8-bit bytes go as they are).
fn quoted(value: &[u8]) -> Vec<u8> {
    let mut out = vec![b'"'];
    for &byte in value {
        if byte == b'"' || byte == b'\\' {
            out.push(b'\\');
        }
        out.push(byte);
    }
    out.push(b'"');
    out
}

fn command(prefix: &str, argument: &[u8]) -> Vec<u8> {
    let mut line = prefix.as_bytes().to_vec();
    line.extend_from_slice(argument);
    line
}

/// Text that fits a quoted string: any character but NUL, CR and LF, non-ASCII often.
fn quotable_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[^\\x00\\r\\n]{0,24}",
        "[\\u{80}-\\u{7ff}\"\\\\ a-z]{1,12}",
        "[\\u{800}-\\u{d7ff}\\u{e000}-\\u{ffff}]{1,8}",
        "[\\u{10000}-\\u{10ffff}]{1,4}",
    ]
}

/// Bytes whose 8-bit part is not UTF-8: a valid prefix and suffix around a broken sequence
/// (a lone continuation byte, a truncated lead, an overlong form, a surrogate, or a byte no
/// UTF-8 has).
fn invalid_utf8() -> impl Strategy<Value = Vec<u8>> {
    let broken = prop_oneof![
        (0x80u8..=0xbf).prop_map(|b| vec![b]),
        (0xc2u8..=0xdf).prop_map(|b| vec![b]),
        (0xe1u8..=0xec).prop_map(|b| vec![b, 0x80]),
        (0xc0u8..=0xc1, 0x80u8..=0xbf).prop_map(|(a, b)| vec![a, b]),
        (0xa0u8..=0xbf, 0x80u8..=0xbf).prop_map(|(a, b)| vec![0xed, a, b]),
        (0xf5u8..=0xff).prop_map(|b| vec![b]),
    ];
    ("[a-z\u{e9}\u{65e5}]{0,6}", broken, "[a-z]{0,6}").prop_map(|(head, broken, tail)| {
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&broken);
        bytes.extend_from_slice(tail.as_bytes());
        bytes
    })
}

/// A mailbox name: non-empty, no control characters, no separator at either end, in Unicode
/// NFC (the parser takes names in NFC: `parser/values.rs`).
fn mailbox_name() -> impl Strategy<Value = String> {
    use unicode_normalization::UnicodeNormalization;
    "[^\\p{Cc}/]{1,8}(/[^\\p{Cc}/]{1,8}){0,2}"
        .prop_map(|name| name.nfc().collect::<String>())
        .prop_filter("INBOX is case-folded", |name| !name.eq_ignore_ascii_case("INBOX"))
}

proptest! {
    #[test]
    fn quoted_utf8_search_strings_parse_to_themselves(
        text in quotable_text(),
        utf8 in any::<bool>(),
    ) {
        let line = command("a SEARCH SUBJECT ", &quoted(text.as_bytes()));
        let parsed = parse_command_with(&line, &options(utf8)).expect("valid UTF-8 quoted string");
        let CommandBody::Search { keys, .. } = parsed.body else { panic!("not a SEARCH") };
        prop_assert_eq!(keys, vec![SearchKey::Subject(text)]);
    }

    #[test]
    fn quoted_utf8_mailbox_names_parse_to_themselves(name in mailbox_name()) {
        let line = command("a CREATE ", &quoted(name.as_bytes()));
        let parsed = parse_command_with(&line, &options(true)).expect("valid UTF-8 name");
        prop_assert_eq!(parsed.body, CommandBody::Create(name));
    }

    #[test]
    fn invalid_utf8_in_quoted_strings_is_refused(
        bytes in invalid_utf8(),
        utf8 in any::<bool>(),
        prefix in prop_oneof![
            Just("a SEARCH SUBJECT "),
            Just("a CREATE "),
            Just("a LIST \"\" "),
            Just("a LOGIN fred "),
            Just("a ID (\"name\" "),
        ],
    ) {
        prop_assume!(std::str::from_utf8(&bytes).is_err());
        let mut line = command(prefix, &quoted(&bytes));
        if prefix.ends_with("(\"name\" ") {
            line.push(b')');
        }
        let error = parse_command_with(&line, &options(utf8)).expect_err("invalid UTF-8");
        prop_assert_eq!(error.kind, ParseErrorKind::Encoding, "{}", error.message);
    }

    #[test]
    fn names_round_trip_in_each_session_form(name in mailbox_name(), utf8 in any::<bool>()) {
        let mut wire = Vec::new();
        encode::mailbox(&mut wire, &name, utf8);
        if !utf8 {
            prop_assert!(wire.is_ascii(), "IMAP4rev1 names are modified UTF-7: {:?}", wire);
        }
        let parsed = parse_command_with(&command("a DELETE ", &wire), &options(utf8))
            .expect("an encoded name parses");
        prop_assert_eq!(parsed.body, CommandBody::Delete(name));
    }
}
