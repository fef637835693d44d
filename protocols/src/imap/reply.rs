//! Tagged completions and the ONE mapping from store errors to IMAP `NO`/`BAD`/`BYE` with
//! response codes (RFC 5530, RFC 9051 §7.1).
//!
//! Every command family ends in a [`Completion`]. Store errors become completions here and
//! nowhere else, through exhaustive matches without a wildcard arm: a new error variant in
//! `skua-core` does not compile until someone decides what a client sees for it.

use std::borrow::Cow;

use skua_core::error::{
    AppendError, CopyError, KeywordError, MailboxError, NameError, OverQuota, QuotaResource,
    ReadError, StorageError, UpdateError,
};
use skua_core::types::{Uid, UidValidity};

/// The status of a tagged (or untagged) condition response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// `OK`
    Ok,
    /// `NO`: the command was understood but failed.
    No,
    /// `BAD`: the command was not understood or not allowed here.
    Bad,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
        }
    }
}

/// A response code (`resp-text-code`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Code {
    /// `[TRYCREATE]`: the target mailbox does not exist but could be created.
    TryCreate,
    /// `[NONEXISTENT]`: the mailbox does not exist.
    Nonexistent,
    /// `[ALREADYEXISTS]`
    AlreadyExists,
    /// `[OVERQUOTA]`
    OverQuota,
    /// `[NOPERM]` (RFC 5530): the access control system refused (an ACL right missing on a
    /// shared folder, SETQUOTA by a non-administrator).
    NoPerm,
    /// `[CANNOT]`: the operation can never succeed (e.g. deleting INBOX).
    Cannot,
    /// `[SERVERBUG]`
    ServerBug,
    /// `[CORRUPTION]` (RFC 5530): data the command needs is damaged on disk.
    Corruption,
    /// `[COMPRESSIONACTIVE]` (RFC 4978): COMPRESS while compression is already on.
    CompressionActive,
    /// `[TOOBIG]`
    TooBig,
    /// `[LIMIT]`: a server limit was reached.
    Limit,
    /// `[AUTHENTICATIONFAILED]`
    AuthenticationFailed,
    /// `[AUTHORIZATIONFAILED]` (RFC 5530): the identity was proved but may not act as the
    /// authorization identity asked for.
    AuthorizationFailed,
    /// `[CONTACTADMIN]` (RFC 5530): the user must contact the administrator (denied access).
    ContactAdmin,
    /// `[UNAVAILABLE]`: a temporary failure; try again later.
    Unavailable,
    /// `[PRIVACYREQUIRED]`: refused on an unencrypted connection.
    PrivacyRequired,
    /// `[CLIENTBUG]`
    ClientBug,
    /// `[INUSE]`
    InUse,
    /// `[READ-ONLY]`
    ReadOnly,
    /// `[READ-WRITE]`
    ReadWrite,
    /// `[CLOSED]` (RFC 7162 §3.2.11, sent when a selected mailbox is closed by SELECT)
    Closed,
    /// `[CAPABILITY ...]` with the capability list.
    Capability(String),
    /// `[APPENDUID uidvalidity uid]` (RFC 4315)
    AppendUid(UidValidity, Uid),
    /// `[APPENDUID uidvalidity uid-set]` (RFC 4315 with MULTIAPPEND), set already formatted.
    AppendUidSet(UidValidity, String),
    /// `[BADURL url]` (RFC 4469 §5): the CATENATE URL that could not be used, as sent.
    BadUrl(String),
    /// `[URLMECH INTERNAL ...]` (RFC 4467 §8): the URLAUTH mechanisms of a mailbox, formatted.
    UrlMech(String),
    /// `[COPYUID uidvalidity source-set target-set]` (RFC 4315), sets already formatted.
    CopyUid(UidValidity, String, String),
    /// `[MODIFIED set]` (RFC 7162), set already formatted.
    Modified(String),
    /// `[EXPUNGEISSUED]`
    ExpungeIssued,
    /// `[BADCHARSET (US-ASCII UTF-8)]`
    BadCharset,
    /// `[UNKNOWN-CTE]` (RFC 3516): a BINARY fetch of a part whose
    /// Content-Transfer-Encoding the server cannot decode.
    UnknownCte,
    /// `[USEATTR]`: a special-use attribute that cannot be given (RFC 6154 §3).
    UseAttr,
    /// `[UIDREQUIRED]` (RFC 9586): sequence numbers used after ENABLE UIDONLY.
    UidRequired,
    /// `[MAILBOXID (objectid)]` (RFC 8474 §4.1), the id already formatted.
    MailboxId(String),
    /// `[BADEVENT (events)]` (RFC 5465 §5.9): NOTIFY named an event the server does not
    /// support; the list names those it does.
    BadEvent(&'static str),
    /// `[NOTIFICATIONOVERFLOW]` (RFC 5465 §5.8): the server stopped notifying.
    NotificationOverflow,
    /// `[METADATA LONGENTRIES n]` (RFC 5464 §4.2.1): values over MAXSIZE were left out; `n`
    /// is the length of the longest.
    MetadataLongEntries(u64),
    /// `[METADATA MAXSIZE n]` (RFC 5464 §4.3): a value is over the `n` bytes accepted.
    MetadataMaxSize(u32),
    /// `[METADATA TOOMANY]` (RFC 5464 §4.3): no room for more entries.
    MetadataTooMany,
}

impl Code {
    /// Appends `[CODE ...]` (without a trailing space).
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        let text: Cow<'_, str> = match self {
            Code::TryCreate => "TRYCREATE".into(),
            Code::Nonexistent => "NONEXISTENT".into(),
            Code::AlreadyExists => "ALREADYEXISTS".into(),
            Code::OverQuota => "OVERQUOTA".into(),
            Code::NoPerm => "NOPERM".into(),
            Code::Cannot => "CANNOT".into(),
            Code::ServerBug => "SERVERBUG".into(),
            Code::Corruption => "CORRUPTION".into(),
            Code::CompressionActive => "COMPRESSIONACTIVE".into(),
            Code::TooBig => "TOOBIG".into(),
            Code::Limit => "LIMIT".into(),
            Code::AuthenticationFailed => "AUTHENTICATIONFAILED".into(),
            Code::AuthorizationFailed => "AUTHORIZATIONFAILED".into(),
            Code::ContactAdmin => "CONTACTADMIN".into(),
            Code::Unavailable => "UNAVAILABLE".into(),
            Code::PrivacyRequired => "PRIVACYREQUIRED".into(),
            Code::ClientBug => "CLIENTBUG".into(),
            Code::InUse => "INUSE".into(),
            Code::ReadOnly => "READ-ONLY".into(),
            Code::ReadWrite => "READ-WRITE".into(),
            Code::Closed => "CLOSED".into(),
            Code::ExpungeIssued => "EXPUNGEISSUED".into(),
            Code::BadCharset => "BADCHARSET (US-ASCII UTF-8)".into(),
            Code::UnknownCte => "UNKNOWN-CTE".into(),
            Code::UseAttr => "USEATTR".into(),
            Code::UidRequired => "UIDREQUIRED".into(),
            Code::Capability(caps) => format!("CAPABILITY {caps}").into(),
            Code::AppendUid(v, u) => format!("APPENDUID {} {}", v.get(), u.get()).into(),
            Code::AppendUidSet(v, set) => format!("APPENDUID {} {set}", v.get()).into(),
            Code::BadUrl(url) => format!("BADURL {url}").into(),
            Code::UrlMech(mechanisms) => format!("URLMECH {mechanisms}").into(),
            Code::CopyUid(v, s, t) => format!("COPYUID {} {s} {t}", v.get()).into(),
            Code::Modified(set) => format!("MODIFIED {set}").into(),
            Code::MailboxId(id) => format!("MAILBOXID ({id})").into(),
            Code::BadEvent(events) => format!("BADEVENT ({events})").into(),
            Code::NotificationOverflow => "NOTIFICATIONOVERFLOW".into(),
            Code::MetadataLongEntries(n) => format!("METADATA LONGENTRIES {n}").into(),
            Code::MetadataMaxSize(n) => format!("METADATA MAXSIZE {n}").into(),
            Code::MetadataTooMany => "METADATA TOOMANY".into(),
        };
        out.extend_from_slice(text.as_bytes());
        out.push(b']');
    }
}

/// How a command ended: the tagged response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// OK, NO or BAD.
    pub status: Status,
    /// The response code, if any.
    pub code: Option<Code>,
    /// Human-readable text.
    pub text: Cow<'static, str>,
}

impl Completion {
    /// `OK text`
    #[must_use]
    pub fn ok(text: impl Into<Cow<'static, str>>) -> Completion {
        Completion { status: Status::Ok, code: None, text: text.into() }
    }

    /// `NO text`
    #[must_use]
    pub fn no(text: impl Into<Cow<'static, str>>) -> Completion {
        Completion { status: Status::No, code: None, text: text.into() }
    }

    /// `BAD text`
    #[must_use]
    pub fn bad(text: impl Into<Cow<'static, str>>) -> Completion {
        Completion { status: Status::Bad, code: None, text: text.into() }
    }

    /// The same completion with a response code.
    #[must_use]
    pub fn with(mut self, code: Code) -> Completion {
        self.code = Some(code);
        self
    }

    /// Writes `tag STATUS [CODE] text\r\n` (or `* STATUS ...` for `tag == "*"`).
    pub(crate) fn write(&self, tag: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(tag.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.status.as_str().as_bytes());
        out.push(b' ');
        if let Some(code) = &self.code {
            code.write(out);
            out.push(b' ');
        }
        // Text never carries CR/LF: it is ours, but strip defensively so a reply is one line.
        out.extend(self.text.bytes().filter(|&b| b != b'\r' && b != b'\n'));
        out.extend_from_slice(b"\r\n");
    }
}

/// A disk failure underneath any operation. Damage is our problem (`[SERVERBUG]`, the data is
/// safe but unreadable until repaired); an I/O error is a temporary condition.
#[must_use]
pub fn storage(error: &StorageError) -> Completion {
    match error {
        StorageError::Io { .. } if error.is_disk_full() => {
            Completion::no("Server storage is full, try later").with(Code::Unavailable)
        }
        StorageError::Io { .. } => {
            Completion::no("Server storage error, try later").with(Code::Unavailable)
        }
        // RFC 5530: CORRUPTION when the data is damaged; data of a format this version cannot
        // read is not damaged, and no client action helps: SERVERBUG.
        StorageError::Corrupt { .. } => {
            Completion::no("Mailbox data is damaged").with(Code::Corruption)
        }
        StorageError::UnsupportedFormat { .. } => {
            Completion::no("Mailbox data has a format this server cannot read")
                .with(Code::ServerBug)
        }
    }
}

/// Reading messages, bodies, cache blobs, keyword tables.
#[must_use]
pub fn read(error: &ReadError) -> Completion {
    match error {
        ReadError::NoSuchMailbox => Completion::no("No such mailbox").with(Code::Nonexistent),
        ReadError::NoSuchMessage => {
            Completion::no("Message was expunged").with(Code::ExpungeIssued)
        }
        ReadError::Storage(inner) => storage(inner),
    }
}

/// CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE.
#[must_use]
pub fn mailbox(error: &MailboxError) -> Completion {
    match error {
        MailboxError::NotFound => Completion::no("No such mailbox").with(Code::Nonexistent),
        MailboxError::AlreadyExists => {
            Completion::no("Mailbox already exists").with(Code::AlreadyExists)
        }
        MailboxError::InvalidName(name) => name_error(*name),
        MailboxError::CannotDeleteInbox => {
            Completion::no("INBOX cannot be deleted").with(Code::Cannot)
        }
        MailboxError::RenameUnderItself => {
            Completion::no("A mailbox cannot move under itself").with(Code::Cannot)
        }
        MailboxError::TooMany => Completion::no("Too many mailboxes").with(Code::Limit),
        MailboxError::OverQuota(over) => over_quota(*over),
        MailboxError::Storage(inner) => storage(inner),
    }
}

/// An unacceptable mailbox name.
fn name_error(error: NameError) -> Completion {
    let text = match error {
        NameError::Empty => "Empty mailbox name",
        NameError::TooLong => "Mailbox name too long",
        NameError::TooDeep => "Mailbox hierarchy too deep",
        NameError::ControlCharacter => "Control character in mailbox name",
        NameError::EmptyLevel => "Empty hierarchy level in mailbox name",
        NameError::Wildcard => "Wildcard in mailbox name",
        NameError::DotLevel => "A hierarchy level may not be . or ..",
        NameError::Undecodable => "Mailbox name is not valid modified UTF-7",
    };
    Completion::no(text).with(Code::Cannot)
}

/// APPEND.
#[must_use]
pub fn append(error: &AppendError) -> Completion {
    match error {
        AppendError::NoSuchMailbox => Completion::no("No such mailbox").with(Code::TryCreate),
        AppendError::TooLarge { .. } => Completion::no("Message too large").with(Code::TooBig),
        AppendError::MailboxFull => Completion::no("Mailbox is full").with(Code::Limit),
        AppendError::OverQuota(over) => over_quota(*over),
        AppendError::Storage(inner) => storage(inner),
    }
}

/// STORE and EXPUNGE.
#[must_use]
pub fn update(error: &UpdateError) -> Completion {
    match error {
        UpdateError::NoSuchMailbox => Completion::no("No such mailbox").with(Code::Nonexistent),
        UpdateError::ReaderSeen(why) => Completion::no(why.clone()).with(Code::Limit),
        UpdateError::Storage(inner) => storage(inner),
    }
}

/// Keyword allocation in STORE and APPEND.
#[must_use]
pub fn keywords(error: &KeywordError) -> Completion {
    match error {
        KeywordError::NoSuchMailbox => Completion::no("No such mailbox").with(Code::Nonexistent),
        KeywordError::TooMany => Completion::no("Too many keywords").with(Code::Limit),
        KeywordError::Invalid => Completion::bad("Invalid keyword"),
        KeywordError::Storage(inner) => storage(inner),
    }
}

/// COPY and MOVE.
#[must_use]
pub fn copy(error: &CopyError) -> Completion {
    match error {
        CopyError::NoSuchMailbox => Completion::no("No such mailbox").with(Code::Nonexistent),
        CopyError::NoSuchTarget => Completion::no("No such mailbox").with(Code::TryCreate),
        CopyError::MailboxFull => Completion::no("Target mailbox is full").with(Code::Limit),
        CopyError::OverQuota(over) => over_quota(*over),
        CopyError::Storage(inner) => storage(inner),
    }
}

/// Over a quota limit (RFC 9208 §4.3, `[OVERQUOTA]`), naming the resource.
#[must_use]
pub fn over_quota(over: OverQuota) -> Completion {
    let text = match over.resource {
        QuotaResource::Storage => "Quota exceeded: STORAGE",
        QuotaResource::Message => "Quota exceeded: MESSAGE",
        QuotaResource::Mailbox => "Quota exceeded: MAILBOX",
    };
    Completion::no(text).with(Code::OverQuota)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    #[test]
    fn completions_render() {
        let mut out = Vec::new();
        Completion::no("Mailbox missing").with(Code::TryCreate).write("a1", &mut out);
        assert_eq!(out, b"a1 NO [TRYCREATE] Mailbox missing\r\n");
        out.clear();
        let v = UidValidity(NonZeroU32::new(7).unwrap());
        let u = Uid::new(3).unwrap();
        Completion::ok("APPEND done").with(Code::AppendUid(v, u)).write("t", &mut out);
        assert_eq!(out, b"t OK [APPENDUID 7 3] APPEND done\r\n");
        out.clear();
        Completion::bad("bad\r\nline").write("*", &mut out);
        assert_eq!(out, b"* BAD badline\r\n");
    }

    #[test]
    fn errors_map_to_codes() {
        assert_eq!(append(&AppendError::NoSuchMailbox).code, Some(Code::TryCreate));
        assert_eq!(copy(&CopyError::NoSuchTarget).code, Some(Code::TryCreate));
        assert_eq!(mailbox(&MailboxError::AlreadyExists).code, Some(Code::AlreadyExists));
        assert_eq!(mailbox(&MailboxError::NotFound).code, Some(Code::Nonexistent));
        assert_eq!(mailbox(&MailboxError::CannotDeleteInbox).code, Some(Code::Cannot));
        assert_eq!(append(&AppendError::TooLarge { size: 9 }).code, Some(Code::TooBig));
        let full = StorageError::io("x", std::io::Error::from(std::io::ErrorKind::StorageFull));
        assert_eq!(storage(&full).code, Some(Code::Unavailable));
        let corrupt = StorageError::Corrupt { what: "x", path: "p".into(), offset: 0 };
        assert_eq!(read(&ReadError::Storage(corrupt)).code, Some(Code::Corruption));
        assert_eq!(keywords(&KeywordError::Invalid).status, Status::Bad);
    }
}
