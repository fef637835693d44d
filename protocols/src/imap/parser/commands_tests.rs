//! Unit tests for the simple commands.

use super::*;
use crate::imap::limits::ParseLimits;
use crate::imap::types::{Flag, StatusAttribute};

fn run<T>(input: &[u8], f: impl Fn(&mut Cursor<'_>) -> PResult<T>) -> PResult<T> {
    let mut c = Cursor::new(input, ParseLimits::default(), false);
    let value = f(&mut c)?;
    c.end()?;
    Ok(value)
}

#[test]
fn login_takes_two_astrings() {
    let body = run(b" fred {4}\r\nse t", login).unwrap();
    assert_eq!(body, CommandBody::Login { user: "fred".into(), password: "se t".into() });
    let shown = format!("{body:?}");
    assert!(!shown.contains("se t") && shown.contains("<redacted>"), "{shown}");
    assert!(run(b" fred", login).is_err());
    assert!(run(b" fred \"\xff\"", login).is_err());
}

#[test]
fn authenticate_with_and_without_initial_response() {
    let body = run(b" plain AGZyZWQAc2VjcmV0", authenticate).unwrap();
    assert_eq!(
        body,
        CommandBody::Authenticate {
            mechanism: "PLAIN".into(),
            initial_response: Some("AGZyZWQAc2VjcmV0".into())
        }
    );
    assert!(!format!("{body:?}").contains("AGZyZWQAc2VjcmV0"), "the response holds a password");
    let body = run(b" EXTERNAL =", authenticate).unwrap();
    assert!(
        matches!(body, CommandBody::Authenticate { initial_response: Some(r), .. } if r.expose() == "=")
    );
    assert!(run(b" PLAIN", authenticate).is_ok());
    assert!(run(b" PLAIN abc", authenticate).is_err());
    assert!(run(b" PLAIN ", authenticate).is_err());
}

#[test]
fn enable_and_select_params() {
    let body = run(b" condstore UTF8=ACCEPT", enable).unwrap();
    assert_eq!(body, CommandBody::Enable(vec!["CONDSTORE".into(), "UTF8=ACCEPT".into()]));
    assert!(run(b"", enable).is_err());
    let body = run(b" inbox (CONDSTORE)", |c| select(c, false)).unwrap();
    let expected = CommandBody::Select { mailbox: "INBOX".into(), condstore: true, qresync: None };
    assert_eq!(body, expected);
    let body = run(b" x", |c| select(c, true)).unwrap();
    let expected = CommandBody::Examine { mailbox: "x".into(), condstore: false, qresync: None };
    assert_eq!(body, expected);
    assert!(run(b" x ()", |c| select(c, false)).is_err());
    let body = run(b" x (QRESYNC (1 2) CONDSTORE)", |c| select(c, false)).unwrap();
    let CommandBody::Select { qresync: Some(params), condstore: true, .. } = body else { panic!() };
    assert_eq!((params.uid_validity, params.modseq), (1, 2));
    assert!(run(b" x (QRESYNC (1 2) QRESYNC (1 2))", |c| select(c, false)).is_err());
}

#[test]
fn list_basic_and_extended() {
    let body = run(b" \"\" *", list).unwrap();
    assert_eq!(
        body,
        CommandBody::List {
            reference: String::new(),
            patterns: vec!["*".into()],
            subscribed_only: false,
            recursive_match: false,
            special_use_only: false,
            return_subscribed: false,
            return_status: Vec::new(),
            return_metadata: None,
            return_myrights: false,
        }
    );
    let body =
        run(b" (SUBSCRIBED REMOTE) \"\" (INBOX \"Sent\" %) RETURN (CHILDREN subscribed)", list);
    let CommandBody::List { patterns, subscribed_only, return_subscribed, .. } = body.unwrap()
    else {
        panic!()
    };
    assert_eq!(patterns, vec!["INBOX", "Sent", "%"]);
    assert!(subscribed_only && return_subscribed);
    assert!(run(b" () \"\" *", list).is_ok());
    assert!(run(b" \"\" * RETURN ()", list).is_ok());
    assert!(run(b" (BOGUS) \"\" *", list).is_err());
    let body = run(b" (SUBSCRIBED RECURSIVEMATCH) \"\" * RETURN (STATUS (MESSAGES SIZE))", list);
    let CommandBody::List { recursive_match, return_status, .. } = body.unwrap() else { panic!() };
    assert!(recursive_match);
    assert_eq!(return_status, vec![StatusAttribute::Messages, StatusAttribute::Size]);
    assert!(run(b" (RECURSIVEMATCH) \"\" *", list).is_err(), "needs another option");
    assert!(run(b" \"\" * RETURN (STATUS ())", list).is_err());
    assert!(run(b" \"\" * RETURN (SPECIAL-USE)", list).is_ok(), "always returned");
    let body = run(b" (SPECIAL-USE) \"\" *", list);
    let CommandBody::List { special_use_only, .. } = body.unwrap() else { panic!() };
    assert!(special_use_only);
    let body = run(b" \"\" * RETURN (MYRIGHTS)", list);
    let CommandBody::List { return_myrights, .. } = body.unwrap() else { panic!() };
    assert!(return_myrights, "LIST-MYRIGHTS (RFC 8440)");
    assert!(run(b" \"\"", list).is_err());
    assert_eq!(
        run(b" foo %", lsub).unwrap(),
        CommandBody::Lsub { reference: "foo".into(), pattern: "%".into() }
    );
}

#[test]
fn status_items() {
    let body = run(b" blurdybloop (UIDNEXT MESSAGES highestmodseq)", status).unwrap();
    assert_eq!(
        body,
        CommandBody::Status {
            mailbox: "blurdybloop".into(),
            attributes: vec![
                StatusAttribute::UidNext,
                StatusAttribute::Messages,
                StatusAttribute::HighestModSeq
            ]
        }
    );
    assert!(run(b" x ()", status).is_err());
    assert!(run(b" x (FOO)", status).is_err());
    // RFC 7889
    let body = run(b" INBOX (APPENDLIMIT)", status).unwrap();
    let expected = CommandBody::Status {
        mailbox: "INBOX".into(),
        attributes: vec![StatusAttribute::AppendLimit],
    };
    assert_eq!(body, expected);
}

#[test]
fn catenate_forms() {
    let input = b" Drafts (\\Draft) CATENATE (URL \"/Drafts/;UID=20/;section=HEADER\" TEXT {3}\r\n--\n url {6}\r\n;UID=1)";
    let parts = run(input, append).unwrap();
    let [message] = parts.messages.as_slice() else { panic!() };
    assert_eq!(message.flags, vec![Flag::Draft]);
    let DataParts::Catenate(cat) = &message.data else { panic!() };
    assert!(matches!(&cat[0], CatenateRange::Url(u) if u == "/Drafts/;UID=20/;section=HEADER"));
    assert!(matches!(&cat[1], CatenateRange::Text(r) if &input[r.clone()] == b"--\n"));
    assert!(matches!(&cat[2], CatenateRange::Url(u) if u == ";UID=1"));
    assert!(run(b" x CATENATE ()", append).is_err());
    assert!(run(b" x CATENATE (TEXT \"quoted\")", append).is_err());
    assert!(run(b" x CATENATE (TEXT ~{1}\r\na)", append).is_err());
    assert!(run(b" x CATENATE (FOO {1}\r\na)", append).is_err());
    assert!(run(b" x CATENATE (URL \"/x/;UID=1\"", append).is_err());
    let limits = ParseLimits { catenate_parts_max: 2, ..ParseLimits::default() };
    let mut c = Cursor::new(b" x CATENATE (URL a URL b URL c)", limits, false);
    assert_eq!(append(&mut c).err().map(|e| e.kind), Some(ParseErrorKind::TooMany));
}

#[test]
fn append_forms() {
    let input = b" saved-messages (\\Seen) \"05-Jan-2026 10:00:00 +0000\" {5}\r\nhello";
    let parts = run(input, append).unwrap();
    assert_eq!(parts.mailbox, "saved-messages");
    let [message] = parts.messages.as_slice() else { panic!() };
    assert_eq!(message.flags, vec![Flag::Seen]);
    assert!(message.date.is_some());
    let DataParts::Literal(range) = &message.data else { panic!() };
    assert_eq!(&input[range.clone()], b"hello");
    // literal8 (RFC 3516 §4.4) may carry NUL; a plain literal may not.
    let input = b" x ~{2}\r\na\0";
    let parts = run(input, append).unwrap();
    let DataParts::Literal(range) = &parts.messages[0].data else { panic!() };
    assert_eq!(&input[range.clone()], b"a\0");
    assert!(run(b" x {2}\r\na\0", append).is_err());
    // MULTIAPPEND (RFC 3502): several messages, each with its own options.
    let parts = run(b" x {1}\r\na (\\Seen) {1}\r\nb", append).unwrap();
    assert_eq!(parts.messages.len(), 2);
    assert_eq!(parts.messages[1].flags, vec![Flag::Seen]);
    assert!(run(b" x {1}\r\na ", append).is_err());
    assert!(run(b" x", append).is_err());
    assert!(run(b" x \"hello\"", append).is_err());
    assert!(run(b" x (\\Seen) {3}\r\nab", append).is_err());
    assert!(run(b" x (\\Seen) {3}\r\nabc (\\Seen)", append).is_err());
}

#[test]
fn append_message_count_is_bounded() {
    let limits = ParseLimits { append_messages_max: 2, ..ParseLimits::default() };
    let parse = |input: &[u8]| {
        let mut c = Cursor::new(input, limits, false);
        append(&mut c).map(|parts| parts.messages.len())
    };
    assert_eq!(parse(b" x {1}\r\na {1}\r\nb").ok(), Some(2));
    let error = parse(b" x {1}\r\na {1}\r\nb {1}\r\nc").expect_err("refused");
    assert_eq!(error.kind, ParseErrorKind::TooMany);
}

#[test]
fn store_forms() {
    let body = run(b" 2:4 +FLAGS.SILENT (\\Deleted)", |c| store(c, false)).unwrap();
    assert_eq!(
        body,
        CommandBody::Store {
            uid: false,
            set: crate::imap::types::SequenceSet::new(vec![(
                crate::imap::types::SeqBound::Value(2),
                crate::imap::types::SeqBound::Value(4)
            )])
            .unwrap(),
            op: FlagsOp::Add,
            silent: true,
            flags: vec![Flag::Deleted],
            unchanged_since: None
        }
    );
    let body = run(b" 1 (UNCHANGEDSINCE 320162338) -flags \\Seen $x", |c| store(c, true)).unwrap();
    let CommandBody::Store { op, flags, unchanged_since, silent, .. } = body else { panic!() };
    assert_eq!((op, silent, unchanged_since), (FlagsOp::Remove, false, Some(320_162_338)));
    assert_eq!(flags.len(), 2);
    assert!(run(b" 1 FLAGS ()", |c| store(c, false)).is_ok());
    assert!(run(b" 1 FLAGS", |c| store(c, false)).is_err());
    assert!(run(b" 1 LABELS (x)", |c| store(c, false)).is_err());
    assert!(run(b" 1 (FOO 1) FLAGS (x)", |c| store(c, false)).is_err());
}

#[test]
fn copy_move_expunge_id() {
    let body = run(b" 2:4 MEETING", |c| copy_or_move(c, false, false)).unwrap();
    assert!(
        matches!(body, CommandBody::Copy { ref mailbox, uid: false, .. } if mailbox == "MEETING")
    );
    let body = run(b" 1 Trash", |c| copy_or_move(c, true, true)).unwrap();
    assert!(matches!(body, CommandBody::Move { uid: true, .. }));
    assert!(run(b" 1:*", uid_expunge).is_ok());
    assert!(run(b"", uid_expunge).is_err());
    assert_eq!(run(b" NIL", id).unwrap(), CommandBody::Id);
    assert_eq!(run(b" (\"name\" \"sodr\" \"version\" NIL)", id).unwrap(), CommandBody::Id);
    assert!(run(b" (\"name\")", id).is_err());
    let many = format!(" ({})", vec!["\"k\" \"v\""; 31].join(" "));
    assert_eq!(run(many.as_bytes(), id).unwrap_err().kind, ParseErrorKind::TooMany);
    // RFC 2971 §3.3: values of at most 1024 bytes (issue 9: a longer one was accepted).
    let value = |n: usize| format!(" (\"name\" \"{}\")", "v".repeat(n));
    assert_eq!(run(value(1024).as_bytes(), id).unwrap(), CommandBody::Id);
    assert!(run(value(1025).as_bytes(), id).is_err());
}

/// RFC 6855 §4: `UTF8 (literal8)` is an append-data item and a CATENATE part; a plain literal
/// inside is not.
#[test]
fn append_utf8_item() {
    let parts = run_append(b" INBOX UTF8 (~{3}\r\nabc)").expect("UTF8 item");
    assert!(parts.messages[0].utf8 && parts.messages[0].binary);
    assert!(matches!(parts.messages[0].data, DataParts::Literal(ref r) if r.len() == 3));
    let parts = run_append(b" INBOX (\\Seen) utf8 (~{1+}\r\nx) {1}\r\ny").expect("two messages");
    assert!(parts.messages[0].utf8 && !parts.messages[1].utf8);
    assert!(run_append(b" INBOX {1}\r\nx").is_ok_and(|parts| !parts.messages[0].utf8));
    let parts = run_append(b" INBOX CATENATE (TEXT {1}\r\na UTF8 (~{1}\r\nb))").expect("cat-part");
    assert!(parts.messages[0].utf8);
    assert!(matches!(parts.messages[0].data, DataParts::Catenate(ref p) if p.len() == 2));
    let parts = run_append(b" INBOX CATENATE (TEXT {1}\r\na)").expect("no UTF8 part");
    assert!(!parts.messages[0].utf8);
    for bad in
        [&b" INBOX UTF8 ({3}\r\nabc)"[..], b" INBOX UTF8 (~{3}\r\nabc", b" INBOX UTF8 ~{1}\r\na"]
    {
        assert!(run_append(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
    }
}

fn run_append(input: &[u8]) -> PResult<AppendParts> {
    run(input, append)
}

#[test]
fn create_with_special_use() {
    let create = super::create;
    assert_eq!(run(b" Foo", create).unwrap(), CommandBody::Create("Foo".into()));
    assert_eq!(
        run(b" Foo (USE (\\Sent \\Important))", create).unwrap(),
        CommandBody::CreateSpecialUse {
            mailbox: "Foo".into(),
            uses: vec!["\\Sent".into(), "\\Important".into()]
        }
    );
    assert_eq!(
        run(b" Foo (use ())", create).unwrap(),
        CommandBody::CreateSpecialUse { mailbox: "Foo".into(), uses: Vec::new() }
    );
    assert!(run(b" Foo (USE (Sent))", create).is_err(), "an attribute starts with \\");
    assert!(run(b" Foo (BOGUS (\\Sent))", create).is_err(), "unknown parameter");
    assert!(run(b" Foo (USE (\\Sent) USE ())", create).is_err(), "repeated");
    assert!(run(b" Foo (USE (\\Sent)", create).is_err(), "unclosed");
    assert!(run(b" Foo ()", create).is_err(), "empty parameter list");
}
