//! The IMAP command grammar: framed bytes in, typed [`Command`]s out (RFC 9051, with the
//! `IMAP4rev1` forms of RFC 3501 and the extensions `types.rs` carries).
//!
//! # How the session uses it
//!
//! ```text
//! let mut framer = Framer::new(FrameLimits::default());
//! framer.feed(bytes_from_socket);
//! loop {
//!     match framer.next() {
//!         Framed::NeedInput => break,                        // read more, feed, loop again
//!         Framed::SendContinuation => write("+ Ready\r\n"),  // sync literal accepted
//!         Framed::Rejected(e) if e.is_fatal() => { write("* BYE ..."); close }
//!         Framed::Rejected(e) => write(tagged(e.tag, if e.is_append_too_big()
//!                                     { "NO [TOOBIG] ..." } else { "BAD ..." })),
//!         Framed::Frame(frame) => match state {
//!             Idling => parse_idle_done(frame.as_bytes()),          // DONE
//!             Authenticating => parse_sasl_response(frame.as_bytes()),
//!             _ => match parse_frame(frame, &options) {
//!                 Ok(command) => execute(command),
//!                 Err(e) => write(tagged_or_untagged(e.tag, "BAD", e.message)),
//!             },
//!         },
//!     }
//! }
//! ```
//!
//! `ParseOptions::utf8_names` must be set once the client enabled `IMAP4rev2` or
//! `UTF8=ACCEPT`: mailbox names are then UTF-8 on the wire; before, they are modified UTF-7
//! and are decoded here. Either way every mailbox name in a [`Command`] is UTF-8, and `INBOX`
//! in any case is `"INBOX"`.
//!
//! A parse error never loses sync: the framer already found the command's end. The error
//! carries the tag when it could be read (answer `tag BAD message`; otherwise `* BAD message`).
//!
//! The grammar is recursive descent over one frame, with recursion only for SEARCH keys, whose
//! depth is bounded (see `search.rs`). Every function documents the ABNF it accepts.

mod acl;
mod commands;
mod cursor;
pub mod date;
mod fetch;
mod metadata;
mod notify;
mod qresync;
mod quota;
mod search;
mod sort;
mod urlauth;
mod values;

use base64::Engine as _;
use thiserror::Error;

use crate::imap::framing::Frame;
use crate::imap::limits::ParseLimits;
use crate::imap::types::{Command, CommandBody, Tag, is_astring_char};

use commands::AppendParts;
use cursor::{Cursor, Fail, PResult, fail, syntax};
pub use notify::{
    Event as NotifyEvent, EventGroup, Filter as NotifyFilter, NotifyRequest, NotifySet,
};

/// What kind of refusal a [`ParseError`] is; all of them are answered with `BAD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// The bytes do not follow the grammar.
    Syntax,
    /// The command name is not one this server knows.
    UnknownCommand,
    /// A known extension or option this server does not implement (and does not announce).
    Unsupported,
    /// A list, set or nesting exceeded a [`ParseLimits`] bound.
    TooMany,
    /// A string is not UTF-8, or a mailbox name is not valid modified UTF-7.
    Encoding,
}

/// A command that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct ParseError {
    /// The tag, when the command started with a valid one.
    pub tag: Option<Tag>,
    /// The class of failure.
    pub kind: ParseErrorKind,
    /// A short human explanation, fit for the text of a `BAD` response.
    pub message: &'static str,
}

impl ParseError {
    fn new(tag: Option<Tag>, fail: Fail) -> ParseError {
        ParseError { tag, kind: fail.kind, message: fail.message }
    }
}

/// How to parse: limits, and whether mailbox names are UTF-8 on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Bounds on lists and nesting.
    pub limits: ParseLimits,
    /// The client enabled `IMAP4rev2` or `UTF8=ACCEPT`: names are not modified UTF-7.
    pub utf8_names: bool,
}

/// A client's answer during AUTHENTICATE.
#[derive(Clone, PartialEq, Eq)]
pub enum SaslResponse {
    /// The decoded response (may be empty).
    Data(Vec<u8>),
    /// `*`: the client cancels the exchange (answer `BAD`).
    Cancel,
}

impl std::fmt::Debug for SaslResponse {
    /// Redacted: a SASL response may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SaslResponse::Data(data) => write!(f, "Data(<{} bytes>)", data.len()),
            SaslResponse::Cancel => f.write_str("Cancel"),
        }
    }
}

/// Parses one command with default options (see [`parse_command_with`]).
///
/// # Errors
/// [`ParseError`] when the bytes are not a command this server understands.
pub fn parse_command(input: &[u8]) -> Result<Command, ParseError> {
    parse_command_with(input, &ParseOptions::default())
}

/// Parses one command: `command = tag SP (command-any / command-auth / command-nonauth /
/// command-select)`, without its final CRLF, literals inline (what [`Frame`] holds).
///
/// # Errors
/// [`ParseError`] when the bytes are not a command this server understands.
pub fn parse_command_with(input: &[u8], options: &ParseOptions) -> Result<Command, ParseError> {
    let (tag, parsed) = parse_parts(input, options)?;
    let body = match parsed {
        Parsed::Body(body) => body,
        Parsed::Append(parts) => parts.into_body_copied(input),
    };
    Ok(Command { tag, body })
}

/// Parses a frame, moving an APPEND message out of the frame's buffer instead of copying it.
///
/// # Errors
/// [`ParseError`] when the bytes are not a command this server understands.
pub fn parse_frame(frame: Frame, options: &ParseOptions) -> Result<Command, ParseError> {
    let (tag, parsed) = parse_parts(frame.as_bytes(), options)?;
    let body = match parsed {
        Parsed::Body(body) => body,
        Parsed::Append(parts) => parts.into_body(frame.into_bytes()),
    };
    Ok(Command { tag, body })
}

/// `idle = "IDLE" CRLF "DONE"`: the line that ends IDLE, without its CRLF, in any case.
///
/// # Errors
/// [`ParseError`] for any other line (RFC 2177: the session answers `BAD` and stays idle or
/// ends IDLE, its choice).
pub fn parse_idle_done(line: &[u8]) -> Result<(), ParseError> {
    if line.eq_ignore_ascii_case(b"DONE") {
        Ok(())
    } else {
        let fail = Fail { kind: ParseErrorKind::Syntax, message: "expected DONE" };
        Err(ParseError::new(None, fail))
    }
}

/// A line sent during AUTHENTICATE, without its CRLF:
/// `base64 = *(4base64-char) [base64-terminal]`, or `"*"` to cancel (RFC 9051 §6.2.2).
///
/// # Errors
/// [`ParseError`] when the line is neither `*` nor valid padded base64.
pub fn parse_sasl_response(line: &[u8]) -> Result<SaslResponse, ParseError> {
    if line == b"*" {
        return Ok(SaslResponse::Cancel);
    }
    decode_base64(line).map(SaslResponse::Data)
}

/// Decodes an AUTHENTICATE initial response (SASL-IR, RFC 4959): `=` is the empty response.
///
/// # Errors
/// [`ParseError`] when the text is not valid padded base64.
pub fn decode_initial_response(text: &str) -> Result<Vec<u8>, ParseError> {
    if text == "=" { Ok(Vec::new()) } else { decode_base64(text.as_bytes()) }
}

fn decode_base64(text: &[u8]) -> Result<Vec<u8>, ParseError> {
    base64::engine::general_purpose::STANDARD.decode(text).map_err(|_| {
        let fail = Fail { kind: ParseErrorKind::Syntax, message: "invalid base64" };
        ParseError::new(None, fail)
    })
}

/// `base64 = *(4base64-char) [base64-terminal]`, non-empty.
pub(crate) fn is_base64(text: &[u8]) -> bool {
    !text.is_empty() && base64::engine::general_purpose::STANDARD.decode(text).is_ok()
}

/// `section-spec` without its brackets, already %-decoded: an IMAP URL's `;SECTION=`
/// (RFC 5092 `enc-section`), parsed as FETCH parses `BODY[...]`.
pub(crate) fn parse_section_spec(spec: &[u8]) -> Option<crate::imap::types::Section> {
    let mut input = Vec::with_capacity(spec.len() + 2);
    input.push(b'[');
    input.extend_from_slice(spec);
    input.push(b']');
    let mut c = Cursor::new(&input, ParseLimits::default(), false);
    let section = fetch::section(&mut c).ok()?;
    c.end().ok()?;
    Some(section)
}

/// A parsed body, or an APPEND whose message is still a range of the input.
enum Parsed {
    Body(CommandBody),
    Append(AppendParts),
}

/// `tag SP command-body`, then the end of input.
fn parse_parts(input: &[u8], options: &ParseOptions) -> Result<(Tag, Parsed), ParseError> {
    let mut c = Cursor::new(input, options.limits, options.utf8_names);
    let raw_tag = c.take_while(|b| is_astring_char(b) && b != b'+');
    let Some(tag) = Tag::new(raw_tag) else {
        let fail = Fail { kind: ParseErrorKind::Syntax, message: "missing or invalid tag" };
        return Err(ParseError::new(None, fail));
    };
    let result = c.sp().and_then(|()| command_body(&mut c)).and_then(|parsed| {
        c.end()?;
        Ok(parsed)
    });
    match result {
        Ok(parsed) => Ok((tag, parsed)),
        Err(fail) => Err(ParseError::new(Some(tag), fail)),
    }
}

/// Dispatches on the command name.
fn command_body(c: &mut Cursor<'_>) -> PResult<Parsed> {
    let name = c.keyword()?;
    let body = match name.as_slice() {
        b"CAPABILITY" => CommandBody::Capability,
        // CHECK (IMAP4rev1 only) asks for a checkpoint; every change here is already durable
        // when acknowledged, so it is a NOOP (RFC 9051 Appendix E).
        b"NOOP" | b"CHECK" => CommandBody::Noop,
        b"LOGOUT" => CommandBody::Logout,
        b"STARTTLS" => CommandBody::StartTls,
        b"IDLE" => CommandBody::Idle,
        b"CLOSE" => CommandBody::Close,
        b"UNSELECT" => CommandBody::Unselect,
        b"UNAUTHENTICATE" => CommandBody::Unauthenticate,
        b"NAMESPACE" => CommandBody::Namespace,
        b"EXPUNGE" => CommandBody::Expunge { uids: None },
        b"LOGIN" => commands::login(c)?,
        b"AUTHENTICATE" => commands::authenticate(c)?,
        b"ENABLE" => commands::enable(c)?,
        b"SELECT" => commands::select(c, false)?,
        b"EXAMINE" => commands::select(c, true)?,
        b"CREATE" => commands::create(c)?,
        b"DELETE" => CommandBody::Delete(commands::one_mailbox(c)?),
        b"RENAME" => commands::rename(c)?,
        b"SUBSCRIBE" => CommandBody::Subscribe(commands::one_mailbox(c)?),
        b"UNSUBSCRIBE" => CommandBody::Unsubscribe(commands::one_mailbox(c)?),
        b"LIST" => commands::list(c)?,
        b"LSUB" => commands::lsub(c)?,
        b"STATUS" => commands::status(c)?,
        b"APPEND" => return commands::append(c).map(Parsed::Append),
        b"UID" => uid_command(c)?,
        b"ID" => commands::id(c)?,
        b"COMPRESS" => commands::compress(c)?,
        b"RESETKEY" => urlauth::resetkey(c)?,
        b"GENURLAUTH" => urlauth::genurlauth(c)?,
        b"URLFETCH" => urlauth::urlfetch(c)?,
        b"NOTIFY" => CommandBody::Notify(Box::new(notify::notify(c)?)),
        b"GETMETADATA" => metadata::getmetadata(c)?,
        b"SETMETADATA" => metadata::setmetadata(c)?,
        b"GETACL" => acl::getacl(c)?,
        b"SETACL" => acl::setacl(c)?,
        b"DELETEACL" => acl::deleteacl(c)?,
        b"LISTRIGHTS" => acl::listrights(c)?,
        b"MYRIGHTS" => acl::myrights(c)?,
        b"GETQUOTA" => quota::getquota(c)?,
        b"GETQUOTAROOT" => quota::getquotaroot(c)?,
        b"SETQUOTA" => quota::setquota(c)?,
        _ => select_command(c, name.as_slice(), false)?,
    };
    Ok(Parsed::Body(body))
}

/// `uid = "UID" SP (copy / move / fetch / search / store / uid-expunge)`; `sort` and
/// `thread` too (RFC 5256).
fn uid_command(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    let name = c.keyword()?;
    if name.as_slice() == b"EXPUNGE" {
        return commands::uid_expunge(c);
    }
    select_command(c, name.as_slice(), true)
}

/// The commands that take an optional `UID` prefix.
fn select_command(c: &mut Cursor<'_>, name: &[u8], uid: bool) -> PResult<CommandBody> {
    match name {
        b"FETCH" => {
            c.sp()?;
            fetch::fetch(c, uid)
        }
        b"STORE" => commands::store(c, uid),
        b"SEARCH" => search::search(c, uid),
        b"SORT" => sort::sort(c, uid),
        b"CANCELUPDATE" if !uid => search::cancel_update(c),
        b"THREAD" => sort::thread(c, uid),
        b"COPY" => commands::copy_or_move(c, uid, false),
        b"MOVE" => commands::copy_or_move(c, uid, true),
        _ if uid => syntax("unknown UID command"),
        _ => fail(ParseErrorKind::UnknownCommand, "unknown command"),
    }
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
