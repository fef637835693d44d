//! IMAP URLs (RFC 5092) as CATENATE (RFC 4469) uses them: a message or a part of one in the
//! user's own mailboxes, with `;UIDVALIDITY=`, `;UID=`, `;SECTION=` and `;PARTIAL=`.
//!
//! ```text
//! iabsolute-path = "/" imessagepart                     ; "/INBOX;UIDVALIDITY=7/;UID=20"
//! imessagepart   = imailbox-ref iuid [isection] [ipartial]
//! imailbox-ref   = enc-mailbox [uidvalidity]
//! uidvalidity    = ";UIDVALIDITY=" nz-number
//! iuid           = "/" ";UID=" nz-number
//! isection       = "/" ";SECTION=" enc-section
//! ipartial       = "/" ";PARTIAL=" number ["." nz-number]
//! irelative-path = ";UID=" nz-number [isection] [ipartial]    ; in the selected mailbox
//! ```
//! Keywords are case-insensitive; `enc-mailbox` and `enc-section` are %-encoded UTF-8.
//! Absolute URLs (`imap://user@host/...`) name a user and a server: they are refused here
//! ([`UrlError::Absolute`]), since without URLAUTH (RFC 4467) a session may only point into
//! its own mailboxes and the session does not know its user's name at this layer; so are
//! `;URLAUTH=`, `;EXPIRE=` and search URLs (`?`). No recursion; every number is bounded.

use skua_core::types::Uid;

use crate::imap::parser::parse_section_spec;
use crate::imap::types::Section;

/// The longest URL accepted (RFC 5092 sets none; a mailbox name and a section fit easily).
pub(crate) const URL_BYTES_MAX: usize = 4096;

/// A parsed message or part reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MessageUrl {
    /// The mailbox, decoded; `None`: the selected mailbox (a relative `;UID=` URL).
    pub mailbox: Option<String>,
    /// `;UIDVALIDITY=`, when given: the URL is stale unless it matches.
    pub uid_validity: Option<u32>,
    /// The message.
    pub uid: Uid,
    /// `;SECTION=`; `None`: the whole message.
    pub section: Option<Section>,
    /// `;PARTIAL=offset[.length]`.
    pub partial: Option<(u32, Option<u32>)>,
}

/// Why a URL cannot be used (each answers `NO [BADURL url]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UrlError {
    /// Not an IMAP URL of a message or part, or longer than [`URL_BYTES_MAX`].
    Syntax,
    /// `imap://...`: another user's or server's URL (needs URLAUTH, not offered).
    Absolute,
}

/// Parses a URL as sent in CATENATE's `URL` part.
pub(crate) fn parse(url: &str) -> Result<MessageUrl, UrlError> {
    if url.len() > URL_BYTES_MAX {
        return Err(UrlError::Syntax);
    }
    let bytes = url.as_bytes();
    if starts_with_ignore_case(bytes, b"imap:") || bytes.starts_with(b"//") {
        return Err(UrlError::Absolute);
    }
    let mut pieces = url.split('/');
    let first = pieces.next().ok_or(UrlError::Syntax)?;
    let (mailbox, uid_validity, uid_piece) = if first.is_empty() {
        // "/" imailbox-ref "/" ";UID=" ...
        let mailbox_ref = pieces.next().ok_or(UrlError::Syntax)?;
        let (name, uid_validity) = mailbox_ref_parts(mailbox_ref)?;
        (Some(name), uid_validity, pieces.next().ok_or(UrlError::Syntax)?)
    } else {
        (None, None, first)
    };
    let uid = Uid::new(keyword_number(uid_piece, "UID")?).ok_or(UrlError::Syntax)?;
    let mut section = None;
    let mut partial = None;
    for piece in pieces {
        if partial.is_some() {
            return Err(UrlError::Syntax);
        }
        if let Some(value) = keyword_value(piece, "SECTION") {
            if section.is_some() {
                return Err(UrlError::Syntax);
            }
            let spec = percent_decode(value).ok_or(UrlError::Syntax)?;
            if spec.is_empty() {
                return Err(UrlError::Syntax);
            }
            section = Some(parse_section_spec(&spec).ok_or(UrlError::Syntax)?);
        } else if let Some(value) = keyword_value(piece, "PARTIAL") {
            partial = Some(partial_range(value)?);
        } else {
            return Err(UrlError::Syntax);
        }
    }
    Ok(MessageUrl { mailbox, uid_validity, uid, section, partial })
}

/// `enc-mailbox [";UIDVALIDITY=" nz-number]`
fn mailbox_ref_parts(piece: &str) -> Result<(String, Option<u32>), UrlError> {
    let (name, uid_validity) = match find_ignore_case(piece, ";UIDVALIDITY=") {
        Some(at) => {
            let number = &piece[at + ";UIDVALIDITY=".len()..];
            (&piece[..at], Some(nz_number(number)?))
        }
        None => (piece, None),
    };
    if name.is_empty() || name.contains(';') || name.contains('?') {
        return Err(UrlError::Syntax);
    }
    let decoded = percent_decode(name).ok_or(UrlError::Syntax)?;
    let name = String::from_utf8(decoded).map_err(|_| UrlError::Syntax)?;
    Ok((name, uid_validity))
}

/// `";" keyword "=" value` (keyword in any case), the value still encoded.
fn keyword_value<'a>(piece: &'a str, keyword: &str) -> Option<&'a str> {
    let rest = piece.strip_prefix(';')?;
    let (name, value) = rest.split_once('=')?;
    name.eq_ignore_ascii_case(keyword).then_some(value)
}

fn keyword_number(piece: &str, keyword: &str) -> Result<u32, UrlError> {
    nz_number(keyword_value(piece, keyword).ok_or(UrlError::Syntax)?)
}

/// `partial-range = number ["." nz-number]`
fn partial_range(value: &str) -> Result<(u32, Option<u32>), UrlError> {
    match value.split_once('.') {
        Some((offset, length)) => Ok((number(offset)?, Some(nz_number(length)?))),
        None => Ok((number(value)?, None)),
    }
}

/// `number`: 1 to 10 digits, fits 32 bits.
fn number(text: &str) -> Result<u32, UrlError> {
    if text.is_empty() || text.len() > 10 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UrlError::Syntax);
    }
    text.parse().map_err(|_| UrlError::Syntax)
}

/// `nz-number`: no leading zero, not zero.
fn nz_number(text: &str) -> Result<u32, UrlError> {
    if text.starts_with('0') {
        return Err(UrlError::Syntax);
    }
    number(text)
}

/// `%XX` decoding; `None` on a bad escape.
fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

fn starts_with_ignore_case(bytes: &[u8], prefix: &[u8]) -> bool {
    bytes.len() >= prefix.len() && bytes[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn find_ignore_case(haystack: &str, needle: &str) -> Option<usize> {
    let haystack = haystack.as_bytes();
    let needle = needle.as_bytes();
    (0..=haystack.len().checked_sub(needle.len())?)
        .find(|&at| haystack[at..at + needle.len()].eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::types::SectionText;

    fn uid(n: u32) -> Uid {
        Uid::new(n).unwrap()
    }

    #[test]
    fn rfc_4469_example_urls() {
        let url = parse("/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER").unwrap();
        assert_eq!(url.mailbox.as_deref(), Some("Drafts"));
        assert_eq!(url.uid_validity, Some(385_759_045));
        assert_eq!(url.uid, uid(20));
        assert_eq!(url.section, Some(Section { part: vec![], text: Some(SectionText::Header) }));
        let url = parse("/Drafts;UIDVALIDITY=385759045/;UID=20/;section=1.MIME").unwrap();
        assert_eq!(url.section, Some(Section { part: vec![1], text: Some(SectionText::Mime) }));
        let url = parse("/Drafts;UIDVALIDITY=385759045/;UID=30").unwrap();
        assert_eq!((url.uid, url.section, url.partial), (uid(30), None, None));
    }

    #[test]
    fn relative_partial_and_encoded_forms() {
        let url = parse(";UID=7/;SECTION=2/;PARTIAL=10.5").unwrap();
        assert_eq!(url.mailbox, None);
        assert_eq!(url.section, Some(Section { part: vec![2], text: None }));
        assert_eq!(url.partial, Some((10, Some(5))));
        let url = parse("/a%20b%2Fc/;UID=1/;PARTIAL=0").unwrap();
        assert_eq!(url.mailbox.as_deref(), Some("a b/c"));
        assert_eq!(url.partial, Some((0, None)));
        let url = parse("/INBOX/;UID=1/;SECTION=HEADER.FIELDS%20(TO%20FROM)").unwrap();
        assert!(matches!(
            url.section,
            Some(Section { text: Some(SectionText::HeaderFields(_)), .. })
        ));
    }

    #[test]
    fn refusals() {
        assert_eq!(parse("imap://fred@example.com/INBOX/;UID=1"), Err(UrlError::Absolute));
        assert_eq!(parse("//example.com/INBOX/;UID=1"), Err(UrlError::Absolute));
        for bad in [
            "",
            "/",
            "/INBOX",
            "/INBOX/;UID=0",
            "/INBOX/;UID=01",
            "/INBOX/;UID=4294967296",
            "/INBOX;UIDVALIDITY=/;UID=1",
            "/INBOX/;UID=1/;SECTION=",
            "/INBOX/;UID=1/;SECTION=BOGUS",
            "/INBOX/;UID=1/;PARTIAL=1.0",
            "/INBOX/;UID=1/;PARTIAL=1/;SECTION=1",
            "/INBOX/;UID=1/;URLAUTH=anonymous:internal:0123",
            "/INBOX?SUBJECT%20x",
            "/IN%zzBOX/;UID=1",
            "/%FF/;UID=1",
            ";UID=1/;SECTION=1/;SECTION=2",
        ] {
            assert_eq!(parse(bad), Err(UrlError::Syntax), "{bad}");
        }
        assert_eq!(parse(&format!("/{}/;UID=1", "a".repeat(URL_BYTES_MAX))), Err(UrlError::Syntax));
    }
}
