//! Unit tests for the entry points: tags, dispatch, continuation lines.

use super::*;
use crate::imap::types::{AppendData, FetchAttribute};

#[test]
fn tags_are_reported_with_errors() {
    let error = parse_command(b"a1 FROB").unwrap_err();
    assert_eq!(error.tag.as_ref().map(Tag::as_str), Some("a1"));
    assert_eq!(error.kind, ParseErrorKind::UnknownCommand);
    let error = parse_command(b"+x NOOP").unwrap_err();
    assert_eq!(error.tag, None);
    assert_eq!(parse_command(b"").unwrap_err().tag, None);
    let error = parse_command(b"a NOOP extra").unwrap_err();
    assert_eq!(error.tag.as_ref().map(Tag::as_str), Some("a"));
}

#[test]
fn simple_commands_dispatch_case_insensitively() {
    let cases: [(&[u8], CommandBody); 9] = [
        (b"a capability", CommandBody::Capability),
        (b"a Noop", CommandBody::Noop),
        (b"a CHECK", CommandBody::Noop),
        (b"a LOGOUT", CommandBody::Logout),
        (b"a starttls", CommandBody::StartTls),
        (b"a IDLE", CommandBody::Idle),
        (b"a unselect", CommandBody::Unselect),
        (b"a EXPUNGE", CommandBody::Expunge { uids: None }),
        (b"a NAMESPACE", CommandBody::Namespace),
    ];
    for (input, body) in cases {
        assert_eq!(parse_command(input).unwrap().body, body, "{}", input.escape_ascii());
    }
    assert!(parse_command(b"a  NOOP").is_err());
    assert!(parse_command(b"a UID NOOP").is_err());
    assert!(parse_command(b"a UID").is_err());
}

#[test]
fn uid_prefix_reaches_every_form() {
    let command = parse_command(b"A999 UID FETCH 4827313:4828442 FLAGS").unwrap();
    let CommandBody::Fetch { uid, attributes, .. } = command.body else { panic!() };
    assert!(uid);
    assert_eq!(attributes, vec![FetchAttribute::Flags]);
    assert!(matches!(
        parse_command(b"a uid search 1").unwrap().body,
        CommandBody::Search { uid: true, .. }
    ));
    assert!(matches!(
        parse_command(b"a UID EXPUNGE 3000:3002").unwrap().body,
        CommandBody::Expunge { uids: Some(_) }
    ));
}

#[test]
fn parse_frame_moves_the_append_message() {
    let frame = Frame::from_bytes(b"A003 APPEND saved {9}\r\nSubject:x".to_vec());
    let command = parse_frame(frame, &ParseOptions::default()).unwrap();
    let CommandBody::Append { messages, mailbox } = command.body else { panic!() };
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].data, AppendData::Literal(b"Subject:x".to_vec()));
    assert_eq!(mailbox, "saved");
    let copied = parse_command(b"A003 APPEND saved {9}\r\nSubject:x").unwrap();
    let CommandBody::Append { messages, .. } = copied.body else { panic!() };
    assert_eq!(messages[0].data, AppendData::Literal(b"Subject:x".to_vec()));
}

#[test]
fn parse_frame_copies_each_multiappend_message() {
    let input = b"A003 APPEND saved (\\Seen) {3}\r\none ~{4}\r\nt\0wo \"05-Jan-2026 10:00:00 +0000\" {1}\r\n3";
    let command = parse_frame(Frame::from_bytes(input.to_vec()), &ParseOptions::default()).unwrap();
    let CommandBody::Append { messages, .. } = command.body else { panic!() };
    let data: Vec<&AppendData> = messages.iter().map(|m| &m.data).collect();
    assert_eq!(
        data,
        [
            &AppendData::Literal(b"one".to_vec()),
            &AppendData::Literal(b"t\0wo".to_vec()),
            &AppendData::Literal(b"3".to_vec())
        ]
    );
    assert_eq!(messages[0].flags, vec![crate::imap::types::Flag::Seen]);
    assert!(messages[1].flags.is_empty() && messages[1].date.is_none());
    assert!(messages[2].date.is_some());
    assert_eq!(
        parse_command(input).unwrap().body,
        CommandBody::Append { mailbox: "saved".into(), messages }
    );
}

#[test]
fn utf8_names_option() {
    let options = ParseOptions { utf8_names: true, ..ParseOptions::default() };
    let command = parse_command_with(b"a CREATE R&D", &options).unwrap();
    assert_eq!(command.body, CommandBody::Create("R&D".into()));
    // Not modified UTF-7: parsed, and marked as a name no mailbox can have (CREATE answers NO).
    let command = parse_command(b"a CREATE R&D").unwrap();
    assert_eq!(command.body, CommandBody::Create("\u{7f}R&D".into()));
    let command = parse_command(b"a CREATE R&-D").unwrap();
    assert_eq!(command.body, CommandBody::Create("R&D".into()));
}

#[test]
fn continuation_lines() {
    assert!(parse_idle_done(b"done").is_ok());
    assert!(parse_idle_done(b"DONE ").is_err());
    assert_eq!(parse_sasl_response(b"*").unwrap(), SaslResponse::Cancel);
    assert_eq!(parse_sasl_response(b"").unwrap(), SaslResponse::Data(Vec::new()));
    assert_eq!(parse_sasl_response(b"AGZyZWQ=").unwrap(), SaslResponse::Data(b"\0fred".to_vec()));
    assert!(parse_sasl_response(b"AGZyZWQ").is_err());
    assert!(parse_sasl_response(b"** ").is_err());
    assert_eq!(decode_initial_response("=").unwrap(), Vec::<u8>::new());
    assert_eq!(decode_initial_response("YQ==").unwrap(), b"a");
    assert_eq!(format!("{:?}", SaslResponse::Data(b"pw".to_vec())), "Data(<2 bytes>)");
}

#[test]
fn random_bytes_never_panic() {
    // A small deterministic generator (xorshift) so failures replay exactly.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet: &[u8] = b"a1 *:,()[]<>{}+~\"\\\r\nFETCHSEARCHSTOREBODYNOTOR.%&-$";
    for _ in 0..5000 {
        let len = (next() % 64) as usize;
        let mut input: Vec<u8> = b"a ".to_vec();
        for _ in 0..len {
            let r = next();
            let byte = if r % 4 == 0 {
                (r >> 8) as u8
            } else {
                alphabet[(r >> 8) as usize % alphabet.len()]
            };
            input.push(byte);
        }
        let _ = parse_command(&input);
        let _ = parse_sasl_response(&input);
    }
}
