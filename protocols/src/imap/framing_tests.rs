//! Unit tests for the framer.

use super::*;

fn framer() -> Framer {
    Framer::new(FrameLimits::default())
}

fn frame(bytes: &[u8]) -> Framed {
    Framed::Frame(Frame::from_bytes(bytes.to_vec()))
}

#[test]
fn lines_become_frames_in_pieces() {
    let mut f = framer();
    f.feed(b"a NOOP\r\nb LOG");
    assert_eq!(f.next(), frame(b"a NOOP"));
    assert_eq!(f.next(), Framed::NeedInput);
    f.feed(b"OUT\r");
    assert_eq!(f.next(), Framed::NeedInput);
    f.feed(b"\n");
    assert_eq!(f.next(), frame(b"b LOGOUT"));
    assert_eq!(f.next(), Framed::NeedInput);
    assert!(f.is_idle());
}

#[test]
fn synchronizing_literal_asks_for_continuation() {
    let mut f = framer();
    f.feed(b"a LOGIN {4}\r\n");
    assert_eq!(f.next(), Framed::SendContinuation);
    assert_eq!(f.next(), Framed::NeedInput);
    f.feed(b"fr\r\n");
    assert_eq!(f.next(), Framed::NeedInput);
    f.feed(b" {3+}\r\nabc\r\n");
    assert_eq!(f.next(), frame(b"a LOGIN {4}\r\nfr\r\n {3+}\r\nabc"));
}

#[test]
fn literal8_and_non_sync_literals_need_no_continuation() {
    let mut f = framer();
    f.feed(b"a APPEND x ~{3+}\r\na\0b\r\n");
    assert_eq!(f.next(), frame(b"a APPEND x ~{3+}\r\na\0b"));
}

#[test]
fn bare_lf_is_refused_unless_quirk() {
    let mut f = framer();
    f.feed(b"a NOOP\nb NOOP\r\n");
    let Framed::Rejected(error) = f.next() else { panic!() };
    assert_eq!(error.kind, FrameErrorKind::BareLineFeed);
    assert_eq!(error.tag.as_ref().map(Tag::as_str), Some("a"));
    assert_eq!(f.next(), frame(b"b NOOP"));
    let mut f = Framer::new(FrameLimits { quirk_bare_lf: true, ..FrameLimits::default() });
    f.feed(b"a NOOP\nb NOOP\r\n");
    assert_eq!(f.next(), frame(b"a NOOP"));
    assert_eq!(f.next(), frame(b"b NOOP"));
}

#[test]
fn oversized_sync_literal_is_refused_without_reading() {
    let limits = FrameLimits { literal_bytes_max: 10, ..FrameLimits::default() };
    let mut f = Framer::new(limits);
    f.feed(b"t1 LOGIN {11}\r\nt2 NOOP\r\n");
    let Framed::Rejected(error) = f.next() else { panic!() };
    assert_eq!(error.tag.as_ref().map(Tag::as_str), Some("t1"));
    assert!(!error.is_append_too_big() && !error.is_fatal());
    assert_eq!(f.next(), frame(b"t2 NOOP"));
}

#[test]
fn oversized_append_gets_toobig_and_append_limits_apply_per_literal_and_in_total() {
    let limits = FrameLimits {
        literal_bytes_max: 10,
        append_literal_bytes_max: 100,
        append_command_bytes_max: 120,
        ..FrameLimits::default()
    };
    let mut f = Framer::new(limits);
    f.feed(b"t1 append INBOX {101}\r\n");
    let Framed::Rejected(error) = f.next() else { panic!() };
    assert!(error.is_append_too_big());
    f.feed(b"t2 APPEND INBOX {50}\r\n");
    assert_eq!(f.next(), Framed::SendContinuation);
    f.feed(&[b'x'; 50]);
    f.feed(b"\r\n");
    let Framed::Frame(frame) = f.next() else { panic!() };
    assert_eq!(frame.as_bytes().len(), b"t2 APPEND INBOX {50}\r\n".len() + 50);
    // A second message (MULTIAPPEND) may be as big, until the command's total is passed.
    f.feed(b"t3 APPEND x {50+}\r\n");
    f.feed(&[b'x'; 50]);
    f.feed(b" {50}\r\n");
    assert_eq!(f.next(), Framed::SendContinuation);
    f.feed(&[b'y'; 50]);
    f.feed(b" {21}\r\n");
    let Framed::Rejected(error) = f.next() else { panic!() };
    assert!(error.is_append_too_big());
    assert!(matches!(error.kind, FrameErrorKind::LiteralTooBig { limit: 120, .. }));
}

#[test]
fn oversized_non_sync_literal_is_skipped() {
    let limits = FrameLimits { literal_bytes_max: 4, ..FrameLimits::default() };
    let mut f = Framer::new(limits);
    f.feed(b"t1 LOGIN {8+}\r\n1234");
    let Framed::Rejected(error) = f.next() else { panic!() };
    assert!(matches!(error.kind, FrameErrorKind::LiteralTooBig { synchronizing: false, .. }));
    assert_eq!(f.next(), Framed::NeedInput);
    // The rest of the literal, then the rest of the command (with another literal), then a
    // new command.
    f.feed(b"5678 {2+}\r\nab\r\nt2 NOOP\r\n");
    assert_eq!(f.next(), frame(b"t2 NOOP"));
    assert!(f.buffered_bytes() == 0);
}

#[test]
fn long_line_is_refused_early_and_resynchronized() {
    let limits = FrameLimits { line_bytes_max: 16, ..FrameLimits::default() };
    let mut f = Framer::new(limits);
    f.feed(b"t1 SEARCH TEXT aaaaaaaaaaaaaaaaaaaa");
    let Framed::Rejected(error) = f.next() else { panic!() };
    assert_eq!(error.tag.as_ref().map(Tag::as_str), Some("t1"));
    assert_eq!(error.kind, FrameErrorKind::LineTooLong { limit: 16 });
    f.feed(&[b'a'; 1000]);
    assert_eq!(f.next(), Framed::NeedInput);
    assert!(f.buffered_bytes() == 0, "discarded bytes are not kept");
    // The long line ends in a non-synchronizing literal, which is skipped too.
    f.feed(b" {3+}\r\nxyz\r\nt2 NOOP\r\n");
    assert_eq!(f.next(), frame(b"t2 NOOP"));
    // A complete long line in one piece.
    f.feed(b"t3 NOOP aaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nt4 NOOP\r\n");
    assert!(matches!(
        f.next(),
        Framed::Rejected(FrameError { kind: FrameErrorKind::LineTooLong { .. }, .. })
    ));
    assert_eq!(f.next(), frame(b"t4 NOOP"));
}

#[test]
fn command_and_literal_count_limits() {
    let limits = FrameLimits {
        command_bytes_max: 40,
        literals_per_command_max: 2,
        ..FrameLimits::default()
    };
    let mut f = Framer::new(limits);
    f.feed(b"t1 X {1+}\r\na {1+}\r\nb {1+}\r\nc\r\nt2 NOOP\r\n");
    let Framed::Rejected(error) = f.next() else { panic!() };
    assert_eq!(error.kind, FrameErrorKind::TooManyLiterals { limit: 2 });
    assert_eq!(f.next(), frame(b"t2 NOOP"));
    f.feed(b"t3 X {30+}\r\n012345678901234567890123456789\r\nt4 NOOP\r\n");
    let Framed::Rejected(error) = f.next() else { panic!() };
    assert_eq!(error.kind, FrameErrorKind::CommandTooBig { limit: 40 });
    assert_eq!(f.next(), frame(b"t4 NOOP"));
}

#[test]
fn unreadable_non_sync_length_is_fatal() {
    let mut f = framer();
    f.feed(b"t1 LOGIN {123456789012345678901+}\r\n");
    let Framed::Rejected(error) = f.next() else { panic!() };
    assert!(error.is_fatal());
    let mut f = framer();
    f.feed(b"t1 LOGIN {99999999999999999999}\r\nt2 NOOP\r\n");
    let Framed::Rejected(error) = f.next() else { panic!() };
    assert!(!error.is_fatal());
    assert_eq!(f.next(), frame(b"t2 NOOP"));
}

#[test]
fn literal_header_detection() {
    assert_eq!(
        literal_header_at_end(b"a {5}"),
        Some(Ok(LiteralHeader { size: 5, synchronizing: true }))
    );
    assert_eq!(
        literal_header_at_end(b"~{0+}"),
        Some(Ok(LiteralHeader { size: 0, synchronizing: false }))
    );
    assert_eq!(literal_header_at_end(b"a {}"), None);
    assert_eq!(literal_header_at_end(b"a {x}"), None);
    assert_eq!(literal_header_at_end(b"a 5}"), None);
    assert_eq!(literal_header_at_end(b"}"), None);
    assert_eq!(literal_header_at_end(b"{18446744073709551616}"), Some(Err(true)));
}

#[test]
fn big_frames_move_out_of_the_buffer() {
    let mut f = framer();
    let mut input = b"a APPEND x {70000+}\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'm', 70_000));
    input.extend_from_slice(b"\r\nb NOOP\r\n");
    f.feed(&input);
    let Framed::Frame(big) = f.next() else { panic!() };
    assert_eq!(big.as_bytes().len(), input.len() - b"\r\nb NOOP\r\n".len());
    assert_eq!(f.next(), frame(b"b NOOP"));
}

#[test]
fn take_unframed_returns_pipelined_bytes() {
    let mut f = framer();
    f.feed(b"a STARTTLS\r\nb NOOP\r\n");
    assert_eq!(f.next(), frame(b"a STARTTLS"));
    assert_eq!(f.take_unframed(), b"b NOOP\r\n");
    assert_eq!(f.next(), Framed::NeedInput);
}

#[test]
fn absurd_non_sync_literal_is_fatal_not_skipped() {
    let mut f = framer();
    f.feed(b"t1 APPEND x {99999999999+}\r\n");
    let Framed::Rejected(error) = f.next() else { panic!() };
    assert!(error.is_fatal());
    // A whole long line: the fatal refusal replaces the line-length one.
    let mut f = Framer::new(FrameLimits { line_bytes_max: 8, ..FrameLimits::default() });
    f.feed(b"t1 SEARCH TEXT {99999999999+}\r\n");
    let Framed::Rejected(error) = f.next() else { panic!() };
    assert!(error.is_fatal());
    assert_eq!(error.tag.as_ref().map(Tag::as_str), Some("t1"));
    // A long line seen in pieces: first the line-length refusal, then the fatal one.
    let mut f = Framer::new(FrameLimits { line_bytes_max: 8, ..FrameLimits::default() });
    f.feed(b"t1 SEARCH TEXT ");
    let Framed::Rejected(first) = f.next() else { panic!() };
    assert!(!first.is_fatal());
    f.feed(b"{99999999999+}\r\n");
    let Framed::Rejected(second) = f.next() else { panic!() };
    assert!(second.is_fatal());
}

#[test]
fn frame_debug_does_not_show_contents() {
    let frame = Frame::from_bytes(b"a LOGIN fred secret".to_vec());
    assert_eq!(format!("{frame:?}"), "Frame(<19 bytes>)");
}

#[test]
fn a_drained_framer_holds_no_buffer() {
    let mut f = framer();
    f.feed(b"a IDLE\r\nDO");
    assert_eq!(f.next(), frame(b"a IDLE"));
    assert_eq!(f.next(), Framed::NeedInput);
    assert!(f.buf.capacity() > 0, "a partial line stays buffered");
    f.feed(b"NE\r\n");
    assert_eq!(f.next(), frame(b"DONE"));
    assert_eq!(f.next(), Framed::NeedInput);
    assert_eq!(f.buf.capacity(), 0, "nothing pending: the memory went back");
    f.feed(b"b NOOP\r\n");
    assert_eq!(f.next(), frame(b"b NOOP"), "and the framer goes on");
}
