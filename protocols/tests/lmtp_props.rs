//! Properties of the LMTP session over generated inputs: DATA round-trips any message through
//! dot-stuffing, the way input is split into reads never changes the outcome, and arbitrary
//! bytes never panic the session or make it hold more than its limits.

use std::sync::Arc;

use proptest::prelude::*;
use skua_protocols::lmtp::{LmtpConfig, LmtpSession, LmtpStep, ResolvedRecipient};

/// What a run produced: the bytes written, the messages delivered, whether it closed.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    written: Vec<u8>,
    delivered: Vec<Arc<[u8]>>,
    closed: bool,
}

/// Feeds `pieces` one at a time, answering every recipient as known and every delivery as
/// done; returns everything observed.
fn run(config: LmtpConfig, pieces: &[&[u8]]) -> Outcome {
    let mut session = LmtpSession::new(config);
    let mut outcome = Outcome::default();
    for piece in pieces {
        session.feed(piece);
        loop {
            match session.next() {
                LmtpStep::NeedInput => break,
                LmtpStep::Write(bytes) => outcome.written.extend_from_slice(&bytes),
                LmtpStep::ResolveRecipient { address } => {
                    session.recipient_resolved(Some(ResolvedRecipient::user(address)));
                }
                LmtpStep::Deliver(delivery) => {
                    session.delivery_done(delivery.copies.iter().map(|_| Ok(())).collect());
                    outcome.delivered.push(delivery.message.clone());
                }
                // As if the handshake succeeded (a config with STARTTLS on).
                LmtpStep::StartTls => session.tls_started(),
                LmtpStep::Close => {
                    outcome.closed = true;
                    return outcome;
                }
            }
        }
    }
    outcome
}

/// Message lines: any bytes but CR and LF, often starting with a dot.
fn lines() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let line = prop_oneof![
        proptest::collection::vec(
            any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n'),
            0..40
        ),
        proptest::collection::vec(prop_oneof![Just(b'.'), Just(b'x')], 0..4),
    ];
    proptest::collection::vec(line, 0..20)
}

fn transaction(data: &[u8]) -> Vec<u8> {
    let mut input = b"LHLO mx\r\nMAIL FROM:<s@x>\r\nRCPT TO:<u@x>\r\nDATA\r\n".to_vec();
    input.extend_from_slice(data);
    input.extend_from_slice(b".\r\nQUIT\r\n");
    input
}

proptest! {
    #[test]
    fn data_round_trips_through_dot_stuffing(lines in lines()) {
        let mut message = Vec::new();
        let mut stuffed = Vec::new();
        for line in &lines {
            message.extend_from_slice(line);
            message.extend_from_slice(b"\r\n");
            if line.first() == Some(&b'.') {
                stuffed.push(b'.');
            }
            stuffed.extend_from_slice(line);
            stuffed.extend_from_slice(b"\r\n");
        }
        let outcome = run(LmtpConfig::new("h"), &[&transaction(&stuffed)]);
        prop_assert!(outcome.closed);
        prop_assert_eq!(outcome.delivered.len(), 1);
        prop_assert_eq!(&*outcome.delivered[0], &message[..]);
    }

    #[test]
    fn splitting_the_input_changes_nothing(lines in lines(), cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8)) {
        let mut data = Vec::new();
        for line in &lines {
            if line.first() == Some(&b'.') {
                data.push(b'.');
            }
            data.extend_from_slice(line);
            data.extend_from_slice(b"\r\n");
        }
        let mut input = transaction(&data);
        input.splice(0..0, b"NOOP\r\nBDAT 3\r\nabcRSET\r\n".iter().copied());
        let whole = run(LmtpConfig::new("h"), &[&input]);
        let mut offsets: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
        offsets.sort_unstable();
        let mut pieces = Vec::new();
        let mut start = 0;
        for offset in offsets {
            pieces.push(&input[start..offset]);
            start = offset;
        }
        pieces.push(&input[start..]);
        prop_assert_eq!(run(LmtpConfig::new("h"), &pieces), whole);
    }

    #[test]
    fn arbitrary_input_never_panics(pieces in proptest::collection::vec(
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..64),
            prop_oneof![
                Just(b"LHLO x\r\n".to_vec()), Just(b"MAIL FROM:<a@b>\r\n".to_vec()),
                Just(b"RCPT TO:<c@d>\r\n".to_vec()), Just(b"DATA\r\n".to_vec()),
                Just(b".\r\n".to_vec()), Just(b"BDAT 5\r\n".to_vec()),
                Just(b"BDAT 2 LAST\r\n".to_vec()), Just(b"RSET\r\n".to_vec()),
            ],
        ],
        0..40,
    )) {
        let config = LmtpConfig { max_message_bytes: 100, max_recipients: 3, ..LmtpConfig::new("h") };
        let slices: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
        let outcome = run(config, &slices);
        for message in &outcome.delivered {
            // The limit counts client bytes; normalizing bare line endings at most doubles them.
            prop_assert!(message.len() <= 2 * 100);
        }
        // Every reply is a whole CRLF-terminated line starting with a 3-digit code.
        let text = String::from_utf8_lossy(&outcome.written).into_owned();
        for line in text.split_terminator("\r\n") {
            prop_assert!(line.len() >= 4 && line.as_bytes()[..3].iter().all(u8::is_ascii_digit), "{line:?}");
        }
    }
}
