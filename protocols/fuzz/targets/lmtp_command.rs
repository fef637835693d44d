//! Target `lmtp_command`: bytes as one LMTP command line (RFC 2033, RFC 5321 §4.1), parsed
//! strictly and with `quirk_space_after_colon`.
//!
//! Expectations: never panics; the quirk only widens what is accepted (a line the strict
//! parser takes parses to the same command with it on); a path never exceeds
//! `ADDRESS_BYTES_MAX`; and parse what we emit: a parsed command written back in its canonical
//! form (`MAIL FROM:<path> SIZE=n BODY=8BITMIME`, `RCPT TO:<path>`, ...) parses to the same
//! command.

use skua_protocols::lmtp::command::{Body, Command, ParseOptions, parse};
use skua_protocols::lmtp::limits::ADDRESS_BYTES_MAX;

/// The target.
pub fn target(data: &[u8]) {
    let strict = parse(data, ParseOptions::default());
    let lenient = parse(data, ParseOptions { quirk_space_after_colon: true });
    if let Ok(command) = &strict {
        assert_eq!(lenient.as_ref(), Ok(command), "the quirk changed a strict parse");
    }
    for command in [strict, lenient].into_iter().flatten() {
        if let Command::Mail { reverse_path: path, .. } | Command::Rcpt(path) = &command {
            assert!(path.len() <= ADDRESS_BYTES_MAX);
        }
        let Some(emitted) = emit(&command) else {
            continue;
        };
        // A path is a Mailbox: never what is left of a source route (the finding
        // `fuzz_findings::lmtp_path_with_an_empty_route_domain`, fixed).
        assert!(!path_is_route_leftover(&command), "{command:?}");
        let again = parse(emitted.as_bytes(), ParseOptions::default());
        assert_eq!(again.as_ref(), Ok(&command), "we emitted {emitted:?}");
    }
}

fn path_is_route_leftover(command: &Command) -> bool {
    matches!(command, Command::Mail { reverse_path: path, .. } | Command::Rcpt(path) if path.starts_with('@'))
}

/// The canonical line for a command (no line ending), where there is one.
fn emit(command: &Command) -> Option<String> {
    Some(match command {
        Command::Lhlo(domain) => format!("LHLO {domain}"),
        Command::Mail { reverse_path, size, body } => {
            let mut line = format!("MAIL FROM:<{reverse_path}>");
            if let Some(size) = size {
                line.push_str(&format!(" SIZE={size}"));
            }
            if *body == Body::EightBitMime {
                line.push_str(" BODY=8BITMIME");
            }
            line
        }
        Command::Rcpt(path) => format!("RCPT TO:<{path}>"),
        Command::Data => "DATA".to_owned(),
        Command::Bdat { size, last: false } => format!("BDAT {size}"),
        Command::Bdat { size, last: true } => format!("BDAT {size} LAST"),
        Command::Rset => "RSET".to_owned(),
        Command::Quit => "QUIT".to_owned(),
        Command::Noop => "NOOP".to_owned(),
        Command::StartTls => "STARTTLS".to_owned(),
        Command::SmtpHello | Command::Vrfy => return None,
    })
}
