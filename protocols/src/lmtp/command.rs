//! LMTP command lines: bytes to typed commands (RFC 2033, RFC 5321 §4.1, RFC 3030, RFC 1870,
//! RFC 6152).
//!
//! The parser sees one line without its line ending and never allocates more than the line.
//! It is strict; the one leniency real clients need (a space after `FROM:`/`TO:`) is the
//! named option [`ParseOptions::quirk_space_after_colon`].

pub use crate::lmtp::envelope::Body;
use crate::lmtp::envelope::{self, MailParameters, RcptParameters};
use crate::lmtp::limits::ADDRESS_BYTES_MAX;

/// One client command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `LHLO domain`
    Lhlo(String),
    /// `HELO`/`EHLO`: SMTP's greetings, which LMTP refuses (RFC 2033 §4.1).
    SmtpHello,
    /// `STARTTLS` (RFC 3207).
    StartTls,
    /// `MAIL FROM:<reverse-path> [parameters]`; the path is empty for `<>`.
    Mail {
        /// The reverse path without angle brackets (and without a source route).
        reverse_path: String,
        /// `SIZE`, `BODY`, `SMTPUTF8`, `RET`, `ENVID`.
        parameters: MailParameters,
    },
    /// `RCPT TO:<forward-path> [parameters]`
    Rcpt {
        /// The forward path without angle brackets.
        forward_path: String,
        /// `NOTIFY`, `ORCPT`.
        parameters: RcptParameters,
    },
    /// `DATA`
    Data,
    /// `BDAT chunk-size [LAST]` (RFC 3030).
    Bdat {
        /// Octets of chunk data that follow the command line.
        size: u64,
        /// `LAST`: this chunk ends the message.
        last: bool,
    },
    /// `RSET`
    Rset,
    /// `NOOP [string]`
    Noop,
    /// `QUIT`
    Quit,
    /// `VRFY string`
    Vrfy,
}

/// Why a line is not a command we accept; each maps to one reply in the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Not a command verb we know: `500 5.5.1`.
    Unknown,
    /// A known verb with bad arguments: `501 5.5.4`, with the detail.
    Syntax(&'static str),
    /// A `MAIL`/`RCPT` parameter we do not support: `555 5.5.4`.
    Parameter(&'static str),
    /// A non-ASCII reverse path without `SMTPUTF8` (RFC 6531 §3.4): `553 5.6.7`.
    NeedsSmtpUtf8,
}

/// Parser options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Accept `MAIL FROM: <a@b>` (spaces after the colon), which RFC 5321 forbids but some
    /// clients send.
    pub quirk_space_after_colon: bool,
}

/// Parses one command line (line ending removed).
///
/// # Errors
/// [`ParseError`] describing the reply to give.
pub fn parse(line: &[u8], options: ParseOptions) -> Result<Command, ParseError> {
    let Ok(line) = std::str::from_utf8(line) else {
        return Err(ParseError::Syntax("command is not UTF-8"));
    };
    if line.chars().any(char::is_control) {
        return Err(ParseError::Syntax("control character in command"));
    }
    let (verb, arguments) = match line.split_once(' ') {
        Some((verb, arguments)) => (verb, Some(arguments)),
        None => (line, None),
    };
    match verb.to_ascii_uppercase().as_str() {
        "LHLO" => parse_lhlo(arguments),
        "HELO" | "EHLO" => Ok(Command::SmtpHello),
        "MAIL" => parse_mail(arguments.unwrap_or(""), options),
        "RCPT" => parse_rcpt(arguments.unwrap_or(""), options),
        "DATA" => no_arguments(arguments, Command::Data),
        "BDAT" => parse_bdat(arguments.unwrap_or("")),
        "RSET" => no_arguments(arguments, Command::Rset),
        "QUIT" => no_arguments(arguments, Command::Quit),
        "STARTTLS" => no_arguments(arguments, Command::StartTls),
        "NOOP" => Ok(Command::Noop),
        "VRFY" => match arguments {
            Some(argument) if !argument.trim().is_empty() => Ok(Command::Vrfy),
            _ => Err(ParseError::Syntax("VRFY needs an argument")),
        },
        _ => Err(ParseError::Unknown),
    }
}

fn no_arguments(arguments: Option<&str>, command: Command) -> Result<Command, ParseError> {
    match arguments {
        None => Ok(command),
        Some(_) => Err(ParseError::Syntax("no arguments allowed")),
    }
}

/// `lhlo = "LHLO" SP ( Domain / address-literal ) CRLF`
fn parse_lhlo(arguments: Option<&str>) -> Result<Command, ParseError> {
    match arguments {
        Some(domain) if !domain.is_empty() && !domain.contains(' ') => {
            Ok(Command::Lhlo(domain.to_owned()))
        }
        _ => Err(ParseError::Syntax("LHLO needs one domain")),
    }
}

/// `mail = "MAIL FROM:" Reverse-path [SP Mail-parameters] CRLF`
fn parse_mail(arguments: &str, options: ParseOptions) -> Result<Command, ParseError> {
    let rest = strip_keyword(arguments, "FROM:", options)?;
    let (reverse_path, parameters) = parse_path(rest)?;
    let parameters = envelope::mail_parameters(&parameters)?;
    if !parameters.smtputf8 && !reverse_path.is_ascii() {
        return Err(ParseError::NeedsSmtpUtf8);
    }
    Ok(Command::Mail { reverse_path, parameters })
}

/// `rcpt = "RCPT TO:" ( "<Postmaster@" Domain ">" / "<Postmaster>" / Forward-path )
/// [SP Rcpt-parameters] CRLF`
fn parse_rcpt(arguments: &str, options: ParseOptions) -> Result<Command, ParseError> {
    let rest = strip_keyword(arguments, "TO:", options)?;
    let (forward_path, parameters) = parse_path(rest)?;
    if forward_path.is_empty() {
        return Err(ParseError::Syntax("empty recipient"));
    }
    let parameters = envelope::rcpt_parameters(&parameters)?;
    Ok(Command::Rcpt { forward_path, parameters })
}

/// `bdat = "BDAT" SP chunk-size [ SP end-marker ] CRLF`, `chunk-size = 1*DIGIT`,
/// `end-marker = "LAST"`
fn parse_bdat(arguments: &str) -> Result<Command, ParseError> {
    let mut words = arguments.split(' ');
    let digits = words.next().unwrap_or("");
    let valid =
        !digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit());
    let size = digits.parse::<u64>().ok().filter(|_| valid);
    let size = size.ok_or(ParseError::Syntax("bad BDAT chunk size"))?;
    let last = match words.next() {
        None => false,
        Some(marker) if marker.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(ParseError::Syntax("BDAT end marker must be LAST")),
    };
    if words.next().is_some() {
        return Err(ParseError::Syntax("too many BDAT arguments"));
    }
    Ok(Command::Bdat { size, last })
}

fn strip_keyword<'a>(
    arguments: &'a str,
    keyword: &str,
    options: ParseOptions,
) -> Result<&'a str, ParseError> {
    let head = arguments.get(..keyword.len()).filter(|head| head.eq_ignore_ascii_case(keyword));
    let Some(_) = head else {
        return Err(ParseError::Syntax("expected FROM:<path> or TO:<path>"));
    };
    let rest = &arguments[keyword.len()..];
    if options.quirk_space_after_colon { Ok(rest.trim_start_matches(' ')) } else { Ok(rest) }
}

type Parameters<'a> = Vec<(&'a str, Option<&'a str>)>;

/// `Path = "<" [ A-d-l ":" ] Mailbox ">"` followed by `*(SP esmtp-param)`. Returns the mailbox
/// (empty for `<>`) and the parameters. The mailbox's local part may be a quoted string, which
/// may hold spaces and `>`.
fn parse_path(text: &str) -> Result<(String, Parameters<'_>), ParseError> {
    let inner = text.strip_prefix('<').ok_or(ParseError::Syntax("path must start with '<'"))?;
    let end = path_end(inner).ok_or(ParseError::Syntax("path must end with '>'"))?;
    let mut mailbox = &inner[..end];
    if mailbox.starts_with('@') {
        // A source route, which RFC 5321 §4.1.1.3 says to accept and ignore.
        let (route, rest) =
            mailbox.split_once(':').ok_or(ParseError::Syntax("bad source route"))?;
        validate_route(route)?;
        mailbox = rest;
    }
    if mailbox.starts_with('@') {
        return Err(ParseError::Syntax("bad source route"));
    }
    if mailbox.len() > ADDRESS_BYTES_MAX {
        return Err(ParseError::Syntax("path too long"));
    }
    validate_mailbox(mailbox)?;
    let after = &inner[end + 1..];
    let mut parameters = Vec::new();
    if !after.is_empty() {
        let after = after.strip_prefix(' ').ok_or(ParseError::Syntax("junk after path"))?;
        for parameter in after.split(' ') {
            parameters.push(parse_parameter(parameter)?);
        }
    }
    Ok((mailbox.to_owned(), parameters))
}

/// A source route, RFC 5321 §4.1.2: `A-d-l = At-domain *( "," At-domain )`,
/// `At-domain = "@" Domain`. Only its shape is checked (it is ignored): every element is `@`
/// and a non-empty domain of letters, digits, `-`, `.`, or an address literal in brackets.
fn validate_route(route: &str) -> Result<(), ParseError> {
    for at_domain in route.split(',') {
        let domain = at_domain.strip_prefix('@').ok_or(ParseError::Syntax("bad source route"))?;
        let literal = domain.starts_with('[') && domain.ends_with(']') && domain.len() > 2;
        let name = !domain.is_empty()
            && domain.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !(literal || name) {
            return Err(ParseError::Syntax("bad source route"));
        }
    }
    Ok(())
}

/// The offset of the `>` that closes a path, skipping quoted strings.
fn path_end(inner: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (index, c) in inner.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => return Some(index),
            _ => {}
        }
    }
    None
}

/// Outside quoted strings a mailbox has no spaces, `<` or `>`, and quoted strings are closed.
/// Finer checks (domain syntax) are the MTA's business: it already accepted the address.
fn validate_mailbox(mailbox: &str) -> Result<(), ParseError> {
    let mut quoted = false;
    let mut escaped = false;
    for c in mailbox.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ' ' | '<' | '>' if !quoted => return Err(ParseError::Syntax("bad character in path")),
            _ => {}
        }
    }
    if quoted { Err(ParseError::Syntax("unterminated quoted string")) } else { Ok(()) }
}

/// `esmtp-param = esmtp-keyword ["=" esmtp-value]`,
/// `esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")`,
/// `esmtp-value = 1*(%d33-60 / %d62-126)`
fn parse_parameter(parameter: &str) -> Result<(&str, Option<&str>), ParseError> {
    let (keyword, value) = match parameter.split_once('=') {
        Some((keyword, value)) => (keyword, Some(value)),
        None => (parameter, None),
    };
    let keyword_valid = keyword.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && keyword.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let value_valid = value
        .is_none_or(|v| !v.is_empty() && v.bytes().all(|b| (33..=126).contains(&b) && b != b'='));
    if keyword_valid && value_valid {
        Ok((keyword, value))
    } else {
        Err(ParseError::Syntax("bad parameter"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict(line: &str) -> Result<Command, ParseError> {
        parse(line.as_bytes(), ParseOptions::default())
    }

    #[test]
    fn simple_verbs() {
        assert_eq!(strict("LHLO mx.example.com"), Ok(Command::Lhlo("mx.example.com".into())));
        assert_eq!(strict("lhlo [127.0.0.1]"), Ok(Command::Lhlo("[127.0.0.1]".into())));
        assert!(matches!(strict("LHLO"), Err(ParseError::Syntax(_))));
        assert_eq!(strict("EHLO x"), Ok(Command::SmtpHello));
        assert_eq!(strict("starttls"), Ok(Command::StartTls));
        assert!(matches!(strict("STARTTLS now"), Err(ParseError::Syntax(_))));
        assert_eq!(strict("data"), Ok(Command::Data));
        assert!(matches!(strict("DATA now"), Err(ParseError::Syntax(_))));
        assert_eq!(strict("NOOP whatever"), Ok(Command::Noop));
        assert_eq!(strict("VRFY alice"), Ok(Command::Vrfy));
        assert!(matches!(strict("VRFY"), Err(ParseError::Syntax(_))));
        assert_eq!(strict("HELP"), Err(ParseError::Unknown));
        assert_eq!(strict(""), Err(ParseError::Unknown));
        assert!(matches!(parse(b"NOOP \x00", ParseOptions::default()), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"NOOP \xff", ParseOptions::default()), Err(ParseError::Syntax(_))));
    }

    fn mail_command(reverse_path: &str, parameters: MailParameters) -> Command {
        Command::Mail { reverse_path: reverse_path.into(), parameters }
    }

    fn rcpt_command(forward_path: &str) -> Command {
        Command::Rcpt { forward_path: forward_path.into(), parameters: RcptParameters::default() }
    }

    #[test]
    fn mail_from() {
        let size_and_body =
            MailParameters { size: Some(1000), body: Body::EightBitMime, ..Default::default() };
        assert_eq!(
            strict("MAIL FROM:<a@b.example> SIZE=1000 BODY=8BITMIME"),
            Ok(mail_command("a@b.example", size_and_body))
        );
        assert_eq!(strict("mail from:<>"), Ok(mail_command("", MailParameters::default())));
        assert_eq!(
            strict("MAIL FROM:<@relay.example,@r2.example:a@b.example>"),
            Ok(mail_command("a@b.example", MailParameters::default()))
        );
        assert!(matches!(strict("MAIL FROM:<a@b> SIZE=x"), Err(ParseError::Syntax(_))));
        assert!(matches!(strict("MAIL FROM:<a@b> SIZE=1 SIZE=2"), Err(ParseError::Syntax(_))));
        assert!(matches!(strict("MAIL FROM:<a@b> BODY=9BIT"), Err(ParseError::Parameter(_))));
        assert!(matches!(strict("MAIL FROM:<a@b> AUTH=<>"), Err(ParseError::Parameter(_))));
        assert!(matches!(strict("MAIL FROM:<a@b>  SIZE=1"), Err(ParseError::Syntax(_))));
        assert!(matches!(strict("MAIL FROM:a@b"), Err(ParseError::Syntax(_))));
        assert!(matches!(strict("MAIL FROM:<a@b"), Err(ParseError::Syntax(_))));
        assert!(matches!(strict("MAIL TO:<a@b>"), Err(ParseError::Syntax(_))));
        assert!(matches!(strict("MAIL FROM: <a@b>"), Err(ParseError::Syntax(_))));
        let lenient = ParseOptions { quirk_space_after_colon: true };
        assert!(matches!(parse(b"MAIL FROM: <a@b>", lenient), Ok(Command::Mail { .. })));
    }

    #[test]
    fn mail_from_with_extensions() {
        let all = MailParameters {
            size: None,
            body: Body::BinaryMime,
            smtputf8: true,
            ret: Some(crate::lmtp::envelope::Ret::Full),
            envid: Some("id 1".into()),
        };
        assert_eq!(
            strict(
                "MAIL FROM:<j\u{f6}rg@b.example> BODY=BINARYMIME SMTPUTF8 RET=FULL ENVID=id+201"
            ),
            Ok(mail_command("j\u{f6}rg@b.example", all))
        );
        assert_eq!(strict("MAIL FROM:<j\u{f6}rg@b.example>"), Err(ParseError::NeedsSmtpUtf8));
        assert!(matches!(strict("MAIL FROM:<a@b> RET=NONE"), Err(ParseError::Syntax(_))));
        assert!(matches!(strict("MAIL FROM:<a@b> ENVID=a+zz"), Err(ParseError::Syntax(_))));
    }

    #[test]
    fn rcpt_to() {
        assert_eq!(strict("RCPT TO:<alice@example.com>"), Ok(rcpt_command("alice@example.com")));
        assert_eq!(strict("rcpt to:<Postmaster>"), Ok(rcpt_command("Postmaster")));
        assert_eq!(
            strict("RCPT TO:<\"odd > name\"@example.com>"),
            Ok(rcpt_command("\"odd > name\"@example.com"))
        );
        assert!(matches!(strict("RCPT TO:<>"), Err(ParseError::Syntax(_))));
        assert!(matches!(strict("RCPT TO:<a b@c>"), Err(ParseError::Syntax(_))));
        let Ok(Command::Rcpt { parameters, .. }) =
            strict("RCPT TO:<a@b> NOTIFY=NEVER ORCPT=rfc822;a@b")
        else {
            panic!("DSN parameters are accepted");
        };
        assert_eq!(parameters.notify.map(|n| n.to_string()).as_deref(), Some("NEVER"));
        assert!(matches!(strict("RCPT TO:<a@b> NOTIFY=ALWAYS"), Err(ParseError::Syntax(_))));
        assert!(matches!(strict("RCPT TO:<a@b> ORCPT=a@b"), Err(ParseError::Syntax(_))));
        assert!(matches!(strict("RCPT TO:<a@b> FOO=1"), Err(ParseError::Parameter(_))));
        let long = format!("RCPT TO:<{}@example.com>", "a".repeat(ADDRESS_BYTES_MAX));
        assert!(matches!(strict(&long), Err(ParseError::Syntax(_))));
    }

    #[test]
    fn bdat() {
        assert_eq!(strict("BDAT 100"), Ok(Command::Bdat { size: 100, last: false }));
        assert_eq!(strict("bdat 0 last"), Ok(Command::Bdat { size: 0, last: true }));
        for bad in [
            "BDAT",
            "BDAT x",
            "BDAT -1",
            "BDAT 1 FIRST",
            "BDAT 1 LAST x",
            "BDAT 99999999999999999999999",
        ] {
            assert!(matches!(strict(bad), Err(ParseError::Syntax(_))), "{bad}");
        }
    }
}
