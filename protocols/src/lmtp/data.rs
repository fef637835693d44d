//! Receiving a message: the bounded buffer both `DATA` and `BDAT` fill, and the streaming
//! dot-unstuffer for `DATA` (RFC 5321 §4.1.1.4, §4.5.2).
//!
//! The unstuffer holds at most two bytes back (a `.` or `.\r` at the start of a line, until it
//! knows whether they begin the terminator), so a message is copied once from the input into
//! the buffer whatever the line lengths. The terminator is recognized only as `CRLF . CRLF`:
//! a bare LF never starts a line, so `LF . CRLF` is message content (the "SMTP smuggling"
//! ambiguity, CVE-2023-51764/51765/51766, cannot arise here).
//!
//! Bare line endings are dealt with after unstuffing, by [`MessageBuffer`]'s policy
//! ([`LineEndings`]): normalized to CRLF, refused, or (BINARYMIME) kept.

/// What a message's bare line endings (an LF without CR, a CR without LF) become.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LineEndings {
    /// Stored as sent: `BDAT` of a `BODY=BINARYMIME` message (RFC 3030 §3).
    Keep,
    /// Each becomes CRLF, so IMAP clients only ever see CRLF (RFC 5322 §2.3).
    Normalize,
    /// The message is refused (`550 5.6.2` per recipient) when it has any.
    Refuse,
}

/// Why a received message cannot be delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unacceptable {
    /// More than the limit arrived.
    TooLarge,
    /// A bare LF or lone CR under [`LineEndings::Refuse`].
    BareLineEnding,
}

/// The message being received, exactly the client's bytes (after dot-unstuffing and the
/// line-ending policy); the per-recipient trace header fields are added at delivery. Past the
/// size limit the bytes are counted and dropped.
#[derive(Debug)]
pub(crate) struct MessageBuffer {
    bytes: Vec<u8>,
    data_bytes: u64,
    limit_bytes: u64,
    overflowed: bool,
    line_endings: LineEndings,
    /// The last byte pushed was a CR whose LF (or lack of one) is not known yet; it is not in
    /// `bytes` yet under [`LineEndings::Normalize`]. This is what makes the policy streaming:
    /// a CR at the end of one read and its LF at the start of the next are one line ending.
    pending_cr: bool,
    /// A bare LF or lone CR was seen.
    bare_line_ending: bool,
}

/// Most a client's `SIZE=` may make us reserve up front: a lie must not cost memory.
const RESERVE_BYTES_MAX: u64 = 1024 * 1024;
/// What is reserved without a `SIZE=`: most mail fits, so the buffer is not regrown (and
/// copied) seven times on the way to a few KiB.
const RESERVE_BYTES_DEFAULT: u64 = 16 * 1024;
const _: () = assert!(RESERVE_BYTES_DEFAULT <= RESERVE_BYTES_MAX);

impl MessageBuffer {
    /// An empty message accepting at most `limit_bytes` of client data.
    pub(crate) fn new(
        limit_bytes: u64,
        size_hint: Option<u64>,
        line_endings: LineEndings,
    ) -> MessageBuffer {
        let reserve =
            size_hint.unwrap_or(RESERVE_BYTES_DEFAULT).min(limit_bytes).min(RESERVE_BYTES_MAX);
        MessageBuffer {
            bytes: Vec::with_capacity(usize::try_from(reserve).unwrap_or(0)),
            data_bytes: 0,
            limit_bytes,
            overflowed: false,
            line_endings,
            pending_cr: false,
            bare_line_ending: false,
        }
    }

    /// Appends client bytes, or only counts them once over the limit.
    pub(crate) fn push(&mut self, data: &[u8]) {
        self.data_bytes = self.data_bytes.saturating_add(data.len() as u64);
        if self.overflowed {
            return;
        }
        if self.data_bytes > self.limit_bytes {
            self.overflowed = true;
            self.bytes = Vec::new();
            return;
        }
        match self.line_endings {
            LineEndings::Keep => self.bytes.extend_from_slice(data),
            LineEndings::Normalize => self.push_normalized(data),
            LineEndings::Refuse => {
                self.note_bare_line_endings(data);
                self.bytes.extend_from_slice(data);
            }
        }
    }

    /// Copies `data` with every line ending made CRLF. CRLF pairs stay inside the run being
    /// copied, so a message that is all CRLF is copied in one piece after one word-at-a-time
    /// scan (a byte loop here cost ~10 instructions a byte, a quarter of a 4 KiB delivery).
    fn push_normalized(&mut self, data: &[u8]) {
        let mut position = 0;
        if self.pending_cr && !data.is_empty() {
            self.pending_cr = false;
            self.bytes.extend_from_slice(b"\r\n");
            if data[0] == b'\n' {
                position = 1;
            } else {
                self.bare_line_ending = true;
            }
        }
        let mut copied = position;
        while let Some(offset) = find_line_break(&data[position..]) {
            let at = position + offset;
            if data[at] == b'\r' && data.get(at + 1) == Some(&b'\n') {
                position = at + 2;
                continue;
            }
            self.bytes.extend_from_slice(&data[copied..at]);
            if data[at] == b'\r' && at + 1 == data.len() {
                // Its LF, if any, comes with the next push.
                self.pending_cr = true;
                return;
            }
            self.bare_line_ending = true;
            self.bytes.extend_from_slice(b"\r\n");
            position = at + 1;
            copied = position;
        }
        self.bytes.extend_from_slice(&data[copied..]);
    }

    /// Notes whether `data` (following what came before) holds a bare LF or a lone CR.
    fn note_bare_line_endings(&mut self, data: &[u8]) {
        let mut position = 0;
        if self.pending_cr && !data.is_empty() {
            self.pending_cr = false;
            if data[0] == b'\n' {
                position = 1;
            } else {
                self.bare_line_ending = true;
            }
        }
        while let Some(offset) = find_line_break(&data[position..]) {
            let at = position + offset;
            match (data[at], data.get(at + 1)) {
                (b'\r', Some(b'\n')) => position = at + 2,
                (b'\r', None) => {
                    self.pending_cr = true;
                    return;
                }
                _ => {
                    self.bare_line_ending = true;
                    position = at + 1;
                }
            }
        }
    }

    /// True once more than the limit arrived.
    pub(crate) fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Client bytes received so far (after unstuffing).
    pub(crate) fn data_bytes(&self) -> u64 {
        self.data_bytes
    }

    /// True when a bare LF or lone CR arrived (normalized or not).
    pub(crate) fn had_bare_line_endings(&self) -> bool {
        self.bare_line_ending || (self.pending_cr && self.line_endings != LineEndings::Keep)
    }

    /// The finished message.
    ///
    /// # Errors
    /// [`Unacceptable`]: over the limit, or a bare line ending under [`LineEndings::Refuse`].
    pub(crate) fn finish(mut self) -> Result<Vec<u8>, Unacceptable> {
        if self.overflowed {
            return Err(Unacceptable::TooLarge);
        }
        if self.pending_cr {
            // The message ended on a CR (only possible with BDAT): a lone CR.
            self.bare_line_ending = true;
            if self.line_endings == LineEndings::Normalize {
                self.bytes.extend_from_slice(b"\r\n");
            }
        }
        if self.line_endings == LineEndings::Refuse && self.bare_line_ending {
            return Err(Unacceptable::BareLineEnding);
        }
        debug_assert!(
            self.line_endings != LineEndings::Keep || self.bytes.len() as u64 == self.data_bytes
        );
        Ok(self.bytes)
    }
}

/// The state of a `DATA` transfer between two inputs.
#[derive(Debug)]
pub(crate) struct DotReader {
    /// The last byte consumed was the LF of a CRLF (or nothing was consumed yet).
    at_line_start: bool,
    /// The last byte consumed was a CR.
    after_cr: bool,
}

impl DotReader {
    pub(crate) fn new() -> DotReader {
        DotReader { at_line_start: true, after_cr: false }
    }

    /// Moves the content of `input` into `message`, unstuffed. Returns how many input bytes
    /// were consumed and whether the terminating `.CRLF` was among them. Bytes not consumed
    /// (at most `.\r`) must be offered again with more input after them.
    ///
    /// Only a `.` at the start of a line needs a look; everything up to the next `LF .` is
    /// copied in one piece (one copy per run of lines, not per line).
    pub(crate) fn consume(&mut self, input: &[u8], message: &mut MessageBuffer) -> (usize, bool) {
        let mut position = 0;
        while position < input.len() {
            let rest = &input[position..];
            if self.at_line_start && rest[0] == b'.' {
                if rest.starts_with(b".\r\n") {
                    return (position + 3, true);
                }
                if b".\r".starts_with(rest) {
                    return (position, false);
                }
                // A stuffed dot: drop it, keep the rest of the line.
                position += 1;
                self.at_line_start = false;
                self.after_cr = false;
                continue;
            }
            let run = plain_run(rest);
            let segment = &rest[..run];
            message.push(segment);
            position += run;
            let ends_in_lf = segment.ends_with(b"\n");
            let before_lf_is_cr = match segment.len() {
                0 | 1 => self.after_cr,
                n => segment[n - 2] == b'\r',
            };
            self.at_line_start = ends_in_lf && before_lf_is_cr;
            self.after_cr = segment.ends_with(b"\r");
        }
        (position, false)
    }
}

/// The length of the longest prefix of `bytes` (at least one byte) that ends either at the end
/// of `bytes` or just after an LF followed by `.`: no byte inside it can be a line-starting dot.
fn plain_run(bytes: &[u8]) -> usize {
    let mut from = 0;
    while let Some(lf) = find_newline(&bytes[from..]) {
        let next = from + lf + 1;
        if bytes.get(next).is_none_or(|&b| b == b'.') {
            return next;
        }
        from = next;
    }
    bytes.len()
}

/// The index of the first CR or LF in `bytes`, eight bytes at a time (as [`find_newline`];
/// the lowest flag of either pattern is exact, so the lowest of both is).
fn find_line_break(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let cr = ONES * u64::from(b'\r');
    let lf = ONES * u64::from(b'\n');
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let (x, y) = (word ^ cr, word ^ lf);
        let zero = (x.wrapping_sub(ONES) & !x | y.wrapping_sub(ONES) & !y) & HIGH;
        if zero != 0 {
            return Some(offset + (zero.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    let tail = chunks.remainder().iter().position(|&b| b == b'\r' || b == b'\n');
    tail.map(|index| offset + index)
}

/// The index of the first LF in `bytes`, eight bytes at a time (a byte loop cost ~4
/// instructions a byte). Word-at-a-time in safe code: XOR makes each LF a zero byte, and
/// `(x - 0x01..) & !x & 0x80..` flags zero bytes; its lowest flag is always exact (a borrow
/// only ever runs upward from a zero byte), which is the one taken.
fn find_newline(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let pattern = ONES * u64::from(b'\n');
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let x = u64::from_le_bytes(chunk.try_into().expect("eight bytes")) ^ pattern;
        let zero = x.wrapping_sub(ONES) & !x & HIGH;
        if zero != 0 {
            return Some(offset + (zero.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    let tail = chunks.remainder().iter().position(|&b| b == b'\n');
    tail.map(|index| offset + index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Byte-at-a-time unstuffing of a whole input: the message and the bytes up to the end of
    /// the terminator.
    fn reference(input: &[u8]) -> Option<(Vec<u8>, usize)> {
        let mut out = Vec::new();
        let mut line_start = true;
        let mut i = 0;
        while i < input.len() {
            if line_start && input[i] == b'.' {
                if input[i..].starts_with(b".\r\n") {
                    return Some((out, i + 3));
                }
                line_start = false;
                i += 1;
                continue;
            }
            out.push(input[i]);
            line_start = input[i] == b'\n' && i > 0 && input[i - 1] == b'\r';
            i += 1;
        }
        None
    }

    proptest! {
        #[test]
        fn finds_the_first_line_break(bytes in proptest::collection::vec(prop_oneof![any::<u8>(), Just(b'\n'), Just(b'\r')], 0..100)) {
            prop_assert_eq!(find_line_break(&bytes), bytes.iter().position(|&b| b == b'\r' || b == b'\n'));
        }

        #[test]
        fn finds_the_first_newline(bytes in proptest::collection::vec(prop_oneof![any::<u8>(), Just(b'\n')], 0..100)) {
            prop_assert_eq!(find_newline(&bytes), bytes.iter().position(|&b| b == b'\n'));
        }

        #[test]
        fn matches_byte_at_a_time_unstuffing(
            body in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'.'), Just(b'\r'), Just(b'\n')], 0..64),
            cut in 0usize..80,
        ) {
            let mut input = body.clone();
            input.extend_from_slice(b"\r\n.\r\nNEXT");
            let (expected, used) = reference(&input).expect("a terminator is there");
            let cut = cut.min(input.len());
            let (message, rest) = receive(&[&input[..cut], &input[cut..]], 1000);
            let message = message.expect("under the limit");
            prop_assert_eq!(message, expected);
            prop_assert_eq!(rest, input[used..].to_vec());
        }
    }

    /// Feeds `pieces` one after another as a session would (keeping unconsumed bytes).
    fn receive(pieces: &[&[u8]], limit: u64) -> (Option<Vec<u8>>, Vec<u8>) {
        let mut message = MessageBuffer::new(limit, None, LineEndings::Keep);
        let mut reader = DotReader::new();
        let mut pending = Vec::new();
        let mut finished = false;
        for piece in pieces {
            pending.extend_from_slice(piece);
            if finished {
                continue;
            }
            let (used, done) = reader.consume(&pending, &mut message);
            pending.drain(..used);
            finished = done;
        }
        assert!(finished, "terminator not seen");
        (message.finish().ok(), pending)
    }

    #[test]
    fn unstuffs_and_stops_at_the_terminator() {
        let (message, rest) = receive(&[b"a\r\n..b\r\n.\r\nQUIT\r\n"], 100);
        assert_eq!(message.unwrap(), b"a\r\n.b\r\n");
        assert_eq!(rest, b"QUIT\r\n");
    }

    #[test]
    fn empty_message() {
        let (message, rest) = receive(&[b".\r\n"], 100);
        assert_eq!(message.unwrap(), b"");
        assert!(rest.is_empty());
    }

    #[test]
    fn split_anywhere_gives_the_same_message() {
        let input: &[u8] = b"Subject: x\r\n\r\n.hidden\r\n..\r\nline\r\n.\r\n";
        let whole = receive(&[input], 1000).0.unwrap();
        assert_eq!(whole, b"Subject: x\r\n\r\nhidden\r\n.\r\nline\r\n");
        for cut in 0..input.len() {
            let (message, rest) = receive(&[&input[..cut], &input[cut..]], 1000);
            assert_eq!(message.unwrap(), whole, "cut at {cut}");
            assert!(rest.is_empty());
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(receive(&bytes, 1000).0.unwrap(), whole);
    }

    #[test]
    fn bare_lf_does_not_start_a_line() {
        let (message, _) = receive(&[b"a\n.\r\nb\r\n.\r\n"], 100);
        assert_eq!(message.unwrap(), b"a\n.\r\nb\r\n");
        let (message, _) = receive(&[b"a\r", b"\n.\r\n"], 100);
        assert_eq!(message.unwrap(), b"a\r\n");
    }

    #[test]
    fn over_the_limit_reads_to_the_end_and_keeps_nothing() {
        let (message, rest) = receive(&[b"0123456789\r\n", b"more\r\n.\r\nNOOP\r\n"], 10);
        assert!(message.is_none());
        assert_eq!(rest, b"NOOP\r\n");
        // Exactly at the limit is fine.
        assert_eq!(receive(&[b"01234567\r\n.\r\n"], 10).0.unwrap(), b"01234567\r\n");
    }

    /// Pushes `pieces` one after another under `line_endings`.
    fn normalize(pieces: &[&[u8]], line_endings: LineEndings) -> Result<Vec<u8>, Unacceptable> {
        let mut message = MessageBuffer::new(1 << 20, None, line_endings);
        for piece in pieces {
            message.push(piece);
        }
        message.finish()
    }

    /// Every LF is preceded by CR and every CR followed by LF.
    fn only_crlf(bytes: &[u8]) -> bool {
        bytes.iter().enumerate().all(|(i, &b)| match b {
            b'\n' => i > 0 && bytes[i - 1] == b'\r',
            b'\r' => bytes.get(i + 1) == Some(&b'\n'),
            _ => true,
        })
    }

    #[test]
    fn bare_line_endings_become_crlf() {
        let normalized = normalize(&[b"a\nb\rc\r\nd\r\re\n\r"], LineEndings::Normalize);
        assert_eq!(normalized.unwrap(), b"a\r\nb\r\nc\r\nd\r\n\r\ne\r\n\r\n");
        // A CR at the end of one read and its LF at the start of the next: one CRLF.
        let split = normalize(&[b"a\r", b"\nb\r", b"", b"\n"], LineEndings::Normalize);
        assert_eq!(split.unwrap(), b"a\r\nb\r\n");
        assert_eq!(normalize(&[b"a\r\n"], LineEndings::Keep).unwrap(), b"a\r\n");
        assert_eq!(normalize(&[b"a\nb\r"], LineEndings::Keep).unwrap(), b"a\nb\r");
    }

    #[test]
    fn refusal_sees_bare_line_endings_across_reads() {
        assert_eq!(normalize(&[b"a\r", b"\nb\r\n"], LineEndings::Refuse).unwrap(), b"a\r\nb\r\n");
        for bad in [&[&b"a\n"[..]][..], &[b"a\r", b"b"], &[b"a\r"], &[b"a\r", b"\r\n"]] {
            assert_eq!(normalize(bad, LineEndings::Refuse), Err(Unacceptable::BareLineEnding));
        }
    }

    proptest! {
        #[test]
        fn normalized_output_has_only_crlf_and_keeps_crlf_input(
            body in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'\r'), Just(b'\n')], 0..64),
            cut in 0usize..64,
        ) {
            let cut = cut.min(body.len());
            let whole = normalize(&[&body], LineEndings::Normalize).unwrap();
            prop_assert!(only_crlf(&whole));
            let split = normalize(&[&body[..cut], &body[cut..]], LineEndings::Normalize).unwrap();
            prop_assert_eq!(&split, &whole);
            // Text is only ever added (CR or LF to complete a pair), never lost.
            prop_assert_eq!(
                whole.iter().filter(|&&b| b == b'a').count(),
                body.iter().filter(|&&b| b == b'a').count()
            );
            if only_crlf(&body) {
                prop_assert_eq!(&whole, &body);
                prop_assert!(normalize(&[&body[..cut], &body[cut..]], LineEndings::Refuse).is_ok());
            } else {
                prop_assert!(normalize(&[&body[..cut], &body[cut..]], LineEndings::Refuse).is_err());
            }
        }
    }
}
