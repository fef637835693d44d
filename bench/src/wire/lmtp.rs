//! LMTP/SMTP reply framing (RFC 5321 §4.2, RFC 2033 §4.2).
//!
//! ABNF: `Reply-line = *( Reply-code "-" [ textstring ] CRLF ) Reply-code [ SP textstring ] CRLF`.
//! Every line of one reply carries the same three-digit code; the last has a space (or nothing)
//! after the code. After DATA an LMTP server sends one such reply per accepted recipient.

use super::{FrameError, find_lf, line_end};
use crate::limits::{MAX_LINE_BYTES, MAX_REPLY_LINES};

/// One complete reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// The text of each line, without code and separator.
    pub lines: Vec<String>,
}

impl Reply {
    /// True for 2xx.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// True if some line (an LHLO extension) equals `keyword`, ignoring case and parameters.
    pub fn has_extension(&self, keyword: &str) -> bool {
        self.lines
            .iter()
            .any(|l| l.split(' ').next().is_some_and(|w| w.eq_ignore_ascii_case(keyword)))
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.lines.join(" / "))
    }
}

/// Frames a byte stream into [`Reply`]s.
#[derive(Debug, Default)]
pub struct ReplyReader {
    buf: Vec<u8>,
    start: usize,
    partial: Option<Reply>,
}

impl ReplyReader {
    /// A reader with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the server.
    pub fn feed(&mut self, data: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// True when nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.start == self.buf.len() && self.partial.is_none()
    }

    /// The next complete reply, None if more input is needed.
    pub fn next(&mut self) -> Result<Option<Reply>, FrameError> {
        loop {
            let Some(lf) = find_lf(&self.buf, self.start) else {
                if self.buf.len() - self.start > MAX_LINE_BYTES {
                    return Err(FrameError::LineTooLong(MAX_LINE_BYTES));
                }
                return Ok(None);
            };
            let end = line_end(&self.buf, self.start, lf);
            let line = String::from_utf8_lossy(&self.buf[self.start..end]).into_owned();
            self.start = lf + 1;
            let (code, last, text) = parse_line(&line)?;
            let reply = self.partial.get_or_insert_with(|| Reply { code, lines: Vec::new() });
            if reply.code != code {
                return Err(FrameError::BadReply(line));
            }
            if reply.lines.len() == MAX_REPLY_LINES {
                return Err(FrameError::TooManyLines(MAX_REPLY_LINES));
            }
            reply.lines.push(text.to_owned());
            if last {
                return Ok(self.partial.take());
            }
        }
    }
}

/// Splits `DDD-text` / `DDD text` / `DDD` into (code, is_last_line, text).
fn parse_line(line: &str) -> Result<(u16, bool, &str), FrameError> {
    let bad = || FrameError::BadReply(line.to_owned());
    let bytes = line.as_bytes();
    if bytes.len() < 3
        || !bytes[..3].iter().all(u8::is_ascii_digit)
        || !(b'2'..=b'5').contains(&bytes[0])
    {
        return Err(bad());
    }
    let code = line[..3].parse().map_err(|_| bad())?;
    match bytes.get(3) {
        None => Ok((code, true, "")),
        Some(b' ') => Ok((code, true, &line[4..])),
        Some(b'-') => Ok((code, false, &line[4..])),
        Some(_) => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(chunks: &[&[u8]]) -> Vec<Reply> {
        let mut r = ReplyReader::new();
        let mut out = Vec::new();
        for c in chunks {
            r.feed(c);
            while let Some(x) = r.next().unwrap() {
                out.push(x);
            }
        }
        assert!(r.is_empty());
        out
    }

    const LHLO: &[u8] = b"220 skua LMTP ready\r\n250-skua\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n";

    #[test]
    fn multi_line_reply_in_any_split() {
        let whole = all(&[LHLO]);
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0].code, 220);
        assert_eq!(whole[1].lines, ["skua", "PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME"]);
        assert!(whole[1].has_extension("pipelining"));
        assert!(!whole[1].has_extension("CHUNKING"));
        for split in 1..LHLO.len() {
            let (a, b) = LHLO.split_at(split);
            assert_eq!(all(&[a, b]), whole, "split at {split}");
        }
    }

    #[test]
    fn per_recipient_replies_after_data() {
        let rs = all(&[b"250 2.1.5 <a> OK\r\n452 4.2.2 <b> over quota\r\n250\r\n"]);
        assert_eq!(rs.iter().map(|r| r.code).collect::<Vec<_>>(), [250, 452, 250]);
        assert!(rs[0].is_positive() && !rs[1].is_positive());
        assert_eq!(rs[2].lines, [""]);
    }

    #[test]
    fn malformed_replies_are_errors() {
        for bad in [&b"25\r\n"[..], b"hello\r\n", b"250_x\r\n", b"250-a\r\n251 b\r\n", b"650 x\r\n"]
        {
            let mut r = ReplyReader::new();
            r.feed(bad);
            let mut got = Ok(None);
            for _ in 0..3 {
                got = r.next();
                if got.is_err() {
                    break;
                }
            }
            assert!(got.is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
