//! SORT (RFC 5256 §4, ESORT's `RETURN` of RFC 5267 §3, SORT=DISPLAY's keys of RFC 5957) and
//! THREAD (RFC 5256 §4). Their search criteria are SEARCH's keys (`search.rs`), with the
//! charset mandatory.

use crate::imap::types::{CommandBody, SortCriterion, SortKey, ThreadAlgorithm};

use super::ParseErrorKind;
use super::cursor::{Cursor, PResult, fail, syntax, utf8};
use super::search::{KeyParser, return_options};

/// Most sort criteria in one SORT: there are nine keys, each worth giving once.
pub(crate) const SORT_CRITERIA_MAX: usize = 16;

/// ```text
/// sort             = ["UID" SP] "SORT" [sort-return-opts] SP sort-criteria SP search-criteria
/// sort-return-opts = SP "RETURN" SP "(" [sort-return-opt *(SP sort-return-opt)] ")"
/// sort-return-opt  = "MIN" / "MAX" / "ALL" / "COUNT"
/// sort-criteria    = "(" sort-criterion *(SP sort-criterion) ")"
/// sort-criterion   = ["REVERSE" SP] sort-key
/// sort-key         = "ARRIVAL" / "CC" / "DATE" / "FROM" / "SIZE" / "SUBJECT" / "TO" /
///                    "DISPLAYFROM" / "DISPLAYTO"                       ; RFC 5957
/// ```
/// Called after `SORT`, before its `SP`. An empty `RETURN ()` means `RETURN (ALL)` (RFC 5267
/// §3.1 by way of RFC 4731).
pub(crate) fn sort(c: &mut Cursor<'_>, uid: bool) -> PResult<CommandBody> {
    c.sp()?;
    let esearch = if c.eat_ignore_case(b"RETURN ") { Some(return_options(c)?) } else { None };
    c.expect(b'(', "expected sort criteria")?;
    let mut criteria = Vec::new();
    loop {
        if criteria.len() == SORT_CRITERIA_MAX {
            return fail(ParseErrorKind::TooMany, "too many sort criteria");
        }
        criteria.push(criterion(c)?);
        if c.eat(b')') {
            break;
        }
        c.sp()?;
    }
    c.sp()?;
    let (charset, keys) = search_criteria(c)?;
    Ok(CommandBody::Sort { uid, esearch, criteria, charset, keys })
}

/// ```text
/// thread     = ["UID" SP] "THREAD" SP thread-alg SP search-criteria
/// thread-alg = "ORDEREDSUBJECT" / "REFERENCES" / "REFS" / thread-alg-ext
/// ```
/// Called after `THREAD`, before its `SP`.
pub(crate) fn thread(c: &mut Cursor<'_>, uid: bool) -> PResult<CommandBody> {
    c.sp()?;
    let algorithm = match c.keyword()?.as_slice() {
        b"ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
        b"REFERENCES" => ThreadAlgorithm::References,
        b"REFS" => ThreadAlgorithm::Refs,
        _ => return syntax("unknown threading algorithm"),
    };
    c.sp()?;
    let (charset, keys) = search_criteria(c)?;
    Ok(CommandBody::Thread { uid, algorithm, charset, keys })
}

/// `sort-criterion = ["REVERSE" SP] sort-key`
fn criterion(c: &mut Cursor<'_>) -> PResult<SortCriterion> {
    let reverse = c.eat_ignore_case(b"REVERSE ");
    let key = match c.keyword()?.as_slice() {
        b"ARRIVAL" => SortKey::Arrival,
        b"CC" => SortKey::Cc,
        b"DATE" => SortKey::Date,
        b"FROM" => SortKey::From,
        b"SIZE" => SortKey::Size,
        b"SUBJECT" => SortKey::Subject,
        b"TO" => SortKey::To,
        b"DISPLAYFROM" => SortKey::DisplayFrom,
        b"DISPLAYTO" => SortKey::DisplayTo,
        _ => return syntax("unknown sort key"),
    };
    Ok(SortCriterion { reverse, key })
}

/// ```text
/// search-criteria = charset 1*(SP search-key)
/// charset         = atom / quoted
/// ```
fn search_criteria(c: &mut Cursor<'_>) -> PResult<(String, Vec<crate::imap::types::SearchKey>)> {
    let raw = if c.peek() == Some(b'"') { c.quoted()? } else { c.atom()?.into() };
    let charset = utf8(raw, "charset name is not UTF-8")?;
    c.sp()?;
    let mut state = KeyParser::new(c);
    let mut keys = vec![state.key(c, 0)?];
    while c.eat(b' ') {
        keys.push(state.key(c, 0)?);
    }
    Ok((charset, keys))
}

#[cfg(test)]
mod tests {
    use super::super::parse_command;
    use crate::imap::types::ThreadAlgorithm;
    use crate::imap::types::{CommandBody, SearchKey, SearchReturn, SortCriterion, SortKey};

    fn body(line: &[u8]) -> CommandBody {
        parse_command(line).expect("parses").body
    }

    #[test]
    fn sort_with_criteria_charset_and_keys() {
        let CommandBody::Sort { uid, esearch, criteria, charset, keys } =
            body(b"a UID SORT (REVERSE DATE subject DISPLAYFROM) UTF-8 ALL SEEN")
        else {
            panic!("not a SORT");
        };
        assert!(uid);
        assert_eq!(esearch, None);
        assert_eq!(
            criteria,
            vec![
                SortCriterion { reverse: true, key: SortKey::Date },
                SortCriterion { reverse: false, key: SortKey::Subject },
                SortCriterion { reverse: false, key: SortKey::DisplayFrom },
            ]
        );
        assert_eq!(charset, "UTF-8");
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0], SearchKey::All);
    }

    #[test]
    fn esort_return_options() {
        let CommandBody::Sort { esearch, .. } =
            body(b"a SORT RETURN (MIN COUNT) (ARRIVAL) \"US-ASCII\" ALL")
        else {
            panic!("not a SORT");
        };
        assert_eq!(esearch, Some(SearchReturn { min: true, count: true, ..Default::default() }));
        let CommandBody::Sort { esearch, .. } = body(b"a SORT RETURN () (SIZE) UTF-8 ALL") else {
            panic!("not a SORT");
        };
        assert_eq!(esearch, Some(SearchReturn { all: true, ..Default::default() }));
    }

    #[test]
    fn thread_algorithms() {
        for (name, algorithm) in [
            (&b"ORDEREDSUBJECT"[..], ThreadAlgorithm::OrderedSubject),
            (b"references", ThreadAlgorithm::References),
            (b"REFS", ThreadAlgorithm::Refs),
        ] {
            let mut line = b"a THREAD ".to_vec();
            line.extend_from_slice(name);
            line.extend_from_slice(b" UTF-8 SINCE 5-MAR-2000");
            let CommandBody::Thread { algorithm: parsed, .. } = body(&line) else {
                panic!("not a THREAD");
            };
            assert_eq!(parsed, algorithm);
        }
    }

    #[test]
    fn sort_takes_save_partial_and_update() {
        let CommandBody::Sort { esearch: Some(options), .. } =
            body(b"a UID SORT RETURN (SAVE UPDATE PARTIAL -5:-1) (DATE) UTF-8 ALL")
        else {
            panic!("not a SORT");
        };
        assert!(options.save && options.update && !options.all);
        let range = options.partial.expect("partial");
        assert_eq!((range.low, range.high, range.from_end, range.reversed), (1, 5, true, true));
    }

    #[test]
    fn malformed_sorts_and_threads_are_refused() {
        for line in [
            &b"a SORT () UTF-8 ALL"[..],
            b"a SORT (DATE) ALL",
            b"a SORT (DATE)",
            b"a SORT DATE UTF-8 ALL",
            b"a SORT (REVERSE) UTF-8 ALL",
            b"a SORT (NAME) UTF-8 ALL",
            b"a SORT RETURN (PARTIAL 1:2 ALL) (DATE) UTF-8 ALL",
            b"a SORT RETURN (SAVE SAVE) (DATE) UTF-8 ALL",
            b"a THREAD UTF-8 ALL",
            b"a THREAD JWZ UTF-8 ALL",
            b"a THREAD REFS UTF-8",
        ] {
            assert!(parse_command(line).is_err(), "{:?}", String::from_utf8_lossy(line));
        }
        let mut many = b"a SORT (".to_vec();
        many.extend(std::iter::repeat_n(&b"DATE "[..], 20).flatten());
        many.extend_from_slice(b"SIZE) UTF-8 ALL");
        assert!(parse_command(&many).is_err());
    }
}
