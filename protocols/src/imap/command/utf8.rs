//! UTF8=ACCEPT (RFC 6855): what changes once a client sent `ENABLE UTF8=ACCEPT` (only valid
//! once authenticated; `misc.rs` turns it on, `* ENABLED UTF8=ACCEPT`).
//!
//! - Mailbox names are UTF-8 on the wire both ways, as after `ENABLE IMAP4rev2`
//!   ([`Enabled::utf8_names`](crate::imap::session::Enabled::utf8_names)): the parser takes
//!   them as sent (`parser/values.rs`) and LIST, LSUB and STATUS write them as quoted UTF-8
//!   (`encode::mailbox`). Sessions that enabled neither keep modified UTF-7 exactly.
//! - Quoted strings may carry UTF-8 in every session (RFC 9051's grammar, which skua also
//!   speaks); invalid UTF-8 in one is `BAD` (`parser/cursor.rs`).
//! - `SEARCH CHARSET ...` is `BAD` (RFC 6855 §3: the client must not label its strings once
//!   they are UTF-8), and SORT/THREAD with a charset other than UTF-8 are too (RFC 6855
//!   erratum 4029). Without UTF8=ACCEPT both keep their usual answers.
//! - APPEND's `UTF8 (literal8)` data item, and the same as a CATENATE part (RFC 6855 §4), is
//!   accepted only after the ENABLE (`BAD` before: the syntax is the extension's), and stores
//!   the message as sent.
//! - An APPEND with 8-bit bytes in the header section is stored as sent in every session.
//!   RFC 6855 §4 asks for `NO` when the session enabled no UTF-8; RFC 9755, which replaces it,
//!   drops that rule, and mail being migrated (imapsync, mbsync) carries raw 8-bit headers
//!   from before RFC 6532 that must not be refused.
//! - CREATE and RENAME refuse names with U+2028 or U+2029 (`NO [CANNOT]`, RFC 6855 §3), in
//!   every session. Every name is taken in Unicode Normalization Form C (RFC 5198's
//!   Net-Unicode; `parser/values.rs`), so a decomposed spelling (macOS) and a composed one
//!   name the same mailbox.
//!
//! Messages with UTF-8 header fields (RFC 6532) are served as stored to every session, whether
//! or not it enabled UTF-8 (RFC 6855 §7 leaves the choice to the server; skua neither hides
//! nor downgrades them). What keeps a session that did not enable UTF-8 within RFC 3501's
//! syntax is the encoder: a string with an 8-bit byte is always written as a literal
//! (`encode::string`), never as a quoted string, and ENVELOPE/BODYSTRUCTURE strings go
//! through it. Such a client may still see raw UTF-8 inside those literals and in `BODY[]`.

use crate::imap::reply::{Code, Completion};
use crate::imap::session::Conn;
use crate::imap::types::CommandBody;

/// The `BAD` for a command that UTF8=ACCEPT's state forbids (see the module comment), checked
/// before the command runs.
#[must_use]
pub(crate) fn refuse(conn: &Conn, body: &CommandBody) -> Option<Completion> {
    let accept = conn.enabled.utf8_accept;
    match body {
        CommandBody::Search { charset: Some(_), .. } if accept => {
            Some(Completion::bad("SEARCH CHARSET is not allowed after ENABLE UTF8=ACCEPT"))
        }
        CommandBody::Sort { charset, .. } | CommandBody::Thread { charset, .. }
            if accept && !charset.eq_ignore_ascii_case("UTF-8") =>
        {
            Some(Completion::bad("Only the UTF-8 charset is allowed after ENABLE UTF8=ACCEPT"))
        }
        CommandBody::Append { messages, .. }
            if !accept && messages.iter().any(|message| message.utf8) =>
        {
            Some(Completion::bad("APPEND UTF8 needs ENABLE UTF8=ACCEPT"))
        }
        CommandBody::Create(name)
        | CommandBody::CreateSpecialUse { mailbox: name, .. }
        | CommandBody::Rename(_, name)
            if has_line_separator(name) =>
        {
            Some(Completion::no("Mailbox names may not hold U+2028 or U+2029").with(Code::Cannot))
        }
        _ => None,
    }
}

/// RFC 6855 §3: a mailbox name may not hold a line (U+2028) or paragraph (U+2029) separator;
/// the store refuses the other characters it lists (controls and DEL) itself. In every
/// session: a modified UTF-7 name can spell them too.
fn has_line_separator(name: &str) -> bool {
    name.contains(['\u{2028}', '\u{2029}'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_paragraph_separators_are_refused_in_names() {
        assert!(has_line_separator("a\u{2028}b") && has_line_separator("\u{2029}"));
        assert!(!has_line_separator("Entw\u{fc}rfe/\u{65e5}\u{672c}"));
    }
}
