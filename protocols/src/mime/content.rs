//! The MIME header fields of one entity (RFC 2045 §5-§8, RFC 2183, RFC 3282, RFC 2557):
//! Content-Type, -Transfer-Encoding, -ID, -Description, -MD5, -Disposition, -Language and
//! -Location, parsed once so the BODYSTRUCTURE writer and the part scanner share them.
//!
//! Parameter values are kept as sent, RFC 2231 continuations included (`name*0*=...`):
//! BODYSTRUCTURE reports parameters, it does not interpret them.

use std::ops::Range;

use super::header::{Field, fields, is_wsp, trim_wsp};
use super::limits::{LANGUAGES_MAX, PARAMETERS_MAX};

/// `attribute = value` pairs, in order.
pub(crate) type Parameters = Vec<(Vec<u8>, Vec<u8>)>;

/// A parsed Content-Type: `type "/" subtype *(";" parameter)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MediaType {
    /// Top-level type, lower-cased.
    pub main: Vec<u8>,
    /// Subtype, lower-cased.
    pub sub: Vec<u8>,
    /// Parameters as sent.
    pub parameters: Parameters,
}

impl MediaType {
    /// True when this is `main/sub` (both given lower-case).
    pub fn is(&self, main: &[u8], sub: &[u8]) -> bool {
        self.main == main && self.sub == sub
    }

    /// The value of parameter `name` (case-insensitive).
    pub fn parameter(&self, name: &[u8]) -> Option<&[u8]> {
        parameter(&self.parameters, name)
    }
}

/// The value of parameter `name` (case-insensitive) in `parameters`.
pub(crate) fn parameter<'a>(parameters: &'a Parameters, name: &[u8]) -> Option<&'a [u8]> {
    parameters.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
}

/// The MIME fields of one entity; the first occurrence of each field counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct EntityFields {
    /// Content-Type, `None` when absent or unparseable (the default then applies); the tree
    /// scanner moves it into its node's `media`.
    pub media: Option<MediaType>,
    /// Content-Transfer-Encoding token, lower-cased.
    pub encoding: Option<Vec<u8>>,
    /// Content-ID, unfolded.
    pub id: Option<Vec<u8>>,
    /// Content-Description, unfolded (encoded words kept).
    pub description: Option<Vec<u8>>,
    /// Content-MD5, unfolded.
    pub md5: Option<Vec<u8>>,
    /// Content-Disposition type (lower-cased) and parameters.
    pub disposition: Option<(Vec<u8>, Parameters)>,
    /// Content-Language tags.
    pub languages: Vec<Vec<u8>>,
    /// Content-Location, unfolded.
    pub location: Option<Vec<u8>>,
}

impl EntityFields {
    /// Parses the MIME fields of the header block `data[header]`.
    #[cfg(test)]
    pub fn parse(data: &[u8], header: Range<usize>) -> EntityFields {
        EntityFields::parse_with(data, header, |_| {})
    }

    /// Parses the MIME fields of the header block `data[header]`, handing every other field
    /// to `other` on the way (the ENVELOPE collector), so the block is scanned once.
    pub fn parse_with(data: &[u8], header: Range<usize>, mut other: impl FnMut(&Field)) -> Self {
        let mut result = EntityFields::default();
        let mut seen_type = false;
        let mut seen_language = false;
        for field in fields(data, header) {
            let name = field.name(data);
            if name.len() < 8 || !name[..8].eq_ignore_ascii_case(b"content-") {
                other(&field);
                continue;
            }
            let value = || field.unfolded(data);
            let suffix = &name[8..];
            let is = |expected: &[u8]| suffix.eq_ignore_ascii_case(expected);
            if is(b"type") && !seen_type {
                seen_type = true;
                result.media = parse_media_type(&value());
            } else if is(b"transfer-encoding") && result.encoding.is_none() {
                let value = value();
                let mut tokens = Tokens::new(&value);
                tokens.skip_cfws();
                result.encoding = tokens.token().map(|t| t.to_ascii_lowercase());
            } else if is(b"id") && result.id.is_none() {
                result.id = Some(value().into_owned());
            } else if is(b"description") && result.description.is_none() {
                result.description = Some(value().into_owned());
            } else if is(b"md5") && result.md5.is_none() {
                result.md5 = Some(value().into_owned());
            } else if is(b"disposition") && result.disposition.is_none() {
                result.disposition = parse_disposition(&value());
            } else if is(b"language") && !seen_language {
                seen_language = true;
                result.languages = parse_languages(&value());
            } else if is(b"location") && result.location.is_none() {
                result.location = Some(value().into_owned());
            }
        }
        result
    }

    /// True when the transfer encoding leaves the bytes as they are (7bit, 8bit, binary or
    /// none given), so an encapsulated message can be parsed in place.
    pub fn is_identity_encoding(&self) -> bool {
        matches!(self.encoding.as_deref(), None | Some(b"7bit" | b"8bit" | b"binary"))
    }
}

/// Parses a Content-Type value; `None` when type or subtype is missing.
pub(crate) fn parse_media_type(value: &[u8]) -> Option<MediaType> {
    let mut tokens = Tokens::new(value);
    tokens.skip_cfws();
    let main = tokens.token()?.to_ascii_lowercase();
    tokens.skip_cfws();
    if !tokens.eat(b'/') {
        return None;
    }
    tokens.skip_cfws();
    let sub = tokens.token()?.to_ascii_lowercase();
    let mut parameters = tokens.parameters();
    if main == b"text" && !parameters.iter().any(|(name, _)| name.eq_ignore_ascii_case(b"charset"))
    {
        // RFC 2046 §4.1.2: text without a charset is US-ASCII, as with no Content-Type at all
        // (`tree::default_media`); BODYSTRUCTURE says so the same way for both.
        parameters.insert(0, (b"charset".to_vec(), b"US-ASCII".to_vec()));
    }
    Some(MediaType { main, sub, parameters })
}

/// Parses a Content-Disposition value (RFC 2183): `type *(";" parameter)`.
fn parse_disposition(value: &[u8]) -> Option<(Vec<u8>, Parameters)> {
    let mut tokens = Tokens::new(value);
    tokens.skip_cfws();
    let kind = tokens.token()?.to_ascii_lowercase();
    Some((kind, tokens.parameters()))
}

/// Parses a Content-Language value (RFC 3282): tags separated by commas.
fn parse_languages(value: &[u8]) -> Vec<Vec<u8>> {
    let mut tokens = Tokens::new(value);
    let mut languages = Vec::new();
    loop {
        tokens.skip_cfws();
        if let Some(tag) = tokens.token()
            && languages.len() < LANGUAGES_MAX
        {
            languages.push(tag.to_vec());
        }
        tokens.skip_cfws();
        if tokens.at_end() || !tokens.skip_past(b',') {
            return languages;
        }
    }
}

/// A cursor over a structured MIME header value.
struct Tokens<'a> {
    bytes: &'a [u8],
    position: usize,
}

/// RFC 2045 `tspecials`.
fn is_tspecial(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')'
            | b'<'
            | b'>'
            | b'@'
            | b','
            | b';'
            | b':'
            | b'\\'
            | b'"'
            | b'/'
            | b'['
            | b']'
            | b'?'
            | b'='
    )
}

impl<'a> Tokens<'a> {
    fn new(bytes: &'a [u8]) -> Tokens<'a> {
        Tokens { bytes, position: 0 }
    }

    fn at_end(&self) -> bool {
        self.position >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.position).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let found = self.peek() == Some(b);
        self.position += usize::from(found);
        found
    }

    /// Skips white space and comments (nested, with quoted pairs), without recursion.
    fn skip_cfws(&mut self) {
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            self.position += 1;
            match b {
                b'(' => depth += 1,
                b')' if depth > 0 => depth -= 1,
                b'\\' if depth > 0 => self.position += 1,
                _ if depth > 0 || is_wsp(b) || b == b'\r' || b == b'\n' => {}
                _ => {
                    self.position -= 1;
                    return;
                }
            }
        }
        self.position = self.position.min(self.bytes.len());
    }

    /// An RFC 2045 `token`.
    fn token(&mut self) -> Option<&'a [u8]> {
        let start = self.position;
        while let Some(b) = self.peek() {
            if b <= b' ' || b == 0x7f || is_tspecial(b) {
                break;
            }
            self.position += 1;
        }
        (self.position > start).then(|| &self.bytes[start..self.position])
    }

    /// A parameter value: a quoted string (unescaped) or, leniently, anything up to `;`,
    /// white space or a comment (unquoted boundaries often contain `=`).
    fn value(&mut self) -> Vec<u8> {
        if !self.eat(b'"') {
            let start = self.position;
            while let Some(b) = self.peek() {
                if b == b';' || b == b'(' || is_wsp(b) || b == b'\r' || b == b'\n' {
                    break;
                }
                self.position += 1;
            }
            return self.bytes[start..self.position].to_vec();
        }
        let mut value = Vec::new();
        while let Some(b) = self.peek() {
            self.position += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(escaped) = self.peek() {
                        value.push(escaped);
                        self.position += 1;
                    }
                }
                _ => value.push(b),
            }
        }
        value
    }

    /// Moves past the next `stop` byte; false at the end.
    fn skip_past(&mut self, stop: u8) -> bool {
        match self.bytes[self.position.min(self.bytes.len())..].iter().position(|&b| b == stop) {
            Some(index) => {
                self.position += index + 1;
                true
            }
            None => {
                self.position = self.bytes.len();
                false
            }
        }
    }

    /// `*(";" attribute "=" value)`; malformed parameters are skipped.
    fn parameters(&mut self) -> Parameters {
        let mut parameters = Parameters::new();
        while self.skip_past(b';') {
            self.skip_cfws();
            let Some(name) = self.token() else { continue };
            self.skip_cfws();
            if !self.eat(b'=') {
                continue;
            }
            self.skip_cfws();
            let value = self.value();
            if parameters.len() < PARAMETERS_MAX {
                parameters.push((name.to_vec(), trim_wsp(&value).to_vec()));
            }
        }
        parameters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_with_parameters_and_comments() {
        let media = parse_media_type(
            b"Multipart/Mixed (c) ; boundary=----=_Part_1 ; charset=\"utf\\\"8\"; junk; x = y",
        )
        .expect("parses");
        assert!(media.is(b"multipart", b"mixed"));
        assert_eq!(media.parameter(b"BOUNDARY"), Some(&b"----=_Part_1"[..]));
        assert_eq!(media.parameter(b"charset"), Some(&b"utf\"8"[..]));
        assert_eq!(media.parameter(b"x"), Some(&b"y"[..]));
        assert_eq!(media.parameters.len(), 3);
        assert_eq!(parse_media_type(b"text"), None);
        assert_eq!(parse_media_type(b"/plain"), None);
        assert_eq!(parse_media_type(b""), None);
    }

    #[test]
    fn entity_fields_first_occurrence_counts() {
        let data = b"Content-Type: text/html; charset=utf-8\r\nContent-Type: image/png\r\n\
Content-Transfer-Encoding: BASE64\r\nContent-Disposition: Attachment; filename=\"a b.txt\"\r\n\
Content-Language: en, (c) de\r\nContent-ID: <x@y>\r\n\r\n";
        let parsed = EntityFields::parse(data, 0..data.len());
        assert!(parsed.media.as_ref().is_some_and(|m| m.is(b"text", b"html")));
        assert_eq!(parsed.encoding.as_deref(), Some(&b"base64"[..]));
        assert!(!parsed.is_identity_encoding());
        let (kind, parameters) = parsed.disposition.expect("disposition");
        assert_eq!(kind, b"attachment");
        assert_eq!(parameter(&parameters, b"FILENAME"), Some(&b"a b.txt"[..]));
        assert_eq!(parsed.languages, vec![b"en".to_vec(), b"de".to_vec()]);
        assert_eq!(parsed.id.as_deref(), Some(&b"<x@y>"[..]));
        assert_eq!(parsed.location, None);
    }
}
