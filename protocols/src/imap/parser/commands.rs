//! The commands with simple arguments: authentication, mailbox management, LIST/LSUB, STATUS,
//! APPEND, STORE, COPY/MOVE, ENABLE and ID (RFC 9051 §6, RFC 5258, RFC 7162, RFC 2971).
//! Each function is called after the command name and parses from its first `SP`.

use std::ops::Range;

use crate::imap::types::{
    AppendData, AppendMessage, CatenatePart, CommandBody, Flag, Secret, StatusAttribute,
};
use skua_core::types::FlagsOp;

use super::ParseErrorKind;
use super::cursor::{Cursor, PResult, fail, syntax, utf8};
use super::values::{date_time, flag_list, flags_bare, list_mailbox, mailbox, sequence_set};

/// An APPEND whose messages are still ranges of the frame, so the caller can move a single
/// message out of the frame's buffer instead of copying it.
pub(crate) struct AppendParts {
    pub mailbox: String,
    pub messages: Vec<AppendMessageParts>,
}

/// One message of [`AppendParts`].
pub(crate) struct AppendMessageParts {
    pub flags: Vec<Flag>,
    pub date: Option<skua_core::types::InternalDate>,
    pub data: DataParts,
    pub binary: bool,
    pub utf8: bool,
}

/// `append-data` with its literals as ranges of the frame.
pub(crate) enum DataParts {
    Literal(Range<usize>),
    Catenate(Vec<CatenateRange>),
}

/// `cat-part` with a `TEXT` literal as a range of the frame.
pub(crate) enum CatenateRange {
    Text(Range<usize>),
    Url(String),
}

impl AppendParts {
    /// The command, its literals moved out of `frame` (the bytes the ranges point into). A
    /// single literal message (the common APPEND) becomes the frame's own buffer, cut to it,
    /// without a copy; several are copied out.
    pub(crate) fn into_body(mut self, mut frame: Vec<u8>) -> CommandBody {
        if let [AppendMessageParts { data: DataParts::Literal(range), .. }] =
            self.messages.as_slice()
        {
            let range = range.clone();
            let message = self.messages.pop().expect("one message");
            frame.truncate(range.end);
            frame.drain(..range.start);
            let message = AppendMessage {
                flags: message.flags,
                date: message.date,
                data: AppendData::Literal(frame),
                binary: message.binary,
                utf8: message.utf8,
            };
            return CommandBody::Append { mailbox: self.mailbox, messages: vec![message] };
        }
        self.into_body_copied(&frame)
    }

    /// The command, its literals copied out of `input`.
    pub(crate) fn into_body_copied(self, input: &[u8]) -> CommandBody {
        let messages = self
            .messages
            .into_iter()
            .map(|message| AppendMessage {
                flags: message.flags,
                date: message.date,
                binary: message.binary,
                utf8: message.utf8,
                data: match message.data {
                    DataParts::Literal(range) => AppendData::Literal(input[range].to_vec()),
                    DataParts::Catenate(parts) => AppendData::Catenate(
                        parts
                            .into_iter()
                            .map(|part| match part {
                                CatenateRange::Text(range) => {
                                    CatenatePart::Text(input[range].to_vec())
                                }
                                CatenateRange::Url(url) => CatenatePart::Url(url),
                            })
                            .collect(),
                    ),
                },
            })
            .collect();
        CommandBody::Append { mailbox: self.mailbox, messages }
    }
}

/// `login = "LOGIN" SP userid SP password` with `userid = astring`, `password = astring`.
pub(crate) fn login(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    let user = utf8(c.astring()?, "user name is not UTF-8")?;
    c.sp()?;
    let password = Secret::new(utf8(c.astring()?, "password is not UTF-8")?);
    Ok(CommandBody::Login { user, password })
}

/// ```text
/// authenticate = "AUTHENTICATE" SP auth-type [SP initial-resp]
/// auth-type    = atom
/// initial-resp = (base64 / "=")                                    ; RFC 4959
/// base64       = *(4base64-char) [base64-terminal]
/// ```
/// The mechanism is upper-cased; the initial response is kept as sent (base64 text or `=`).
pub(crate) fn authenticate(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    let mechanism = std::str::from_utf8(c.atom()?).expect("atoms are ASCII").to_ascii_uppercase();
    let initial_response = if c.eat(b' ') {
        let text = c.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
        if text != b"=" && !super::is_base64(text) {
            return syntax("initial response is not base64");
        }
        Some(Secret::new(std::str::from_utf8(text).expect("base64 is ASCII").to_owned()))
    } else {
        None
    };
    Ok(CommandBody::Authenticate { mechanism, initial_response })
}

/// `enable = "ENABLE" 1*(SP capability)`, `capability = atom`; names are upper-cased.
pub(crate) fn enable(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    let mut names = Vec::new();
    while c.eat(b' ') {
        if names.len() == c.limits.list_items_max {
            return fail(ParseErrorKind::TooMany, "too many capabilities");
        }
        let atom = c.atom()?;
        names.push(std::str::from_utf8(atom).expect("atoms are ASCII").to_ascii_uppercase());
    }
    if names.is_empty() {
        return syntax("ENABLE needs at least one capability");
    }
    Ok(CommandBody::Enable(names))
}

/// ```text
/// select        = "SELECT" SP mailbox [select-params]
/// examine       = "EXAMINE" SP mailbox [select-params]
/// select-params = SP "(" select-param *(SP select-param) ")"
/// select-param  = "CONDSTORE"                                      ; RFC 7162
///               / "QRESYNC" SP "(" uidvalidity SP mod-sequence-value
///                 [SP known-uids] [SP seq-match-data] ")"             ; RFC 7162 §7
/// ```
pub(crate) fn select(c: &mut Cursor<'_>, examine: bool) -> PResult<CommandBody> {
    c.sp()?;
    let mailbox = mailbox(c)?;
    let mut condstore = false;
    let mut qresync = None;
    if c.eat(b' ') {
        c.expect(b'(', "expected select parameters")?;
        loop {
            let word = c.word()?;
            if word.eq_ignore_ascii_case(b"CONDSTORE") {
                condstore = true;
            } else if word.eq_ignore_ascii_case(b"QRESYNC") && qresync.is_none() {
                c.sp()?;
                qresync = Some(Box::new(super::qresync::params(c)?));
            } else {
                return syntax("unknown select parameter");
            }
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
    }
    Ok(if examine {
        CommandBody::Examine { mailbox, condstore, qresync }
    } else {
        CommandBody::Select { mailbox, condstore, qresync }
    })
}

/// `SP mailbox` (CREATE, DELETE, SUBSCRIBE, UNSUBSCRIBE).
pub(crate) fn one_mailbox(c: &mut Cursor<'_>) -> PResult<String> {
    c.sp()?;
    mailbox(c)
}

/// ```text
/// create        = "CREATE" SP mailbox [create-params]             ; RFC 4466
/// create-params = SP "(" create-param *(SP create-param) ")"
/// create-param  =/ "USE" SP "(" [use-attr *(SP use-attr)] ")"      ; RFC 6154
/// use-attr      = "\All" / "\Archive" / ... / use-attr-ext
/// use-attr-ext  = "\" atom
/// ```
/// USE is the only create parameter known (another is a syntax error); its attributes are
/// kept as sent (with the `\`) and judged by the command (`NO [USEATTR]`).
pub(crate) fn create(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    let mailbox = one_mailbox(c)?;
    if !c.eat(b' ') {
        return Ok(CommandBody::Create(mailbox));
    }
    c.expect(b'(', "expected create parameters")?;
    let mut uses = None;
    loop {
        if c.keyword()?.as_slice() != b"USE" || uses.is_some() {
            return syntax("unknown or repeated create parameter");
        }
        c.sp()?;
        c.expect(b'(', "expected (")?;
        let mut attributes = Vec::new();
        while !c.eat(b')') {
            if !attributes.is_empty() {
                c.sp()?;
            }
            if attributes.len() == c.limits.list_items_max {
                return fail(ParseErrorKind::TooMany, "too many attributes");
            }
            c.expect(b'\\', "expected a special-use attribute")?;
            let atom = std::str::from_utf8(c.atom()?).expect("atoms are ASCII");
            attributes.push(format!("\\{atom}"));
        }
        uses = Some(attributes);
        if c.eat(b')') {
            break;
        }
        c.sp()?;
    }
    let uses = uses.expect("the loop reads USE");
    Ok(CommandBody::CreateSpecialUse { mailbox, uses })
}

/// `rename = "RENAME" SP mailbox SP mailbox`
pub(crate) fn rename(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    let old = one_mailbox(c)?;
    let new = one_mailbox(c)?;
    Ok(CommandBody::Rename(old, new))
}

/// ```text
/// list             = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat
///                    [SP list-return-opts]
/// list-select-opts = "(" [list-select-opt *(SP list-select-opt)] ")"
/// list-select-opt  = "SUBSCRIBED" / "REMOTE" / "SPECIAL-USE"          ; RFC 6154
/// mbox-or-pat      = list-mailbox / patterns
/// patterns         = "(" list-mailbox *(SP list-mailbox) ")"
/// list-return-opts = "RETURN" SP "(" [return-option *(SP return-option)] ")"
/// return-option    = "SUBSCRIBED" / "CHILDREN" / "SPECIAL-USE"
///                    / "METADATA" SP "(" entry *(SP entry) ")"    ; RFC 9590 (metadata.rs)
/// ```
/// `REMOTE` is accepted and means nothing (there are no remote mailboxes). `CHILDREN` is
/// accepted: the session always reports `\HasChildren`/`\HasNoChildren`. `RECURSIVEMATCH`
/// needs another selection option (RFC 5258 §3.1: SUBSCRIBED, the only one here).
/// `RETURN (STATUS (...))` is LIST-STATUS (RFC 5819). `RETURN (SPECIAL-USE)` is accepted:
/// special-use attributes are always returned (RFC 6154 §2 allows it). `RETURN (MYRIGHTS)` is
/// LIST-MYRIGHTS (RFC 8440).
pub(crate) fn list(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    let mut subscribed_only = false;
    let mut recursive_match = false;
    let mut special_use_only = false;
    if c.peek() == Some(b'(') {
        option_words(c, |option| match option {
            b"SUBSCRIBED" => {
                subscribed_only = true;
                Ok(())
            }
            b"RECURSIVEMATCH" => {
                recursive_match = true;
                Ok(())
            }
            b"REMOTE" => Ok(()),
            b"SPECIAL-USE" => {
                special_use_only = true;
                Ok(())
            }
            _ => syntax("unknown LIST selection option"),
        })?;
        if recursive_match && !subscribed_only {
            return syntax("RECURSIVEMATCH needs another selection option");
        }
        c.sp()?;
    }
    let reference = mailbox(c)?;
    c.sp()?;
    let patterns = patterns(c)?;
    let mut return_subscribed = false;
    let mut return_status = Vec::new();
    let mut return_metadata = None;
    let mut return_myrights = false;
    if c.eat(b' ') {
        if !c.eat_ignore_case(b"RETURN ") {
            return syntax("expected RETURN");
        }
        c.expect(b'(', "expected (")?;
        let mut first = true;
        while !c.eat(b')') {
            if !first {
                c.sp()?;
            }
            first = false;
            match c.keyword()?.as_slice() {
                b"SUBSCRIBED" => return_subscribed = true,
                b"CHILDREN" => {}
                b"STATUS" if return_status.is_empty() => {
                    c.sp()?;
                    return_status = status_attributes(c)?;
                }
                b"SPECIAL-USE" => {}
                b"METADATA" if return_metadata.is_none() => {
                    return_metadata = Some(Box::new(super::metadata::list_return(c)?));
                }
                b"MYRIGHTS" => return_myrights = true,
                _ => return syntax("unknown LIST return option"),
            }
        }
    }
    Ok(CommandBody::List {
        reference,
        patterns,
        subscribed_only,
        recursive_match,
        special_use_only,
        return_subscribed,
        return_status,
        return_metadata,
        return_myrights,
    })
}

/// `mbox-or-pat = list-mailbox / patterns`
fn patterns(c: &mut Cursor<'_>) -> PResult<Vec<String>> {
    if !c.eat(b'(') {
        return Ok(vec![list_mailbox(c)?]);
    }
    let mut patterns = Vec::new();
    loop {
        if patterns.len() == c.limits.list_items_max {
            return fail(ParseErrorKind::TooMany, "too many patterns");
        }
        patterns.push(list_mailbox(c)?);
        if c.eat(b')') {
            return Ok(patterns);
        }
        c.sp()?;
    }
}

/// `"(" [word *(SP word)] ")"` (LIST options): `accept` sees each word, upper-cased, as soon
/// as it is read, so an option with arguments is refused before its arguments confuse the list.
fn option_words(c: &mut Cursor<'_>, mut accept: impl FnMut(&[u8]) -> PResult<()>) -> PResult<()> {
    c.expect(b'(', "expected (")?;
    if c.eat(b')') {
        return Ok(());
    }
    for _ in 0..c.limits.list_items_max {
        accept(c.keyword()?.as_slice())?;
        if c.eat(b')') {
            return Ok(());
        }
        c.sp()?;
    }
    fail(ParseErrorKind::TooMany, "too many options")
}

/// `lsub = "LSUB" SP mailbox SP list-mailbox`
pub(crate) fn lsub(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    let reference = one_mailbox(c)?;
    c.sp()?;
    let pattern = list_mailbox(c)?;
    Ok(CommandBody::Lsub { reference, pattern })
}

/// ```text
/// status     = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")"
/// status-att = "MESSAGES" / "UIDNEXT" / "UIDVALIDITY" / "UNSEEN" / "DELETED" / "SIZE" /
///              "RECENT" / "HIGHESTMODSEQ" / "APPENDLIMIT"                    ; RFC 7889
/// ```
pub(crate) fn status(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    let mailbox = one_mailbox(c)?;
    c.sp()?;
    let attributes = status_attributes(c)?;
    Ok(CommandBody::Status { mailbox, attributes })
}

/// `"(" status-att *(SP status-att) ")"`
fn status_attributes(c: &mut Cursor<'_>) -> PResult<Vec<StatusAttribute>> {
    c.expect(b'(', "expected status items")?;
    let mut attributes = Vec::new();
    loop {
        if attributes.len() == c.limits.list_items_max {
            return fail(ParseErrorKind::TooMany, "too many status items");
        }
        let word = c.keyword()?;
        attributes.push(match word.as_slice() {
            b"MESSAGES" => StatusAttribute::Messages,
            b"UIDNEXT" => StatusAttribute::UidNext,
            b"UIDVALIDITY" => StatusAttribute::UidValidity,
            b"UNSEEN" => StatusAttribute::Unseen,
            b"DELETED" => StatusAttribute::Deleted,
            b"SIZE" => StatusAttribute::Size,
            b"RECENT" => StatusAttribute::Recent,
            b"HIGHESTMODSEQ" => StatusAttribute::HighestModSeq,
            b"MAILBOXID" => StatusAttribute::MailboxId,
            b"APPENDLIMIT" => StatusAttribute::AppendLimit,
            b"DELETED-STORAGE" => StatusAttribute::DeletedStorage,
            _ => return syntax("unknown status item"),
        });
        if c.eat(b')') {
            return Ok(attributes);
        }
        c.sp()?;
    }
}

/// ```text
/// append         = "APPEND" SP mailbox 1*append-message           ; RFC 3502
/// append-message = append-opts SP append-data
/// append-opts    = [SP flag-list] [SP date-time]
/// append-data    = literal / literal8 / "CATENATE" SP "(" cat-part *(SP cat-part) ")"
///                  / utf8-literal                         ; RFC 3516, RFC 4469, RFC 6855 §4
/// cat-part       = text-literal / url / utf8-literal
/// utf8-literal   = "UTF8" SP "(" literal8 ")"
/// text-literal   = "TEXT" SP literal
/// url            = "URL" SP astring
/// ```
/// (The `SP` before the first message's options is the one after the mailbox.) A literal8
/// (`~{n}`, BINARY) may hold NUL; the message is stored as sent. At most
/// `append_messages_max` messages and `catenate_parts_max` parts per CATENATE. The `UTF8`
/// data item is parsed in every state; it is refused (`BAD`) unless the client enabled
/// UTF8=ACCEPT (`command/utf8.rs`).
pub(crate) fn append(c: &mut Cursor<'_>) -> PResult<AppendParts> {
    let mailbox = one_mailbox(c)?;
    let mut messages = Vec::new();
    while c.eat(b' ') {
        if messages.len() == c.limits.append_messages_max {
            return fail(ParseErrorKind::TooMany, "too many messages in one APPEND");
        }
        messages.push(append_message(c)?);
    }
    if messages.is_empty() {
        return syntax("APPEND needs a message");
    }
    Ok(AppendParts { mailbox, messages })
}

/// `append-opts SP append-data`, after the `SP` that precedes it.
fn append_message(c: &mut Cursor<'_>) -> PResult<AppendMessageParts> {
    let flags = if c.peek() == Some(b'(') {
        let flags = flag_list(c)?;
        c.sp()?;
        flags
    } else {
        Vec::new()
    };
    let date = if c.peek() == Some(b'"') {
        let date = date_time(c)?;
        c.sp()?;
        Some(date)
    } else {
        None
    };
    let mut binary = c.peek() == Some(b'~');
    let mut utf8 = false;
    let data = match c.peek() {
        Some(b'{' | b'~') => DataParts::Literal(literal_range(c, true)?),
        _ if c.eat_ignore_case(b"CATENATE ") => {
            let (parts, any_utf8) = catenate(c)?;
            (binary, utf8) = (any_utf8, any_utf8);
            DataParts::Catenate(parts)
        }
        _ if c.eat_ignore_case(b"UTF8 ") => {
            (binary, utf8) = (true, true);
            DataParts::Literal(utf8_literal(c)?)
        }
        Some(b'"') => return syntax("APPEND needs a literal message"),
        _ => return syntax("expected a literal, CATENATE or UTF8"),
    };
    Ok(AppendMessageParts { flags, date, data, binary, utf8 })
}

/// `"(" cat-part *(SP cat-part) ")"` (RFC 4469 §5), `cat-part =/ utf8-literal` (RFC 6855 §4);
/// true when a part was a `UTF8` one.
fn catenate(c: &mut Cursor<'_>) -> PResult<(Vec<CatenateRange>, bool)> {
    c.expect(b'(', "expected ( after CATENATE")?;
    let mut parts = Vec::new();
    let mut any_utf8 = false;
    loop {
        if parts.len() == c.limits.catenate_parts_max {
            return fail(ParseErrorKind::TooMany, "too many CATENATE parts");
        }
        let word = c.keyword()?;
        c.sp()?;
        parts.push(match word.as_slice() {
            b"TEXT" => CatenateRange::Text(literal_range(c, false)?),
            b"URL" => CatenateRange::Url(utf8(c.astring()?, "URL is not UTF-8")?),
            b"UTF8" => {
                any_utf8 = true;
                CatenateRange::Text(utf8_literal(c)?)
            }
            _ => return syntax("expected TEXT, URL or UTF8"),
        });
        if c.eat(b')') {
            return Ok((parts, any_utf8));
        }
        c.sp()?;
    }
}

/// `utf8-literal = "UTF8" SP "(" literal8 ")"` (RFC 6855 §4), after `"UTF8" SP`.
fn utf8_literal(c: &mut Cursor<'_>) -> PResult<Range<usize>> {
    c.expect(b'(', "expected ( after UTF8")?;
    if c.peek() != Some(b'~') {
        return syntax("UTF8 needs a literal8");
    }
    let range = literal_range(c, true)?;
    c.expect(b')', "expected ) after the UTF8 literal8")?;
    Ok(range)
}

/// A literal (or, with `allow_literal8`, a literal8) as a range of the input.
fn literal_range(c: &mut Cursor<'_>, allow_literal8: bool) -> PResult<Range<usize>> {
    let data = c.literal(allow_literal8)?;
    let end = c.pos();
    Ok(end - data.len()..end)
}

/// ```text
/// store           = "STORE" SP sequence-set [store-modifiers] SP store-att-flags
/// store-modifiers = SP "(" store-modifier *(SP store-modifier) ")"
/// store-modifier  = "UNCHANGEDSINCE" SP mod-sequence-valzer          ; RFC 7162
/// store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list / (flag *(SP flag)))
/// ```
pub(crate) fn store(c: &mut Cursor<'_>, uid: bool) -> PResult<CommandBody> {
    c.sp()?;
    let set = sequence_set(c)?;
    c.sp()?;
    let mut unchanged_since = None;
    if c.eat(b'(') {
        let word = c.word()?;
        if !word.eq_ignore_ascii_case(b"UNCHANGEDSINCE") {
            return syntax("unknown store modifier");
        }
        c.sp()?;
        unchanged_since = Some(c.number64()?);
        c.expect(b')', "expected ) after store modifier")?;
        c.sp()?;
    }
    let op = if c.eat(b'+') {
        FlagsOp::Add
    } else if c.eat(b'-') {
        FlagsOp::Remove
    } else {
        FlagsOp::Replace
    };
    let word = c.word()?;
    let silent = if word.eq_ignore_ascii_case(b"FLAGS.SILENT") {
        true
    } else if word.eq_ignore_ascii_case(b"FLAGS") {
        false
    } else {
        return syntax("expected FLAGS, +FLAGS or -FLAGS");
    };
    c.sp()?;
    let flags = if c.peek() == Some(b'(') { flag_list(c)? } else { flags_bare(c)? };
    Ok(CommandBody::Store { uid, set, op, silent, flags, unchanged_since })
}

/// ```text
/// copy = "COPY" SP sequence-set SP mailbox
/// move = "MOVE" SP sequence-set SP mailbox                           ; RFC 6851
/// ```
pub(crate) fn copy_or_move(c: &mut Cursor<'_>, uid: bool, is_move: bool) -> PResult<CommandBody> {
    c.sp()?;
    let set = sequence_set(c)?;
    let mailbox = one_mailbox(c)?;
    Ok(if is_move {
        CommandBody::Move { uid, set, mailbox }
    } else {
        CommandBody::Copy { uid, set, mailbox }
    })
}

/// `uid-expunge = "UID" SP "EXPUNGE" SP sequence-set` (after `EXPUNGE`).
pub(crate) fn uid_expunge(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    Ok(CommandBody::Expunge { uids: Some(sequence_set(c)?) })
}

/// ```text
/// id             = "ID" SP id-params-list                             ; RFC 2971
/// id-params-list = "(" [string SP nstring *(SP string SP nstring)] ")" / nil
/// ```
/// The parameters are checked and dropped: at most 30 pairs, field names of at most 30 bytes,
/// values of at most 1024 bytes (RFC 2971 §3.3).
pub(crate) fn id(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    const PAIRS_MAX: usize = 30;
    const VALUE_BYTES_MAX: usize = 1024;
    c.sp()?;
    if c.eat_ignore_case(b"NIL") {
        return Ok(CommandBody::Id);
    }
    c.expect(b'(', "expected ( or NIL")?;
    if c.eat(b')') {
        return Ok(CommandBody::Id);
    }
    for _ in 0..PAIRS_MAX {
        let key = c.string()?;
        if key.len() > 30 {
            return syntax("ID field name longer than 30 bytes");
        }
        c.sp()?;
        if c.nstring()?.is_some_and(|value| value.len() > VALUE_BYTES_MAX) {
            return syntax("ID value longer than 1024 bytes");
        }
        if c.eat(b')') {
            return Ok(CommandBody::Id);
        }
        c.sp()?;
    }
    fail(ParseErrorKind::TooMany, "more than 30 ID fields")
}

#[cfg(test)]
#[path = "commands_tests.rs"]
mod tests;

/// `compress = "COMPRESS" SP algorithm`, `algorithm = "DEFLATE"` (RFC 4978 §5). Any other
/// algorithm is a syntax error (BAD, RFC 4978 §3).
pub(crate) fn compress(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    let algorithm = c.atom()?;
    if !algorithm.eq_ignore_ascii_case(b"DEFLATE") {
        return syntax("unknown compression algorithm");
    }
    Ok(CommandBody::Compress)
}
