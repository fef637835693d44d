//! Arbitrary bytes, fed to the framer in pieces whose sizes come from the input, with small
//! limits: the framer must never panic, never hold more than the limits allow plus one fed
//! piece, and every frame must be within the command limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skua_protocols::imap::framing::{Framed, Framer};
use skua_protocols::imap::limits::FrameLimits;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let limits = FrameLimits {
        line_bytes_max: 64,
        literal_bytes_max: 32,
        append_literal_bytes_max: 256,
        command_bytes_max: 512,
        literals_per_command_max: 4,
        quirk_bare_lf: split & 1 == 1,
    };
    let mut framer = Framer::new(limits);
    let piece = usize::from(split).max(1);
    for chunk in rest.chunks(piece) {
        framer.feed(chunk);
        loop {
            match framer.next() {
                Framed::NeedInput => break,
                Framed::Frame(frame) => assert!(frame.as_bytes().len() <= 512 + 256 + 2),
                Framed::SendContinuation | Framed::Rejected(_) => {}
            }
        }
        assert!(framer.buffered_bytes() <= 512 + 256 + 64 + piece);
    }
});
