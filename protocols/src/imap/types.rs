//! Typed IMAP commands: what the parser (`parser.rs`) produces and the session (`session.rs`)
//! executes. Grammar references are to RFC 9051 (IMAP4rev2) and RFC 3501 (IMAP4rev1).
//!
//! Invalid values are not constructible where it matters: a [`Tag`] is validated, a
//! [`SequenceSet`] is non-empty, a mailbox name is already decoded from its wire form.

use skua_core::types::{FlagsOp, InternalDate};
pub use skua_core::users::Secret;

/// A command tag (`tag = 1*<any ASTRING-CHAR except "+">`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag(String);

impl Tag {
    /// Validates a tag.
    #[must_use]
    pub fn new(raw: &[u8]) -> Option<Tag> {
        let valid = !raw.is_empty()
            && raw.iter().all(|&b| crate::imap::types::is_astring_char(b) && b != b'+');
        valid.then(|| Tag(String::from_utf8_lossy(raw).into_owned()))
    }

    /// The tag as sent.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `ASTRING-CHAR = ATOM-CHAR / resp-specials`
#[must_use]
pub fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// `ATOM-CHAR = <any CHAR except atom-specials>`
#[must_use]
pub fn is_atom_char(b: u8) -> bool {
    b > 0x20
        && b < 0x7f
        && !matches!(b, b'(' | b')' | b'{' | b' ' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// One end of a sequence range: a number or `*` (the largest in use).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqBound {
    /// A message sequence number or UID, never zero.
    Value(u32),
    /// `*`
    Largest,
}

/// `sequence-set`: non-empty list of ranges; a single number is a range of one.
/// Whether the numbers are sequence numbers or UIDs is decided by the command (`UID` prefix or
/// the `UID` search key), not by the set.
///
/// Or `$` (SEARCHRES, RFC 5182): the messages the session's last `SEARCH RETURN (SAVE)` found,
/// which only the session knows. It has no ranges: commands ask the selected view to resolve
/// it ([`SequenceSet::is_saved`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SequenceSet {
    ranges: Vec<(SeqBound, SeqBound)>,
    saved: bool,
}

impl SequenceSet {
    /// Builds a set; `None` if empty.
    #[must_use]
    pub fn new(ranges: Vec<(SeqBound, SeqBound)>) -> Option<SequenceSet> {
        (!ranges.is_empty()).then_some(SequenceSet { ranges, saved: false })
    }

    /// `$`: the session's saved search result.
    #[must_use]
    pub fn saved_result() -> SequenceSet {
        SequenceSet { ranges: Vec::new(), saved: true }
    }

    /// The set of these UIDs (ascending), as ranges of consecutive ones; `None` if empty.
    #[must_use]
    pub fn of_sorted(values: &[u32]) -> Option<SequenceSet> {
        let mut ranges: Vec<(SeqBound, SeqBound)> = Vec::new();
        for &value in values {
            match ranges.last_mut() {
                Some((_, SeqBound::Value(last))) if last.checked_add(1) == Some(value) => {
                    *last = value;
                }
                _ => ranges.push((SeqBound::Value(value), SeqBound::Value(value))),
            }
        }
        SequenceSet::new(ranges)
    }

    /// True for `$` (see the type's documentation).
    #[must_use]
    pub fn is_saved(&self) -> bool {
        self.saved
    }

    /// The ranges as given (each may be reversed, e.g. `5:2`); none for `$`.
    #[must_use]
    pub fn ranges(&self) -> &[(SeqBound, SeqBound)] {
        &self.ranges
    }

    /// True when `value` is in the set, with `*` meaning `largest`. An empty mailbox has
    /// `largest == 0`, and then `*` matches nothing.
    #[must_use]
    pub fn contains(&self, value: u32, largest: u32) -> bool {
        let resolve = |b: SeqBound| match b {
            SeqBound::Value(v) => v,
            SeqBound::Largest => largest,
        };
        self.ranges.iter().any(|&(a, b)| {
            let (a, b) = (resolve(a), resolve(b));
            let (low, high) = if a <= b { (a, b) } else { (b, a) };
            low <= value && value <= high
        })
    }
}

/// A flag as written on the wire: a system flag or a keyword atom.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Flag {
    /// `\Seen`
    Seen,
    /// `\Answered`
    Answered,
    /// `\Flagged`
    Flagged,
    /// `\Deleted`
    Deleted,
    /// `\Draft`
    Draft,
    /// A keyword (`flag-keyword = atom`), kept with its case as sent.
    Keyword(String),
    /// Another `\Extension` flag; the server refuses to store it.
    Extension(String),
}

/// `section-spec` inside `BODY[...]` (RFC 9051 §6.4.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// Part numbers `1.2.3`; empty means the whole message.
    pub part: Vec<u32>,
    /// What of that part.
    pub text: Option<SectionText>,
}

/// The text specifier after the part numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SectionText {
    /// `HEADER`
    Header,
    /// `HEADER.FIELDS (name ...)`
    HeaderFields(Vec<String>),
    /// `HEADER.FIELDS.NOT (name ...)`
    HeaderFieldsNot(Vec<String>),
    /// `TEXT`
    Text,
    /// `MIME` (only with a part number)
    Mime,
}

/// One FETCH data item (RFC 9051 §6.4.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchAttribute {
    /// `ENVELOPE`
    Envelope,
    /// `FLAGS`
    Flags,
    /// `INTERNALDATE`
    InternalDate,
    /// `RFC822.SIZE`
    Rfc822Size,
    /// `UID`
    Uid,
    /// `BODY` (non-extensible BODYSTRUCTURE)
    Body,
    /// `BODYSTRUCTURE`
    BodyStructure,
    /// `BODY[section]<partial>` or `BODY.PEEK[...]`
    BodySection {
        /// The section.
        section: Section,
        /// `<offset.length>`
        partial: Option<(u32, u32)>,
        /// `.PEEK`: do not set `\Seen`.
        peek: bool,
    },
    /// `RFC822` (= `BODY[]`, sets `\Seen`)
    Rfc822,
    /// `RFC822.HEADER` (= `BODY.PEEK[HEADER]`)
    Rfc822Header,
    /// `RFC822.TEXT` (= `BODY[TEXT]`)
    Rfc822Text,
    /// `MODSEQ` (RFC 7162), accepted so CONDSTORE-aware clients work once it is announced.
    ModSeq,
    /// `BINARY[part]<partial>` or `BINARY.PEEK[...]` (RFC 3516, RFC 9051 §6.4.5): the part's
    /// content with its Content-Transfer-Encoding removed.
    Binary {
        /// `section-part` (empty: the whole message).
        part: Vec<u32>,
        /// `<offset.length>` in decoded bytes.
        partial: Option<(u32, u32)>,
        /// `.PEEK`: do not set `\Seen`.
        peek: bool,
    },
    /// `BINARY.SIZE[part]` (RFC 3516): the decoded size of the part.
    BinarySize {
        /// `section-part` (empty: the whole message).
        part: Vec<u32>,
    },
    /// `PREVIEW` or `PREVIEW (LAZY)` (RFC 8970).
    Preview {
        /// `(LAZY)`: the server may answer NIL rather than compute a preview now.
        lazy: bool,
    },
    /// `EMAILID` (RFC 8474 §5.3)
    EmailId,
    /// `THREADID` (RFC 8474 §5.3)
    ThreadId,
    /// `SAVEDATE` (RFC 8514 §4.2)
    SaveDate,
}

/// A SEARCH key (RFC 9051 §6.4.4). Nesting depth is bounded by the parser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SearchKey {
    /// `ALL`
    All,
    /// A sequence set of message sequence numbers.
    SequenceSet(SequenceSet),
    /// `UID set`
    Uid(SequenceSet),
    /// `ANSWERED`, `DELETED`, `DRAFT`, `FLAGGED`, `SEEN`, `KEYWORD k` (and `NEW`/`OLD`/`RECENT`
    /// are mapped by the parser: `NEW` = `UNSEEN`, `OLD`/`RECENT` per RFC 9051 §6.4.4).
    Flag(Flag),
    /// `UNANSWERED`, `UNDELETED`, ... , `UNKEYWORD k`
    NotFlag(Flag),
    /// `FROM s`
    From(String),
    /// `TO s`
    To(String),
    /// `CC s`
    Cc(String),
    /// `BCC s`
    Bcc(String),
    /// `SUBJECT s`
    Subject(String),
    /// `HEADER name s`
    Header(String, String),
    /// `BODY s`
    Body(String),
    /// `TEXT s`
    Text(String),
    /// `BEFORE date` (internal date, day granularity): days since the epoch.
    Before(i64),
    /// `ON date`
    On(i64),
    /// `SINCE date`
    Since(i64),
    /// `SENTBEFORE date` (Date: header)
    SentBefore(i64),
    /// `SENTON date`
    SentOn(i64),
    /// `SENTSINCE date`
    SentSince(i64),
    /// `LARGER n`
    Larger(u32),
    /// `SMALLER n`
    Smaller(u32),
    /// `NOT key`
    Not(Box<SearchKey>),
    /// `OR a b`
    Or(Box<SearchKey>, Box<SearchKey>),
    /// `(key key ...)`: all must match.
    And(Vec<SearchKey>),
    /// `MODSEQ n` (RFC 7162)
    ModSeq(u64),
    /// `OLDER n` (WITHIN, RFC 5032): the internal date is more than `n` seconds before the
    /// search started.
    Older(u32),
    /// `YOUNGER n` (WITHIN, RFC 5032): the internal date is at most `n` seconds before the
    /// search started (`NOT OLDER n`).
    Younger(u32),
    /// `EMAILID objectid` (RFC 8474 §6)
    EmailId(String),
    /// `THREADID objectid` (RFC 8474 §6)
    ThreadId(String),
    /// `SAVEDBEFORE date` (RFC 8514 §4.3): days since the epoch.
    SavedBefore(i64),
    /// `SAVEDON date`
    SavedOn(i64),
    /// `SAVEDSINCE date`
    SavedSince(i64),
    /// `SAVEDATESUPPORTED`: every message of a mailbox whose storage keeps save dates.
    SavedateSupported,
}

/// `STATUS` data items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusAttribute {
    /// `MESSAGES`
    Messages,
    /// `UIDNEXT`
    UidNext,
    /// `UIDVALIDITY`
    UidValidity,
    /// `UNSEEN`
    Unseen,
    /// `DELETED` (IMAP4rev2)
    Deleted,
    /// `SIZE` (IMAP4rev2)
    Size,
    /// `RECENT` (IMAP4rev1)
    Recent,
    /// `HIGHESTMODSEQ` (RFC 7162)
    HighestModSeq,
    /// `APPENDLIMIT` (RFC 7889): the largest message APPEND takes into the mailbox.
    AppendLimit,
    /// `MAILBOXID` (RFC 8474 §4.3)
    MailboxId,
    /// `DELETED-STORAGE` (RFC 9208 §4.2)
    DeletedStorage,
}

/// SEARCH return options (`RETURN (...)`, RFC 9051 ESEARCH form).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SearchReturn {
    /// `MIN`
    pub min: bool,
    /// `MAX`
    pub max: bool,
    /// `ALL`
    pub all: bool,
    /// `COUNT`
    pub count: bool,
    /// `SAVE` (SEARCHRES, RFC 5182): keep the result for `$`.
    pub save: bool,
    /// `PARTIAL range` (RFC 9394 §3.1, RFC 5267 §4.4): one page of the results.
    pub partial: Option<PartialRange>,
    /// `UPDATE` (RFC 5267 §4.3): keep the result live with ADDTO / REMOVEFROM.
    pub update: bool,
    /// `CONTEXT` (RFC 5267 §4.2): a hint, accepted and otherwise ignored.
    pub context: bool,
}

/// A PARTIAL range (RFC 9394 §4): `first:last` counts results from the lowest, `-first:-last`
/// from the highest; both ends are at least 1 and `low <= high` (the parser orders them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartialRange {
    /// The lower end of the range, as given (1 is the first result from its side).
    pub low: u32,
    /// The higher end.
    pub high: u32,
    /// Negative form: counted from the last result (`-1` is the last one).
    pub from_end: bool,
    /// The ends were given high first (`500:400`): the answer echoes the range as sent.
    pub reversed: bool,
}

/// SELECT/EXAMINE's `QRESYNC` parameter (RFC 7162 §3.2.5):
/// `(uidvalidity modseq [known-uids [seq-match-data]])`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QresyncParams {
    /// The UIDVALIDITY the client's cache is for.
    pub uid_validity: u32,
    /// The last HIGHESTMODSEQ the client knows of.
    pub modseq: u64,
    /// The UIDs the client knows (no `*`); `None`: all of them.
    pub known_uids: Option<SequenceSet>,
    /// `(known-sequence-set known-uid-set)`: message numbers and the UIDs the client has
    /// for them (a hint; skua answers without it, see `command/qresync.rs`).
    pub seq_match: Option<(SequenceSet, SequenceSet)>,
}

/// What GETMETADATA (RFC 5464 §4.2) and LIST's `RETURN (METADATA ...)` (RFC 9590) ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataRequest {
    /// Entry names, lowercased (entry names are case-insensitive) and checked, at least one.
    pub entries: Vec<String>,
    /// `MAXSIZE n`: values longer than `n` bytes are left out (`[METADATA LONGENTRIES]`).
    pub max_size: Option<u32>,
    /// `DEPTH 0 / 1 / infinity`: also the entries one level / any levels below each one.
    pub depth: MetadataDepth,
}

/// `scope-opt = "DEPTH" SP ("0" / "1" / "infinity")` (RFC 5464 §4.2.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MetadataDepth {
    /// The named entries only (the default).
    #[default]
    Zero,
    /// And their children.
    One,
    /// And all their descendants.
    Infinity,
}

/// A parsed command. `uid` marks the `UID` prefix for FETCH/STORE/COPY/MOVE/SEARCH/EXPUNGE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandBody {
    /// `CAPABILITY`
    Capability,
    /// `NOOP`
    Noop,
    /// `LOGOUT`
    Logout,
    /// `STARTTLS` (refused until TLS is configured)
    StartTls,
    /// `LOGIN user password`
    Login {
        /// The user name, decoded.
        user: String,
        /// The password, decoded; `Debug` redacts it.
        password: Secret<String>,
    },
    /// `AUTHENTICATE mechanism [initial-response]`; the session runs the exchange.
    Authenticate {
        /// Mechanism name, upper-cased.
        mechanism: String,
        /// SASL-IR initial response, base64 as sent (`=` for empty). It holds the password
        /// (PLAIN), so `Debug` redacts it.
        initial_response: Option<Secret<String>>,
    },
    /// `ENABLE cap ...`
    Enable(Vec<String>),
    /// `SELECT mailbox` (with `condstore` when `(CONDSTORE)` was given)
    Select {
        /// Mailbox name (modified UTF-7 already decoded only if UTF8=ACCEPT; see session).
        mailbox: String,
        /// `(CONDSTORE)` parameter.
        condstore: bool,
        /// `(QRESYNC (...))` parameter (RFC 7162 §3.2.5).
        qresync: Option<Box<QresyncParams>>,
    },
    /// `EXAMINE mailbox`
    Examine {
        /// Mailbox name.
        mailbox: String,
        /// `(CONDSTORE)` parameter.
        condstore: bool,
        /// `(QRESYNC (...))` parameter (RFC 7162 §3.2.5).
        qresync: Option<Box<QresyncParams>>,
    },
    /// `CREATE mailbox`
    Create(String),
    /// `CREATE mailbox (USE (attributes))` (CREATE-SPECIAL-USE, RFC 6154 §3).
    CreateSpecialUse {
        /// Mailbox name.
        mailbox: String,
        /// The attributes as sent (`\Sent`, or an unknown `\atom`), maybe none.
        uses: Vec<String>,
    },
    /// `DELETE mailbox`
    Delete(String),
    /// `RENAME old new`
    Rename(String, String),
    /// `SUBSCRIBE mailbox`
    Subscribe(String),
    /// `UNSUBSCRIBE mailbox`
    Unsubscribe(String),
    /// `LIST reference pattern` (basic form; extended selection/return options are ignored
    /// except `RETURN (SUBSCRIBED)` and `(SUBSCRIBED)` selection).
    List {
        /// Reference name.
        reference: String,
        /// Mailbox patterns (`%`, `*` wildcards); several with LIST-EXTENDED's `(a b)`.
        patterns: Vec<String>,
        /// `(SUBSCRIBED)` selection option.
        subscribed_only: bool,
        /// `(... RECURSIVEMATCH)` selection option (with SUBSCRIBED).
        recursive_match: bool,
        /// `(SPECIAL-USE)` selection option: only mailboxes with special-use attributes.
        special_use_only: bool,
        /// `RETURN (SUBSCRIBED)`.
        return_subscribed: bool,
        /// `RETURN (STATUS (...))` (LIST-STATUS, RFC 5819); empty when not asked.
        return_status: Vec<StatusAttribute>,
        /// `RETURN (METADATA (...))` (LIST-METADATA, RFC 9590).
        return_metadata: Option<Box<MetadataRequest>>,
        /// `RETURN (MYRIGHTS)` (LIST-MYRIGHTS, RFC 8440).
        return_myrights: bool,
    },
    /// `GETQUOTA quota-root-name` (RFC 9208 §4.1.1).
    GetQuota(String),
    /// `GETQUOTAROOT mailbox` (RFC 9208 §4.1.2).
    GetQuotaRoot(String),
    /// `SETQUOTA quota-root-name (resource limit ...)` (RFC 9208 §4.1.3); resource names
    /// uppercased, in the order sent.
    SetQuota {
        /// The quota root.
        root: String,
        /// The new limits.
        limits: Vec<(String, u64)>,
    },
    /// `GETMETADATA [options] mailbox entries` (RFC 5464 §4.2); mailbox `""` is the server.
    GetMetadata {
        /// The mailbox (`""`: server entries).
        mailbox: String,
        /// Entries and options.
        request: MetadataRequest,
    },
    /// `SETMETADATA mailbox (entry value ...)` (RFC 5464 §4.3); a `None` value removes.
    SetMetadata {
        /// The mailbox (`""`: server entries).
        mailbox: String,
        /// Entry names (lowercased, checked) with their new values, in the order sent.
        entries: Vec<(String, Option<Vec<u8>>)>,
    },
    /// `GETACL mailbox` (RFC 4314 §3.3)
    GetAcl(String),
    /// `SETACL mailbox identifier mod-rights` (RFC 4314 §3.1)
    SetAcl {
        /// The mailbox.
        mailbox: String,
        /// Whose entry changes.
        identifier: skua_core::acl::Identifier,
        /// Replace, add or remove rights.
        change: skua_core::acl::RightsChange,
    },
    /// `DELETEACL mailbox identifier` (RFC 4314 §3.2)
    DeleteAcl {
        /// The mailbox.
        mailbox: String,
        /// Whose entry goes.
        identifier: skua_core::acl::Identifier,
    },
    /// `LISTRIGHTS mailbox identifier` (RFC 4314 §3.4)
    ListRights {
        /// The mailbox.
        mailbox: String,
        /// Whose rights.
        identifier: skua_core::acl::Identifier,
        /// The identifier as the client spelled it (the response repeats it).
        spelled: String,
    },
    /// `MYRIGHTS mailbox` (RFC 4314 §3.5)
    MyRights(String),
    /// `LSUB reference pattern`
    Lsub {
        /// Reference name.
        reference: String,
        /// Mailbox pattern.
        pattern: String,
    },
    /// `STATUS mailbox (items)`
    Status {
        /// Mailbox name.
        mailbox: String,
        /// Requested items.
        attributes: Vec<StatusAttribute>,
    },
    /// `APPEND mailbox 1*([flags] [date] data)`: one message, or several (MULTIAPPEND,
    /// RFC 3502), each a literal, a literal8 (RFC 3516) or a CATENATE (RFC 4469).
    Append {
        /// Target mailbox.
        mailbox: String,
        /// The messages, in the order sent (at least one).
        messages: Vec<AppendMessage>,
    },
    /// `IDLE` (the session then waits for `DONE`)
    Idle,
    /// `CLOSE`
    Close,
    /// `UNSELECT`
    Unselect,
    /// `CANCELUPDATE "tag" ...` (RFC 5267 §4.3.5): the tags whose UPDATE contexts end.
    CancelUpdate(Vec<String>),
    /// `UNAUTHENTICATE` (RFC 8437)
    Unauthenticate,
    /// `COMPRESS DEFLATE` (RFC 4978; DEFLATE is the only algorithm defined).
    Compress,
    /// `NOTIFY SET ...` / `NOTIFY NONE` (RFC 5465)
    Notify(Box<crate::imap::parser::NotifyRequest>),
    /// `EXPUNGE`, or `UID EXPUNGE set` when `uid` is given
    Expunge {
        /// `UID EXPUNGE` set.
        uids: Option<SequenceSet>,
    },
    /// `[UID] SEARCH [RETURN (...)] [CHARSET x] keys`
    Search {
        /// `UID` prefix.
        uid: bool,
        /// Whether `RETURN (...)` was given (ESEARCH reply form).
        esearch: Option<SearchReturn>,
        /// Charset, if given (only US-ASCII and UTF-8 are accepted).
        charset: Option<String>,
        /// Keys; all must match.
        keys: Vec<SearchKey>,
    },
    /// `[UID] FETCH set items [(CHANGEDSINCE n)]`
    Fetch {
        /// `UID` prefix.
        uid: bool,
        /// Messages.
        set: SequenceSet,
        /// Items; macros (ALL, FAST, FULL) already expanded by the parser.
        attributes: Vec<FetchAttribute>,
        /// `CHANGEDSINCE` modifier (RFC 7162).
        changed_since: Option<u64>,
        /// `VANISHED` modifier (RFC 7162 §3.2.6).
        vanished: bool,
        /// `PARTIAL` modifier (RFC 9394 §3.3): only the messages at these positions.
        partial: Option<PartialRange>,
    },
    /// `[UID] STORE set [(UNCHANGEDSINCE n)] [+|-]FLAGS[.SILENT] flags`
    Store {
        /// `UID` prefix.
        uid: bool,
        /// Messages.
        set: SequenceSet,
        /// Replace, add or remove.
        op: FlagsOp,
        /// `.SILENT`
        silent: bool,
        /// The flags.
        flags: Vec<Flag>,
        /// `UNCHANGEDSINCE` modifier (RFC 7162).
        unchanged_since: Option<u64>,
    },
    /// `[UID] COPY set mailbox`
    Copy {
        /// `UID` prefix.
        uid: bool,
        /// Messages.
        set: SequenceSet,
        /// Target mailbox.
        mailbox: String,
    },
    /// `[UID] MOVE set mailbox`
    Move {
        /// `UID` prefix.
        uid: bool,
        /// Messages.
        set: SequenceSet,
        /// Target mailbox.
        mailbox: String,
    },
    /// `NAMESPACE`
    Namespace,
    /// `RESETKEY [mailbox *(mechanism)]` (RFC 4467 §7): mechanisms upper-cased.
    ResetKey {
        /// The mailbox whose access key is reset; `None`: all of the user's mailboxes.
        mailbox: Option<String>,
        /// Mechanisms asked for.
        mechanisms: Vec<String>,
    },
    /// `GENURLAUTH 1*(url-rump mechanism)` (RFC 4467 §7): URLs as sent, mechanisms
    /// upper-cased.
    GenUrlAuth(Vec<(String, String)>),
    /// `URLFETCH 1*url-full` (RFC 4467 §7): URLs as sent.
    UrlFetch(Vec<String>),
    /// `ID (...)` / `ID NIL` (RFC 2971); parameters are not kept.
    Id,
    /// `[UID] SORT [RETURN (...)] (criteria) charset keys` (RFC 5256, ESORT RFC 5267)
    Sort {
        /// `UID` prefix.
        uid: bool,
        /// `RETURN (...)`: answer with ESEARCH (ESORT).
        esearch: Option<SearchReturn>,
        /// Sort criteria, most significant first (never empty).
        criteria: Vec<SortCriterion>,
        /// Charset (only US-ASCII and UTF-8 are accepted).
        charset: String,
        /// Keys; all must match.
        keys: Vec<SearchKey>,
    },
    /// `[UID] THREAD algorithm charset keys` (RFC 5256)
    Thread {
        /// `UID` prefix.
        uid: bool,
        /// The threading algorithm.
        algorithm: ThreadAlgorithm,
        /// Charset (only US-ASCII and UTF-8 are accepted).
        charset: String,
        /// Keys; all must match.
        keys: Vec<SearchKey>,
    },
}

/// A SORT key (RFC 5256 §3, RFC 5957 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    /// `ARRIVAL`: the internal date.
    Arrival,
    /// `CC`: `addr-mailbox` of the first Cc address.
    Cc,
    /// `DATE`: the sent date.
    Date,
    /// `FROM`: `addr-mailbox` of the first From address.
    From,
    /// `SIZE`: RFC822.SIZE.
    Size,
    /// `SUBJECT`: the base subject.
    Subject,
    /// `TO`: `addr-mailbox` of the first To address.
    To,
    /// `DISPLAYFROM` (RFC 5957)
    DisplayFrom,
    /// `DISPLAYTO` (RFC 5957)
    DisplayTo,
}

/// `sort-criterion = ["REVERSE" SP] sort-key`
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SortCriterion {
    /// `REVERSE`
    pub reverse: bool,
    /// The key.
    pub key: SortKey,
}

/// A THREAD algorithm (RFC 5256 §3, draft-ietf-morg-inthread's REFS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadAlgorithm {
    /// `ORDEREDSUBJECT`
    OrderedSubject,
    /// `REFERENCES`
    References,
    /// `REFS`
    Refs,
}

/// A whole command: tag and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// The tag.
    pub tag: Tag,
    /// What was asked.
    pub body: CommandBody,
}

/// One message of an `APPEND` (RFC 9051 §6.3.12; several with MULTIAPPEND, RFC 3502).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendMessage {
    /// Initial flags.
    pub flags: Vec<Flag>,
    /// Internal date, if given.
    pub date: Option<InternalDate>,
    /// The message or how to build it.
    pub data: AppendData,
    /// The message was sent as a literal8 (`~{n}`, RFC 3516), which may hold NUL.
    pub binary: bool,
    /// The message was sent in RFC 6855's `UTF8 (literal8)` data item (`command/utf8.rs`).
    pub utf8: bool,
}

/// `append-data = literal / literal8 / "CATENATE" SP "(" cat-part *(SP cat-part) ")"`
#[derive(Clone, PartialEq, Eq)]
pub enum AppendData {
    /// The message, exactly as sent in the literal or literal8.
    Literal(Vec<u8>),
    /// The message is the concatenation of these parts (RFC 4469).
    Catenate(Vec<CatenatePart>),
}

impl std::fmt::Debug for AppendData {
    /// Only sizes: message bytes are the user's mail.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppendData::Literal(bytes) => write!(f, "Literal(<{} bytes>)", bytes.len()),
            AppendData::Catenate(parts) => f.debug_tuple("Catenate").field(parts).finish(),
        }
    }
}

/// `cat-part = text-literal / url` (RFC 4469 §5)
#[derive(Clone, PartialEq, Eq)]
pub enum CatenatePart {
    /// `"TEXT" SP literal`: these bytes as they are.
    Text(Vec<u8>),
    /// `"URL" SP astring`: the message or part an IMAP URL (RFC 5092) points at.
    Url(String),
}

impl std::fmt::Debug for CatenatePart {
    /// Only sizes for text: message bytes are the user's mail.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CatenatePart::Text(bytes) => write!(f, "Text(<{} bytes>)", bytes.len()),
            CatenatePart::Url(url) => f.debug_tuple("Url").field(url).finish(),
        }
    }
}
