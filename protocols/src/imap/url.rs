//! IMAP URLs (RFC 5092) as CATENATE (RFC 4469) and URLAUTH (RFC 4467) use them: a message or a
//! part of one, with `;UIDVALIDITY=`, `;UID=`, `;SECTION=` and `;PARTIAL=`, relative to the
//! session or absolute with a server and user, optionally with `;EXPIRE=` and `;URLAUTH=`.
//!
//! ```text
//! imapurl        = "imap://" iserver "/" imessagepart [iurlauth]   ; absolute
//! iserver        = [iuserinfo "@"] host [":" port]
//! iuserinfo      = enc-user [iauth] / [enc-user] iauth
//! iauth          = ";AUTH=" ( "*" / enc-auth-type )
//! iabsolute-path = "/" imessagepart                     ; "/INBOX;UIDVALIDITY=7/;UID=20"
//! imessagepart   = imailbox-ref iuid [isection] [ipartial]
//! imailbox-ref   = enc-mailbox [uidvalidity]
//! uidvalidity    = ";UIDVALIDITY=" nz-number
//! iuid           = "/" ";UID=" nz-number
//! isection       = "/" ";SECTION=" enc-section
//! ipartial       = "/" ";PARTIAL=" number ["." nz-number]
//! irelative-path = ";UID=" nz-number [isection] [ipartial]    ; in the selected mailbox
//! iurlauth       = iurlauth-rump [iua-verifier]               ; verifier: url-full only
//! iurlauth-rump  = [";EXPIRE=" date-time] ";URLAUTH=" access  ; date-time: RFC 3339
//! access         = ("submit+" enc-user) / ("user+" enc-user) / "authuser" / "anonymous"
//! iua-verifier   = ":" uauth-mechanism ":" enc-urlauth
//! uauth-mechanism = "INTERNAL" / 1*(ALPHA / DIGIT / "-" / ".")
//! enc-urlauth    = 32*HEXDIG
//! ```
//! Keywords are case-insensitive; `enc-*` are %-encoded UTF-8. A mailbox name may hold `/`
//! (the mailbox reference is everything before `/;UID=`). `;URLAUTH=` only in absolute URLs;
//! search URLs (`?`) and network paths without the scheme (`//host/...`) are refused. Whether
//! the server, the user and the authorization fit the session is the caller's business
//! (`command/urlauth.rs`). No recursion; every number is bounded.

use skua_core::types::Uid;

use crate::imap::parser::parse_section_spec;
use crate::imap::types::Section;

/// The longest URL accepted (RFC 5092 sets none; a mailbox name and a section fit easily).
pub(crate) const URL_BYTES_MAX: usize = 4096;

/// A parsed message or part reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MessageUrl {
    /// `imap://` URLs: the server and user; `None` for the relative forms.
    pub server: Option<UrlServer>,
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
    /// `[;EXPIRE=...];URLAUTH=...`, absolute URLs only.
    pub auth: Option<UrlAuth>,
}

/// `iserver` of an absolute URL (the port is checked for syntax and dropped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UrlServer {
    /// `enc-user`, decoded; `None` when the URL names no user.
    pub user: Option<String>,
    /// `host` as written (a name, an IPv4 address or a bracketed IPv6 literal).
    pub host: String,
}

/// The URLAUTH part of a URL (RFC 4467 §3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UrlAuth {
    /// `;EXPIRE=`, unix seconds.
    pub expire: Option<i64>,
    /// Who may fetch the URL.
    pub access: Access,
    /// The rump's length: the URL's bytes up to and including the access identifier, which
    /// the token signs.
    pub rump_len: usize,
    /// `:mechanism:token` (mechanism upper-cased); `None` in a rump (GENURLAUTH's input).
    pub verifier: Option<(String, String)>,
}

/// An access identifier (RFC 4467 §3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// `submit+user`: a submission server acting for `user`.
    Submit(String),
    /// `user+user`: sessions logged in as `user`.
    User(String),
    /// `authuser`: any logged-in session.
    AuthUser,
    /// `anonymous`: any session, logged in or anonymous.
    Anonymous,
}

/// Why a URL cannot be used (CATENATE answers `NO [BADURL url]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UrlError {
    /// Not an IMAP URL of a message or part, or longer than [`URL_BYTES_MAX`].
    Syntax,
}

/// Parses a URL as sent in CATENATE's `URL` part, GENURLAUTH or URLFETCH.
pub(crate) fn parse(url: &str) -> Result<MessageUrl, UrlError> {
    if url.len() > URL_BYTES_MAX || url.contains('?') {
        return Err(UrlError::Syntax);
    }
    let (server, path_start) = if starts_with_ignore_case(url.as_bytes(), b"imap://") {
        let rest = &url["imap://".len()..];
        let slash = rest.find('/').ok_or(UrlError::Syntax)?;
        (Some(server(&rest[..slash])?), "imap://".len() + slash)
    } else if starts_with_ignore_case(url.as_bytes(), b"imap:") || url.starts_with("//") {
        return Err(UrlError::Syntax);
    } else {
        (None, 0)
    };
    let path = &url[path_start..];
    let (body, auth) = match auth_start(path) {
        Some(at) => (&path[..at], Some(url_auth(url, path_start + at)?)),
        None => (path, None),
    };
    if auth.is_some() && server.is_none() {
        return Err(UrlError::Syntax);
    }
    let (mailbox, uid_validity, rest) = if body.starts_with('/') {
        let at = find_ignore_case(body, "/;UID=").ok_or(UrlError::Syntax)?;
        let (name, uid_validity) = mailbox_ref_parts(body.get(1..at).ok_or(UrlError::Syntax)?)?;
        (Some(name), uid_validity, &body[at + 1..])
    } else if server.is_none() {
        (None, None, body)
    } else {
        return Err(UrlError::Syntax);
    };
    let mut pieces = rest.split('/');
    let uid_piece = pieces.next().ok_or(UrlError::Syntax)?;
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
    Ok(MessageUrl { server, mailbox, uid_validity, uid, section, partial, auth })
}

/// `[iuserinfo "@"] host [":" port]`
fn server(text: &str) -> Result<UrlServer, UrlError> {
    let (userinfo, hostport) = match text.rfind('@') {
        Some(at) => (Some(&text[..at]), &text[at + 1..]),
        None => (None, text),
    };
    let user = match userinfo {
        None => None,
        Some(info) => {
            // enc-user [";AUTH=" ...]: the AUTH type only says how to log in.
            let (user, auth) = match find_ignore_case(info, ";AUTH=") {
                Some(at) => (&info[..at], Some(&info[at + ";AUTH=".len()..])),
                None => (info, None),
            };
            if auth.is_some_and(str::is_empty) || user.contains(';') || user.contains(':') {
                return Err(UrlError::Syntax);
            }
            if user.is_empty() {
                if auth.is_none() {
                    return Err(UrlError::Syntax);
                }
                None
            } else {
                Some(decode_utf8(user)?)
            }
        }
    };
    let (host, port) = if hostport.starts_with('[') {
        let close = hostport.find(']').ok_or(UrlError::Syntax)?;
        (&hostport[..=close], &hostport[close + 1..])
    } else {
        match hostport.find(':') {
            Some(at) => (&hostport[..at], &hostport[at..]),
            None => (hostport, ""),
        }
    };
    if let Some(digits) = port.strip_prefix(':') {
        if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(UrlError::Syntax);
        }
    } else if !port.is_empty() {
        return Err(UrlError::Syntax);
    }
    let host_chars =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'[' | b']' | b':');
    if host.is_empty() || !host.bytes().all(host_chars) {
        return Err(UrlError::Syntax);
    }
    Ok(UrlServer { user, host: host.to_owned() })
}

/// Where `[";EXPIRE=" ...] ";URLAUTH=" ...` starts in an URL path, if it has one.
fn auth_start(path: &str) -> Option<usize> {
    let urlauth = find_ignore_case(path, ";URLAUTH=");
    let expire = find_ignore_case(path, ";EXPIRE=");
    match (expire, urlauth) {
        (Some(expire), Some(urlauth)) => Some(expire.min(urlauth)),
        (expire, urlauth) => expire.or(urlauth),
    }
}

/// `iurlauth-rump [iua-verifier]`, starting at byte `at` of `url`.
fn url_auth(url: &str, at: usize) -> Result<UrlAuth, UrlError> {
    let mut rest = &url[at..];
    let mut expire = None;
    if let Some(value) = strip_prefix_ignore_case(rest, ";EXPIRE=") {
        let end = value.find(';').ok_or(UrlError::Syntax)?;
        expire = Some(date_time(&value[..end]).ok_or(UrlError::Syntax)?);
        rest = &value[end..];
    }
    let value = strip_prefix_ignore_case(rest, ";URLAUTH=").ok_or(UrlError::Syntax)?;
    let (access_text, verifier_text) = match value.find(':') {
        Some(colon) => (&value[..colon], Some(&value[colon + 1..])),
        None => (value, None),
    };
    let access = if access_text.eq_ignore_ascii_case("anonymous") {
        Access::Anonymous
    } else if access_text.eq_ignore_ascii_case("authuser") {
        Access::AuthUser
    } else if let Some(user) = strip_prefix_ignore_case(access_text, "submit+") {
        Access::Submit(access_user(user)?)
    } else if let Some(user) = strip_prefix_ignore_case(access_text, "user+") {
        Access::User(access_user(user)?)
    } else {
        return Err(UrlError::Syntax);
    };
    let rump_len = url.len() - value.len() + access_text.len();
    let verifier = match verifier_text {
        None => None,
        Some(text) => {
            let (mechanism, token) = text.split_once(':').ok_or(UrlError::Syntax)?;
            let mechanism_chars = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.');
            if mechanism.is_empty() || !mechanism.bytes().all(mechanism_chars) {
                return Err(UrlError::Syntax);
            }
            if token.len() < 32 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(UrlError::Syntax);
            }
            Some((mechanism.to_ascii_uppercase(), token.to_owned()))
        }
    };
    Ok(UrlAuth { expire, access, rump_len, verifier })
}

/// The `enc-user` of an access identifier: not empty, decoded.
fn access_user(text: &str) -> Result<String, UrlError> {
    if text.is_empty() || text.contains(';') {
        return Err(UrlError::Syntax);
    }
    decode_utf8(text)
}

fn decode_utf8(text: &str) -> Result<String, UrlError> {
    let bytes = percent_decode(text).ok_or(UrlError::Syntax)?;
    String::from_utf8(bytes).map_err(|_| UrlError::Syntax)
}

/// RFC 3339 `date-time` (`2026-12-07T04:30:00Z`, `...T04:30:00.5+01:00`) in unix seconds
/// (fractions dropped).
fn date_time(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || !matches!(bytes[10], b'T' | b't') {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes().all(|b| b.is_ascii_digit()).then(|| part.parse().ok())?
    };
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if [bytes[4], bytes[7], bytes[13], bytes[16]] != [b'-', b'-', b':', b':'] {
        return None;
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits_len = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits_len == 0 {
            return None;
        }
        rest = &fraction[digits_len..];
    }
    let offset = if rest.eq_ignore_ascii_case("Z") {
        0
    } else {
        let sign = match rest.as_bytes().first()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let zone = rest.get(1..)?;
        if zone.len() != 5 || zone.as_bytes()[2] != b':' {
            return None;
        }
        let (zone_hour, zone_minute) =
            (zone[..2].parse::<i64>().ok()?, zone[3..].parse::<i64>().ok()?);
        if zone_hour > 23
            || zone_minute > 59
            || !zone[..2].bytes().chain(zone[3..].bytes()).all(|b| b.is_ascii_digit())
        {
            return None;
        }
        sign * (zone_hour * 3600 + zone_minute * 60)
    };
    let days = crate::imap::parser::date::days_from_civil_unchecked(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    starts_with_ignore_case(text.as_bytes(), prefix.as_bytes()).then(|| &text[prefix.len()..])
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
            "/INBOX/;UID=1;URLAUTH=anonymous",
            "/INBOX?SUBJECT%20x",
            "/IN%zzBOX/;UID=1",
            "/%FF/;UID=1",
            ";UID=1/;SECTION=1/;SECTION=2",
            "//example.com/INBOX/;UID=1",
            "imap:/INBOX/;UID=1",
            "imap://example.com",
            "imap://fred@example.com/;UID=1",
            "imap://fred@example.com/INBOX",
            "imap://fred@example.com/INBOX?ALL",
            "imap://fred@exa mple.com/INBOX/;UID=1",
            "imap://fred@example.com:x/INBOX/;UID=1",
            "imap://@example.com/INBOX/;UID=1",
            "imap://fred@example.com/INBOX/;UID=1;URLAUTH=nobody",
            "imap://fred@example.com/INBOX/;UID=1;URLAUTH=user+",
            "imap://fred@example.com/INBOX/;UID=1;URLAUTH=anonymous:internal",
            "imap://fred@example.com/INBOX/;UID=1;URLAUTH=anonymous:internal:abc",
            "imap://fred@example.com/INBOX/;UID=1;URLAUTH=anonymous:in*ternal:0123456789abcdef0123456789abcdef",
            "imap://fred@example.com/INBOX/;UID=1;EXPIRE=2026-13-01T00:00:00Z;URLAUTH=anonymous",
            "imap://fred@example.com/INBOX/;UID=1;EXPIRE=2026-12-01T00:00:00Z",
        ] {
            assert_eq!(parse(bad), Err(UrlError::Syntax), "{bad}");
        }
        assert_eq!(parse(&format!("/{}/;UID=1", "a".repeat(URL_BYTES_MAX))), Err(UrlError::Syntax));
    }

    #[test]
    fn rfc_4467_and_5092_absolute_urls() {
        let rump = "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred";
        let url = parse(rump).unwrap();
        let server = url.server.clone().unwrap();
        assert_eq!((server.user.as_deref(), server.host.as_str()), (Some("joe"), "example.com"));
        assert_eq!((url.mailbox.as_deref(), url.uid), (Some("INBOX"), uid(20)));
        assert_eq!(url.section, Some(Section { part: vec![1, 2], text: None }));
        let auth = url.auth.unwrap();
        assert_eq!(auth.access, Access::Submit("fred".into()));
        assert_eq!((auth.rump_len, auth.verifier, auth.expire), (rump.len(), None, None));
        let full = format!("{rump}:internal:91354a473744909de610943775f92038");
        let auth = parse(&full).unwrap().auth.unwrap();
        assert_eq!(auth.rump_len, rump.len(), "the rump ends before the verifier");
        assert_eq!(
            auth.verifier,
            Some(("INTERNAL".into(), "91354a473744909de610943775f92038".into()))
        );
        // RFC 5092's examples of server parts and of EXPIRE.
        let url = parse("imap://fred;AUTH=*@[::1]:143/Lists/skua;UIDVALIDITY=9/;UID=3").unwrap();
        assert_eq!(url.server.unwrap().host, "[::1]");
        assert_eq!((url.mailbox.as_deref(), url.uid_validity), (Some("Lists/skua"), Some(9)));
        let url = parse(
            "imap://joe@example.com/INBOX/;uid=20/;PARTIAL=0.1024;expire=2006-05-26T12:00:00-07:00;urlauth=user+fr%C3%A9d",
        )
        .unwrap();
        assert_eq!(url.partial, Some((0, Some(1024))));
        let auth = url.auth.unwrap();
        assert_eq!(auth.expire, Some(1_148_670_000));
        assert_eq!(auth.access, Access::User("fr\u{e9}d".into()));
        let url = parse("imap://j%40x@host/INBOX/;UID=1;URLAUTH=anonymous").unwrap();
        assert_eq!(url.server.unwrap().user.as_deref(), Some("j@x"));
        assert_eq!(
            parse("imap://h/INBOX/;UID=1;URLAUTH=authuser").unwrap().auth.unwrap().access,
            Access::AuthUser
        );
    }

    #[test]
    fn rfc_3339_date_times() {
        assert_eq!(date_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(date_time("1970-01-01t00:00:01.25z"), Some(1));
        assert_eq!(date_time("2000-03-01T00:00:00+01:00"), Some(951_865_200));
        assert_eq!(date_time("2026-12-07T04:30:00Z"), Some(1_796_617_800));
        for bad in [
            "2026-12-07",
            "2026-12-07T04:30:00",
            "2026-12-07T24:00:00Z",
            "2026-12-07T04:30:00.Z",
            "2026-12-07T04:30:00+1:00",
        ] {
            assert_eq!(date_time(bad), None, "{bad}");
        }
    }

    proptest::proptest! {
        /// No input panics the parser (a slice at `/;UID=` right after the host once did).
        #[test]
        fn never_panics(text in "(imap://|IMAP://|/;UID=|;URLAUTH=|;EXPIRE=|;SECTION=|[a-zA-Z0-9:@.;=/+%\\[\\]\u{e9}-]){0,24}") {
            let _ = parse(&text);
            let _ = date_time(&text);
        }
    }
}
