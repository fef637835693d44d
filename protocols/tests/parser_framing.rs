//! Properties of the framer: however the input is cut into pieces, the same frames come out,
//! with one continuation request per synchronizing literal; and arbitrary bytes under small
//! limits never make it panic or hold more than its limits allow.

use proptest::prelude::*;
use skua_protocols::imap::framing::{Framed, Framer};
use skua_protocols::imap::limits::FrameLimits;

/// One piece of a command: a stretch of line text, optionally ended by a literal.
#[derive(Clone, Debug)]
struct Segment {
    text: String,
    literal: Option<(Vec<u8>, bool)>,
}

fn segment() -> impl Strategy<Value = Segment> {
    let literal = prop::option::of((prop::collection::vec(any::<u8>(), 0..40), any::<bool>()));
    ("[a-z0-9 ()]{0,20}", literal).prop_map(|(text, literal)| Segment { text, literal })
}

/// Commands as segments; returns the wire bytes, the expected frames and the number of
/// synchronizing literals.
fn serialize(commands: &[Vec<Segment>]) -> (Vec<u8>, Vec<Vec<u8>>, usize) {
    let mut wire = Vec::new();
    let mut frames = Vec::new();
    let mut synchronizing = 0;
    for (i, segments) in commands.iter().enumerate() {
        let mut frame = format!("t{i} X").into_bytes();
        for segment in segments {
            frame.extend_from_slice(segment.text.as_bytes());
            if let Some((bytes, sync)) = &segment.literal {
                let plus = if *sync { "" } else { "+" };
                frame.extend_from_slice(format!("{{{}{plus}}}\r\n", bytes.len()).as_bytes());
                frame.extend_from_slice(bytes);
                synchronizing += usize::from(*sync);
            }
        }
        wire.extend_from_slice(&frame);
        wire.extend_from_slice(b"\r\n");
        frames.push(frame);
    }
    (wire, frames, synchronizing)
}

proptest! {
    #[test]
    fn any_chunking_gives_the_same_frames(
        commands in prop::collection::vec(prop::collection::vec(segment(), 0..4), 1..6),
        cuts in prop::collection::vec(1usize..50, 1..200),
    ) {
        let (wire, expected, synchronizing) = serialize(&commands);
        let mut framer = Framer::new(FrameLimits::default());
        let mut frames = Vec::new();
        let mut continuations = 0;
        let mut rest = wire.as_slice();
        let mut cuts = cuts.iter().cycle();
        while !rest.is_empty() {
            let take = (*cuts.next().unwrap()).min(rest.len());
            framer.feed(&rest[..take]);
            rest = &rest[take..];
            loop {
                match framer.next() {
                    Framed::NeedInput => break,
                    Framed::SendContinuation => continuations += 1,
                    Framed::Frame(frame) => frames.push(frame.into_bytes()),
                    Framed::Rejected(error) => prop_assert!(false, "rejected: {error}"),
                }
            }
        }
        prop_assert_eq!(frames, expected);
        prop_assert_eq!(continuations, synchronizing);
        prop_assert!(framer.is_idle());
    }

    #[test]
    fn arbitrary_bytes_stay_within_limits(
        pieces in prop::collection::vec(prop::collection::vec(
            prop_oneof![any::<u8>(), Just(b'\r'), Just(b'\n'), Just(b'{'), Just(b'}'), Just(b'+'),
                        (b'0'..=b'9')], 0..80), 0..40),
        bare_lf in any::<bool>(),
    ) {
        let limits = FrameLimits {
            line_bytes_max: 32,
            literal_bytes_max: 16,
            append_literal_bytes_max: 64,
            append_command_bytes_max: 96,
            command_bytes_max: 128,
            literals_per_command_max: 3,
            discard_literal_bytes_max: 256,
            quirk_bare_lf: bare_lf,
        };
        let mut framer = Framer::new(limits);
        for piece in &pieces {
            framer.feed(piece);
            loop {
                match framer.next() {
                    Framed::NeedInput => break,
                    Framed::Frame(frame) => prop_assert!(frame.as_bytes().len() <= 128 + 64),
                    Framed::SendContinuation | Framed::Rejected(_) => {}
                }
            }
            prop_assert!(framer.buffered_bytes() <= 128 + 64 + 32 + piece.len());
        }
    }
}
