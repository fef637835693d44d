//! Unit tests for SEARCH parsing.

use super::*;
use crate::imap::limits::ParseLimits;
use crate::imap::types::SeqBound;

fn parse_with(input: &[u8], limits: ParseLimits) -> PResult<CommandBody> {
    let mut c = Cursor::new(input, limits, false);
    let body = search(&mut c, false)?;
    c.end()?;
    Ok(body)
}

fn keys(input: &[u8]) -> Vec<SearchKey> {
    match parse_with(input, ParseLimits::default()).unwrap() {
        CommandBody::Search { keys, .. } => keys,
        other => panic!("not a search: {other:?}"),
    }
}

#[test]
fn simple_keys() {
    assert_eq!(
        keys(b" FLAGGED since 1-Feb-1994 NOT FROM \"Smith\""),
        vec![
            SearchKey::Flag(Flag::Flagged),
            SearchKey::Since(8797),
            SearchKey::Not(Box::new(SearchKey::From("Smith".into()))),
        ]
    );
    // Issue 9: NEW is RECENT UNSEEN and OLD is NOT RECENT (RFC 3501 §6.4.4); NEW was UNSEEN,
    // RECENT nothing and OLD everything.
    let recent = Flag::Extension("Recent".into());
    assert_eq!(
        keys(b" new"),
        vec![SearchKey::And(vec![SearchKey::Flag(recent.clone()), SearchKey::NotFlag(Flag::Seen)])]
    );
    assert_eq!(keys(b" OLD"), vec![SearchKey::NotFlag(recent.clone())]);
    assert_eq!(keys(b" RECENT"), vec![SearchKey::Flag(recent)]);
    assert_eq!(keys(b" LARGER 99999999999"), vec![SearchKey::Larger(u32::MAX)]);
    assert_eq!(
        keys(b" HEADER Message-ID {5}\r\n<a@b>"),
        vec![SearchKey::Header("Message-ID".into(), "<a@b>".into())]
    );
    assert_eq!(keys(b" KEYWORD $Junk"), vec![SearchKey::Flag(Flag::Keyword("$Junk".into()))]);
}

#[test]
fn sets_or_and_parentheses() {
    let parsed = keys(b" 1:3,* OR (SEEN UID 5) SMALLER 10");
    assert_eq!(
        parsed[0],
        SearchKey::SequenceSet(
            crate::imap::types::SequenceSet::new(vec![
                (SeqBound::Value(1), SeqBound::Value(3)),
                (SeqBound::Largest, SeqBound::Largest)
            ])
            .unwrap()
        )
    );
    let SearchKey::Or(left, right) = &parsed[1] else { panic!("{parsed:?}") };
    assert!(matches!(**left, SearchKey::And(ref v) if v.len() == 2));
    assert_eq!(**right, SearchKey::Smaller(10));
    assert!(parse_with(b" (SEEN", ParseLimits::default()).is_err());
    assert!(parse_with(b" ()", ParseLimits::default()).is_err());
    assert!(parse_with(b" OR SEEN", ParseLimits::default()).is_err());
    assert!(parse_with(b"", ParseLimits::default()).is_err());
    assert!(parse_with(b" FOO", ParseLimits::default()).is_err());
}

#[test]
fn return_options_and_charset() {
    let body = parse_with(b" RETURN (MIN COUNT) CHARSET UTF-8 ALL", ParseLimits::default());
    let CommandBody::Search { esearch, charset, .. } = body.unwrap() else { panic!() };
    let expected = SearchReturn { min: true, count: true, ..SearchReturn::default() };
    assert_eq!(esearch, Some(expected));
    assert_eq!(charset.as_deref(), Some("UTF-8"));
    let body = parse_with(b" RETURN () ALL", ParseLimits::default()).unwrap();
    let CommandBody::Search { esearch, .. } = body else { panic!() };
    assert_eq!(esearch, Some(SearchReturn { all: true, ..SearchReturn::default() }));
    let body = parse_with(b" RETURN (SAVE) $", ParseLimits::default()).unwrap();
    let CommandBody::Search { esearch, keys, .. } = body else { panic!() };
    assert_eq!(esearch, Some(SearchReturn { save: true, ..SearchReturn::default() }));
    assert_eq!(keys, vec![SearchKey::SequenceSet(crate::imap::types::SequenceSet::saved_result())]);
    let error = parse_with(b" RETURN (SORT) ALL", ParseLimits::default()).unwrap_err();
    assert_eq!(error.kind, ParseErrorKind::Syntax);
}

#[test]
fn modseq_with_and_without_entry() {
    assert_eq!(keys(b" MODSEQ 620162338"), vec![SearchKey::ModSeq(620_162_338)]);
    assert_eq!(
        keys(b" MODSEQ \"/flags/\\\\draft\" all 620162338"),
        vec![SearchKey::ModSeq(620_162_338)]
    );
    assert!(parse_with(b" MODSEQ \"/x\" all 1", ParseLimits::default()).is_err());
}

#[test]
fn nesting_is_bounded_without_overflowing_the_stack() {
    let limits = ParseLimits { search_depth_max: 8, ..ParseLimits::default() };
    let ok = format!(" {}ALL", "NOT ".repeat(7));
    assert!(parse_with(ok.as_bytes(), limits).is_ok());
    let deep = format!(" {}ALL", "NOT ".repeat(8));
    assert_eq!(parse_with(deep.as_bytes(), limits).unwrap_err().kind, ParseErrorKind::TooMany);
    // Far past any limit: refused quickly, never recursing more than the ceiling.
    let huge = format!(" {}ALL{}", "(".repeat(100_000), ")".repeat(100_000));
    let limits = ParseLimits { search_depth_max: u32::MAX, ..ParseLimits::default() };
    assert_eq!(parse_with(huge.as_bytes(), limits).unwrap_err().kind, ParseErrorKind::TooMany);
}

#[test]
fn key_count_is_bounded() {
    let limits = ParseLimits { list_items_max: 4, ..ParseLimits::default() };
    assert!(parse_with(b" SEEN SEEN SEEN SEEN", limits).is_ok());
    let error = parse_with(b" SEEN SEEN (SEEN SEEN SEEN)", limits).unwrap_err();
    assert_eq!(error.kind, ParseErrorKind::TooMany);
}

#[test]
fn objectid_and_savedate_keys() {
    assert_eq!(
        keys(b" EMAILID E0000000100000040 THREADID T_1-x"),
        vec![SearchKey::EmailId("E0000000100000040".into()), SearchKey::ThreadId("T_1-x".into())]
    );
    assert_eq!(
        keys(b" SAVEDBEFORE 1-Feb-1970 SAVEDON 2-Jan-1970 SAVEDSINCE 1-Jan-1970 SAVEDATESUPPORTED"),
        vec![
            SearchKey::SavedBefore(31),
            SearchKey::SavedOn(1),
            SearchKey::SavedSince(0),
            SearchKey::SavedateSupported
        ]
    );
    // objectid = 1*255(ALPHA / DIGIT / "_" / "-")
    assert!(parse_with(b" EMAILID E.1", ParseLimits::default()).is_err());
    assert!(parse_with(b" EMAILID \"E1\"", ParseLimits::default()).is_err());
    let long = format!(" EMAILID {}", "a".repeat(256));
    assert!(parse_with(long.as_bytes(), ParseLimits::default()).is_err());
    let longest = format!(" EMAILID {}", "a".repeat(255));
    assert!(parse_with(longest.as_bytes(), ParseLimits::default()).is_ok());
}
