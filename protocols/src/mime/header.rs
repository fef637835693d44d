//! Lines and header fields of a MIME entity (RFC 5322 §2.2, RFC 2045 §3), over raw bytes.
//!
//! Lenient the way mail servers must be: a line ends at LF with or without CR, a header line
//! without a colon is skipped, a continuation line with no field before it is skipped. All
//! positions are byte offsets into the message so callers can serve ranges without copying.

use std::borrow::Cow;
use std::ops::Range;

/// One line of the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Line {
    /// First byte of the line.
    pub start: usize,
    /// End of the line's content: before its CRLF or LF.
    pub end: usize,
    /// Start of the next line (after the line ending), or the end of the data.
    pub next: usize,
}

impl Line {
    /// The line's content, without its line ending.
    pub fn content<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        &data[self.start..self.end]
    }

    /// True when the line ends with LF (false only for the last line of the data).
    pub fn has_newline(&self) -> bool {
        self.next > self.end
    }
}

/// The line that starts at `start` (which must be `<= data.len()`).
pub(crate) fn line_at(data: &[u8], start: usize) -> Line {
    debug_assert!(start <= data.len());
    match find_newline(&data[start..]) {
        Some(index) => {
            let newline = start + index;
            let end =
                if newline > start && data[newline - 1] == b'\r' { newline - 1 } else { newline };
            Line { start, end, next: newline + 1 }
        }
        None => Line { start, end: data.len(), next: data.len() },
    }
}

/// Index of the first LF in `bytes`. Eight bytes at a time (header lines are scanned for
/// their end on every delivery): XOR makes each LF a zero byte, and per byte the high bit of
/// `((x & 0x7f..) + 0x7f..) | x` is clear exactly for a zero byte; only the word that holds
/// the LF is then looked at byte by byte.
pub(crate) fn find_newline(bytes: &[u8]) -> Option<usize> {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const PATTERN: u64 = 0x0a0a_0a0a_0a0a_0a0a;
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let x = u64::from_le_bytes(chunk.try_into().expect("eight bytes")) ^ PATTERN;
        if (((x & LOW7) + LOW7) | x) & HIGH != HIGH {
            return chunk.iter().position(|&b| b == b'\n').map(|i| offset + i);
        }
        offset += 8;
    }
    chunks.remainder().iter().position(|&b| b == b'\n').map(|i| offset + i)
}

/// True when `bytes` holds a CR or an LF; eight bytes at a time, as [`find_newline`].
fn has_cr_or_lf(bytes: &[u8]) -> bool {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const CRS: u64 = 0x0d0d_0d0d_0d0d_0d0d;
    const LFS: u64 = 0x0a0a_0a0a_0a0a_0a0a;
    let has_zero = |x: u64| (((x & LOW7) + LOW7) | x) & HIGH != HIGH;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        if has_zero(word ^ CRS) || has_zero(word ^ LFS) {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| b == b'\r' || b == b'\n')
}

/// Length of the line ending just before `position` (2 for CRLF, 1 for LF, 0 if none).
pub(crate) fn line_ending_before(data: &[u8], position: usize) -> usize {
    if position == 0 || data[position - 1] != b'\n' {
        0
    } else if position >= 2 && data[position - 2] == b'\r' {
        2
    } else {
        1
    }
}

/// `WSP = SP / HTAB`
pub(crate) fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Where the header block starting at `start` ends: the range of the header (including the
/// blank line that ends it) and whether a blank line was found. Without one, the header runs
/// to the end of `data` and the body is empty.
pub(crate) fn header_block(data: &[u8], start: usize) -> (Range<usize>, bool) {
    let mut position = start;
    while position < data.len() {
        let line = line_at(data, position);
        if line.start == line.end && line.has_newline() {
            return (start..line.next, true);
        }
        position = line.next;
    }
    (start..data.len(), false)
}

/// One header field, possibly folded over several lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Field {
    /// First byte of the field name.
    pub start: usize,
    /// End of the field name (trailing white space before the colon excluded).
    pub name_end: usize,
    /// First byte after the colon.
    pub value_start: usize,
    /// End of the value: before the line ending of its last line.
    pub value_end: usize,
    /// After the line ending of its last line: `start..next` is the whole field as sent.
    pub next: usize,
}

impl Field {
    /// The field name as sent.
    pub fn name<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        &data[self.start..self.name_end]
    }

    /// True when the name equals `name`, ignoring ASCII case.
    pub fn is(&self, data: &[u8], name: &[u8]) -> bool {
        self.name(data).eq_ignore_ascii_case(name)
    }

    /// The raw value, folding line endings included.
    pub fn raw_value<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        &data[self.value_start..self.value_end]
    }

    /// The value unfolded (CR and LF removed, RFC 5322 §2.2.3) and trimmed of white space.
    /// Borrows the message unless the value is folded or holds a bare CR: most values are
    /// one line, and copying each one was the largest cost of an ENVELOPE.
    pub fn unfolded<'a>(&self, data: &'a [u8]) -> Cow<'a, [u8]> {
        let raw = self.raw_value(data);
        if !has_cr_or_lf(raw) {
            return Cow::Borrowed(trim_wsp(raw));
        }
        let value: Vec<u8> = raw.iter().copied().filter(|&b| b != b'\r' && b != b'\n').collect();
        Cow::Owned(trim_wsp(&value).to_vec())
    }
}

/// `bytes` without leading and trailing SP/HTAB.
pub(crate) fn trim_wsp(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| !is_wsp(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|&b| !is_wsp(b)).map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// The header fields of the block `data[range]`, in order, stopping at the blank line.
pub(crate) fn fields(data: &[u8], range: Range<usize>) -> Fields<'_> {
    debug_assert!(range.start <= range.end && range.end <= data.len());
    Fields { data: &data[..range.end], position: range.start }
}

/// Iterator over header fields; see [`fields`].
pub(crate) struct Fields<'a> {
    data: &'a [u8],
    position: usize,
}

impl Iterator for Fields<'_> {
    type Item = Field;

    fn next(&mut self) -> Option<Field> {
        while self.position < self.data.len() {
            let line = line_at(self.data, self.position);
            self.position = line.next;
            let content = line.content(self.data);
            if content.is_empty() {
                self.position = self.data.len();
                return None;
            }
            if is_wsp(content[0]) {
                continue;
            }
            let Some(colon) = content.iter().position(|&b| b == b':') else {
                continue;
            };
            let name = trim_wsp(&content[..colon]);
            if name.is_empty() || name.iter().any(|&b| b <= b' ' || b == 0x7f) {
                continue;
            }
            let mut field = Field {
                start: line.start,
                name_end: line.start + name.len(),
                value_start: line.start + colon + 1,
                value_end: line.end,
                next: line.next,
            };
            while self.position < self.data.len() && is_wsp(self.data[self.position]) {
                let continuation = line_at(self.data, self.position);
                field.value_end = continuation.end;
                field.next = continuation.next;
                self.position = continuation.next;
            }
            return Some(field);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_unfold_and_skip_junk() {
        let data = b"Subject: a\r\n b\r\njunk line\r\n cont\r\nTo : x\n\r\nbody";
        let (block, found) = header_block(data, 0);
        assert!(found);
        assert_eq!(&data[block.end..], b"body");
        let all: Vec<Field> = fields(data, block).collect();
        assert_eq!(all.len(), 2);
        assert!(all[0].is(data, b"SUBJECT"));
        assert_eq!(&*all[0].unfolded(data), b"a b");
        assert_eq!(&data[all[0].start..all[0].next], b"Subject: a\r\n b\r\n");
        assert_eq!(all[1].name(data), b"To");
        assert_eq!(&*all[1].unfolded(data), b"x");
    }

    #[test]
    fn header_without_separator_runs_to_the_end() {
        let data = b"Subject: x\r\nFrom: y";
        assert_eq!(header_block(data, 0), (0..data.len(), false));
        assert_eq!(fields(data, 0..data.len()).count(), 2);
        assert_eq!(header_block(b"", 0), (0..0, false));
    }

    #[test]
    fn find_newline_matches_position() {
        for length in 0..24 {
            for at in 0..=length {
                for filler in [b'a', 0x8a, 0x8d, 0x0b, 0x00, 0xff, b'\r'] {
                    let mut bytes = vec![filler; length];
                    if at < length {
                        bytes[at] = b'\n';
                    }
                    let expected = bytes.iter().position(|&b| b == b'\n');
                    assert_eq!(find_newline(&bytes), expected, "{bytes:?}");
                    let either = bytes.iter().any(|&b| b == b'\r' || b == b'\n');
                    assert_eq!(has_cr_or_lf(&bytes), either, "{bytes:?}");
                    if at < length {
                        bytes[at] = b'\r';
                        assert!(has_cr_or_lf(&bytes));
                    }
                }
            }
        }
    }

    #[test]
    fn line_endings() {
        assert_eq!(line_ending_before(b"a\r\nb", 3), 2);
        assert_eq!(line_ending_before(b"a\nb", 2), 1);
        assert_eq!(line_ending_before(b"ab", 1), 0);
        assert_eq!(line_ending_before(b"\n", 1), 1);
        let line = line_at(b"ab\r\ncd", 0);
        assert_eq!((line.start, line.end, line.next), (0, 2, 4));
        let last = line_at(b"ab\r\ncd", 4);
        assert_eq!((last.end, last.next, last.has_newline()), (6, 6, false));
    }
}
