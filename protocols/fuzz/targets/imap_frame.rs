//! Target `imap_frame`: bytes fed to an IMAP framer with small limits, in pieces whose size
//! comes from the first byte, and every frame handed to the parser.
//!
//! Expectations: never panics; no frame exceeds the command limit plus one APPEND literal;
//! the bytes the framer holds stay within its limits plus one fed piece (bounded memory); and
//! the way the input is cut into reads changes nothing: fed in pieces or whole, the framer
//! produces the same frames, refusals and continuation requests in the same order.

use skua_protocols::imap::framing::{FrameError, FrameErrorKind, Framed, Framer};
use skua_protocols::imap::limits::FrameLimits;
use skua_protocols::imap::parser::{ParseOptions, parse_frame};

const LINE_BYTES_MAX: usize = 64;
const LITERAL_BYTES_MAX: u64 = 32;
const APPEND_LITERAL_BYTES_MAX: u64 = 256;
const COMMAND_BYTES_MAX: u64 = 512;

/// One thing the framer produced.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    Frame(Vec<u8>),
    Continuation,
    Rejected(String),
}

/// A refusal as compared across reads. An over-long line is refused as soon as the framer
/// holds `line_bytes_max` bytes of it, so what it knows then depends on the reads: when the
/// whole line arrives in one read it is refused as `BareLineFeed` if it ends in a bare LF,
/// and with a tag longer than the line limit if it starts with one; read piece by piece, as
/// `LineTooLong` without a tag. Either way the line is refused and framing resumes after it,
/// so these count as one outcome here (see protocols/fuzz/README.md, "Findings").
fn refusal(error: &FrameError) -> String {
    match error.kind {
        FrameErrorKind::LineTooLong { .. } | FrameErrorKind::BareLineFeed => {
            String::from("line refused")
        }
        _ => format!("{error:?}"),
    }
}

fn frame_all(limits: FrameLimits, data: &[u8], piece: usize, parse: bool) -> Vec<Event> {
    let mut framer = Framer::new(limits);
    let mut events = Vec::new();
    for chunk in data.chunks(piece) {
        framer.feed(chunk);
        loop {
            match framer.next() {
                Framed::NeedInput => break,
                Framed::Frame(frame) => {
                    let bytes = frame.as_bytes().to_vec();
                    let bound = COMMAND_BYTES_MAX + APPEND_LITERAL_BYTES_MAX + 2;
                    assert!(bytes.len() as u64 <= bound, "frame of {} bytes", bytes.len());
                    if parse {
                        let _ = parse_frame(frame, &ParseOptions::default());
                    }
                    events.push(Event::Frame(bytes));
                }
                Framed::SendContinuation => events.push(Event::Continuation),
                Framed::Rejected(error) => events.push(Event::Rejected(refusal(&error))),
            }
        }
        let held_max = COMMAND_BYTES_MAX + APPEND_LITERAL_BYTES_MAX + LINE_BYTES_MAX as u64;
        assert!(
            framer.buffered_bytes() as u64 <= held_max + chunk.len() as u64,
            "framer holds {} bytes",
            framer.buffered_bytes()
        );
    }
    events
}

/// The target.
pub fn target(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    #[allow(clippy::needless_update, reason = "limits added later keep their defaults")]
    let limits = FrameLimits {
        line_bytes_max: LINE_BYTES_MAX,
        literal_bytes_max: LITERAL_BYTES_MAX,
        append_literal_bytes_max: APPEND_LITERAL_BYTES_MAX,
        command_bytes_max: COMMAND_BYTES_MAX,
        literals_per_command_max: 4,
        quirk_bare_lf: first & 0x80 != 0,
        // Any other limit at its default: a refused literal thrown away is never held.
        ..FrameLimits::default()
    };
    let piece = usize::from(first & 0x7f).max(1);
    let in_pieces = frame_all(limits, rest, piece, true);
    let whole = frame_all(limits, rest, rest.len().max(1), false);
    assert_eq!(in_pieces, whole, "reads of {piece} bytes framed differently from one read");
}
