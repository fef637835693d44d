//! Target `lmtp_session`: an LMTP session (the DATA and BDAT framers behind it) fed a
//! transaction built from the input: the first byte picks the read size and the message
//! transfer (DATA or BDAT); the rest is split at `\n` into lines that make the message, and
//! the same bytes are then fed again, raw, as whatever the client might send.
//!
//! Expectations: never panics; DATA round-trips any message through dot-stuffing and BDAT
//! delivers its chunks verbatim (the message delivered is exactly the CRLF-ended message sent);
//! the way the input is cut into reads changes nothing; every reply is a whole line with a
//! three-digit code; a delivered message never exceeds twice the configured size (the limit
//! counts the client's bytes; making each bare LF or lone CR a CRLF at most doubles them).

use std::sync::Arc;

use skua_protocols::lmtp::{LmtpConfig, LmtpSession, LmtpStep, ResolvedRecipient};

/// Largest message the session under the raw input accepts.
const MESSAGE_BYTES_MAX: u64 = 300;

/// What a run produced.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    written: Vec<u8>,
    delivered: Vec<Arc<[u8]>>,
    closed: bool,
}

fn run(config: &LmtpConfig, input: &[u8], piece: usize) -> Outcome {
    let mut session = LmtpSession::new(config.clone());
    let mut outcome = Outcome::default();
    for chunk in input.chunks(piece.max(1)) {
        session.feed(chunk);
        loop {
            match session.next() {
                LmtpStep::NeedInput => break,
                LmtpStep::Write(bytes) => outcome.written.extend_from_slice(&bytes),
                LmtpStep::ResolveRecipient { address } => {
                    let known = !address.starts_with('x');
                    session.recipient_resolved(known.then(|| ResolvedRecipient::user(address)));
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

fn replies_are_lines(written: &[u8]) {
    assert!(written.is_empty() || written.ends_with(b"\r\n"), "a reply ends mid-line");
    for line in written.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        assert!(line.ends_with(b"\r"), "bare LF in a reply");
        let code = &line[..3.min(line.len())];
        assert!(code.len() == 3 && code.iter().all(u8::is_ascii_digit), "{line:?}");
    }
}

/// The target.
pub fn target(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let piece = usize::from(first >> 1).max(1);
    let use_bdat = first & 1 == 1;
    // The message: the input's lines, each ended with CRLF.
    let mut message = Vec::new();
    for line in rest.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.contains(&b'\r') {
            continue;
        }
        message.extend_from_slice(line);
        message.extend_from_slice(b"\r\n");
    }
    let mut input = b"LHLO mx\r\nMAIL FROM:<s@x>\r\nRCPT TO:<u@x>\r\n".to_vec();
    if use_bdat {
        let half = message.len() / 2;
        input.extend_from_slice(format!("BDAT {half}\r\n").as_bytes());
        input.extend_from_slice(&message[..half]);
        input.extend_from_slice(format!("BDAT {} LAST\r\n", message.len() - half).as_bytes());
        input.extend_from_slice(&message[half..]);
    } else {
        input.extend_from_slice(b"DATA\r\n");
        for line in message.split_inclusive(|&b| b == b'\n') {
            if line.first() == Some(&b'.') {
                input.push(b'.');
            }
            input.extend_from_slice(line);
        }
        input.extend_from_slice(b".\r\n");
    }
    input.extend_from_slice(b"QUIT\r\n");
    let config = LmtpConfig::new("h");
    let outcome = run(&config, &input, piece);
    assert!(outcome.closed, "QUIT closes");
    assert_eq!(outcome.delivered.len(), 1, "{:?}", String::from_utf8_lossy(&outcome.written));
    assert_eq!(&*outcome.delivered[0], &message[..]);
    replies_are_lines(&outcome.written);
    assert_eq!(run(&config, &input, input.len()), outcome, "reads of {piece} bytes differ");

    // The raw bytes as a client's whole conversation, with small limits.
    let config = LmtpConfig {
        max_message_bytes: MESSAGE_BYTES_MAX,
        max_recipients: 3,
        command_line_bytes_max: 128,
        ..LmtpConfig::new("h")
    };
    let raw = run(&config, rest, piece);
    replies_are_lines(&raw.written);
    for delivered in &raw.delivered {
        assert!(delivered.len() as u64 <= 2 * MESSAGE_BYTES_MAX, "{}", delivered.len());
    }
    assert_eq!(run(&config, rest, rest.len()), raw, "reads of {piece} bytes differ");
}
