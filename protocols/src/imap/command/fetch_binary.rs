//! `FETCH BINARY[part]<partial>`, `BINARY.PEEK[...]` and `BINARY.SIZE[part]` (RFC 3516, as
//! RFC 9051 §6.4.5 and §7.5.2 include it): a part's content with its Content-Transfer-Encoding
//! removed.
//!
//! What a part is: `BINARY[]` is the whole message as stored (its header cannot be decoded);
//! `BINARY[1.2]` is what `BODY[1.2]` is, decoded with the encoding its own header (the message
//! header, for part 1 of a non-multipart message) declares. Multiparts and message/rfc822
//! parts may only use 7bit, 8bit or binary (RFC 2045 §6.4), so they come out as they are; one
//! that declares base64 anyway is decoded like any part. A part that does not exist is an
//! empty string (size 0), as `BODY[...]` answers. An encoding the server does not know fails
//! the FETCH with `NO [UNKNOWN-CTE]` before any byte of that message's response is written.
//!
//! Sizes are exact: a plan measures the decoded part once (a pass with a stack buffer) before
//! the literal's length is written; the literal is a `literal8` (`~{n}`) exactly when the
//! decoded bytes hold NUL (RFC 3516 asks for a string otherwise). A part of more than
//! [`MEASURE_INLINE_INPUT_BYTES`] is not measured on the spot: the FETCH measures it in steps
//! ([`MessageMeasures`], [`MEASURE_STEP_INPUT_BYTES`] at a time, between which it may pause),
//! then writes the message; no slice decodes more than a bounded amount. The response echoes
//! `BINARY[part]` without the partial's origin, as RFC 9051's grammar (`msg-att-static`)
//! writes it.
//!
//! Memory is bounded: a decoded literal up to [`BINARY_INLINE_BYTES_MAX`] is written with the
//! other items; a larger one is sent by a [`BinaryStream`] after them (FETCH response items
//! may come in any order), a slice's output at a time, decoding straight from the mapped spool
//! on each resume. The stream keeps only its decoder's position between slices, so a 50 MiB
//! base64 attachment costs one slice buffer of heap, not 37 MiB.

use std::ops::Range;

use skua_core::types::Uid;

use crate::imap::encode;
use crate::imap::limits::SLICE_OUTPUT_BYTES_MAX;
use crate::imap::session::out::Out;
use crate::imap::types::SectionText;
use crate::mime::cache::{CacheView, SectionBytes};
use crate::mime::decode::{
    Decoder, Measure, Measuring, TransferEncoding, UnknownEncoding, measure, transfer_encoding,
};

/// Decoded literals up to this size are written in the message's response directly; larger
/// ones are streamed (see the module doc).
pub(crate) const BINARY_INLINE_BYTES_MAX: u64 = 64 * 1024;

const _: () = assert!(BINARY_INLINE_BYTES_MAX as usize <= SLICE_OUTPUT_BYTES_MAX);

/// Encoded parts up to this size are measured when the message is answered (about what a
/// slice may decode); larger ones first by [`MessageMeasures`], over several slices.
pub(crate) const MEASURE_INLINE_INPUT_BYTES: usize = 256 * 1024;

/// Encoded bytes measured per step of [`MessageMeasures::step`]: a slice's work is counted in
/// these (see `slice::scan_units`), so one slice measures a few of them at most.
pub(crate) const MEASURE_STEP_INPUT_BYTES: usize = 64 * 1024;

/// What one `BINARY[part]<partial>` item sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BinaryPlan {
    /// The part's encoded bytes in the message.
    pub input: Range<usize>,
    /// Its transfer encoding.
    pub encoding: TransferEncoding,
    /// Decoded bytes skipped first (the partial's origin, clipped).
    pub skip: u64,
    /// Decoded bytes sent.
    pub len: u64,
    /// The decoded part holds NUL: sent as `literal8`.
    pub literal8: bool,
}

/// The header and body ranges of `part` (`[]`: the whole message, no header to decode by).
fn part_ranges(
    cache: Option<&CacheView<'_>>,
    message: &[u8],
    part: &[u32],
) -> Option<(Option<Range<usize>>, Range<usize>)> {
    if part.is_empty() {
        return Some((None, 0..message.len()));
    }
    let cache = cache?;
    let range = |text: Option<&SectionText>| match cache.section(message, part, text)? {
        SectionBytes::Range(range) => Some(range),
        SectionBytes::Owned(_) => None,
    };
    Some((Some(range(Some(&SectionText::Mime))?), range(None)?))
}

/// False when `part` of `message` exists and declares a transfer encoding this server does
/// not decode (what [`plan`] refuses), without measuring anything.
pub(crate) fn encoding_known(cache: &CacheView<'_>, message: &[u8], part: &[u32]) -> bool {
    match part_ranges(Some(cache), message, part) {
        Some((Some(header), _)) => transfer_encoding(message, header).is_ok(),
        _ => true,
    }
}

/// What planning one BINARY item found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PartPlan {
    /// The part does not exist.
    Missing,
    /// Ready to send.
    Ready(BinaryPlan),
    /// The part is too large to measure now: measure `input` in steps first.
    Unmeasured {
        /// The part's encoded bytes in the message.
        input: Range<usize>,
        /// Its transfer encoding.
        encoding: TransferEncoding,
    },
}

/// Plans `BINARY[part]<partial>` of `message`. `known`: the part's measure, taken earlier by
/// [`MessageMeasures`]; without it a part larger than [`MEASURE_INLINE_INPUT_BYTES`] is
/// [`PartPlan::Unmeasured`] when `defer` allows, measured here otherwise. `size_only`: only
/// the length is wanted (BINARY.SIZE), so a part that needs no decoding is not read at all.
///
/// # Errors
/// [`UnknownEncoding`]: the part's Content-Transfer-Encoding is not one this server decodes.
pub(crate) fn plan(
    cache: Option<&CacheView<'_>>,
    message: &[u8],
    part: &[u32],
    partial: Option<(u32, u32)>,
    known: Option<Measure>,
    defer: bool,
    size_only: bool,
) -> Result<PartPlan, UnknownEncoding> {
    let Some((header, input)) = part_ranges(cache, message, part) else {
        return Ok(PartPlan::Missing);
    };
    let encoding = match header {
        Some(header) => transfer_encoding(message, header)?,
        None => TransferEncoding::Identity,
    };
    let measured = match known {
        Some(known) => known,
        None if size_only && encoding == TransferEncoding::Identity => {
            // The length is the part's; whether it holds NUL does not matter for a size.
            Measure { len: input.len() as u64, has_nul: false }
        }
        None if defer && input.len() > MEASURE_INLINE_INPUT_BYTES => {
            return Ok(PartPlan::Unmeasured { input, encoding });
        }
        None => measure(encoding, &message[input.clone()]),
    };
    let (skip, len) = match partial {
        None => (0, measured.len),
        Some((origin, length)) => {
            let skip = u64::from(origin).min(measured.len);
            (skip, u64::from(length).min(measured.len - skip))
        }
    };
    Ok(PartPlan::Ready(BinaryPlan { input, encoding, skip, len, literal8: measured.has_nul }))
}

/// The measures of one message's large BINARY parts, taken in steps before its response is
/// written (see the module doc).
#[derive(Debug)]
pub(crate) struct MessageMeasures {
    uid: Uid,
    /// `(attribute index, part input, progress)`, in attribute order.
    items: Vec<(usize, Range<usize>, Measuring)>,
}

impl MessageMeasures {
    /// Measures to take for message `uid`: `(attribute index, input, encoding)`.
    pub(crate) fn new(uid: Uid, parts: Vec<(usize, Range<usize>, TransferEncoding)>) -> Self {
        let items = parts
            .into_iter()
            .map(|(index, input, encoding)| (index, input, Measuring::new(encoding)))
            .collect();
        MessageMeasures { uid, items }
    }

    /// The message measured.
    pub(crate) fn uid(&self) -> Uid {
        self.uid
    }

    /// True when every part is measured.
    pub(crate) fn done(&self) -> bool {
        self.items.iter().all(|(_, _, m)| m.result().is_some())
    }

    /// Measures about `input_bytes` more of `message` (read again for this step; `None`: it
    /// is gone, and the parts are given up as empty: answering the message will find it
    /// gone). Returns the input bytes looked at.
    pub(crate) fn step(&mut self, message: Option<&[u8]>, input_bytes: usize) -> usize {
        let next = self.items.iter_mut().find(|(_, _, m)| m.result().is_none());
        let Some((_, input, measuring)) = next else {
            return 0;
        };
        let part = message.and_then(|m| m.get(input.clone())).unwrap_or_default();
        let before = measuring.position();
        measuring.step(part, input_bytes);
        measuring.position() - before
    }

    /// The measure of the part of attribute `index`, if taken.
    pub(crate) fn known(&self, index: usize) -> Option<Measure> {
        self.items.iter().find(|(i, _, _)| *i == index).and_then(|(_, _, m)| m.result())
    }
}

/// `BINARY[1.2]` / `BINARY.SIZE[1.2]`: `name` then `section-binary`.
pub(crate) fn write_label(out: &mut Out, name: &[u8], part: &[u32]) {
    out.put(name);
    let buf = out.buf();
    buf.push(b'[');
    for (i, number) in part.iter().enumerate() {
        if i > 0 {
            buf.push(b'.');
        }
        encode::number(buf, u64::from(*number));
    }
    buf.extend_from_slice(b"] ");
}

/// Writes a planned item whole: label, literal header, decoded bytes. For items up to
/// [`BINARY_INLINE_BYTES_MAX`].
pub(crate) fn write_inline(out: &mut Out, message: &[u8], part: &[u32], plan: &BinaryPlan) {
    debug_assert!(plan.len <= BINARY_INLINE_BYTES_MAX);
    write_label(out, b"BINARY", part);
    write_literal_header(out, plan);
    let input = &message[plan.input.clone()];
    let mut decoder = Decoder::new(plan.encoding);
    let skipped = decoder.skip(input, plan.skip);
    assert_eq!(skipped, plan.skip, "the plan measured this part");
    let want = usize::try_from(plan.len).expect("inline sizes fit");
    let written = decoder.read_into(input, out.buf(), want);
    assert_eq!(written, want, "the plan measured this part");
}

/// `~{n}` CRLF or `{n}` CRLF.
fn write_literal_header(out: &mut Out, plan: &BinaryPlan) {
    let buf = out.buf();
    if plan.literal8 {
        encode::literal8_header(buf, plan.len);
    } else {
        encode::literal_header(buf, usize::try_from(plan.len).unwrap_or(usize::MAX));
    }
}

/// The end of a message's FETCH response when it carries large BINARY items: each one's
/// label, literal header and decoded bytes, written over as many slices as needed, then `)`.
#[derive(Debug)]
pub(crate) struct BinaryStream {
    uid: Uid,
    /// Items not started yet, in order (part, plan).
    queued: std::collections::VecDeque<(Vec<u32>, BinaryPlan)>,
    /// The item being sent: its input, decoder and bytes still owed.
    input: Range<usize>,
    decoder: Decoder,
    remaining: u64,
    /// The next label needs a space before it.
    separate: bool,
    /// The message could not be read again (expunged by another session between slices):
    /// the literal's promised length was filled with spaces.
    lost: bool,
}

impl BinaryStream {
    /// A stream of `items` (not empty) for message `uid`; `separate` when items were written
    /// before them in the response.
    pub(crate) fn new(uid: Uid, items: Vec<(Vec<u32>, BinaryPlan)>, separate: bool) -> Self {
        assert!(!items.is_empty(), "a stream has something to send");
        BinaryStream {
            uid,
            queued: items.into(),
            input: 0..0,
            decoder: Decoder::new(TransferEncoding::Identity),
            remaining: 0,
            separate,
            lost: false,
        }
    }

    /// The message being sent.
    pub(crate) fn uid(&self) -> Uid {
        self.uid
    }

    /// True when the message could not be read again and filler was sent.
    pub(crate) fn lost(&self) -> bool {
        self.lost
    }

    /// Writes until `out` holds a slice's worth of output; `message` is the message read
    /// again (`None`: gone). Returns the decoded bytes written and whether the response is
    /// complete (its closing `)` CRLF written).
    pub(crate) fn pump(&mut self, message: Option<&[u8]>, out: &mut Out) -> (u64, bool) {
        let mut written = 0u64;
        loop {
            if self.remaining == 0 {
                let Some((part, plan)) = self.queued.pop_front() else {
                    out.put(b")\r\n");
                    return (written, true);
                };
                self.start(message, out, &part, plan);
                continue;
            }
            let room = SLICE_OUTPUT_BYTES_MAX.saturating_sub(out.total_bytes());
            if room == 0 {
                return (written, false);
            }
            let want = usize::try_from(self.remaining).unwrap_or(usize::MAX).min(room);
            let input = message.and_then(|m| m.get(self.input.clone()));
            let got = match input {
                Some(input) => self.decoder.read_into(input, out.buf(), want),
                None => 0,
            };
            if got < want {
                // Only a message that vanished between slices gets here; the literal's length
                // is promised, so the rest is filler and the FETCH ends in NO.
                self.lost = true;
                let filled = out.buffered() + (want - got);
                out.buf().resize(filled, b' ');
            }
            self.remaining -= want as u64;
            written += want as u64;
        }
    }

    /// Writes the next item's label and literal header and positions the decoder.
    fn start(&mut self, message: Option<&[u8]>, out: &mut Out, part: &[u32], plan: BinaryPlan) {
        if self.separate {
            out.put(b" ");
        }
        self.separate = true;
        write_label(out, b"BINARY", part);
        write_literal_header(out, &plan);
        self.decoder = Decoder::new(plan.encoding);
        if let Some(input) = message.and_then(|m| m.get(plan.input.clone())) {
            self.decoder.skip(input, plan.skip);
        }
        self.input = plan.input;
        self.remaining = plan.len;
    }
}
