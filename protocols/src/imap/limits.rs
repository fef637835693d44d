//! Bounds on what one IMAP client may make the server hold in memory while a command is framed
//! and parsed.
//!
//! Every limit is enforced *before* the memory is spent: the framer checks a literal's announced
//! size before it buffers a byte of it (and before it sends the `+` continuation of a
//! synchronizing literal), and the parser checks list lengths and nesting as it goes. Refusing a
//! limit yields a typed error that the session turns into a tagged `BAD` (or `NO [TOOBIG]`), never
//! a crash. The defaults are generous for real clients and small enough that a few thousand
//! connections per core cannot exhaust memory with half-sent commands.

/// Default longest line (bytes between two CRLFs, or before a literal header), CRLF excluded.
/// 64 KiB holds a `UID FETCH` with a badly fragmented UID set of several thousand ranges.
pub const LINE_BYTES_MAX: usize = 64 * 1024;

/// Default largest literal in any command but `APPEND` (search strings, passwords, names).
pub const LITERAL_BYTES_MAX: u64 = 64 * 1024;

/// Default largest message literal in `APPEND`. Larger messages get `NO [TOOBIG]`.
pub const APPEND_LITERAL_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// Default largest command, lines and literals together, not counting an `APPEND` command's
/// literals (which [`APPEND_LITERAL_BYTES_MAX`] and [`APPEND_COMMAND_BYTES_MAX`] bound).
pub const COMMAND_BYTES_MAX: u64 = 1024 * 1024;

/// Default largest sum of the literals of one `APPEND` command: the messages of a MULTIAPPEND
/// (RFC 3502) and the `TEXT` parts of a CATENATE (RFC 4469) together. The whole command is
/// held in memory before it runs (it is all or none), and its messages are analysed and
/// written in one step of the shard; the same as one message, so MULTIAPPEND raises neither
/// what a connection may make the server hold nor the longest step an APPEND takes. A client
/// with more sends several commands.
pub const APPEND_COMMAND_BYTES_MAX: u64 = APPEND_LITERAL_BYTES_MAX;

/// Default most messages in one `APPEND` (MULTIAPPEND, RFC 3502). Each message costs one
/// index record and one spool record written in the same command; a client with more sends
/// several commands.
pub const APPEND_MESSAGES_MAX: usize = 1000;

/// Default most `TEXT` and `URL` parts in one CATENATE message (RFC 4469).
pub const CATENATE_PARTS_MAX: usize = 256;

/// Default largest number of literals in one command (LOGIN has two, a SEARCH may have a few).
pub const LITERALS_PER_COMMAND_MAX: u32 = 32;

/// Default deepest nesting of SEARCH keys: each `(`, `NOT` and `OR` adds one level. The parser
/// recurses once per level, so this also bounds its stack use.
pub const SEARCH_DEPTH_MAX: u32 = 32;

/// Default largest number of items in one list: SEARCH keys in total, FETCH attributes, flags,
/// header field names, STATUS items, LIST patterns, ENABLE capabilities, ID parameters.
pub const LIST_ITEMS_MAX: usize = 1024;

/// Default largest number of ranges in one sequence set. A set of this many ranges needs more
/// than a default line anyway; the bound keeps literal-free memory per command in check.
pub const SEQUENCE_RANGES_MAX: usize = 16 * 1024;

/// The largest refused non-synchronizing literal the framer reads and throws away to stay in
/// sync (RFC 7888 §4 allows either that or closing). Past this, reading it would only waste
/// bandwidth on a misbehaving client: the refusal is fatal and the session closes with `BYE`.
pub const DISCARD_LITERAL_BYTES_MAX: u64 = 1024 * 1024 * 1024;

/// Before login, literals are limited to what LOGIN and AUTHENTICATE need (a user name, a
/// password, a SASL response): an unauthenticated client must not make the server hold more
/// than this per literal, nor announce an APPEND message at all.
pub const PRE_LOGIN_LITERAL_BYTES_MAX: u64 = 8 * 1024;

/// Before login, the largest whole command (LOGIN with two literals, AUTHENTICATE with a
/// SASL initial response, ID with its parameters).
pub const PRE_LOGIN_COMMAND_BYTES_MAX: u64 = 32 * 1024;

/// Before login, a refused non-synchronizing literal larger than this is not read to be thrown
/// away: the session closes. An unauthenticated client has no business sending one.
pub const PRE_LOGIN_DISCARD_LITERAL_BYTES_MAX: u64 = 64 * 1024;

/// The most digits a literal length may have (`number64` is at most 20 digits).
pub const LITERAL_LENGTH_DIGITS_MAX: usize = 20;

/// The hard ceiling on SEARCH nesting, whatever the configuration says: the parser clamps
/// [`ParseLimits::search_depth_max`] to it so that no configuration can make its recursion deep
/// enough to threaten the stack (each level costs a few hundred bytes of stack).
pub const SEARCH_DEPTH_CEILING: u32 = 128;

/// How many messages past the one being answered a FETCH of bodies asks the store to read
/// ahead (`UserStore::prefetch`, madvise `WILLNEED`). Enough to keep the disk busy with a
/// multi-message FETCH; bounded so that `FETCH 1:* BODY[]` on a huge mailbox does not ask the
/// kernel to read gigabytes at once.
pub const PREFETCH_AHEAD_MESSAGES: usize = 16;

/// Work units one slice of a resumable command may spend before it pauses and lets the shard's
/// other sessions run (`command/slice.rs`). A unit is about one message handled (its index
/// record looked up, its response encoded), 4 KiB of text scanned, or one mailbox name matched:
/// a few microseconds. 64 units (256 KiB of text) take about 0.1-0.5 ms on the 2-core test
/// machine: measured there, a `SEARCH TEXT` over 60 MB in 64-unit slices left another user's
/// NOOP p99 at 0.8 ms (2.4 ms with 256-unit slices), and took 114 ms instead of 109 ms.
pub const SLICE_WORK_UNITS: u64 = 64;

/// Output one slice may produce before it pauses (owned response bytes and spool slices
/// together): the most a session holds for a client that has stopped reading.
pub const SLICE_OUTPUT_BYTES_MAX: usize = 256 * 1024;

/// Work units a slice does before it heeds the shard's interrupt (see
/// `ImapSession::set_interrupt`): however busy the shard's other sessions are, a long command
/// still moves on by this much per turn.
pub const SLICE_WORK_UNITS_MIN: u64 = 4;

const _: () = assert!(SLICE_WORK_UNITS_MIN >= 1 && SLICE_WORK_UNITS_MIN <= SLICE_WORK_UNITS);
const _: () = assert!(LITERAL_BYTES_MAX <= COMMAND_BYTES_MAX);
const _: () = assert!(LINE_BYTES_MAX as u64 <= COMMAND_BYTES_MAX);
const _: () = assert!(LITERAL_BYTES_MAX <= APPEND_LITERAL_BYTES_MAX);
const _: () = assert!(APPEND_LITERAL_BYTES_MAX <= DISCARD_LITERAL_BYTES_MAX);
const _: () = assert!(APPEND_LITERAL_BYTES_MAX <= APPEND_COMMAND_BYTES_MAX);
const _: () = assert!(APPEND_MESSAGES_MAX >= 1 && CATENATE_PARTS_MAX >= 1);
const _: () = assert!(PRE_LOGIN_LITERAL_BYTES_MAX <= PRE_LOGIN_COMMAND_BYTES_MAX);
const _: () = assert!(PRE_LOGIN_COMMAND_BYTES_MAX <= COMMAND_BYTES_MAX);
const _: () = assert!(PRE_LOGIN_DISCARD_LITERAL_BYTES_MAX <= DISCARD_LITERAL_BYTES_MAX);
const _: () = assert!(SEARCH_DEPTH_MAX >= 4 && SEARCH_DEPTH_MAX <= SEARCH_DEPTH_CEILING);

/// The framer's limits; every field is configurable, [`FrameLimits::default`] gives the consts
/// above.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameLimits {
    /// Longest line, CRLF excluded.
    pub line_bytes_max: usize,
    /// Largest literal outside `APPEND`.
    pub literal_bytes_max: u64,
    /// Largest `APPEND` message literal (announced as `APPENDLIMIT`, RFC 7889).
    pub append_literal_bytes_max: u64,
    /// Largest sum of the literals of one `APPEND` command (MULTIAPPEND, CATENATE).
    pub append_command_bytes_max: u64,
    /// Largest command, lines and literals together, without the `APPEND` message literal.
    pub command_bytes_max: u64,
    /// Most literals in one command.
    pub literals_per_command_max: u32,
    /// A refused non-synchronizing literal larger than this is not read and thrown away: the
    /// refusal is fatal (`BYE` and close).
    pub discard_literal_bytes_max: u64,
    /// `quirk_bare_lf`: accept a bare LF as a line end. Off by default: RFC 9051 requires CRLF
    /// and every mainstream client sends it; hand-typed sessions (`nc` without `-C`) and a few
    /// scripts send LF alone. When off, a line ending in a bare LF is refused with a `BAD` and
    /// the framer resynchronizes after it.
    pub quirk_bare_lf: bool,
}

impl Default for FrameLimits {
    fn default() -> Self {
        FrameLimits {
            line_bytes_max: LINE_BYTES_MAX,
            literal_bytes_max: LITERAL_BYTES_MAX,
            append_literal_bytes_max: APPEND_LITERAL_BYTES_MAX,
            append_command_bytes_max: APPEND_COMMAND_BYTES_MAX,
            command_bytes_max: COMMAND_BYTES_MAX,
            literals_per_command_max: LITERALS_PER_COMMAND_MAX,
            discard_literal_bytes_max: DISCARD_LITERAL_BYTES_MAX,
            quirk_bare_lf: false,
        }
    }
}

impl FrameLimits {
    /// These limits as they apply before login: literals only as large as LOGIN and
    /// AUTHENTICATE need, no APPEND message, a small whole command, and no discarding of a
    /// large refused literal. Each is the smaller of the pre-login bound and `self`'s.
    #[must_use]
    pub fn before_login(self) -> FrameLimits {
        FrameLimits {
            literal_bytes_max: self.literal_bytes_max.min(PRE_LOGIN_LITERAL_BYTES_MAX),
            append_literal_bytes_max: self.literal_bytes_max.min(PRE_LOGIN_LITERAL_BYTES_MAX),
            append_command_bytes_max: self.command_bytes_max.min(PRE_LOGIN_COMMAND_BYTES_MAX),
            command_bytes_max: self.command_bytes_max.min(PRE_LOGIN_COMMAND_BYTES_MAX),
            discard_literal_bytes_max: self
                .discard_literal_bytes_max
                .min(PRE_LOGIN_DISCARD_LITERAL_BYTES_MAX),
            ..self
        }
    }
}

/// The parser's limits; [`ParseLimits::default`] gives the consts above.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseLimits {
    /// Deepest SEARCH key nesting.
    pub search_depth_max: u32,
    /// Most items in one list (and SEARCH keys in total).
    pub list_items_max: usize,
    /// Most ranges in one sequence set.
    pub sequence_ranges_max: usize,
    /// Most messages in one `APPEND` (MULTIAPPEND).
    pub append_messages_max: usize,
    /// Most parts in one CATENATE message.
    pub catenate_parts_max: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            search_depth_max: SEARCH_DEPTH_MAX,
            list_items_max: LIST_ITEMS_MAX,
            sequence_ranges_max: SEQUENCE_RANGES_MAX,
            append_messages_max: APPEND_MESSAGES_MAX,
            catenate_parts_max: CATENATE_PARTS_MAX,
        }
    }
}
