//! The example commands of RFC 9051 (and of the extensions skua implements: RFC 7162
//! CONDSTORE, RFC 5258 LIST-EXTENDED, RFC 2971 ID, RFC 6851 MOVE), parsed through the public
//! API, plus whole client transcripts pushed through the framer in awkward pieces.

use skua_core::types::FlagsOp;
use skua_protocols::imap::framing::{Frame, Framed, Framer};
use skua_protocols::imap::limits::FrameLimits;
use skua_protocols::imap::parser::{ParseOptions, parse_command, parse_frame};
use skua_protocols::imap::types::{
    AppendData, CommandBody, FetchAttribute, Flag, SearchKey, SearchReturn, Section, SectionText,
    StatusAttribute,
};

fn body(line: &str) -> CommandBody {
    match parse_command(line.as_bytes()) {
        Ok(command) => command.body,
        Err(error) => panic!("{line:?}: {error}"),
    }
}

#[test]
fn rfc_9051_any_and_non_authenticated_state() {
    assert_eq!(body("abcd CAPABILITY"), CommandBody::Capability);
    assert_eq!(body("a002 NOOP"), CommandBody::Noop);
    assert_eq!(body("A023 LOGOUT"), CommandBody::Logout);
    assert_eq!(body("a002 STARTTLS"), CommandBody::StartTls);
    assert_eq!(
        body("A001 AUTHENTICATE GSSAPI"),
        CommandBody::Authenticate { mechanism: "GSSAPI".into(), initial_response: None }
    );
    assert_eq!(
        body("a001 LOGIN SMITH SESAME"),
        CommandBody::Login { user: "SMITH".into(), password: "SESAME".into() }
    );
}

#[test]
fn rfc_9051_authenticated_state() {
    assert_eq!(
        body("A142 SELECT INBOX"),
        CommandBody::Select { mailbox: "INBOX".into(), condstore: false, qresync: None }
    );
    assert_eq!(
        body("A932 EXAMINE blurdybloop"),
        CommandBody::Examine { mailbox: "blurdybloop".into(), condstore: false, qresync: None }
    );
    assert_eq!(body("A003 CREATE owatagusiam/"), CommandBody::Create("owatagusiam/".into()));
    assert_eq!(body("A683 DELETE blurdybloop"), CommandBody::Delete("blurdybloop".into()));
    assert_eq!(
        body("A683 RENAME blurdybloop sarasoop"),
        CommandBody::Rename("blurdybloop".into(), "sarasoop".into())
    );
    assert_eq!(
        body("A002 SUBSCRIBE #news.comp.mail.mime"),
        CommandBody::Subscribe("#news.comp.mail.mime".into())
    );
    assert_eq!(
        body("A002 UNSUBSCRIBE #news.comp.mail.mime"),
        CommandBody::Unsubscribe("#news.comp.mail.mime".into())
    );
    assert_eq!(body("A001 NAMESPACE"), CommandBody::Namespace);
    assert_eq!(body("a1 ENABLE IMAP4rev2"), CommandBody::Enable(vec!["IMAP4REV2".into()]));
    assert_eq!(
        body("A042 STATUS blurdybloop (UIDNEXT MESSAGES)"),
        CommandBody::Status {
            mailbox: "blurdybloop".into(),
            attributes: vec![StatusAttribute::UidNext, StatusAttribute::Messages]
        }
    );
    assert_eq!(body("a002 IDLE"), CommandBody::Idle);
}

#[test]
fn rfc_9051_list_examples() {
    for (line, reference, pattern) in [
        ("A101 LIST \"\" \"\"", "", ""),
        ("A102 LIST #news.comp.mail.misc \"\"", "#news.comp.mail.misc", ""),
        ("A103 LIST /usr/staff/jones \"\"", "/usr/staff/jones", ""),
        ("A202 LIST ~/Mail/ %", "~/Mail/", "%"),
        ("A682 LIST \"\" *", "", "*"),
    ] {
        let CommandBody::List { reference: r, patterns, .. } = body(line) else { panic!() };
        assert_eq!((r.as_str(), patterns), (reference, vec![pattern.to_owned()]), "{line}");
    }
    // RFC 5258 examples.
    let CommandBody::List { subscribed_only, .. } = body("A02 LIST (SUBSCRIBED) \"\" \"*\"") else {
        panic!()
    };
    assert!(subscribed_only);
    let CommandBody::List { patterns, .. } =
        body("A05 LIST \"\" (\"INBOX\" \"Drafts\" \"Sent/%\") RETURN (CHILDREN)")
    else {
        panic!()
    };
    assert_eq!(patterns, vec!["INBOX", "Drafts", "Sent/%"]);
    let CommandBody::List { subscribed_only, recursive_match, .. } =
        body("A04 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\"")
    else {
        panic!()
    };
    assert!(subscribed_only && recursive_match);
}

#[test]
fn rfc_9051_search_examples() {
    let from_smith = || SearchKey::Not(Box::new(SearchKey::From("Smith".into())));
    assert_eq!(
        body("A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\""),
        CommandBody::Search {
            uid: false,
            esearch: Some(SearchReturn { min: true, count: true, ..SearchReturn::default() }),
            charset: None,
            keys: vec![SearchKey::Flag(Flag::Flagged), SearchKey::Since(8797), from_smith()]
        }
    );
    let CommandBody::Search { esearch, .. } =
        body("A283 SEARCH RETURN () FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"")
    else {
        panic!()
    };
    assert_eq!(esearch, Some(SearchReturn { all: true, ..SearchReturn::default() }));
    assert_eq!(
        body("A284 SEARCH TEXT \"string not in mailbox\""),
        CommandBody::Search {
            uid: false,
            esearch: None,
            charset: None,
            keys: vec![SearchKey::Text("string not in mailbox".into())]
        }
    );
    let line = "A285 SEARCH CHARSET UTF-8 TEXT {12}\r\n\u{43c}\u{43e}\u{441}\u{43a}\u{432}\u{430}";
    let CommandBody::Search { charset, keys, .. } = body(line) else { panic!() };
    assert_eq!(charset.as_deref(), Some("UTF-8"));
    assert_eq!(keys, vec![SearchKey::Text("\u{43c}\u{43e}\u{441}\u{43a}\u{432}\u{430}".into())]);
    // RFC 7162 §3.1.5.
    let CommandBody::Search { keys, .. } =
        body("a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338")
    else {
        panic!()
    };
    assert_eq!(keys, vec![SearchKey::ModSeq(620_162_338)]);
}

#[test]
fn rfc_9051_fetch_store_copy_move() {
    let CommandBody::Fetch { attributes, uid: false, .. } =
        body("A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])")
    else {
        panic!()
    };
    assert_eq!(
        attributes,
        vec![
            FetchAttribute::Flags,
            FetchAttribute::BodySection {
                section: Section {
                    part: vec![],
                    text: Some(SectionText::HeaderFields(vec!["DATE".into(), "FROM".into()]))
                },
                partial: None,
                peek: false
            }
        ]
    );
    let CommandBody::Fetch { uid: true, changed_since, .. } =
        body("s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)")
    else {
        panic!()
    };
    assert_eq!(changed_since, Some(12_345));
    let CommandBody::Store { op, flags, silent: false, .. } =
        body("A003 STORE 2:4 +FLAGS (\\Deleted)")
    else {
        panic!()
    };
    assert_eq!((op, flags), (FlagsOp::Add, vec![Flag::Deleted]));
    let CommandBody::Store { uid: true, unchanged_since, silent: true, .. } =
        body("a103 UID STORE 6,4,8 (UNCHANGEDSINCE 12121230045) +FLAGS.SILENT (\\Deleted)")
    else {
        panic!()
    };
    assert_eq!(unchanged_since, Some(12_121_230_045));
    assert!(matches!(body("A003 COPY 2:4 MEETING"), CommandBody::Copy { uid: false, .. }));
    assert!(matches!(body("a UID MOVE 42:69 foo"), CommandBody::Move { uid: true, .. }));
    assert!(matches!(body("A202 EXPUNGE"), CommandBody::Expunge { uids: None }));
    assert!(matches!(body("A003 UID EXPUNGE 3000:3002"), CommandBody::Expunge { uids: Some(_) }));
    assert_eq!(body("A341 CLOSE"), CommandBody::Close);
    assert_eq!(
        body("a023 ID (\"name\" \"sodr\" \"version\" \"19.34\" \"vendor\" \"Pink Floyd\")"),
        CommandBody::Id
    );
}

/// Drives a transcript through the framer in pieces of `chunk` bytes, answering continuation
/// requests, and parses every frame.
fn run_transcript(input: &[u8], chunk: usize) -> (Vec<CommandBody>, usize) {
    let mut framer = Framer::new(FrameLimits::default());
    let mut bodies = Vec::new();
    let mut continuations = 0;
    for piece in input.chunks(chunk) {
        framer.feed(piece);
        loop {
            match framer.next() {
                Framed::NeedInput => break,
                Framed::SendContinuation => continuations += 1,
                Framed::Frame(frame) => {
                    let command = parse_frame(frame, &ParseOptions::default()).unwrap();
                    bodies.push(command.body);
                }
                Framed::Rejected(error) => panic!("rejected: {error}"),
            }
        }
    }
    (bodies, continuations)
}

#[test]
fn rfc_9051_append_through_the_framer() {
    let message = "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n\
                   From: Fred Foobar <foobar@Blurdybloop.example>\r\n\
                   Subject: afternoon meeting\r\n\
                   To: mooch@owatagu.siam.edu.example\r\n\
                   Message-Id: <B27397-0100000@Blurdybloop.example>\r\n\
                   MIME-Version: 1.0\r\n\
                   Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n\
                   Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n";
    let transcript = format!(
        "A003 APPEND saved-messages (\\Seen) \" 7-Feb-1994 21:52:25 -0800\" {{{}}}\r\n{message}\r\n\
         A004 LOGIN {{5+}}\r\nfred  {{6}}\r\nsecret\r\nA005 NOOP\r\n",
        message.len()
    );
    for chunk in [1, 2, 7, 64, transcript.len()] {
        let (bodies, continuations) = run_transcript(transcript.as_bytes(), chunk);
        assert_eq!(continuations, 2, "chunk {chunk}");
        assert_eq!(bodies.len(), 3);
        let CommandBody::Append { mailbox, messages } = &bodies[0] else { panic!() };
        let [appended] = messages.as_slice() else { panic!() };
        let flags = appended.flags.as_slice();
        assert_eq!((mailbox.as_str(), flags), ("saved-messages", &[Flag::Seen][..]));
        assert_eq!(appended.date.unwrap().zone_minutes, -480);
        assert_eq!(appended.data, AppendData::Literal(message.as_bytes().to_vec()));
        assert_eq!(
            bodies[1],
            CommandBody::Login { user: "fred ".into(), password: "secret".into() }
        );
        assert_eq!(bodies[2], CommandBody::Noop);
    }
}

#[test]
fn tags_survive_parse_errors() {
    let error =
        parse_frame(Frame::from_bytes(b"x1 FETCH 1 (FLAGS".to_vec()), &ParseOptions::default())
            .unwrap_err();
    assert_eq!(error.tag.unwrap().as_str(), "x1");
    assert!(!error.message.is_empty());
}
