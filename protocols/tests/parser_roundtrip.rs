//! Property: commands rendered to wire text with the public encoders parse back to the same
//! command. Covers sequence sets, FETCH, STORE and SEARCH (with nesting, strings that need
//! quoting or literals, dates and modseqs), APPEND (flags, date-time, literal and literal8),
//! RENAME and LOGIN, with mailbox names in both modified UTF-7 and UTF-8 modes.

use proptest::prelude::*;
use skua_core::types::{FlagsOp, InternalDate};
use skua_protocols::imap::encode;
use skua_protocols::imap::parser::{ParseOptions, parse_command, parse_command_with};
use skua_protocols::imap::types::{
    AppendData, AppendMessage, Command, CommandBody, FetchAttribute, Flag, PartialRange, SearchKey,
    Section, SectionText, SeqBound, SequenceSet,
};

fn seq_bound() -> impl Strategy<Value = SeqBound> {
    prop_oneof![1 => Just(SeqBound::Largest), 4 => (1..=u32::MAX).prop_map(SeqBound::Value)]
}

fn sequence_set() -> impl Strategy<Value = SequenceSet> {
    prop::collection::vec((seq_bound(), seq_bound()), 1..8)
        .prop_map(|ranges| SequenceSet::new(ranges).unwrap())
}

fn atom() -> impl Strategy<Value = String> {
    "[A-Za-z0-9$_.!#&'+,/=?^`|~-]{1,12}"
}

fn flag() -> impl Strategy<Value = Flag> {
    prop_oneof![
        Just(Flag::Seen),
        Just(Flag::Answered),
        Just(Flag::Flagged),
        Just(Flag::Deleted),
        Just(Flag::Draft),
        atom().prop_map(Flag::Keyword),
        "X[A-Za-z0-9]{0,8}".prop_map(Flag::Extension),
    ]
}

/// Text without NUL (which no IMAP string can carry outside literal8).
fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[ -~]{0,20}", "[^\\x00]{0,12}", "[a-z]{1,8}\r\n[a-z]{0,4}"]
}

fn section() -> impl Strategy<Value = Section> {
    let names = || prop::collection::vec(text(), 1..4);
    let part = prop::collection::vec(1..=u32::MAX, 0..4);
    let msg_text = prop_oneof![
        Just(SectionText::Header),
        Just(SectionText::Text),
        names().prop_map(SectionText::HeaderFields),
        names().prop_map(SectionText::HeaderFieldsNot),
    ];
    (part, prop::option::of(msg_text), any::<bool>()).prop_map(|(part, text, mime)| {
        let text = if mime && !part.is_empty() { Some(SectionText::Mime) } else { text };
        Section { part, text }
    })
}

fn fetch_attribute() -> impl Strategy<Value = FetchAttribute> {
    prop_oneof![
        Just(FetchAttribute::Envelope),
        Just(FetchAttribute::Flags),
        Just(FetchAttribute::InternalDate),
        Just(FetchAttribute::Rfc822Size),
        Just(FetchAttribute::Uid),
        Just(FetchAttribute::Body),
        Just(FetchAttribute::BodyStructure),
        Just(FetchAttribute::Rfc822),
        Just(FetchAttribute::Rfc822Header),
        Just(FetchAttribute::Rfc822Text),
        Just(FetchAttribute::ModSeq),
        Just(FetchAttribute::EmailId),
        Just(FetchAttribute::ThreadId),
        Just(FetchAttribute::SaveDate),
        (section(), prop::option::of((any::<u32>(), 1..=u32::MAX)), any::<bool>()).prop_map(
            |(section, partial, peek)| FetchAttribute::BodySection { section, partial, peek }
        ),
        (
            prop::collection::vec(1..=u32::MAX, 0..4),
            prop::option::of((any::<u32>(), 1..=u32::MAX)),
            any::<bool>()
        )
            .prop_map(|(part, partial, peek)| FetchAttribute::Binary {
                part,
                partial,
                peek
            }),
        prop::collection::vec(1..=u32::MAX, 0..4)
            .prop_map(|part| FetchAttribute::BinarySize { part }),
        any::<bool>().prop_map(|lazy| FetchAttribute::Preview { lazy }),
    ]
}

fn fetch() -> impl Strategy<Value = CommandBody> {
    let modseq = prop::option::of(0..=i64::MAX as u64);
    let partial = prop::option::of((1..=u32::MAX, 1..=u32::MAX, any::<bool>())).prop_map(|p| {
        p.map(|(a, b, from_end)| PartialRange {
            low: a.min(b),
            high: a.max(b),
            from_end,
            reversed: a > b,
        })
    });
    let modifiers = (modseq, any::<bool>(), partial);
    (any::<bool>(), sequence_set(), prop::collection::vec(fetch_attribute(), 1..6), modifiers)
        .prop_map(|(uid, set, attributes, (changed_since, vanished, partial))| CommandBody::Fetch {
            uid,
            set,
            attributes,
            changed_since,
            vanished,
            partial,
        })
}

fn store() -> impl Strategy<Value = CommandBody> {
    let op = prop_oneof![Just(FlagsOp::Replace), Just(FlagsOp::Add), Just(FlagsOp::Remove)];
    let flags = prop::collection::vec(flag(), 0..6);
    let modseq = prop::option::of(0..=i64::MAX as u64);
    (any::<bool>(), sequence_set(), op, any::<bool>(), flags, modseq).prop_map(
        |(uid, set, op, silent, flags, unchanged_since)| CommandBody::Store {
            uid,
            set,
            op,
            silent,
            flags,
            unchanged_since,
        },
    )
}

/// Days between 0000-01-01 and 9999-12-31, the range a four-digit year can name.
fn days() -> impl Strategy<Value = i64> {
    -719_528i64..2_932_896
}

fn search_key() -> impl Strategy<Value = SearchKey> {
    let leaf = prop_oneof![
        Just(SearchKey::All),
        sequence_set().prop_map(SearchKey::SequenceSet),
        sequence_set().prop_map(SearchKey::Uid),
        prop_oneof![Just(Flag::Seen), Just(Flag::Deleted), Just(Flag::Answered)]
            .prop_map(SearchKey::Flag),
        atom().prop_map(|k| SearchKey::NotFlag(Flag::Keyword(k))),
        text().prop_map(SearchKey::From),
        text().prop_map(SearchKey::Subject),
        (text(), text()).prop_map(|(name, value)| SearchKey::Header(name, value)),
        text().prop_map(SearchKey::Body),
        days().prop_map(SearchKey::Before),
        days().prop_map(SearchKey::SentOn),
        any::<u32>().prop_map(SearchKey::Larger),
        (0..=i64::MAX as u64).prop_map(SearchKey::ModSeq),
        "[A-Za-z0-9_-]{1,40}".prop_map(SearchKey::EmailId),
        days().prop_map(SearchKey::SavedSince),
        Just(SearchKey::SavedateSupported),
    ];
    leaf.prop_recursive(6, 48, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|k| SearchKey::Not(Box::new(k))),
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| SearchKey::Or(Box::new(a), Box::new(b))),
            prop::collection::vec(inner, 1..4).prop_map(SearchKey::And),
        ]
    })
}

fn search() -> impl Strategy<Value = CommandBody> {
    (any::<bool>(), prop::collection::vec(search_key(), 1..4))
        .prop_map(|(uid, keys)| CommandBody::Search { uid, esearch: None, charset: None, keys })
}

fn render_fetch_attribute(out: &mut Vec<u8>, attribute: &FetchAttribute) {
    let name: &[u8] = match attribute {
        FetchAttribute::Envelope => b"ENVELOPE",
        FetchAttribute::Flags => b"FLAGS",
        FetchAttribute::InternalDate => b"INTERNALDATE",
        FetchAttribute::Rfc822Size => b"RFC822.SIZE",
        FetchAttribute::Uid => b"UID",
        FetchAttribute::Body => b"BODY",
        FetchAttribute::BodyStructure => b"BODYSTRUCTURE",
        FetchAttribute::Rfc822 => b"RFC822",
        FetchAttribute::Rfc822Header => b"RFC822.HEADER",
        FetchAttribute::Rfc822Text => b"RFC822.TEXT",
        FetchAttribute::ModSeq => b"MODSEQ",
        FetchAttribute::EmailId => b"EMAILID",
        FetchAttribute::ThreadId => b"THREADID",
        FetchAttribute::SaveDate => b"SAVEDATE",
        FetchAttribute::BodySection { section, partial, peek } => {
            out.extend_from_slice(if *peek { b"BODY.PEEK" } else { b"BODY" });
            encode::section(out, section);
            if let Some((offset, length)) = partial {
                out.extend_from_slice(format!("<{offset}.{length}>").as_bytes());
            }
            return;
        }
        FetchAttribute::Binary { part, partial, peek } => {
            out.extend_from_slice(if *peek { b"BINARY.PEEK" } else { b"BINARY" });
            render_part(out, part);
            if let Some((offset, length)) = partial {
                out.extend_from_slice(format!("<{offset}.{length}>").as_bytes());
            }
            return;
        }
        FetchAttribute::BinarySize { part } => {
            out.extend_from_slice(b"BINARY.SIZE");
            render_part(out, part);
            return;
        }
        FetchAttribute::Preview { lazy } => {
            out.extend_from_slice(if *lazy { b"PREVIEW (LAZY)" } else { b"PREVIEW" });
            return;
        }
    };
    out.extend_from_slice(name);
}

/// `section-binary = "[" [section-part] "]"`
fn render_part(out: &mut Vec<u8>, part: &[u32]) {
    let numbers: Vec<String> = part.iter().map(u32::to_string).collect();
    out.extend_from_slice(format!("[{}]", numbers.join(".")).as_bytes());
}

fn render_search_key(out: &mut Vec<u8>, key: &SearchKey) {
    let word = |out: &mut Vec<u8>, w: &str| out.extend_from_slice(w.as_bytes());
    match key {
        SearchKey::All => word(out, "ALL"),
        SearchKey::SequenceSet(set) => encode::sequence_set_ranges(out, set),
        SearchKey::Uid(set) => {
            word(out, "UID ");
            encode::sequence_set_ranges(out, set);
        }
        SearchKey::Flag(Flag::Seen) => word(out, "SEEN"),
        SearchKey::Flag(Flag::Deleted) => word(out, "DELETED"),
        SearchKey::Flag(Flag::Answered) => word(out, "ANSWERED"),
        SearchKey::NotFlag(Flag::Keyword(k)) => word(out, &format!("UNKEYWORD {k}")),
        SearchKey::From(s) | SearchKey::Subject(s) | SearchKey::Body(s) => {
            word(
                out,
                match key {
                    SearchKey::From(_) => "FROM ",
                    SearchKey::Subject(_) => "SUBJECT ",
                    _ => "BODY ",
                },
            );
            encode::astring(out, s.as_bytes());
        }
        SearchKey::Header(name, value) => {
            word(out, "HEADER ");
            encode::astring(out, name.as_bytes());
            out.push(b' ');
            encode::astring(out, value.as_bytes());
        }
        SearchKey::Before(days) | SearchKey::SentOn(days) => {
            word(out, if matches!(key, SearchKey::Before(_)) { "BEFORE " } else { "SENTON " });
            encode::search_date(out, *days);
        }
        SearchKey::Larger(n) => word(out, &format!("LARGER {n}")),
        SearchKey::ModSeq(n) => word(out, &format!("MODSEQ {n}")),
        SearchKey::EmailId(id) => word(out, &format!("EMAILID {id}")),
        SearchKey::SavedSince(days) => {
            word(out, "SAVEDSINCE ");
            encode::search_date(out, *days);
        }
        SearchKey::SavedateSupported => word(out, "SAVEDATESUPPORTED"),
        SearchKey::Not(inner) => {
            word(out, "NOT ");
            render_search_key(out, inner);
        }
        SearchKey::Or(a, b) => {
            word(out, "OR ");
            render_search_key(out, a);
            out.push(b' ');
            render_search_key(out, b);
        }
        SearchKey::And(keys) => {
            out.push(b'(');
            render_keys(out, keys);
            out.push(b')');
        }
        other => panic!("not generated: {other:?}"),
    }
}

fn render_keys(out: &mut Vec<u8>, keys: &[SearchKey]) {
    for (i, key) in keys.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        render_search_key(out, key);
    }
}

fn render(body: &CommandBody) -> Vec<u8> {
    let mut out = b"T1 ".to_vec();
    let uid_prefix = |out: &mut Vec<u8>, uid: bool| {
        if uid {
            out.extend_from_slice(b"UID ");
        }
    };
    match body {
        CommandBody::Fetch { uid, set, attributes, changed_since, vanished, partial } => {
            uid_prefix(&mut out, *uid);
            out.extend_from_slice(b"FETCH ");
            encode::sequence_set_ranges(&mut out, set);
            out.extend_from_slice(b" (");
            for (i, attribute) in attributes.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                render_fetch_attribute(&mut out, attribute);
            }
            out.push(b')');
            let mut modifiers = Vec::new();
            if let Some(modseq) = changed_since {
                modifiers.push(format!("CHANGEDSINCE {modseq}"));
            }
            if *vanished {
                modifiers.push("VANISHED".to_owned());
            }
            if let Some(range) = partial {
                let sign = if range.from_end { "-" } else { "" };
                let (first, second) =
                    if range.reversed { (range.high, range.low) } else { (range.low, range.high) };
                modifiers.push(format!("PARTIAL {sign}{first}:{sign}{second}"));
            }
            if !modifiers.is_empty() {
                out.extend_from_slice(format!(" ({})", modifiers.join(" ")).as_bytes());
            }
        }
        CommandBody::Store { uid, set, op, silent, flags, unchanged_since } => {
            uid_prefix(&mut out, *uid);
            out.extend_from_slice(b"STORE ");
            encode::sequence_set_ranges(&mut out, set);
            if let Some(modseq) = unchanged_since {
                out.extend_from_slice(format!(" (UNCHANGEDSINCE {modseq})").as_bytes());
            }
            out.extend_from_slice(match op {
                FlagsOp::Replace => b" FLAGS",
                FlagsOp::Add => b" +FLAGS",
                FlagsOp::Remove => b" -FLAGS",
            });
            out.extend_from_slice(if *silent { b".SILENT " } else { b" " });
            encode::flag_list(&mut out, flags);
        }
        CommandBody::Search { uid, keys, .. } => {
            uid_prefix(&mut out, *uid);
            out.extend_from_slice(b"SEARCH ");
            render_keys(&mut out, keys);
        }
        other => panic!("not generated: {other:?}"),
    }
    out
}

fn round_trip(body: CommandBody) -> Result<(), TestCaseError> {
    let wire = render(&body);
    let parsed = parse_command(&wire)
        .map_err(|e| TestCaseError::fail(format!("{e} in {}", wire.escape_ascii())))?;
    let expected = Command { tag: parsed.tag.clone(), body };
    prop_assert_eq!(parsed, expected, "wire: {}", wire.escape_ascii());
    Ok(())
}

/// Mailbox names: any text without NUL, in Unicode NFC (the parser takes names in NFC), but
/// not a case variant of INBOX (which the parser normalises to "INBOX").
fn mailbox_name() -> impl Strategy<Value = String> {
    use unicode_normalization::UnicodeNormalization;
    prop_oneof!["[ -~]{0,16}", "[^\\x00]{0,10}", Just("INBOX".to_owned())]
        .prop_map(|n| n.nfc().collect::<String>())
        .prop_filter("inbox variants normalise", |n| {
            n == "INBOX" || !n.eq_ignore_ascii_case("inbox")
        })
}

fn internal_date() -> impl Strategy<Value = InternalDate> {
    // Years 1 to 9997, so the local time stays within four-digit years in any zone.
    (-62_000_000_000i64..253_300_000_000, -(23 * 60 + 59)..=(23 * 60 + 59i16))
        .prop_map(|(unix_seconds, zone_minutes)| InternalDate { unix_seconds, zone_minutes })
}

fn append_message() -> impl Strategy<Value = AppendMessage> {
    let flags = prop::collection::vec(flag(), 0..4);
    // A plain literal may not hold NUL; a literal8 (BINARY) may.
    let data = prop_oneof![
        prop::collection::vec(1..=u8::MAX, 0..200).prop_map(|m| (m, false)),
        prop::collection::vec(any::<u8>(), 0..200).prop_map(|m| (m, true)),
    ];
    (flags, prop::option::of(internal_date()), data).prop_map(|(flags, date, (message, binary))| {
        AppendMessage { flags, date, data: AppendData::Literal(message), binary, utf8: false }
    })
}

fn append() -> impl Strategy<Value = CommandBody> {
    // One message, or several (MULTIAPPEND).
    let messages = prop::collection::vec(append_message(), 1..4);
    (mailbox_name(), messages)
        .prop_map(|(mailbox, messages)| CommandBody::Append { mailbox, messages })
}

/// APPEND, CREATE, RENAME and LOGIN, rendered with the mailbox-name encoding for `utf8_names`.
fn render_with_names(body: &CommandBody, utf8_names: bool) -> Vec<u8> {
    let mut out = b"T2 ".to_vec();
    match body {
        CommandBody::Append { mailbox, messages } => {
            out.extend_from_slice(b"APPEND ");
            encode::mailbox(&mut out, mailbox, utf8_names);
            for message in messages {
                out.push(b' ');
                encode::flag_list(&mut out, &message.flags);
                if let Some(date) = message.date {
                    out.push(b' ');
                    encode::internal_date(&mut out, date);
                }
                out.push(b' ');
                let AppendData::Literal(bytes) = &message.data else { panic!("not generated") };
                if message.binary {
                    out.extend_from_slice(format!("~{{{}}}\r\n", bytes.len()).as_bytes());
                    out.extend_from_slice(bytes);
                } else {
                    encode::literal(&mut out, bytes);
                }
            }
        }
        CommandBody::Rename(from, to) => {
            out.extend_from_slice(b"RENAME ");
            encode::mailbox(&mut out, from, utf8_names);
            out.push(b' ');
            encode::mailbox(&mut out, to, utf8_names);
        }
        CommandBody::Login { user, password } => {
            out.extend_from_slice(b"LOGIN ");
            encode::astring(&mut out, user.as_bytes());
            out.push(b' ');
            encode::astring(&mut out, password.expose().as_bytes());
        }
        other => panic!("not generated: {other:?}"),
    }
    out
}

fn round_trip_names(body: CommandBody, utf8_names: bool) -> Result<(), TestCaseError> {
    let wire = render_with_names(&body, utf8_names);
    let options = ParseOptions { utf8_names, ..ParseOptions::default() };
    let parsed = parse_command_with(&wire, &options)
        .map_err(|e| TestCaseError::fail(format!("{e} in {}", wire.escape_ascii())))?;
    prop_assert_eq!(parsed.body, body, "wire: {}", wire.escape_ascii());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn append_round_trips(body in append(), utf8_names in any::<bool>()) {
        round_trip_names(body, utf8_names)?;
    }

    #[test]
    fn rename_and_login_round_trip(
        from in mailbox_name(), to in mailbox_name(), user in text(), password in text(),
        utf8_names in any::<bool>(),
    ) {
        round_trip_names(CommandBody::Rename(from, to), utf8_names)?;
        let password = password.into();
        round_trip_names(CommandBody::Login { user, password }, utf8_names)?;
    }

    #[test]
    fn fetch_round_trips(body in fetch()) {
        round_trip(body)?;
    }

    #[test]
    fn store_round_trips(body in store()) {
        round_trip(body)?;
    }

    #[test]
    fn search_round_trips(body in search()) {
        round_trip(body)?;
    }

    #[test]
    fn compressed_sequence_sets_cover_exactly_their_numbers(
        mut numbers in prop::collection::vec(1..500u32, 1..64)
    ) {
        numbers.sort_unstable();
        let mut wire = Vec::new();
        encode::sequence_set(&mut wire, &numbers);
        let line = [b"T FETCH ".as_slice(), &wire, b" FLAGS"].concat();
        let CommandBody::Fetch { set, .. } = parse_command(&line).unwrap().body else {
            panic!()
        };
        for n in 1..500 {
            prop_assert_eq!(set.contains(n, 500), numbers.binary_search(&n).is_ok(), "{}", n);
        }
    }
}
