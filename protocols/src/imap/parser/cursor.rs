//! The parser's cursor over one frame, and the grammar's smallest pieces: punctuation,
//! keywords, numbers, atoms and strings (RFC 9051 §4, §9).
//!
//! Every primitive either consumes what it recognized and returns it, or fails with a
//! [`Fail`] naming what was expected. Nothing here recurses.

use std::borrow::Cow;

use crate::imap::limits::ParseLimits;
use crate::imap::types::{is_astring_char, is_atom_char};

use super::ParseErrorKind;

/// Why a parse failed; the entry point adds the tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fail {
    /// The class of failure.
    pub kind: ParseErrorKind,
    /// A short human explanation for the `BAD` text.
    pub message: &'static str,
}

/// Result of a parser function.
pub(crate) type PResult<T> = Result<T, Fail>;

/// A syntax failure with `message`.
pub(crate) fn syntax<T>(message: &'static str) -> PResult<T> {
    Err(Fail { kind: ParseErrorKind::Syntax, message })
}

/// A failure of another kind.
pub(crate) fn fail<T>(kind: ParseErrorKind, message: &'static str) -> PResult<T> {
    Err(Fail { kind, message })
}

/// Longer than any keyword of the grammar (`HEADER.FIELDS.NOT` has 17 bytes).
const KEYWORD_BYTES_MAX: usize = 24;

/// A word upper-cased on the stack. A word longer than any keyword becomes the empty
/// keyword, which matches none.
pub(crate) struct Keyword {
    bytes: [u8; KEYWORD_BYTES_MAX],
    len: usize,
}

impl Keyword {
    /// The upper-cased word.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// A position in one frame, plus the options and limits that shape parsing.
pub(crate) struct Cursor<'a> {
    input: &'a [u8],
    pos: usize,
    /// The limits in force.
    pub limits: ParseLimits,
    /// UTF8=ACCEPT is enabled: mailbox names are UTF-8 as sent, not modified UTF-7.
    pub utf8_names: bool,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `input`.
    pub fn new(input: &'a [u8], limits: ParseLimits, utf8_names: bool) -> Cursor<'a> {
        Cursor { input, pos: 0, limits, utf8_names }
    }

    /// The current offset.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The next byte, not consumed.
    pub fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    /// True when everything was consumed.
    pub fn at_end(&self) -> bool {
        self.pos == self.input.len()
    }

    /// Fails unless everything was consumed.
    pub fn end(&self) -> PResult<()> {
        if self.at_end() { Ok(()) } else { syntax("unexpected characters at end of command") }
    }

    /// Consumes `byte` if it is next.
    pub fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.pos += 1;
        }
        found
    }

    /// Consumes `byte` or fails with `message`.
    pub fn expect(&mut self, byte: u8, message: &'static str) -> PResult<()> {
        if self.eat(byte) { Ok(()) } else { syntax(message) }
    }

    /// `SP`
    pub fn sp(&mut self) -> PResult<()> {
        self.expect(b' ', "expected a space")
    }

    /// Consumes `prefix` (ASCII, compared without case) if it is next.
    pub fn eat_ignore_case(&mut self, prefix: &[u8]) -> bool {
        let end = self.pos + prefix.len();
        let found = self.input.get(self.pos..end).is_some_and(|s| s.eq_ignore_ascii_case(prefix));
        if found {
            self.pos = end;
        }
        found
    }

    /// A keyword-like word: `1*(ALPHA / DIGIT / "." / "-" / "_")`. Callers compare it without
    /// case. Stops before `[`, `<`, `(`, space and anything else.
    pub fn word(&mut self) -> PResult<&'a [u8]> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            self.pos += 1;
        }
        if self.pos == start {
            syntax("expected a keyword")
        } else {
            Ok(&self.input[start..self.pos])
        }
    }

    /// A [`Cursor::word`] upper-cased into a [`Keyword`], for matching against keywords
    /// without allocating.
    pub fn keyword(&mut self) -> PResult<Keyword> {
        let word = self.word()?;
        let mut keyword = Keyword { bytes: [0; KEYWORD_BYTES_MAX], len: 0 };
        if word.len() <= KEYWORD_BYTES_MAX {
            keyword.bytes[..word.len()].copy_from_slice(word);
            keyword.bytes.make_ascii_uppercase();
            keyword.len = word.len();
        }
        Ok(keyword)
    }

    /// Takes bytes while `accept` holds; may be empty.
    pub fn take_while(&mut self, accept: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&accept) {
            self.pos += 1;
        }
        &self.input[start..self.pos]
    }

    /// `number = 1*DIGIT` fitting 32 bits.
    pub fn number(&mut self) -> PResult<u32> {
        let value = self.number64()?;
        u32::try_from(value).or_else(|_| syntax("number too large"))
    }

    /// `nz-number = digit-nz *DIGIT` fitting 32 bits.
    pub fn nz_number(&mut self) -> PResult<u32> {
        match self.number()? {
            0 => syntax("number must not be zero"),
            value => Ok(value),
        }
    }

    /// `number64 = 1*DIGIT` fitting 63 bits (RFC 9051: `number64` is at most 2^63-1).
    pub fn number64(&mut self) -> PResult<u64> {
        let digits = self.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() {
            return syntax("expected a number");
        }
        let mut value: u64 = 0;
        for &digit in digits {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(digit - b'0')))
                .filter(|&v| i64::try_from(v).is_ok())
                .ok_or(Fail { kind: ParseErrorKind::Syntax, message: "number too large" })?;
        }
        Ok(value)
    }

    /// `atom = 1*ATOM-CHAR`
    pub fn atom(&mut self) -> PResult<&'a [u8]> {
        let atom = self.take_while(is_atom_char);
        if atom.is_empty() { syntax("expected an atom") } else { Ok(atom) }
    }

    /// `astring = 1*ASTRING-CHAR / string`
    pub fn astring(&mut self) -> PResult<Cow<'a, [u8]>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            _ => {
                let atom = self.take_while(is_astring_char);
                if atom.is_empty() { syntax("expected a string") } else { Ok(Cow::Borrowed(atom)) }
            }
        }
    }

    /// `string = quoted / literal`
    pub fn string(&mut self) -> PResult<Cow<'a, [u8]>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(false).map(Cow::Borrowed),
            _ => syntax("expected a quoted string or a literal"),
        }
    }

    /// `nstring = string / nil`
    pub fn nstring(&mut self) -> PResult<Option<Cow<'a, [u8]>>> {
        if self.eat_ignore_case(b"NIL") { Ok(None) } else { self.string().map(Some) }
    }

    /// ```text
    /// quoted          = DQUOTE *QUOTED-CHAR DQUOTE
    /// QUOTED-CHAR     = <any TEXT-CHAR except quoted-specials> / "\" quoted-specials
    ///                   / UTF8-2 / UTF8-3 / UTF8-4
    /// quoted-specials = DQUOTE / "\"
    /// ```
    /// 8-bit bytes must form UTF-8 (RFC 9051's `QUOTED-CHAR`, RFC 6855 §3: anything else is
    /// `BAD`), in every session: IMAP4rev1 has no 8-bit quoted strings at all, so nothing a
    /// client may send is lost.
    pub fn quoted(&mut self) -> PResult<Cow<'a, [u8]>> {
        self.expect(b'"', "expected a quoted string")?;
        let start = self.pos;
        let plain = self.take_while(|b| !matches!(b, b'"' | b'\\' | b'\r' | b'\n' | 0));
        if self.eat(b'"') {
            check_utf8(plain)?;
            return Ok(Cow::Borrowed(plain));
        }
        self.pos = start;
        let mut owned = Vec::with_capacity(plain.len() + 16);
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    check_utf8(&owned)?;
                    return Ok(Cow::Owned(owned));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(escaped @ (b'"' | b'\\')) => owned.push(escaped),
                        _ => return syntax("invalid escape in quoted string"),
                    }
                    self.pos += 1;
                }
                Some(b'\r' | b'\n' | 0) => return syntax("invalid character in quoted string"),
                Some(byte) => {
                    owned.push(byte);
                    self.pos += 1;
                }
                None => return syntax("unterminated quoted string"),
            }
        }
    }

    /// ```text
    /// literal  = "{" number64 ["+"] "}" CRLF *CHAR8
    /// literal8 = "~{" number64 ["+"] "}" CRLF *OCTET     (when `allow_literal8`)
    /// ```
    /// `CHAR8` excludes NUL: a NUL byte in a plain literal is refused.
    pub fn literal(&mut self, allow_literal8: bool) -> PResult<&'a [u8]> {
        let binary = allow_literal8 && self.eat(b'~');
        self.expect(b'{', "expected a literal")?;
        let size = self.number64()?;
        self.eat(b'+');
        self.expect(b'}', "invalid literal header")?;
        if !self.eat_ignore_case(b"\r\n") {
            return syntax("literal header must end the line");
        }
        let size = usize::try_from(size).or_else(|_| syntax("literal too long"))?;
        let end = self.pos.checked_add(size).filter(|&end| end <= self.input.len());
        let Some(end) = end else {
            return syntax("literal shorter than announced");
        };
        let data = &self.input[self.pos..end];
        if !binary && data.contains(&0) {
            return syntax("NUL in literal (use literal8)");
        }
        self.pos = end;
        Ok(data)
    }

    /// Moves back to `pos` (a value returned by [`Cursor::pos`]).
    pub fn rewind(&mut self, pos: usize) {
        debug_assert!(pos <= self.pos);
        self.pos = pos;
    }
}

/// Fails unless the 8-bit bytes of a quoted string's content form UTF-8 (7-bit content,
/// the common case, is one scan).
fn check_utf8(content: &[u8]) -> PResult<()> {
    if content.is_ascii() || std::str::from_utf8(content).is_ok() {
        Ok(())
    } else {
        fail(ParseErrorKind::Encoding, "quoted string is not UTF-8")
    }
}

/// Converts wire bytes to text, refusing invalid UTF-8.
pub(crate) fn utf8(bytes: Cow<'_, [u8]>, message: &'static str) -> PResult<String> {
    match bytes {
        Cow::Borrowed(b) => std::str::from_utf8(b).map(str::to_owned).map_err(|_| ()),
        Cow::Owned(b) => String::from_utf8(b).map_err(|_| ()),
    }
    .or_else(|()| fail(ParseErrorKind::Encoding, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(input: &[u8]) -> Cursor<'_> {
        Cursor::new(input, ParseLimits::default(), false)
    }

    #[test]
    fn quoted_strings_unescape_and_refuse_bad_input() {
        assert_eq!(cursor(br#""a b""#).quoted().unwrap().as_ref(), b"a b");
        assert_eq!(cursor(br#""a\"b\\""#).quoted().unwrap().as_ref(), br#"a"b\"#);
        assert!(cursor(br#""a\nb""#).quoted().is_err());
        assert!(cursor(b"\"a\r\"").quoted().is_err());
        assert!(cursor(b"\"abc").quoted().is_err());
    }

    #[test]
    fn quoted_strings_carry_utf8_only() {
        let text = "\"Entw\u{fc}rfe \u{65e5}\u{672c} \u{1f600}\"";
        assert_eq!(
            cursor(text.as_bytes()).quoted().unwrap().as_ref(),
            &text.as_bytes()[1..text.len() - 1]
        );
        let escaped = "\"\u{fc}\\\"\"";
        assert_eq!(cursor(escaped.as_bytes()).quoted().unwrap().as_ref(), "\u{fc}\"".as_bytes());
        for bad in
            [&b"\"\xfc\""[..], b"\"\xc3\"", b"\"\xed\xa0\x80\"", b"\"\xc0\xaf\"", b"\"\\\"\xff\""]
        {
            let error = cursor(bad).quoted().unwrap_err();
            assert_eq!(error.kind, ParseErrorKind::Encoding, "{bad:?}");
        }
    }

    #[test]
    fn literals_are_taken_by_length() {
        let mut c = cursor(b"{3}\r\nabc rest");
        assert_eq!(c.literal(false).unwrap(), b"abc");
        assert_eq!(c.peek(), Some(b' '));
        assert_eq!(cursor(b"{2+}\r\nab").literal(false).unwrap(), b"ab");
        assert!(cursor(b"{5}\r\nab").literal(false).is_err());
        assert!(cursor(b"{2}\r\na\0").literal(false).is_err());
        assert_eq!(cursor(b"~{2}\r\na\0").literal(true).unwrap(), b"a\0");
        assert!(cursor(b"~{2}\r\na\0").literal(false).is_err());
        assert!(cursor(b"{2} ab").literal(false).is_err());
    }

    #[test]
    fn astrings_take_atoms_quoted_and_literals() {
        assert_eq!(cursor(b"abc] x").astring().unwrap().as_ref(), b"abc]");
        assert_eq!(cursor(b"\"x y\"").astring().unwrap().as_ref(), b"x y");
        assert_eq!(cursor(b"{1}\r\nz").astring().unwrap().as_ref(), b"z");
        assert!(cursor(b"(abc").astring().is_err());
        assert!(cursor(b"").astring().is_err());
    }

    #[test]
    fn numbers_are_bounded() {
        assert_eq!(cursor(b"4294967295").number().unwrap(), u32::MAX);
        assert!(cursor(b"4294967296").number().is_err());
        assert!(cursor(b"0").nz_number().is_err());
        assert_eq!(cursor(b"9223372036854775807").number64().unwrap(), i64::MAX as u64);
        assert!(cursor(b"9223372036854775808").number64().is_err());
        assert!(cursor(b"x").number().is_err());
    }

    #[test]
    fn words_stop_at_punctuation() {
        let mut c = cursor(b"BODY.PEEK[HEADER]");
        assert_eq!(c.word().unwrap(), b"BODY.PEEK");
        assert_eq!(c.peek(), Some(b'['));
        assert!(cursor(b"(x").word().is_err());
        assert!(cursor(b"nil").nstring().unwrap().is_none());
    }
}
