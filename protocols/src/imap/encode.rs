//! Response-writing primitives: strings as atom / quoted / literal, flags, sequence sets,
//! dates, sections and mailbox names, each appended to a caller's `Vec<u8>` (no allocation of
//! their own beyond the buffer growing).
//!
//! The choice of string form follows RFC 9051 §4.3: a quoted string when every byte is a
//! 7-bit TEXT-CHAR (no NUL, CR or LF) and it is short; a literal otherwise. Strings holding NUL
//! cannot be sent as a literal either (`CHAR8` excludes NUL): [`literal`] writes each NUL as
//! [`NUL_REPLACEMENT`], and so does FETCH for `BODY[...]` data (`command/fetch_body.rs`). Only
//! `BINARY[...]` may carry NUL, in a `literal8` ([`literal8_header`], RFC 3516).

use skua_core::types::{Flags, InternalDate, SystemFlags};

use crate::imap::parser::date::{MONTH_NAMES, civil_from_days};
use crate::imap::types::{Flag, Section, SectionText, SeqBound, SequenceSet, is_astring_char};
use crate::imap::utf7;

/// Strings longer than this are sent as literals even when they could be quoted: long quoted
/// strings cost an escape scan on both sides.
pub const QUOTED_BYTES_MAX: usize = 1024;

/// The system flags in their wire spelling, in bit order.
pub const SYSTEM_FLAG_NAMES: [(u16, &str); 5] = [
    (SystemFlags::SEEN, "\\Seen"),
    (SystemFlags::ANSWERED, "\\Answered"),
    (SystemFlags::FLAGGED, "\\Flagged"),
    (SystemFlags::DELETED, "\\Deleted"),
    (SystemFlags::DRAFT, "\\Draft"),
];

/// True when `value` can be written as a quoted string.
#[must_use]
pub fn is_quotable(value: &[u8]) -> bool {
    value.len() <= QUOTED_BYTES_MAX
        && value.iter().all(|&b| b != 0 && b != b'\r' && b != b'\n' && b < 0x80)
}

/// `string = quoted / literal`: quoted when [`is_quotable`], a literal otherwise.
pub fn string(out: &mut Vec<u8>, value: &[u8]) {
    if is_quotable(value) {
        quoted(out, value);
    } else {
        literal(out, value);
    }
}

/// True when `value` can be a quoted string for a client that reads UTF-8 in quoted strings:
/// short and without control characters (which no mailbox name has).
fn is_quotable_utf8(value: &str) -> bool {
    value.len() <= QUOTED_BYTES_MAX && !value.chars().any(char::is_control)
}

/// `quoted`: the caller guarantees [`is_quotable`]; `"` and `\` are escaped.
pub fn quoted(out: &mut Vec<u8>, value: &[u8]) {
    debug_assert!(is_quotable(value));
    quoted_unchecked(out, value);
}

/// `quoted` without the 7-bit check: `"` and `\` are escaped, nothing else is looked at.
fn quoted_unchecked(out: &mut Vec<u8>, value: &[u8]) {
    out.reserve(value.len() + 2);
    out.push(b'"');
    for &b in value {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// What a NUL byte becomes in a `literal` or quoted string, which cannot hold NUL
/// (`CHAR8 = %x01-ff`): one byte for one, so lengths (and RFC822.SIZE) stay true. 0x80 is no
/// character in any charset's ASCII range and is never valid UTF-8 on its own, so it reads as
/// "a byte was here" rather than as text. The exact bytes are what `BINARY[]` is for.
pub const NUL_REPLACEMENT: u8 = 0x80;

/// `literal = "{" number64 "}" CRLF *CHAR8`; a NUL in `value` is written as
/// [`NUL_REPLACEMENT`].
pub fn literal(out: &mut Vec<u8>, value: &[u8]) {
    literal_header(out, value.len());
    extend_without_nul(out, value);
}

/// Appends `value` with every NUL written as [`NUL_REPLACEMENT`] (a copy only when there is
/// one).
pub fn extend_without_nul(out: &mut Vec<u8>, value: &[u8]) {
    let start = out.len();
    out.extend_from_slice(value);
    if memchr::memchr(0, value).is_some() {
        for byte in &mut out[start..] {
            if *byte == 0 {
                *byte = NUL_REPLACEMENT;
            }
        }
    }
}

/// `literal8 = "~{" number64 "}" CRLF *OCTET` (RFC 3516, RFC 9051): the caller writes
/// the bytes, which may hold NUL.
pub fn literal8_header(out: &mut Vec<u8>, len: u64) {
    out.extend_from_slice(b"~{");
    number(out, len);
    out.extend_from_slice(b"}\r\n");
}

/// `"{" number64 "}" CRLF`: the caller writes the bytes (or sends them as a spool chunk).
pub fn literal_header(out: &mut Vec<u8>, len: usize) {
    out.push(b'{');
    number(out, len as u64);
    out.extend_from_slice(b"}\r\n");
}

/// `nstring = string / nil`
pub fn nstring(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(value) => string(out, value),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// `astring = 1*ASTRING-CHAR / string`: bare when every byte is an ASTRING-CHAR and the value
/// is not `NIL` (which a reader of an `nstring` position would misread).
pub fn astring(out: &mut Vec<u8>, value: &[u8]) {
    let bare = !value.is_empty()
        && value.iter().all(|&b| is_astring_char(b))
        && !value.eq_ignore_ascii_case(b"NIL");
    if bare {
        out.extend_from_slice(value);
    } else {
        string(out, value);
    }
}

/// A decimal number.
pub fn number(out: &mut Vec<u8>, value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = value;
    loop {
        at -= 1;
        digits[at] = b"0123456789"[usize::from(u8::try_from(rest % 10).unwrap_or(0))];
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// `mailbox`: the name modified-UTF-7-encoded unless the client enabled UTF-8 names
/// (IMAP4rev2 or UTF8=ACCEPT), then written as an astring whose quoted form may hold UTF-8
/// (RFC 9051 `QUOTED-CHAR`, RFC 6855 §3; such a client reads both).
pub fn mailbox(out: &mut Vec<u8>, name: &str, utf8_names: bool) {
    let direct = name.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'&');
    if utf8_names && !name.is_ascii() && is_quotable_utf8(name) {
        quoted_unchecked(out, name.as_bytes());
        return;
    }
    if utf8_names || direct {
        astring(out, name.as_bytes());
        return;
    }
    let start = out.len();
    utf7::encode(name, out);
    let encoded_is_atom = out[start..].iter().all(|&b| is_astring_char(b));
    if !encoded_is_atom {
        let encoded = out.split_off(start);
        string(out, &encoded);
    }
}

/// One `flag`.
pub fn flag(out: &mut Vec<u8>, flag: &Flag) {
    let text = match flag {
        Flag::Seen => "\\Seen",
        Flag::Answered => "\\Answered",
        Flag::Flagged => "\\Flagged",
        Flag::Deleted => "\\Deleted",
        Flag::Draft => "\\Draft",
        Flag::Keyword(keyword) => keyword,
        Flag::Extension(name) => {
            out.push(b'\\');
            name
        }
    };
    out.extend_from_slice(text.as_bytes());
}

/// `flag-list = "(" [flag *(SP flag)] ")"`
pub fn flag_list(out: &mut Vec<u8>, flags: &[Flag]) {
    out.push(b'(');
    for (i, f) in flags.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        flag(out, f);
    }
    out.push(b')');
}

/// A message's flags as a `flag-list`: system flags in bit order, `\Recent` when `recent` (a
/// session-only flag, IMAP4rev1), then the keywords whose bits are set, named by the
/// mailbox's keyword table (`keywords[i]` is bit `i`).
pub fn flags(out: &mut Vec<u8>, flags: Flags, keywords: &[String], recent: bool) {
    out.push(b'(');
    let mut first = true;
    let mut separate = |out: &mut Vec<u8>| {
        if !first {
            out.push(b' ');
        }
        first = false;
    };
    for (bit, name) in SYSTEM_FLAG_NAMES {
        if flags.system.contains(bit) {
            separate(out);
            out.extend_from_slice(name.as_bytes());
        }
    }
    if recent {
        separate(out);
        out.extend_from_slice(b"\\Recent");
    }
    for (i, name) in keywords.iter().enumerate().take(64) {
        if flags.keywords.0 & (1 << i) != 0 {
            separate(out);
            out.extend_from_slice(name.as_bytes());
        }
    }
    out.push(b')');
}

/// Compresses ascending numbers into a `sequence-set` such as `1:5,7,9:10`. Duplicates are
/// tolerated; nothing is written for an empty slice (which is not a valid set: callers send no
/// set, or `NIL`, instead).
pub fn sequence_set(out: &mut Vec<u8>, sorted: &[u32]) {
    debug_assert!(sorted.windows(2).all(|w| w[0] <= w[1]), "numbers must be sorted");
    let mut i = 0;
    while i < sorted.len() {
        if i > 0 {
            out.push(b',');
        }
        let first = sorted[i];
        let mut last = first;
        i += 1;
        while i < sorted.len() && (sorted[i] == last || Some(sorted[i]) == last.checked_add(1)) {
            last = sorted[i];
            i += 1;
        }
        number(out, u64::from(first));
        if last != first {
            out.push(b':');
            number(out, u64::from(last));
        }
    }
}

/// A parsed [`SequenceSet`] as written by a client (ranges kept as given).
pub fn sequence_set_ranges(out: &mut Vec<u8>, set: &SequenceSet) {
    let bound = |out: &mut Vec<u8>, b: SeqBound| match b {
        SeqBound::Value(v) => number(out, u64::from(v)),
        SeqBound::Largest => out.push(b'*'),
    };
    for (i, &(first, last)) in set.ranges().iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        bound(out, first);
        if first != last {
            out.push(b':');
            bound(out, last);
        }
    }
}

/// `date-time`, quoted, in the zone the date carries: `"25-Nov-2026 21:11:49 +0000"`.
pub fn internal_date(out: &mut Vec<u8>, date: InternalDate) {
    let local = date.unix_seconds + i64::from(date.zone_minutes) * 60;
    let (days, seconds) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    out.push(b'"');
    search_date(out, days);
    out.push(b' ');
    two_digits(out, seconds / 3600);
    out.push(b':');
    two_digits(out, seconds / 60 % 60);
    out.push(b':');
    two_digits(out, seconds % 60);
    let zone = i64::from(date.zone_minutes);
    out.extend_from_slice(if zone < 0 { b" -" } else { b" +" });
    two_digits(out, zone.abs() / 60);
    two_digits(out, zone.abs() % 60);
    out.push(b'"');
}

/// `date-text` (`dd-Mon-yyyy`) for a day counted from 1970-01-01; years are clamped to four
/// digits, as the grammar requires.
pub fn search_date(out: &mut Vec<u8>, days: i64) {
    let (year, month, day) = civil_from_days(days);
    two_digits(out, i64::from(day));
    out.push(b'-');
    out.extend_from_slice(MONTH_NAMES[month as usize - 1].as_bytes());
    out.push(b'-');
    let year = year.clamp(0, 9999);
    two_digits(out, year / 100);
    two_digits(out, year % 100);
}

fn two_digits(out: &mut Vec<u8>, value: i64) {
    let value = u8::try_from(value.clamp(0, 99)).expect("clamped");
    out.push(b'0' + value / 10);
    out.push(b'0' + value % 10);
}

/// `section = "[" [section-spec] "]"`, as echoed in FETCH responses.
pub fn section(out: &mut Vec<u8>, section: &Section) {
    out.push(b'[');
    for (i, part) in section.part.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        number(out, u64::from(*part));
    }
    if let Some(text) = &section.text {
        if !section.part.is_empty() {
            out.push(b'.');
        }
        let (name, fields) = match text {
            SectionText::Header => ("HEADER", None),
            SectionText::Text => ("TEXT", None),
            SectionText::Mime => ("MIME", None),
            SectionText::HeaderFields(fields) => ("HEADER.FIELDS", Some(fields)),
            SectionText::HeaderFieldsNot(fields) => ("HEADER.FIELDS.NOT", Some(fields)),
        };
        out.extend_from_slice(name.as_bytes());
        if let Some(fields) = fields {
            out.extend_from_slice(b" (");
            for (i, field) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                astring(out, field.as_bytes());
            }
            out.push(b')');
        }
    }
    out.push(b']');
}

#[cfg(test)]
#[path = "encode_tests.rs"]
mod tests;
