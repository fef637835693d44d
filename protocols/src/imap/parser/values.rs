//! Values shared by many commands: sequence sets, flags, mailbox names, dates.

use skua_core::store::names::UNDECODABLE;
use skua_core::types::InternalDate;

use crate::imap::types::{Flag, SeqBound, SequenceSet};
use crate::imap::utf7;

use super::ParseErrorKind;
use super::cursor::{Cursor, PResult, fail, syntax, utf8};
use super::date::{days_from_civil, month_from_name};

/// ```text
/// sequence-set = (seq-number / seq-range) ["," sequence-set]
/// seq-range    = seq-number ":" seq-number
/// seq-number   = nz-number / "*"
/// ```
/// `$` is the SEARCHRES reference (RFC 5182) to the last saved SEARCH result.
pub(crate) fn sequence_set(c: &mut Cursor<'_>) -> PResult<SequenceSet> {
    if c.eat(b'$') {
        return Ok(SequenceSet::saved_result());
    }
    let mut ranges = Vec::new();
    loop {
        if ranges.len() == c.limits.sequence_ranges_max {
            return fail(ParseErrorKind::TooMany, "too many ranges in sequence set");
        }
        let first = seq_number(c)?;
        let last = if c.eat(b':') { seq_number(c)? } else { first };
        ranges.push((first, last));
        if !c.eat(b',') {
            break;
        }
    }
    Ok(SequenceSet::new(ranges).expect("at least one range was pushed"))
}

/// `seq-number = nz-number / "*"`
fn seq_number(c: &mut Cursor<'_>) -> PResult<SeqBound> {
    if c.eat(b'*') {
        return Ok(SeqBound::Largest);
    }
    match c.peek() {
        Some(b'0'..=b'9') => c.nz_number().map(SeqBound::Value),
        _ => syntax("expected a sequence number or *"),
    }
}

/// ```text
/// flag           = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" /
///                  flag-keyword / flag-extension
/// flag-extension = "\" atom
/// flag-keyword   = "$MDNSent" / "$Forwarded" / "$Junk" / "$NotJunk" / "$Phishing" / atom
/// ```
/// System flags are matched without case; keywords keep their case.
pub(crate) fn flag(c: &mut Cursor<'_>) -> PResult<Flag> {
    let system = c.eat(b'\\');
    let atom = c.atom()?;
    let text = std::str::from_utf8(atom).expect("atoms are ASCII").to_owned();
    if !system {
        return Ok(Flag::Keyword(text));
    }
    let known = [
        ("Seen", Flag::Seen),
        ("Answered", Flag::Answered),
        ("Flagged", Flag::Flagged),
        ("Deleted", Flag::Deleted),
        ("Draft", Flag::Draft),
    ];
    Ok(known
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(&text))
        .map_or(Flag::Extension(text), |(_, flag)| flag))
}

/// `flag-list = "(" [flag *(SP flag)] ")"`
pub(crate) fn flag_list(c: &mut Cursor<'_>) -> PResult<Vec<Flag>> {
    c.expect(b'(', "expected a flag list")?;
    let mut flags = Vec::new();
    if c.eat(b')') {
        return Ok(flags);
    }
    loop {
        if flags.len() == c.limits.list_items_max {
            return fail(ParseErrorKind::TooMany, "too many flags");
        }
        flags.push(flag(c)?);
        if c.eat(b')') {
            return Ok(flags);
        }
        c.sp()?;
    }
}

/// `flag *(SP flag)` without parentheses (STORE's second form).
pub(crate) fn flags_bare(c: &mut Cursor<'_>) -> PResult<Vec<Flag>> {
    let mut flags = vec![flag(c)?];
    while c.eat(b' ') {
        if flags.len() == c.limits.list_items_max {
            return fail(ParseErrorKind::TooMany, "too many flags");
        }
        flags.push(flag(c)?);
    }
    Ok(flags)
}

/// ```text
/// mailbox = "INBOX" / astring
///             ; INBOX is case-insensitive. All case variants of INBOX are treated as INBOX.
/// ```
/// Decoded to UTF-8: see [`name_from_wire`].
pub(crate) fn mailbox(c: &mut Cursor<'_>) -> PResult<String> {
    let raw = c.astring()?;
    name_from_wire(&raw, c.utf8_names)
}

/// ```text
/// list-mailbox = 1*list-char / string
/// list-char    = ATOM-CHAR / list-wildcards / resp-specials
/// ```
pub(crate) fn list_mailbox(c: &mut Cursor<'_>) -> PResult<String> {
    let raw = match c.peek() {
        Some(b'"' | b'{') => c.string()?,
        _ => {
            let run = c.take_while(|b| {
                crate::imap::types::is_atom_char(b) || matches!(b, b'%' | b'*' | b']')
            });
            if run.is_empty() {
                return syntax("expected a mailbox pattern");
            }
            run.into()
        }
    };
    name_from_wire(&raw, c.utf8_names)
}

/// A mailbox name (or pattern) as sent, to UTF-8: with `utf8_names` (`IMAP4rev2` or `UTF8=ACCEPT`
/// enabled) the bytes must be UTF-8 and are taken as they are; otherwise an all-ASCII name is
/// modified UTF-7 and is decoded, and a name with 8-bit bytes must be UTF-8 (clients that never
/// enabled UTF-8 sometimes send it; it cannot be mistaken for modified UTF-7). Any case of
/// `INBOX` becomes `INBOX`.
pub(crate) fn name_from_wire(raw: &[u8], utf8_names: bool) -> PResult<String> {
    let name = if utf8_names || !raw.is_ascii() {
        utf8(raw.into(), "mailbox name is not UTF-8")?
    } else {
        match utf7::decode(raw) {
            Ok(name) => name,
            // Well-formed, but no mailbox can have this name: marked, so that the command is
            // answered (SELECT: NO, LIST: no match) rather than refused as bad syntax.
            Err(_) => format!("{UNDECODABLE}{}", String::from_utf8_lossy(raw)),
        }
    };
    if name.eq_ignore_ascii_case("INBOX") {
        return Ok("INBOX".to_owned());
    }
    Ok(nfc(name))
}

/// `name` in Unicode Normalization Form C (RFC 5198's Net-Unicode, which RFC 6855 §3 and RFC
/// 9051 §5.1 ask mailbox names to follow): a name typed on a system that composes (most) and
/// one that decomposes (macOS file names: `u` + U+0308 for `ü`) are one mailbox. ASCII, and
/// text already in NFC (the quick check), is returned as it is.
fn nfc(name: String) -> String {
    use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};
    if name.is_ascii() || is_nfc_quick(name.chars()) == IsNormalized::Yes {
        return name;
    }
    name.nfc().collect()
}

/// ```text
/// date       = date-text / DQUOTE date-text DQUOTE
/// date-text  = date-day "-" date-month "-" date-year
/// date-day   = 1*2DIGIT
/// date-month = "Jan" / "Feb" / ... / "Dec"    ; case-insensitive
/// date-year  = 4DIGIT
/// ```
/// Returns days since 1970-01-01.
pub(crate) fn date(c: &mut Cursor<'_>) -> PResult<i64> {
    let quoted = c.eat(b'"');
    let day = digits(c, 1, 2)?;
    let days = date_rest(c, day)?;
    if quoted {
        c.expect(b'"', "unterminated date")?;
    }
    Ok(days)
}

/// `"-" date-month "-" date-year` after the day; returns days since the epoch.
fn date_rest(c: &mut Cursor<'_>, day: u32) -> PResult<i64> {
    c.expect(b'-', "expected - in date")?;
    let month_start = c.pos();
    let month = c.take_while(|b| b.is_ascii_alphabetic());
    let Some(month) = month_from_name(month) else {
        c.rewind(month_start);
        return syntax("invalid month in date");
    };
    c.expect(b'-', "expected - in date")?;
    let year = digits(c, 4, 4)?;
    days_from_civil(i64::from(year), month, day).map_or_else(|| syntax("invalid date"), Ok)
}

/// ```text
/// date-time      = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE
/// date-day-fixed = (SP DIGIT) / 2DIGIT
/// time           = 2DIGIT ":" 2DIGIT ":" 2DIGIT
/// zone           = ("+" / "-") 4DIGIT
/// ```
pub(crate) fn date_time(c: &mut Cursor<'_>) -> PResult<InternalDate> {
    c.expect(b'"', "expected a quoted date-time")?;
    let day = if c.eat(b' ') { digits(c, 1, 1)? } else { digits(c, 2, 2)? };
    let days = date_rest(c, day)?;
    c.sp()?;
    let hour = digits(c, 2, 2)?;
    c.expect(b':', "expected : in time")?;
    let minute = digits(c, 2, 2)?;
    c.expect(b':', "expected : in time")?;
    let second = digits(c, 2, 2)?;
    c.sp()?;
    let sign: i64 = if c.eat(b'+') {
        1
    } else if c.eat(b'-') {
        -1
    } else {
        return syntax("expected a time zone");
    };
    let zone = digits(c, 4, 4)?;
    c.expect(b'"', "unterminated date-time")?;
    if hour > 23 || minute > 59 || second > 60 || zone / 100 > 23 || zone % 100 > 59 {
        return syntax("invalid time in date-time");
    }
    let zone_minutes = sign * i64::from(zone / 100 * 60 + zone % 100);
    let local = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    Ok(InternalDate {
        unix_seconds: local - zone_minutes * 60,
        zone_minutes: i16::try_from(zone_minutes).expect("zone is at most 23:59"),
    })
}

/// Between `min` and `max` ASCII digits as a number.
fn digits(c: &mut Cursor<'_>, min: usize, max: usize) -> PResult<u32> {
    let start = c.pos();
    let mut value = 0;
    while c.pos() - start < max {
        match c.peek() {
            Some(d @ b'0'..=b'9') => {
                value = value * 10 + u32::from(d - b'0');
                c.eat(d);
            }
            _ => break,
        }
    }
    if c.pos() - start < min { syntax("expected digits") } else { Ok(value) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_taken_in_normalization_form_c() {
        let composed = "Entw\u{fc}rfe";
        let decomposed = "Entwu\u{308}rfe";
        assert_eq!(name_from_wire(decomposed.as_bytes(), true).unwrap(), composed);
        assert_eq!(name_from_wire(composed.as_bytes(), true).unwrap(), composed);
        // The same in modified UTF-7, as a rev1 client on a decomposing system sends it.
        let wire = crate::imap::utf7::encode_to_string(decomposed);
        assert_eq!(name_from_wire(wire.as_bytes(), false).unwrap(), composed);
        assert_eq!(name_from_wire(b"Archive/2026", false).unwrap(), "Archive/2026");
    }
    use crate::imap::limits::ParseLimits;

    fn cursor(input: &[u8]) -> Cursor<'_> {
        Cursor::new(input, ParseLimits::default(), false)
    }

    #[test]
    fn sequence_sets_parse_ranges_and_star() {
        let set = sequence_set(&mut cursor(b"1:5,7,*,9:*")).unwrap();
        assert_eq!(
            set.ranges(),
            &[
                (SeqBound::Value(1), SeqBound::Value(5)),
                (SeqBound::Value(7), SeqBound::Value(7)),
                (SeqBound::Largest, SeqBound::Largest),
                (SeqBound::Value(9), SeqBound::Largest),
            ]
        );
        assert!(sequence_set(&mut cursor(b"0")).is_err());
        assert!(sequence_set(&mut cursor(b"1,")).is_err());
        assert!(sequence_set(&mut cursor(b"$")).unwrap().is_saved(), "SEARCHRES");
        assert!(sequence_set(&mut cursor(b"")).is_err());
    }

    #[test]
    fn sequence_set_range_count_is_bounded() {
        let limits = ParseLimits { sequence_ranges_max: 3, ..ParseLimits::default() };
        assert!(sequence_set(&mut Cursor::new(b"1,2,3", limits, false)).is_ok());
        let error = sequence_set(&mut Cursor::new(b"1,2,3,4", limits, false)).unwrap_err();
        assert_eq!(error.kind, ParseErrorKind::TooMany);
    }

    #[test]
    fn flags_distinguish_system_keyword_extension() {
        let flags = flag_list(&mut cursor(br"(\seen $Junk \Recent foo)")).unwrap();
        assert_eq!(
            flags,
            vec![
                Flag::Seen,
                Flag::Keyword("$Junk".into()),
                Flag::Extension("Recent".into()),
                Flag::Keyword("foo".into())
            ]
        );
        assert_eq!(flag_list(&mut cursor(b"()")).unwrap(), vec![]);
        assert!(flag_list(&mut cursor(b"( )")).is_err());
        assert!(flag_list(&mut cursor(br"(\)")).is_err());
    }

    #[test]
    fn mailbox_names_decode_and_normalise_inbox() {
        assert_eq!(mailbox(&mut cursor(b"inbox")).unwrap(), "INBOX");
        assert_eq!(mailbox(&mut cursor(b"\"InBoX\"")).unwrap(), "INBOX");
        assert_eq!(mailbox(&mut cursor(b"Entw&APw-rfe")).unwrap(), "Entw\u{fc}rfe");
        assert_eq!(mailbox(&mut cursor("\"Entw\u{fc}rfe\"".as_bytes())).unwrap(), "Entw\u{fc}rfe");
        assert_eq!(mailbox(&mut cursor(b"a&b")).unwrap(), format!("{UNDECODABLE}a&b"));
        let mut utf8 = Cursor::new(b"a&b", ParseLimits::default(), true);
        assert_eq!(mailbox(&mut utf8).unwrap(), "a&b");
        assert_eq!(list_mailbox(&mut cursor(b"%/*]")).unwrap(), "%/*]");
    }

    #[test]
    fn dates_parse_to_days() {
        assert_eq!(date(&mut cursor(b"1-Jan-1970")).unwrap(), 0);
        assert_eq!(date(&mut cursor(b"\"02-jan-1970\"")).unwrap(), 1);
        assert_eq!(date(&mut cursor(b"29-Feb-2000")).unwrap(), 11_016);
        assert!(date(&mut cursor(b"29-Feb-1900")).is_err());
        assert!(date(&mut cursor(b"1-Foo-2000")).is_err());
        assert!(date(&mut cursor(b"1-Jan-20")).is_err());
        assert!(date(&mut cursor(b"123-Jan-2000")).is_err());
    }

    #[test]
    fn date_times_carry_the_zone() {
        let d = date_time(&mut cursor(b"\"25-Nov-2026 21:11:49 +0100\"")).unwrap();
        assert_eq!(d.zone_minutes, 60);
        assert_eq!(d.unix_seconds, 1_795_641_109 - 3600);
        let d = date_time(&mut cursor(b"\" 1-Jan-1970 00:00:00 -0030\"")).unwrap();
        assert_eq!((d.unix_seconds, d.zone_minutes), (1800, -30));
        assert!(date_time(&mut cursor(b"\"1-Jan-1970 00:00:00 +0000\"")).is_err());
        assert!(date_time(&mut cursor(b"\"01-Jan-1970 24:00:00 +0000\"")).is_err());
        assert!(date_time(&mut cursor(b"\"01-Jan-1970 00:00:00 0000\"")).is_err());
    }
}
