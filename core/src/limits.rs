//! Bounds on everything the mail store holds or writes, in one place.
//!
//! Each limit is enforced before memory or disk is spent, and refusing it is a typed error,
//! never a crash. The relations between limits that the on-disk format relies on are pinned by
//! `const` assertions below (see `core/FORMAT.md`).

/// Largest message the store accepts (bytes). Matches the IMAP APPEND literal default, so a
/// message the protocol layer accepts always fits.
pub const MESSAGE_BYTES_MAX: u32 = 64 * 1024 * 1024;

/// Largest cache blob (ENVELOPE, BODYSTRUCTURE, offsets) stored beside a message. The blob is
/// derived from the message, so it is bounded by a fraction of the largest message.
pub const CACHE_BYTES_MAX: u32 = 4 * 1024 * 1024;

/// A spool segment is closed once the next record would take it past this size; a new one is
/// started. Bounds a segment's memory map and the work of compacting one segment.
pub const SEGMENT_BYTES_TARGET: u32 = 64 * 1024 * 1024;

/// Most spool segment files one user's store keeps open at once (the active one included);
/// past it, the others are closed (their memory maps live on while views use them). Bounds file
/// descriptors per user.
pub const SEGMENT_FILES_OPEN_MAX: usize = 16;

/// Most spool segments per user (numbered from 1). At the target size this is 64 TiB.
pub const SEGMENTS_MAX: u32 = 1_000_000;

/// UIDs named by one expunge tombstone record; a larger expunge writes several.
pub const TOMBSTONE_UIDS_MAX: u32 = 4096;

/// Longest mailbox name in bytes (UTF-8), all hierarchy levels together.
pub const MAILBOX_NAME_BYTES_MAX: usize = 1024;

/// Deepest mailbox hierarchy (levels separated by `/`).
pub const MAILBOX_LEVELS_MAX: usize = 32;

/// Most mailboxes one user may have at once.
pub const MAILBOXES_PER_USER_MAX: usize = 10_000;

/// Most subscriptions one user may have (subscriptions may name mailboxes that do not exist).
pub const SUBSCRIPTIONS_PER_USER_MAX: usize = 10_000;

/// Most keywords per mailbox: a keyword set is one `u64` of bits (`types::Keywords`).
pub const KEYWORDS_PER_MAILBOX_MAX: usize = 64;

/// Longest keyword name in bytes.
pub const KEYWORD_BYTES_MAX: usize = 255;

/// Largest `mailboxes.log` the store replays (records are small; a log this big means it must
/// be compacted, and refusing to read more keeps open bounded).
pub const MAILBOX_LOG_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// `mailboxes.log` is considered for compaction once it reaches this size (and again each time
/// it doubles); it is compacted when that would at least halve it. Bounds the log a client can
/// grow by churning subscriptions or renames.
pub const LOG_COMPACT_MIN_BYTES: u64 = 256 * 1024;

/// Most records in one batch record of `mailboxes.log` (one change written as several records
/// that replay all or nothing): a subtree rename of every mailbox, the creation of a mailbox
/// with its superiors, the default folders with their attributes and subscriptions, or a
/// whole keyword table at once.
pub const LOG_BATCH_RECORDS_MAX: usize = MAILBOXES_PER_USER_MAX + 1;

/// Most bytes of records inside one batch record: every record at its largest (24 bytes of
/// fixed fields and a name of `MAILBOX_NAME_BYTES_MAX`, padded to 8).
pub const LOG_BATCH_BYTES_MAX: usize =
    LOG_BATCH_RECORDS_MAX * (24 + MAILBOX_NAME_BYTES_MAX).next_multiple_of(8);

/// Recovery of a spool segment whose header is damaged reads at most this many records the
/// indexes reference into it to get the segment's nonce back (`store/scan_repair.rs`)...
pub const NONCE_RECOVERY_RECORDS_MAX: usize = 16;

/// ...each at most this long (they are read whole into memory).
pub const NONCE_RECOVERY_RECORD_BYTES_MAX: u32 = 4 * 1024 * 1024;

/// Most bytes recovery checksums while looking for the next good spool record after a damaged
/// one (`store/scan_repair.rs`). Bytes a client wrote can look like record headers (never with
/// a valid checksum); this bounds what such bytes can cost. Past it, the rest of the segment
/// is treated as a torn tail.
pub const RESYNC_CHECKED_BYTES_MAX: u64 = 4 * SEGMENT_BYTES_TARGET as u64;

/// Largest modseq accepted from disk (an index header or record, a spool tombstone); a larger
/// one makes its header or record bad. RFC 7162 allows modseqs up to 2^63 - 1
/// ([`MODSEQ_MAX`]): this leaves 2^62 changes of room above any value read, so `highest + 1`
/// never passes the RFC's bound nor wraps, whatever the disk says.
pub const MODSEQ_READ_MAX: u64 = 1 << 62;

/// Largest modseq RFC 7162 allows (a positive 63-bit integer). A change past it is our bug.
pub const MODSEQ_MAX: u64 = (1 << 63) - 1;

/// Most messages (expunged records included) one mailbox index holds.
pub const MESSAGES_PER_MAILBOX_MAX: u32 = 50_000_000;

/// Index headers are rewritten with a new spool checkpoint once the durable spool end has moved
/// this far past the last checkpoint: bounds the spool scan on the next open.
pub const CHECKPOINT_INTERVAL_BYTES: u64 = 16 * 1024 * 1024;

/// Units of work one step of a store's open does (`store::UserStore::opening`): a unit is
/// about what checking one small spool record costs (reading and checksumming up to 4 KiB,
/// one write, decoding 16 index records, or handling 64 index entries in memory; opening a
/// file is four; a mailbox visited by a phase of recovery one; see `store/opening.rs`).
/// Measured at 0.2 to 2 µs a unit (`core/tests/store_open_perf.rs`: 240,000 messages, and
/// 2,001 mailboxes): a step of 256 units held the thread for 0.15 to 0.3 ms (median), 0.4
/// ms at the 99th percentile on a quiet run.
pub const OPEN_STEP_UNITS: u64 = 256;

/// Longest user name in bytes (see `paths::UserName`).
pub const USER_NAME_BYTES_MAX: usize = 255;

/// Most entries in one mailbox's access control list (RFC 4314): an ACL is replayed into
/// memory with the mailbox list, and each SETACL that adds an entry is one log record.
pub const ACL_ENTRIES_MAX: usize = 64;

/// Most users one user's grant index names (`store/grants.rs`): a LIST across every user
/// visits each of them, one cross-shard step each. A grant past it still works; only LIST
/// across every user does not show it (a LIST under that user's prefix does).
pub const GRANTS_RECEIVED_MAX: usize = 1024;

/// Longest ACL identifier in bytes: a user name and the `-` of a negative entry.
pub const ACL_IDENTIFIER_BYTES_MAX: usize = USER_NAME_BYTES_MAX + 1;

const _: () = assert!(MESSAGE_BYTES_MAX as u64 + CACHE_BYTES_MAX as u64 + 4096 < u32::MAX as u64);
const _: () = assert!(SEGMENT_BYTES_TARGET as u64 + MESSAGE_BYTES_MAX as u64 * 2 < u32::MAX as u64);
const _: () = assert!(KEYWORDS_PER_MAILBOX_MAX <= 64);
const _: () = assert!(MODSEQ_MAX - MODSEQ_READ_MAX >= 1 << 61);
const _: () = assert!(LOG_COMPACT_MIN_BYTES * 4 <= MAILBOX_LOG_BYTES_MAX);
const _: () = assert!(MAILBOX_NAME_BYTES_MAX <= u16::MAX as usize);
const _: () = assert!(KEYWORDS_PER_MAILBOX_MAX <= LOG_BATCH_RECORDS_MAX);
const _: () = assert!((LOG_BATCH_BYTES_MAX as u64) < MAILBOX_LOG_BYTES_MAX);
const _: () = assert!(KEYWORD_BYTES_MAX <= MAILBOX_NAME_BYTES_MAX);
const _: () = assert!(KEYWORD_BYTES_MAX <= u16::MAX as usize);
const _: () = assert!(ACL_IDENTIFIER_BYTES_MAX <= MAILBOX_NAME_BYTES_MAX);
const _: () = assert!(TOMBSTONE_UIDS_MAX as u64 * 4 < MESSAGE_BYTES_MAX as u64);

/// Longest METADATA entry name (RFC 5464) in bytes, `/private/` or `/shared/` included.
pub const METADATA_ENTRY_NAME_BYTES_MAX: usize = 1024;

/// Largest METADATA value in bytes (SETMETADATA beyond it: `NO [METADATA MAXSIZE n]`). Half
/// the IMAP framer's literal limit (64 KiB outside APPEND), so a value one byte too long
/// still reaches the command and gets that answer rather than the framer's BAD.
pub const METADATA_VALUE_BYTES_MAX: u32 = 32 * 1024;

/// Most METADATA entries on one mailbox, or on the server (the user's server entries).
pub const METADATA_ENTRIES_PER_MAILBOX_MAX: usize = 256;

/// Most METADATA entries of one user, all mailboxes and the server together.
pub const METADATA_ENTRIES_PER_USER_MAX: usize = 4096;

/// Most bytes of METADATA (entry names and values) one user may keep.
pub const METADATA_BYTES_PER_USER_MAX: u64 = 4 * 1024 * 1024;

/// Largest `metadata.log` the store replays. The live entries of a user fit in a fraction of
/// it (compaction keeps the log under about four times them, `store/metadata.rs`).
pub const METADATA_LOG_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// `metadata.log` is considered for compaction once it reaches this size, and again each time
/// it doubles; compacted when that at least halves it.
pub const METADATA_LOG_COMPACT_MIN_BYTES: u64 = 256 * 1024;

const _: () = assert!(METADATA_ENTRY_NAME_BYTES_MAX <= u16::MAX as usize);
const _: () = assert!(METADATA_ENTRIES_PER_MAILBOX_MAX <= METADATA_ENTRIES_PER_USER_MAX);
const _: () = assert!((METADATA_VALUE_BYTES_MAX as u64) < METADATA_BYTES_PER_USER_MAX);
// A compacted log (every live entry once, with its record overhead) fits 8 times over.
const _: () = assert!(
    (METADATA_BYTES_PER_USER_MAX + 48 * METADATA_ENTRIES_PER_USER_MAX as u64) * 8
        <= METADATA_LOG_BYTES_MAX
);
const _: () = assert!(METADATA_LOG_COMPACT_MIN_BYTES * 4 <= METADATA_LOG_BYTES_MAX);

/// A store file's descriptor unused this long is closed at the next flush round's begin
/// (`disk/os.rs`, "Descriptors are a budget"). Under load a user gets mail every few rounds of
/// a millisecond each: closing after one idle round reopened three files per delivery
/// (openat, statx and close were 7 % of the shard's CPU in an LMTP profile). Bounded: the
/// descriptors held are those of the stores used in the last 100 ms, and the periodic round
/// (`[store] flush_interval`, 1 s) still closes an idle server's.
pub const HANDLE_IDLE_MS: u64 = 100;

/// Most sync threads per disk (each shard has its own disk). A round with more targets queues
/// the rest; more threads would add little, as the file system batches the commits anyway.
pub const SYNC_THREADS_MAX: usize = 16;

/// Longest reader name in a per-reader `\Seen` set (`store/seen.rs`): a user name.
pub const SEEN_READER_BYTES_MAX: usize = USER_NAME_BYTES_MAX;

/// Most readers with a `\Seen` set of their own on one mailbox (users other than the owner
/// who marked a message seen there). One more is refused (`SeenError::TooManyReaders`).
pub const SEEN_READERS_PER_MAILBOX_MAX: usize = 1024;

/// Most UID ranges in one reader's `\Seen` set of one mailbox: an alternating pattern of
/// 8,192 messages. A change that would pass it is refused (`SeenError::TooManyRanges`).
pub const SEEN_RANGES_PER_READER_MAX: usize = 4096;

/// Most reader `\Seen` sets (mailbox, reader) in one user's store, all mailboxes together.
pub const SEEN_SETS_PER_USER_MAX: usize = 16 * 1024;

/// Most UID ranges in all reader `\Seen` sets of one user's store together.
pub const SEEN_RANGES_PER_USER_MAX: usize = 256 * 1024;

/// Largest `seen.log` the store replays or writes (`store/seen_log.rs`).
pub const SEEN_LOG_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// `seen.log` is considered for compaction once it reaches this size, and again each time it
/// doubles; compacted when that at least halves it.
pub const SEEN_LOG_COMPACT_MIN_BYTES: u64 = 256 * 1024;

const _: () = assert!(SEEN_READER_BYTES_MAX <= u8::MAX as usize);
const _: () = assert!(SEEN_RANGES_PER_READER_MAX <= SEEN_RANGES_PER_USER_MAX);
const _: () = assert!(SEEN_READERS_PER_MAILBOX_MAX <= SEEN_SETS_PER_USER_MAX);
// A compacted log (one record per set: 32 bytes, the name padded, 8 bytes a range) fits 8
// times over, so compaction always has room to run before the log is full.
const _: () = assert!(
    ((32 + SEEN_READER_BYTES_MAX as u64 + 8) * SEEN_SETS_PER_USER_MAX as u64
        + 8 * SEEN_RANGES_PER_USER_MAX as u64)
        * 8
        <= SEEN_LOG_BYTES_MAX
);
const _: () = assert!(SEEN_LOG_COMPACT_MIN_BYTES * 4 <= SEEN_LOG_BYTES_MAX);
// One record (the largest set, as a replacement) is far below the compaction threshold.
const _: () =
    assert!(32 + 256 + 8 * (SEEN_RANGES_PER_READER_MAX as u64) < SEEN_LOG_COMPACT_MIN_BYTES);

/// The shard journal's size bound (FORMAT.md, "The shard journal"): when the next batch would
/// pass it, a checkpoint round syncs the users' files and the journal restarts from its start.
/// Bodies pass through it, so it bounds how much mail a checkpoint syncs at once.
pub const JOURNAL_BYTES_MAX: u64 = 128 * 1024 * 1024;

/// The journal grows in zero-filled steps of this many bytes (its syncs then change no size).
pub const JOURNAL_GROW_BYTES: u64 = 4 * 1024 * 1024;
