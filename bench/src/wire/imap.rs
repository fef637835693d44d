//! IMAP response framing (RFC 9051 §4.3 literals, §7 responses) and the few response shapes the
//! bench reads: tagged status, `* n EXISTS`, `* n EXPUNGE`, `* SEARCH`, continuation requests.
//!
//! A response is a line that may end in a literal announcement `{n}` (or `{n+}`): then exactly
//! n bytes follow, and the response goes on with another line, which may announce another
//! literal. The framer returns the whole response, literals included, once it is complete.

use super::{FrameError, find_lf, line_end};
use crate::limits::{MAX_LINE_BYTES, MAX_LITERAL_BYTES, MAX_RESPONSE_BYTES};

/// One complete response from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The response text, literals inline, without the final CRLF.
    pub bytes: Vec<u8>,
    /// How many of those bytes were inside literals (message data, for FETCH).
    pub literal_bytes: usize,
}

/// The status word of a tagged or untagged status response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `OK`.
    Ok,
    /// `NO`: the command failed.
    No,
    /// `BAD`: the server did not understand the command.
    Bad,
    /// `BYE`: the server is closing.
    Bye,
    /// Anything else (data responses such as `* 3 EXISTS`).
    Other,
}

impl Response {
    /// True for a continuation request (`+ ...`).
    pub fn is_continuation(&self) -> bool {
        self.bytes.first() == Some(&b'+')
    }

    /// True for an untagged response (`* ...`).
    pub fn is_untagged(&self) -> bool {
        self.bytes.starts_with(b"* ")
    }

    /// The status if this is the tagged response for `tag`, else None.
    pub fn tagged_status(&self, tag: &[u8]) -> Option<Status> {
        let rest = self.bytes.strip_prefix(tag)?.strip_prefix(b" ")?;
        Some(status_word(rest))
    }

    /// The status word of an untagged response (`* OK`, `* BYE`, ...).
    pub fn untagged_status(&self) -> Option<Status> {
        self.bytes.strip_prefix(b"* ").map(status_word)
    }

    /// For `* <n> <keyword>` (EXISTS, EXPUNGE, RECENT, FETCH), the number n.
    pub fn numbered(&self, keyword: &[u8]) -> Option<u32> {
        let rest = self.bytes.strip_prefix(b"* ")?;
        let sp = rest.iter().position(|&b| b == b' ')?;
        let n = std::str::from_utf8(&rest[..sp]).ok()?.parse().ok()?;
        let word = &rest[sp + 1..];
        let word = word.split(|&b| b == b' ').next()?;
        word.eq_ignore_ascii_case(keyword).then_some(n)
    }

    /// For `* OK [CODE n] ...` (UIDVALIDITY, HIGHESTMODSEQ, UIDNEXT), the number n.
    pub fn code_number(&self, code: &[u8]) -> Option<u64> {
        let rest = self.bytes.strip_prefix(b"* ")?;
        let (ok, rest) = rest.split_at_checked(3)?;
        let (name, rest) = rest.strip_prefix(b"[")?.split_at_checked(code.len())?;
        if !ok.eq_ignore_ascii_case(b"OK ") || !name.eq_ignore_ascii_case(code) {
            return None;
        }
        let rest = rest.strip_prefix(b" ")?;
        let end = rest.iter().position(|&b| b == b']')?;
        std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
    }

    /// For `* SEARCH n n n`, the numbers found.
    pub fn search_hits(&self) -> Option<usize> {
        let rest = self.bytes.strip_prefix(b"* ")?;
        if rest.len() < 6 || !rest[..6].eq_ignore_ascii_case(b"SEARCH") {
            return None;
        }
        Some(rest[6..].split(|&b| b == b' ').filter(|w| !w.is_empty()).count())
    }
}

fn status_word(rest: &[u8]) -> Status {
    let word = rest.split(|&b| b == b' ').next().unwrap_or_default();
    match word.to_ascii_uppercase().as_slice() {
        b"OK" => Status::Ok,
        b"NO" => Status::No,
        b"BAD" => Status::Bad,
        b"BYE" => Status::Bye,
        _ => Status::Other,
    }
}

/// The literal size announced at the end of a line (`{123}` or `{123+}`), if any.
///
/// ABNF (RFC 9051): `literal = "{" number64 ["+"] "}" CRLF *CHAR8`.
pub fn literal_at_end(line: &[u8]) -> Option<u64> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Frames a byte stream into complete [`Response`]s.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
    /// Start of the response being framed (bytes before it were handed out).
    start: usize,
    /// Start of the line being looked at inside the current response.
    line_start: usize,
    /// Literal bytes still to come before the current line goes on.
    pending_literal: usize,
    /// Literal bytes seen so far in the current response.
    literal_bytes: usize,
}

impl Framer {
    /// A framer with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the server.
    pub fn feed(&mut self, data: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.line_start -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// True when no partial response is buffered.
    pub fn is_empty(&self) -> bool {
        self.start == self.buf.len()
    }

    /// The next complete response, None if more input is needed.
    pub fn next(&mut self) -> Result<Option<Response>, FrameError> {
        loop {
            if self.pending_literal > 0 {
                let have = self.buf.len() - self.line_start;
                if have < self.pending_literal {
                    return Ok(None);
                }
                self.line_start += self.pending_literal;
                self.pending_literal = 0;
            }
            let Some(lf) = find_lf(&self.buf, self.line_start) else {
                if self.buf.len() - self.line_start > MAX_LINE_BYTES {
                    return Err(FrameError::LineTooLong(MAX_LINE_BYTES));
                }
                return Ok(None);
            };
            let end = line_end(&self.buf, self.line_start, lf);
            if end - self.line_start > MAX_LINE_BYTES {
                return Err(FrameError::LineTooLong(MAX_LINE_BYTES));
            }
            if let Some(n) = literal_at_end(&self.buf[self.line_start..end]) {
                self.begin_literal(n, lf)?;
                continue;
            }
            return Ok(Some(self.finish(end, lf)));
        }
    }

    fn begin_literal(&mut self, n: u64, lf: usize) -> Result<(), FrameError> {
        if n > MAX_LITERAL_BYTES as u64 {
            return Err(FrameError::LiteralTooLarge(n));
        }
        let n = n as usize;
        self.literal_bytes += n;
        if lf + 1 + n - self.start > MAX_RESPONSE_BYTES {
            return Err(FrameError::ResponseTooLong(MAX_RESPONSE_BYTES));
        }
        // The literal bytes belong to the response: keep the CRLF before them in `bytes`.
        self.line_start = lf + 1;
        self.pending_literal = n;
        Ok(())
    }

    fn finish(&mut self, end: usize, lf: usize) -> Response {
        let response = Response {
            bytes: self.buf[self.start..end].to_vec(),
            literal_bytes: std::mem::take(&mut self.literal_bytes),
        };
        self.start = lf + 1;
        self.line_start = self.start;
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_code_numbers() {
        let r = |text: &[u8]| Response { bytes: text.to_vec(), literal_bytes: 0 };
        let modseq = r(b"* OK [HIGHESTMODSEQ 715194045007] Highest");
        assert_eq!(modseq.code_number(b"HIGHESTMODSEQ"), Some(715_194_045_007));
        assert_eq!(modseq.code_number(b"UIDVALIDITY"), None);
        assert_eq!(
            r(b"* ok [uidvalidity 3857529045] x").code_number(b"UIDVALIDITY"),
            Some(3_857_529_045)
        );
        assert_eq!(r(b"* NO [UIDVALIDITY 1] x").code_number(b"UIDVALIDITY"), None);
        assert_eq!(r(b"* OK [UIDVALIDITYX 1] x").code_number(b"UIDVALIDITY"), None);
        assert_eq!(r(b"* OK [UIDVALIDITY x] x").code_number(b"UIDVALIDITY"), None);
    }

    fn frame_all(chunks: &[&[u8]]) -> Vec<Response> {
        let mut f = Framer::new();
        let mut out = Vec::new();
        for c in chunks {
            f.feed(c);
            while let Some(r) = f.next().unwrap() {
                out.push(r);
            }
        }
        assert!(f.is_empty(), "left over bytes");
        out
    }

    const FETCH: &[u8] = b"* 1 FETCH (UID 7 BODY[] {11}\r\nHello\r\nWorld FLAGS (\\Seen))\r\n\
* 2 FETCH (BODY[HEADER] {0}\r\n BODY[TEXT] {3+}\r\nab\n)\r\na1 OK FETCH done\r\n";

    #[test]
    fn fetch_with_literals_in_one_read() {
        let rs = frame_all(&[FETCH]);
        assert_eq!(rs.len(), 3);
        assert_eq!(rs[0].literal_bytes, 11);
        assert!(rs[0].bytes.ends_with(b"World FLAGS (\\Seen))"));
        assert_eq!(rs[0].numbered(b"FETCH"), Some(1));
        assert_eq!(rs[1].literal_bytes, 3);
        assert_eq!(rs[2].tagged_status(b"a1"), Some(Status::Ok));
    }

    #[test]
    fn fetch_with_literals_split_at_every_byte() {
        let whole = frame_all(&[FETCH]);
        for split in 1..FETCH.len() {
            let (a, b) = FETCH.split_at(split);
            assert_eq!(frame_all(&[a, b]), whole, "split at {split}");
        }
        let singles: Vec<&[u8]> = FETCH.chunks(1).collect();
        assert_eq!(frame_all(&singles), whole);
    }

    #[test]
    fn literal_containing_crlf_and_brace_lookalikes_is_opaque() {
        let data = b"* 3 FETCH (BODY[] {10}\r\n{5}\r\n\r\n\r\n)\r\n";
        let rs = frame_all(&[data]);
        assert_eq!(rs.len(), 1);
        assert_eq!(rs[0].literal_bytes, 10);
    }

    #[test]
    fn response_kinds() {
        let rs = frame_all(&[b"+ idling\r\n* 4 EXISTS\r\n* 2 expunge\r\n* SEARCH 1 5 9\r\n* SEARCH\r\n* BYE later\r\nT9 NO [TRYCREATE] no\r\n"]);
        assert!(rs[0].is_continuation());
        assert_eq!(rs[1].numbered(b"EXISTS"), Some(4));
        assert_eq!(rs[1].numbered(b"EXPUNGE"), None);
        assert_eq!(rs[2].numbered(b"EXPUNGE"), Some(2));
        assert_eq!(rs[3].search_hits(), Some(3));
        assert_eq!(rs[4].search_hits(), Some(0));
        assert_eq!(rs[5].untagged_status(), Some(Status::Bye));
        assert_eq!(rs[6].tagged_status(b"T9"), Some(Status::No));
        assert_eq!(rs[6].tagged_status(b"T"), None);
    }

    #[test]
    fn literal_announcements() {
        assert_eq!(literal_at_end(b"BODY[] {123}"), Some(123));
        assert_eq!(literal_at_end(b"x {0+}"), Some(0));
        assert_eq!(literal_at_end(b"x {}"), None);
        assert_eq!(literal_at_end(b"x {1a}"), None);
        assert_eq!(literal_at_end(b"x (a}"), None);
    }

    #[test]
    fn limits_are_enforced() {
        let mut f = Framer::new();
        f.feed(b"* 1 FETCH (BODY[] {999999999999}\r\n");
        assert!(matches!(f.next(), Err(FrameError::LiteralTooLarge(_))));
        let mut f = Framer::new();
        f.feed(&vec![b'x'; MAX_LINE_BYTES + 2]);
        assert_eq!(f.next(), Err(FrameError::LineTooLong(MAX_LINE_BYTES)));
    }
}
