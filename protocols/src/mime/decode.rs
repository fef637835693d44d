//! Content-Transfer-Encoding decoding (RFC 2045 §6) for `FETCH BINARY[...]` (RFC 3516) and
//! PREVIEW: a small, `Copy` state machine that decodes a part straight from the mapped spool,
//! a bounded piece at a time, and can stop and resume anywhere.
//!
//! A [`Decoder`] remembers its input position, so a FETCH that sends a 50 MiB attachment over
//! many slices keeps a few dozen bytes of state between them and decodes only the piece being
//! sent; sizes come from [`measure`], one pass over the part with a fixed stack buffer.
//!
//! Malformed input is decoded the way most readers do it, never refused (RFC 2045 §6.8, §6.7
//! note 1 ask decoders to be robust), and never panics:
//!
//! - base64: characters outside the alphabet (line breaks, spaces, garbage) are skipped. A `=`
//!   ends a 4-character quantum early: the bytes its complete sextets hold are kept (two
//!   sextets give one byte, three give two, one gives nothing), and decoding starts a new
//!   quantum after it, so concatenated base64 blocks decode as one. An incomplete quantum at
//!   the end of the part is treated the same way.
//! - quoted-printable: `=XX` with two hex digits (either case) is the byte; `=` followed by
//!   optional blanks and a line break (or the end of the part) is a soft line break and
//!   vanishes; any other `=` stays as it is. Blanks at the end of a line are removed (they may
//!   have been added in transport, §6.7 rule 3). Line breaks are kept as sent (CRLF or LF).
//! - 7bit, 8bit and binary (or no Content-Transfer-Encoding field): the bytes as they are.
//!
//! Any other encoding is [`UnknownEncoding`]: BINARY answers `NO [UNKNOWN-CTE]` for it.

use std::ops::Range;

use super::header::{fields, is_wsp};

/// A transfer encoding this server can undo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferEncoding {
    /// `7bit`, `8bit`, `binary`, or none given: the bytes are the content.
    Identity,
    /// `base64` (RFC 2045 §6.8).
    Base64,
    /// `quoted-printable` (RFC 2045 §6.7).
    QuotedPrintable,
}

/// A Content-Transfer-Encoding this server does not know (`x-uuencode`, a typo, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownEncoding;

impl TransferEncoding {
    /// The encoding a Content-Transfer-Encoding field value names (`None`: no field, which
    /// means 7bit). The mechanism is a token, compared ignoring case, with blanks and RFC 822
    /// comments around it ignored.
    ///
    /// # Errors
    /// [`UnknownEncoding`] for a mechanism other than the five of RFC 2045.
    pub fn from_field(value: Option<&[u8]>) -> Result<TransferEncoding, UnknownEncoding> {
        let Some(value) = value else {
            return Ok(TransferEncoding::Identity);
        };
        let token = mechanism_token(value);
        let is = |name: &[u8]| token.eq_ignore_ascii_case(name);
        if token.is_empty() || is(b"7bit") || is(b"8bit") || is(b"binary") {
            Ok(TransferEncoding::Identity)
        } else if is(b"base64") {
            Ok(TransferEncoding::Base64)
        } else if is(b"quoted-printable") {
            Ok(TransferEncoding::QuotedPrintable)
        } else {
            Err(UnknownEncoding)
        }
    }
}

/// The first token of a field value, after blanks and comments (`(...)`, not nested deeper
/// than the value allows: a comment ends at its matching parenthesis or the value's end).
fn mechanism_token(value: &[u8]) -> &[u8] {
    let mut at = 0;
    let mut depth = 0usize;
    while at < value.len() {
        match value[at] {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            b'\\' if depth > 0 => at += 1,
            b if depth == 0 && !is_wsp(b) && b != b'\r' && b != b'\n' => break,
            _ => {}
        }
        at += 1;
    }
    let start = at.min(value.len());
    let end = value[start..]
        .iter()
        .position(|&b| is_wsp(b) || matches!(b, b'(' | b';' | b'\r' | b'\n'))
        .map_or(value.len(), |n| start + n);
    &value[start..end]
}

/// The transfer encoding declared in the header block `message[header]` (its first
/// Content-Transfer-Encoding field).
///
/// # Errors
/// [`UnknownEncoding`] as [`TransferEncoding::from_field`].
pub(crate) fn transfer_encoding(
    message: &[u8],
    header: Range<usize>,
) -> Result<TransferEncoding, UnknownEncoding> {
    let field = fields(message, header).find(|f| f.is(message, b"content-transfer-encoding"));
    TransferEncoding::from_field(field.map(|f| f.unfolded(message)).as_deref())
}

/// What [`measure`] found out about a part's decoded content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Measure {
    /// Decoded bytes.
    pub len: u64,
    /// The decoded content holds a NUL byte (so it can only be sent as a `literal8`).
    pub has_nul: bool,
}

/// Bytes decoded at a time by [`measure`] and [`Decoder::skip`] (on the stack).
const SCRATCH_BYTES: usize = 8 * 1024;

/// Decodes `input` once to learn its decoded length and whether it holds NUL; allocates
/// nothing. Identity content is only searched for NUL.
#[must_use]
pub fn measure(encoding: TransferEncoding, input: &[u8]) -> Measure {
    let mut measuring = Measuring::new(encoding);
    let done = measuring.step(input, usize::MAX);
    debug_assert!(done);
    measuring.measure
}

/// [`measure`] in steps of a bounded number of input bytes, so a large part is measured over
/// several slices of a command rather than in one long one. `Copy`: it keeps only its
/// decoder's state; every step is given the same `input`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Measuring {
    decoder: Decoder,
    measure: Measure,
    done: bool,
}

impl Measuring {
    /// Measuring from the start of a part.
    #[must_use]
    pub fn new(encoding: TransferEncoding) -> Measuring {
        Measuring {
            decoder: Decoder::new(encoding),
            measure: Measure { len: 0, has_nul: false },
            done: false,
        }
    }

    /// Measures about `input_bytes` more of `input` (a little more, to finish a decoded
    /// buffer); true when the whole part is measured.
    pub fn step(&mut self, input: &[u8], input_bytes: usize) -> bool {
        if self.done {
            return true;
        }
        let start = self.decoder.position();
        let stop = start.saturating_add(input_bytes);
        if self.decoder.encoding == TransferEncoding::Identity {
            let end = stop.min(input.len());
            let piece = input.get(start..end).unwrap_or_default();
            self.measure.len += piece.len() as u64;
            self.measure.has_nul = self.measure.has_nul || memchr::memchr(0, piece).is_some();
            self.decoder.position = end.max(start);
            self.done = self.decoder.position >= input.len();
            return self.done;
        }
        let mut scratch = [0u8; SCRATCH_BYTES];
        while self.decoder.position() < stop {
            let n = self.decoder.read(input, &mut scratch);
            if n == 0 {
                self.done = true;
                return true;
            }
            self.measure.len += n as u64;
            self.measure.has_nul =
                self.measure.has_nul || memchr::memchr(0, &scratch[..n]).is_some();
        }
        false
    }

    /// Input bytes looked at so far.
    #[must_use]
    pub fn position(&self) -> usize {
        self.decoder.position()
    }

    /// The measure, once [`Measuring::step`] said the part is done.
    #[must_use]
    pub fn result(&self) -> Option<Measure> {
        self.done.then_some(self.measure)
    }
}

/// Decodes `input` whole into a new vector (tests, and small parts).
#[must_use]
pub fn decode_all(encoding: TransferEncoding, input: &[u8]) -> Vec<u8> {
    let mut decoder = Decoder::new(encoding);
    let mut out = Vec::with_capacity(input.len());
    decoder.read_into(input, &mut out, usize::MAX);
    out
}

/// A resumable decoder of one part. It keeps its own position in the part's encoded bytes;
/// every call must pass the same `input` (the part's body, as stored).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoder {
    encoding: TransferEncoding,
    /// The next input byte to look at.
    position: usize,
    /// base64: the sextets of the current quantum, most recent lowest.
    bits: u32,
    /// base64: how many sextets `bits` holds (0 to 3).
    sextets: u8,
    /// Decoded bytes not yet handed out (a base64 quantum that did not fit).
    carry: [u8; 3],
    carry_start: u8,
    carry_end: u8,
    /// The end of the input was reached and the last quantum flushed.
    finished: bool,
}

impl Decoder {
    /// A decoder at the start of a part.
    #[must_use]
    pub fn new(encoding: TransferEncoding) -> Decoder {
        Decoder {
            encoding,
            position: 0,
            bits: 0,
            sextets: 0,
            carry: [0; 3],
            carry_start: 0,
            carry_end: 0,
            finished: false,
        }
    }

    /// The encoding being undone.
    #[must_use]
    pub fn encoding(&self) -> TransferEncoding {
        self.encoding
    }

    /// Input bytes consumed so far.
    #[must_use]
    pub fn position(&self) -> usize {
        self.position
    }

    /// Decodes into `out`; returns the bytes written, 0 only at the end of the content
    /// (`out` not empty).
    pub fn read(&mut self, input: &[u8], out: &mut [u8]) -> usize {
        let mut written = 0;
        while self.carry_start < self.carry_end && written < out.len() {
            out[written] = self.carry[usize::from(self.carry_start)];
            self.carry_start += 1;
            written += 1;
        }
        if self.carry_start < self.carry_end {
            return written;
        }
        while written < out.len() && !self.is_done(input) {
            written += match self.encoding {
                TransferEncoding::Identity => self.read_identity(input, &mut out[written..]),
                TransferEncoding::Base64 => self.read_base64(input, &mut out[written..]),
                TransferEncoding::QuotedPrintable => self.read_qp(input, &mut out[written..]),
            };
            if self.carry_start < self.carry_end {
                break;
            }
        }
        written
    }

    /// Appends up to `max` decoded bytes to `out`; returns how many.
    pub fn read_into(&mut self, input: &[u8], out: &mut Vec<u8>, max: usize) -> usize {
        let mut scratch = [0u8; SCRATCH_BYTES];
        let mut total = 0;
        while total < max {
            let want = (max - total).min(SCRATCH_BYTES);
            let n = self.read(input, &mut scratch[..want]);
            if n == 0 {
                break;
            }
            out.extend_from_slice(&scratch[..n]);
            total += n;
        }
        total
    }

    /// Decodes and drops up to `count` bytes; returns how many were dropped (fewer only at the
    /// end of the content).
    pub fn skip(&mut self, input: &[u8], count: u64) -> u64 {
        if self.encoding == TransferEncoding::Identity {
            let available = (input.len() - self.position.min(input.len())) as u64;
            let skipped = count.min(available);
            // `skipped` is at most the input length, a usize.
            self.position += usize::try_from(skipped).unwrap_or(usize::MAX);
            return skipped;
        }
        let mut scratch = [0u8; SCRATCH_BYTES];
        let mut skipped = 0;
        while skipped < count {
            let want = usize::try_from(count - skipped).unwrap_or(usize::MAX).min(SCRATCH_BYTES);
            let n = self.read(input, &mut scratch[..want]);
            if n == 0 {
                break;
            }
            skipped += n as u64;
        }
        skipped
    }

    /// True when every decoded byte was handed out.
    fn is_done(&self, input: &[u8]) -> bool {
        let drained = self.carry_start == self.carry_end;
        match self.encoding {
            TransferEncoding::Base64 => self.finished && drained,
            _ => self.position >= input.len() && drained,
        }
    }

    fn read_identity(&mut self, input: &[u8], out: &mut [u8]) -> usize {
        let rest = input.get(self.position..).unwrap_or_default();
        let n = rest.len().min(out.len());
        out[..n].copy_from_slice(&rest[..n]);
        self.position += n;
        n
    }

    /// Decodes base64 until `out` is full or the input ends; a quantum that does not fit
    /// waits in `carry`.
    fn read_base64(&mut self, input: &[u8], out: &mut [u8]) -> usize {
        let mut written = 0;
        while written < out.len() && self.carry_start == self.carry_end {
            if self.sextets == 0 {
                written += self.read_base64_quads(input, &mut out[written..]);
                if written == out.len() {
                    break;
                }
            }
            let Some(&byte) = input.get(self.position) else {
                if !self.finished {
                    self.finished = true;
                    self.flush_quantum(out, &mut written);
                }
                break;
            };
            self.position += 1;
            let value = BASE64_VALUES[usize::from(byte)];
            if value < 64 {
                self.bits = (self.bits << 6) | u32::from(value);
                self.sextets += 1;
                if self.sextets == 4 {
                    let [_, a, b, c] = self.bits.to_be_bytes();
                    self.bits = 0;
                    self.sextets = 0;
                    self.emit(&[a, b, c], out, &mut written);
                }
            } else if byte == b'=' {
                self.flush_quantum(out, &mut written);
            }
        }
        written
    }

    /// The fast path: whole 4-character quanta of alphabet characters, decoded four at a time
    /// while they fit in `out`. Stops at anything else (a line break, `=`, junk), which the
    /// byte-at-a-time path then handles; a line of base64 is one run. Called between quanta.
    fn read_base64_quads(&mut self, input: &[u8], out: &mut [u8]) -> usize {
        debug_assert_eq!(self.sextets, 0);
        let rest = input.get(self.position..).unwrap_or_default();
        let mut quads = 0;
        for (quad, triple) in rest.chunks_exact(4).zip(out.chunks_exact_mut(3)) {
            let value = |i: usize| u32::from(BASE64_VALUES[usize::from(quad[i])]);
            let (a, b, c, d) = (value(0), value(1), value(2), value(3));
            // Alphabet values are below 64; every other byte maps to 255.
            if (a | b | c | d) & 0xC0 != 0 {
                break;
            }
            let [_, x, y, z] = ((a << 18) | (b << 12) | (c << 6) | d).to_be_bytes();
            triple.copy_from_slice(&[x, y, z]);
            quads += 1;
        }
        self.position += 4 * quads;
        3 * quads
    }

    /// Hands out the bytes an incomplete quantum holds (RFC 2045 §6.8: 2 sextets are one
    /// byte, 3 are two; 1 sextet is not a byte and is dropped) and starts a new quantum.
    fn flush_quantum(&mut self, out: &mut [u8], written: &mut usize) {
        let sextets = self.sextets;
        let bits = self.bits;
        self.bits = 0;
        self.sextets = 0;
        match sextets {
            2 => self.emit(&[(bits >> 4) as u8], out, written),
            3 => {
                let value = bits >> 2;
                self.emit(&[(value >> 8) as u8, value as u8], out, written);
            }
            _ => {}
        }
    }

    /// Writes `bytes` into `out` where there is room, the rest into `carry` (empty before:
    /// callers only decode while it is).
    fn emit(&mut self, bytes: &[u8], out: &mut [u8], written: &mut usize) {
        debug_assert_eq!(self.carry_start, self.carry_end, "carry drained before decoding");
        let fits = bytes.len().min(out.len() - *written);
        out[*written..*written + fits].copy_from_slice(&bytes[..fits]);
        *written += fits;
        let rest = &bytes[fits..];
        self.carry[..rest.len()].copy_from_slice(rest);
        self.carry_start = 0;
        // At most three bytes: a u8 holds the count.
        self.carry_end = rest.len() as u8;
    }

    /// Decodes quoted-printable until `out` is full or the input ends. Every step hands out
    /// at most what fits, so nothing is carried.
    fn read_qp(&mut self, input: &[u8], out: &mut [u8]) -> usize {
        let mut written = 0;
        while written < out.len() && self.position < input.len() {
            let at = self.position;
            match input[at] {
                b'=' => {
                    let hex = |i: usize| input.get(i).and_then(|&b| hex_value(b));
                    if let (Some(high), Some(low)) = (hex(at + 1), hex(at + 2)) {
                        out[written] = (high << 4) | low;
                        written += 1;
                        self.position = at + 3;
                    } else if let Some(next) = soft_break_end(input, at + 1) {
                        self.position = next;
                    } else {
                        out[written] = b'=';
                        written += 1;
                        self.position = at + 1;
                    }
                }
                b' ' | b'\t' => {
                    let end = at + input[at..].iter().take_while(|&&b| is_wsp(b)).count();
                    if is_line_end(input, end) {
                        // Trailing blanks: added in transport, not content.
                        self.position = end;
                    } else {
                        let n = (end - at).min(out.len() - written);
                        out[written..written + n].copy_from_slice(&input[at..at + n]);
                        written += n;
                        self.position = at + n;
                    }
                }
                _ => {
                    // A run of ordinary bytes is copied at once.
                    let room = (out.len() - written).min(input.len() - at);
                    let run = &input[at..at + room];
                    let n = memchr::memchr3(b'=', b' ', b'\t', run).unwrap_or(run.len()).max(1);
                    out[written..written + n].copy_from_slice(&run[..n]);
                    written += n;
                    self.position = at + n;
                }
            }
        }
        written
    }
}

/// After a `=` at `at - 1`: the position after its soft line break (blanks, then CRLF, LF, or
/// the end of the input), or `None` when it is not one.
fn soft_break_end(input: &[u8], at: usize) -> Option<usize> {
    let end = at + input.get(at..).unwrap_or_default().iter().take_while(|&&b| is_wsp(b)).count();
    match input.get(end..).unwrap_or_default() {
        [] => Some(end),
        [b'\n', ..] => Some(end + 1),
        [b'\r', b'\n', ..] => Some(end + 2),
        [b'\r'] => Some(end + 1),
        _ => None,
    }
}

/// True when `input[at..]` starts with a line break or is empty.
fn is_line_end(input: &[u8], at: usize) -> bool {
    matches!(input.get(at..).unwrap_or_default(), [] | [b'\n', ..] | [b'\r', b'\n', ..] | [b'\r'])
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
    }
}

/// The value of each base64 alphabet character (RFC 2045 Table 1); 255 for every other byte.
const BASE64_VALUES: [u8; 256] = {
    let mut table = [255u8; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = 0;
    while i < alphabet.len() {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
