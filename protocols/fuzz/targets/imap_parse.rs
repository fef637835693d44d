//! Target `imap_parse`: bytes as one framed IMAP command (both mailbox-name modes), as the
//! line that ends IDLE and as a SASL response.
//!
//! Expectations: never panics; a parsed command keeps the tag it began with; parsing is the
//! same whether the frame is borrowed (`parse_command_with`) or moved (`parse_frame`); and
//! parse what we emit: a command that names mailboxes or credentials, written back with the
//! public encoders (`encode::mailbox`, `encode::astring`), parses to the same command.

use skua_protocols::imap::encode;
use skua_protocols::imap::framing::Frame;
use skua_protocols::imap::parser::{
    ParseOptions, parse_command_with, parse_frame, parse_idle_done, parse_sasl_response,
};
use skua_protocols::imap::types::{Command, CommandBody};

/// The target.
pub fn target(data: &[u8]) {
    for utf8_names in [false, true] {
        let options = ParseOptions { utf8_names, ..ParseOptions::default() };
        let parsed = parse_command_with(data, &options);
        let moved = parse_frame(Frame::from_bytes(data.to_vec()), &options);
        assert_eq!(parsed.is_ok(), moved.is_ok(), "borrowed and moved frames parse alike");
        if let Ok(command) = parsed {
            assert!(data.starts_with(command.tag.as_str().as_bytes()));
            assert_eq!(Ok(&command), moved.as_ref().map_err(|_| ()));
            if let Some(emitted) = emit(&command, utf8_names) {
                let again = parse_command_with(&emitted, &options).unwrap_or_else(|error| {
                    panic!(
                        "we emitted {:?} and refused it: {error:?}",
                        String::from_utf8_lossy(&emitted)
                    )
                });
                assert_eq!(again, command, "emitted {:?}", String::from_utf8_lossy(&emitted));
            }
        }
    }
    let _ = parse_idle_done(data);
    let _ = parse_sasl_response(data);
}

/// The command written back by our encoders, for the command kinds they cover.
fn emit(command: &Command, utf8_names: bool) -> Option<Vec<u8>> {
    let mut out = command.tag.as_str().as_bytes().to_vec();
    let mailbox = |out: &mut Vec<u8>, verb: &str, name: &str| {
        out.extend_from_slice(verb.as_bytes());
        encode::mailbox(out, name, utf8_names);
    };
    match &command.body {
        CommandBody::Create(name) => mailbox(&mut out, " CREATE ", name),
        CommandBody::Delete(name) => mailbox(&mut out, " DELETE ", name),
        CommandBody::Subscribe(name) => mailbox(&mut out, " SUBSCRIBE ", name),
        CommandBody::Unsubscribe(name) => mailbox(&mut out, " UNSUBSCRIBE ", name),
        CommandBody::Select { mailbox: name, condstore, qresync: None } => {
            mailbox(&mut out, " SELECT ", name);
            if *condstore {
                out.extend_from_slice(b" (CONDSTORE)");
            }
        }
        CommandBody::Examine { mailbox: name, condstore, qresync: None } => {
            mailbox(&mut out, " EXAMINE ", name);
            if *condstore {
                out.extend_from_slice(b" (CONDSTORE)");
            }
        }
        CommandBody::Rename(old, new) => {
            mailbox(&mut out, " RENAME ", old);
            out.push(b' ');
            encode::mailbox(&mut out, new, utf8_names);
        }
        CommandBody::Login { user, password } => {
            out.extend_from_slice(b" LOGIN ");
            encode::astring(&mut out, user.as_bytes());
            out.push(b' ');
            encode::astring(&mut out, password.expose().as_bytes());
        }
        _ => return None,
    }
    Some(out)
}
