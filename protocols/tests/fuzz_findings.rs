//! Inputs the fuzz targets found that break an expectation in code outside the fuzz
//! harness. Each test pins one finding; it is ignored until the code it names is fixed, and
//! the target that found it skips exactly that input class until then (see
//! `protocols/fuzz/README.md`, "Findings").

use skua_protocols::lmtp::command::{Command, ParseOptions, parse};
use skua_protocols::lmtp::envelope::RcptParameters;

fn rcpt(path: &str) -> Command {
    Command::Rcpt { forward_path: path.to_owned(), parameters: RcptParameters::default() }
}

/// Bug (found by the `lmtp_command` target): `RCPT TO:<@route,:@r2:user@example.com>` has a
/// source route whose second domain is empty. The strict parser accepts it and strips only up
/// to the first `:`, leaving the path `@r2:user@example.com`, which starts with `@` (no
/// RFC 5321 Mailbox does) and reads back, when written as `RCPT TO:<...>`, as a different
/// recipient (`user@example.com`). Invariant: a path the parser returns is a Mailbox, so
/// writing it back in angle brackets parses to the same command.
#[test]
fn lmtp_path_with_an_empty_route_domain() {
    let line = b"RCPT TO:<@route,:@r2:user@example.com>";
    // A well-formed route is still accepted and ignored.
    let routed =
        parse(b"RCPT TO:<@a.example,@[192.0.2.1]:user@example.com>", ParseOptions::default());
    assert_eq!(routed, Ok(rcpt("user@example.com")));
    match parse(line, ParseOptions::default()) {
        Err(_) => {}
        Ok(Command::Rcpt { forward_path: path, .. }) => {
            assert!(!path.starts_with('@'), "the path {path:?} is no Mailbox");
            let again = parse(format!("RCPT TO:<{path}>").as_bytes(), ParseOptions::default());
            assert_eq!(again, Ok(rcpt(&path)));
        }
        Ok(other) => panic!("{other:?}"),
    }
}
