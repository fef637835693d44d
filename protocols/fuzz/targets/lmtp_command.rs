//! Target `lmtp_command`: bytes as one LMTP command line (RFC 2033, RFC 5321 §4.1), parsed
//! strictly and with `quirk_space_after_colon`.
//!
//! Expectations: never panics; the quirk only widens what is accepted (a line the strict
//! parser takes parses to the same command with it on); a path never exceeds
//! `ADDRESS_BYTES_MAX`; and parse what we emit: a parsed command written back in its canonical
//! form (`MAIL FROM:<path> SIZE=n BODY=8BITMIME SMTPUTF8 RET=.. ENVID=..`,
//! `RCPT TO:<path> NOTIFY=.. ORCPT=..`, ...) parses to the same command.

use skua_protocols::lmtp::command::{Body, Command, ParseOptions, parse};
use skua_protocols::lmtp::envelope::{MailParameters, RcptParameters};
use skua_protocols::lmtp::limits::ADDRESS_BYTES_MAX;
use skua_protocols::lmtp::xtext;

/// The target.
pub fn target(data: &[u8]) {
    let strict = parse(data, ParseOptions::default());
    let lenient = parse(data, ParseOptions { quirk_space_after_colon: true });
    if let Ok(command) = &strict {
        assert_eq!(lenient.as_ref(), Ok(command), "the quirk changed a strict parse");
    }
    for command in [strict, lenient].into_iter().flatten() {
        if let Command::Mail { reverse_path: path, .. } | Command::Rcpt { forward_path: path, .. } =
            &command
        {
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
    matches!(command, Command::Mail { reverse_path: path, .. } | Command::Rcpt { forward_path: path, .. } if path.starts_with('@'))
}

/// The canonical line for a command (no line ending), where there is one.
fn emit(command: &Command) -> Option<String> {
    Some(match command {
        Command::Lhlo(domain) => format!("LHLO {domain}"),
        Command::Mail { reverse_path, parameters } => {
            format!("MAIL FROM:<{reverse_path}>{}", mail_parameters(parameters))
        }
        Command::Rcpt { forward_path, parameters } => {
            format!("RCPT TO:<{forward_path}>{}", rcpt_parameters(parameters))
        }
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

/// The `MAIL` parameters as we would write them (default values left out).
fn mail_parameters(parameters: &MailParameters) -> String {
    let mut line = String::new();
    if let Some(size) = parameters.size {
        line.push_str(&format!(" SIZE={size}"));
    }
    if parameters.body != Body::SevenBit {
        line.push_str(&format!(" BODY={}", parameters.body));
    }
    if parameters.smtputf8 {
        line.push_str(" SMTPUTF8");
    }
    if let Some(ret) = parameters.ret {
        line.push_str(&format!(" RET={ret}"));
    }
    if let Some(envid) = &parameters.envid {
        line.push_str(&format!(" ENVID={}", xtext::encode(envid.as_bytes())));
    }
    line
}

/// The `RCPT` parameters as we would write them.
fn rcpt_parameters(parameters: &RcptParameters) -> String {
    let mut line = String::new();
    if let Some(notify) = parameters.notify {
        line.push_str(&format!(" NOTIFY={notify}"));
    }
    if let Some(orcpt) = &parameters.orcpt {
        line.push_str(&format!(" ORCPT={orcpt}"));
    }
    line
}
