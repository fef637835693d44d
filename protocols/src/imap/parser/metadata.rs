//! GETMETADATA and SETMETADATA (RFC 5464 §4.2, §4.3) and LIST's `METADATA` return option
//! (RFC 9590). Entry names are checked here (RFC 5464 §3.2) and lowercased: they are
//! case-insensitive, and the store keeps one spelling.

use crate::imap::types::{CommandBody, MetadataDepth, MetadataRequest};
use skua_core::limits::METADATA_ENTRY_NAME_BYTES_MAX;

use super::ParseErrorKind;
use super::cursor::{Cursor, PResult, fail, syntax};
use super::values::mailbox;

/// ```text
/// getmetadata         = "GETMETADATA" [SP getmetadata-options] SP mailbox SP entries
/// getmetadata-options = "(" getmetadata-option *(SP getmetadata-option) ")"
/// getmetadata-option  = maxsize-opt / scope-opt
/// maxsize-opt         = "MAXSIZE" SP number
/// scope-opt           = "DEPTH" SP ("0" / "1" / "infinity")
/// entries             = entry / "(" entry *(SP entry) ")"
/// ```
/// The options are also accepted after the mailbox, where RFC 5464's own examples put them.
pub(crate) fn getmetadata(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    let mut request =
        MetadataRequest { entries: Vec::new(), max_size: None, depth: MetadataDepth::Zero };
    let mut options = false;
    if opens_options(c) {
        get_options(c, &mut request)?;
        options = true;
        c.sp()?;
    }
    let mailbox = mailbox(c)?;
    c.sp()?;
    if !options && opens_options(c) {
        get_options(c, &mut request)?;
        c.sp()?;
    }
    request.entries = entries(c)?;
    Ok(CommandBody::GetMetadata { mailbox, request })
}

/// `(` followed by a letter: an options list (an entries list opens with `/` or a string).
fn opens_options(c: &mut Cursor<'_>) -> bool {
    let at = c.pos();
    let options = c.eat(b'(') && c.peek().is_some_and(|b| b.is_ascii_alphabetic());
    c.rewind(at);
    options
}

/// `getmetadata-options`, into `request`. Each option at most once.
fn get_options(c: &mut Cursor<'_>, request: &mut MetadataRequest) -> PResult<()> {
    c.expect(b'(', "expected (")?;
    let (mut max_size, mut depth) = (false, false);
    loop {
        match c.keyword()?.as_slice() {
            b"MAXSIZE" if !max_size => {
                c.sp()?;
                request.max_size = Some(c.number()?);
                max_size = true;
            }
            b"DEPTH" if !depth => {
                c.sp()?;
                request.depth = match c.keyword()?.as_slice() {
                    b"0" => MetadataDepth::Zero,
                    b"1" => MetadataDepth::One,
                    b"INFINITY" => MetadataDepth::Infinity,
                    _ => return syntax("DEPTH is 0, 1 or infinity"),
                };
                depth = true;
            }
            _ => return syntax("unknown or repeated GETMETADATA option"),
        }
        if c.eat(b')') {
            return Ok(());
        }
        c.sp()?;
    }
}

/// `entries = entry / "(" entry *(SP entry) ")"`
fn entries(c: &mut Cursor<'_>) -> PResult<Vec<String>> {
    if !c.eat(b'(') {
        return Ok(vec![entry(c)?]);
    }
    let mut entries = Vec::new();
    loop {
        if entries.len() == c.limits.list_items_max {
            return fail(ParseErrorKind::TooMany, "too many entries");
        }
        entries.push(entry(c)?);
        if c.eat(b')') {
            return Ok(entries);
        }
        c.sp()?;
    }
}

/// `entry = astring`, checked as RFC 5464 §3.2 says (see [`check_entry`]) and lowercased.
fn entry(c: &mut Cursor<'_>) -> PResult<String> {
    let raw = c.astring()?;
    check_entry(&raw)
}

/// An entry name: `/private/` or `/shared/` and at least one more byte; printable ASCII
/// without `*` and `%` (RFC 5464 §3.2: no wildcards, no control characters, no 8-bit);
/// no `//` and no trailing `/`; at most `limits::METADATA_ENTRY_NAME_BYTES_MAX` bytes.
/// Returns it lowercased.
pub(crate) fn check_entry(raw: &[u8]) -> PResult<String> {
    let printable = raw.iter().all(|&b| (0x20..0x7f).contains(&b) && b != b'*' && b != b'%');
    let lower = raw.to_ascii_lowercase();
    let scoped = lower.starts_with(b"/private/") || lower.starts_with(b"/shared/");
    let tail_ok = !lower.ends_with(b"/") && !lower.windows(2).any(|w| w == b"//");
    if !printable || !scoped || !tail_ok || raw.len() > METADATA_ENTRY_NAME_BYTES_MAX {
        return syntax("invalid entry name");
    }
    Ok(String::from_utf8(lower).expect("ASCII"))
}

/// ```text
/// setmetadata  = "SETMETADATA" SP mailbox SP entry-values
/// entry-values = "(" entry-value *(SP entry-value) ")"
/// entry-value  = entry SP value
/// value        = nstring / literal8
/// ```
/// A value longer than `limits::METADATA_VALUE_BYTES_MAX` is kept as parsed (the framer
/// bounds literals): the command answers `NO [METADATA MAXSIZE n]` for it, not BAD.
pub(crate) fn setmetadata(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    let mailbox = mailbox(c)?;
    c.sp()?;
    c.expect(b'(', "expected (")?;
    let mut entries = Vec::new();
    loop {
        if entries.len() == c.limits.list_items_max {
            return fail(ParseErrorKind::TooMany, "too many entries");
        }
        let name = entry(c)?;
        c.sp()?;
        let value = if c.peek() == Some(b'~') {
            Some(c.literal(true)?.to_vec())
        } else {
            c.nstring()?.map(std::borrow::Cow::into_owned)
        };
        entries.push((name, value));
        if c.eat(b')') {
            break;
        }
        c.sp()?;
    }
    Ok(CommandBody::SetMetadata { mailbox, entries })
}

/// After LIST's `RETURN (... METADATA`: ` (entries)`, where the list may also hold
/// `MAXSIZE n` (RFC 9590; an options list `(MAXSIZE n)` before the entries is accepted too,
/// as GETMETADATA takes it).
pub(crate) fn list_return(c: &mut Cursor<'_>) -> PResult<MetadataRequest> {
    c.sp()?;
    let mut request =
        MetadataRequest { entries: Vec::new(), max_size: None, depth: MetadataDepth::Zero };
    c.expect(b'(', "expected (")?;
    loop {
        if opens_options(c) {
            get_options(c, &mut request)?;
        } else if c.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
            match c.keyword()?.as_slice() {
                b"MAXSIZE" if request.max_size.is_none() => {
                    c.sp()?;
                    request.max_size = Some(c.number()?);
                }
                _ => return syntax("unknown METADATA return option"),
            }
        } else {
            if request.entries.len() == c.limits.list_items_max {
                return fail(ParseErrorKind::TooMany, "too many entries");
            }
            request.entries.push(entry(c)?);
        }
        if c.eat(b')') {
            break;
        }
        c.sp()?;
    }
    if request.entries.is_empty() {
        return syntax("METADATA needs an entry");
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::limits::ParseLimits;

    fn run(input: &[u8], f: fn(&mut Cursor<'_>) -> PResult<CommandBody>) -> PResult<CommandBody> {
        let mut c = Cursor::new(input, ParseLimits::default(), false);
        let body = f(&mut c)?;
        c.end()?;
        Ok(body)
    }

    #[test]
    fn entry_names() {
        assert_eq!(check_entry(b"/Shared/Comment").unwrap(), "/shared/comment");
        assert_eq!(check_entry(b"/private/vendor/x-y.z").unwrap(), "/private/vendor/x-y.z");
        for bad in [
            &b"/shared"[..],
            b"/shared/",
            b"/private",
            b"/foo/bar",
            b"comment",
            b"/shared//comment",
            b"/shared/comment/",
            b"/shared/comment*",
            b"/shared/comm%nt",
            b"/shared/c\xc3\xb6mment",
            b"/shared/a\tb",
        ] {
            assert!(check_entry(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let long = format!("/shared/{}", "a".repeat(METADATA_ENTRY_NAME_BYTES_MAX));
        assert!(check_entry(long.as_bytes()).is_err());
    }

    #[test]
    fn getmetadata_forms() {
        let body = run(b" \"\" /shared/comment", getmetadata).unwrap();
        let CommandBody::GetMetadata { mailbox, request } = body else { panic!() };
        assert_eq!(mailbox, "");
        assert_eq!(request.entries, ["/shared/comment"]);
        for input in [
            &b" (MAXSIZE 1024 DEPTH infinity) INBOX (/shared/comment /private/Comment)"[..],
            b" INBOX (depth INFINITY maxsize 1024) (/shared/comment /private/comment)",
        ] {
            let CommandBody::GetMetadata { mailbox, request } = run(input, getmetadata).unwrap()
            else {
                panic!()
            };
            assert_eq!(mailbox, "INBOX");
            assert_eq!(request.entries, ["/shared/comment", "/private/comment"]);
            assert_eq!(request.max_size, Some(1024));
            assert_eq!(request.depth, MetadataDepth::Infinity);
        }
        assert!(run(b" INBOX (DEPTH 2) /shared/x", getmetadata).is_err());
        assert!(run(b" INBOX (DEPTH 1 DEPTH 0) /shared/x", getmetadata).is_err());
        assert!(run(b" INBOX", getmetadata).is_err());
        assert!(run(b" INBOX ()", getmetadata).is_err());
    }

    #[test]
    fn setmetadata_values() {
        let input =
            b" INBOX (/private/comment {5}\r\nab\ncd /shared/comment NIL /shared/x ~{2}\r\n\0z)";
        let CommandBody::SetMetadata { mailbox, entries } = run(input, setmetadata).unwrap() else {
            panic!()
        };
        assert_eq!(mailbox, "INBOX");
        assert_eq!(
            entries,
            vec![
                ("/private/comment".to_owned(), Some(b"ab\ncd".to_vec())),
                ("/shared/comment".to_owned(), None),
                ("/shared/x".to_owned(), Some(b"\0z".to_vec())),
            ]
        );
        assert!(run(b" INBOX ()", setmetadata).is_err());
        assert!(run(b" INBOX (/shared/comment)", setmetadata).is_err());
    }

    #[test]
    fn list_return_forms() {
        let mut c = Cursor::new(
            b" (/shared/comment MAXSIZE 10 /private/comment)",
            ParseLimits::default(),
            false,
        );
        let request = list_return(&mut c).unwrap();
        assert_eq!(request.entries, ["/shared/comment", "/private/comment"]);
        assert_eq!(request.max_size, Some(10));
        let mut c = Cursor::new(b" ()", ParseLimits::default(), false);
        assert!(list_return(&mut c).is_err());
    }
}
