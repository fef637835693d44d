//! The RFC 5322 `Date:` header (§3.3, with the obsolete forms of §4.3) as seconds since the
//! Unix epoch, for SENTBEFORE/SENTON/SENTSINCE. Lenient: day of week, comments and unknown
//! zone names are ignored; two-digit years follow §4.3 (`< 50` is 20xx).

use crate::imap::parser::date::days_from_civil_unchecked as days_from_civil;

/// A parsed Date: header: the instant (UTC seconds) and the zone it was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SentDate {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub unix_seconds: i64,
    /// The writer's offset from UTC, in minutes.
    pub zone_minutes: i16,
}

const MONTHS: [&[u8; 3]; 12] = [
    b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec",
];

/// The value of a run of ASCII digits; `None` when it does not fit an `i64`.
fn digits_value(digits: &[u8]) -> Option<i64> {
    digits
        .iter()
        .try_fold(0i64, |value, &digit| value.checked_mul(10)?.checked_add(i64::from(digit - b'0')))
}

/// Parses a Date: value; `None` when day, month, year or time is missing or out of range.
pub(crate) fn parse_date(value: &[u8]) -> Option<SentDate> {
    let mut day = None;
    let mut month = None;
    let mut year = None;
    let mut time = None;
    let mut zone_minutes = 0i16;
    for word in words(value) {
        if word.contains(&b':') && time.is_none() {
            time = Some(parse_time(word)?);
        } else if word[0] == b'+' || word[0] == b'-' {
            zone_minutes = parse_zone_offset(word).unwrap_or(0);
        } else if word.iter().all(u8::is_ascii_digit) {
            let number = digits_value(word)?;
            if month.is_none() && day.is_none() && word.len() <= 2 {
                day = Some(number);
            } else if year.is_none() && (month.is_some() || day.is_some()) {
                year = Some(match word.len() {
                    1 | 2 if number < 50 => number + 2000,
                    1..=3 => number + 1900,
                    _ => number,
                });
            }
        } else if word.len() >= 3 && month.is_none() {
            let prefix = &word[..3];
            if let Some(index) = MONTHS.iter().position(|m| m[..].eq_ignore_ascii_case(prefix)) {
                month = Some(index as i64 + 1);
            } else if let Some(zone) = zone_name(word) {
                zone_minutes = zone;
            }
        } else if let Some(zone) = zone_name(word) {
            zone_minutes = zone;
        }
    }
    let (day, month, year, (hour, minute, second)) = (day?, month?, year?, time?);
    if !(1..=31).contains(&day) || !(1..=9999).contains(&year) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let local = days * 86_400 + hour * 3_600 + minute * 60 + second;
    Some(SentDate { unix_seconds: local - i64::from(zone_minutes) * 60, zone_minutes })
}

/// Words of the value, split at white space and commas, comments removed.
fn words(value: &[u8]) -> Vec<&[u8]> {
    // A usual date has six words: one allocation.
    let mut out = Vec::with_capacity(8);
    let mut depth = 0usize;
    let mut start = None;
    for (index, &b) in value.iter().enumerate() {
        let separator = depth > 0 || b == b'(' || b == b')' || b == b',' || b.is_ascii_whitespace();
        if b == b'(' {
            depth += 1;
        } else if b == b')' {
            depth = depth.saturating_sub(1);
        }
        match (separator, start) {
            (true, Some(s)) => {
                out.push(&value[s..index]);
                start = None;
            }
            (false, None) => start = Some(index),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(&value[s..]);
    }
    out
}

/// `hh:mm[:ss]`, seconds clamped to 59 for a leap second.
fn parse_time(word: &[u8]) -> Option<(i64, i64, i64)> {
    let mut parts = word.split(|&b| b == b':');
    let mut number = || -> Option<i64> {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 2 || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        digits_value(part)
    };
    let hour = number()?;
    let minute = number()?;
    let second = number().unwrap_or(0);
    (hour < 24 && minute < 60 && second <= 60).then_some((hour, minute, second.min(59)))
}

/// `("+" / "-") 4DIGIT`
fn parse_zone_offset(word: &[u8]) -> Option<i16> {
    if word.len() != 5 || !word[1..].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let hours = i16::from(word[1] - b'0') * 10 + i16::from(word[2] - b'0');
    let minutes = i16::from(word[3] - b'0') * 10 + i16::from(word[4] - b'0');
    if minutes >= 60 {
        return None;
    }
    let offset = hours * 60 + minutes;
    Some(if word[0] == b'-' { -offset } else { offset })
}

/// Obsolete zone names (RFC 5322 §4.3); military zones count as +0000 as it advises.
fn zone_name(word: &[u8]) -> Option<i16> {
    // Every name is at most three letters: upper-case a copy on the stack.
    if word.len() > 3 {
        return None;
    }
    let mut upper = [0u8; 3];
    upper[..word.len()].copy_from_slice(word);
    upper.make_ascii_uppercase();
    let hours = match &upper[..word.len()] {
        b"UT" | b"UTC" | b"GMT" | b"Z" => 0,
        b"EDT" => -4,
        b"EST" | b"CDT" => -5,
        b"CST" | b"MDT" => -6,
        b"MST" | b"PDT" => -7,
        b"PST" => -8,
        [letter] if letter.is_ascii_alphabetic() => 0,
        _ => return None,
    };
    Some(hours * 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_forms() {
        let date = parse_date(b"Mon, 7 Feb 1994 21:52:25 -0800 (PST)").expect("parses");
        assert_eq!(date.unix_seconds, 760_686_745);
        assert_eq!(date.zone_minutes, -480);
        let date = parse_date(b"1 Jan 1970 00:00 +0000").expect("parses");
        assert_eq!(date.unix_seconds, 0);
        let date = parse_date(b"Thu, 01 Jan 70 01:00:00 GMT").expect("two-digit year");
        assert_eq!(date.unix_seconds, 3600);
        let date = parse_date(b"29 Feb 2024 12:00:00 EST").expect("zone name");
        assert_eq!(date.unix_seconds, 1_709_226_000);
    }

    #[test]
    fn rejects_incomplete_dates() {
        assert_eq!(parse_date(b""), None);
        assert_eq!(parse_date(b"7 Feb 1994"), None);
        assert_eq!(parse_date(b"Feb 1994 21:52"), None);
        assert_eq!(parse_date(b"7 Foo 1994 21:52"), None);
        assert_eq!(parse_date(b"7 Feb 1994 25:00"), None);
        assert_eq!(parse_date(b"99 Feb 1994 10:00"), None);
    }

    #[test]
    fn digits_and_month_case() {
        assert_eq!(digits_value(b"0042"), Some(42));
        assert_eq!(digits_value(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(digits_value(b"9223372036854775808"), None);
        assert_eq!(parse_date(b"7 FEB 1994 21:52 +0000"), parse_date(b"7 feb 1994 21:52 +0000"));
        assert_eq!(parse_date(b"7 Feb 99999999999999999999 21:52"), None);
    }

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }
}
