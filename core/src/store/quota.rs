//! Quota (RFC 9208): exact usage per user, the limits that apply to it, their enforcement
//! before anything is written, in-memory reservations, and `quota.limits`, the limits an
//! administrator set with SETQUOTA (byte layout: `core/FORMAT.md`, "quota.limits").
//!
//! *Usage* is three numbers: STORAGE (the sum of the live messages' sizes; reported in KiB,
//! rounded up), MESSAGE (live messages) and MAILBOX (mailboxes, INBOX included). Nothing new
//! is stored for them: they are what the mailbox indexes already count, so they are as
//! durable and as crash-safe as the indexes (recovery repairs those, then the totals are
//! summed once when the store opens). After that the message and byte totals are kept
//! incrementally: every mutation that can add or remove live index entries (append,
//! MULTIAPPEND, copy, the undo of a failed copy, expunge, delete) notes its mailbox's counters
//! before it runs and adds the difference after it, whether it succeeded or not, so a partial
//! failure is counted as exactly what it left. `check_invariants` compares the totals with a
//! recount. Expunged entries (including, later, expunged mail kept for delayed expunge) are
//! never counted: an expunge frees quota at once.
//!
//! *Limits* come, most specific first, from `quota.limits` (SETQUOTA; all three resources
//! together, as RFC 9208 §4.1.3 replaces a root's whole set), else from what the shard gives
//! ([`UserStore::set_default_quota`]: the passwd-file's `userdb_quota_rule` for the resources
//! it names, else the config's `[quota]`); [`effective_limits`] is the one place that decides.
//!
//! *Reservations* ([`UserStore::reserve`]) hold room for a message that is not stored yet (an
//! LMTP RCPT with `SIZE=`): every check counts them, so deliveries that reserved can never
//! together overshoot a limit. A reservation is released ([`UserStore::release`]) or consumed
//! by the append it was made for ([`UserStore::append_reserved`]). They live in memory only:
//! a restart forgets them, as it forgets the LMTP transactions that held them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::UserStore;
use super::codec::{Preamble, all_zero, file_len, get_u32, get_u64, put_u32, put_u64, read_at};
use super::index::Counts;
use super::threads::ThreadKeys;
use crate::disk::{Disk, DiskFile, OpenMode};
use crate::error::{AppendError, CopyError, OverQuota, QuotaResource, StorageError};
use crate::types::{Flags, InternalDate, MailboxId, ModSeq, Uid};

/// File name inside the user directory.
pub(crate) const LIMITS_FILE: &str = "quota.limits";
const PREAMBLE: Preamble = Preamble { magic: *b"\x89SKQ\r\n\x1a\n", major: 1, minor: 0 };
/// Bytes per slot; the file holds two, written in turn.
const SLOT_BYTES: usize = 64;
const CRC_AT: usize = 60;
const HAS_STORAGE: u32 = 1;
const HAS_MESSAGES: u32 = 2;
const HAS_MAILBOXES: u32 = 4;
// Pinned by core/FORMAT.md ("quota.limits").
const _: () = assert!(SLOT_BYTES == 64 && CRC_AT + 4 == SLOT_BYTES);
/// The most reservations one store holds at once (each is one LMTP recipient in flight).
pub const QUOTA_RESERVATIONS_MAX: usize = 4096;

/// Quota limits; `None` is no limit for that resource.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct QuotaLimits {
    /// STORAGE, in units of 1024 octets.
    pub storage_kib: Option<u64>,
    /// MESSAGE: live messages.
    pub messages: Option<u64>,
    /// MAILBOX: mailboxes, INBOX included.
    pub mailboxes: Option<u64>,
}

impl QuotaLimits {
    /// No limit at all.
    pub const UNLIMITED: QuotaLimits =
        QuotaLimits { storage_kib: None, messages: None, mailboxes: None };

    /// `self`'s limits, and `fallback`'s for the resources `self` does not name.
    #[must_use]
    pub fn or(self, fallback: QuotaLimits) -> QuotaLimits {
        QuotaLimits {
            storage_kib: self.storage_kib.or(fallback.storage_kib),
            messages: self.messages.or(fallback.messages),
            mailboxes: self.mailboxes.or(fallback.mailboxes),
        }
    }
}

/// Where a user's effective limits came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaSource {
    /// An administrator's SETQUOTA, kept in `quota.limits`.
    Stored,
    /// What the shard gave (passwd-file rules, else the config default).
    Given,
}

/// The one decision of which source wins: a SETQUOTA'd set (`stored`) replaces everything
/// the shard gave; otherwise the shard's limits (already the passwd-file's rules over the
/// config default, see `users::quota_rule`) apply.
#[must_use]
pub fn effective_limits(
    stored: Option<QuotaLimits>,
    given: QuotaLimits,
) -> (QuotaLimits, QuotaSource) {
    match stored {
        Some(limits) => (limits, QuotaSource::Stored),
        None => (given, QuotaSource::Given),
    }
}

/// A user's usage (RFC 9208 §5 resources).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuotaUsage {
    /// Sum of the live messages' sizes, in bytes.
    pub storage_bytes: u64,
    /// Live messages.
    pub messages: u64,
    /// Mailboxes, INBOX included.
    pub mailboxes: u64,
}

impl QuotaUsage {
    /// STORAGE as RFC 9208 reports it: units of 1024 octets, rounded up.
    #[must_use]
    pub fn storage_kib(&self) -> u64 {
        self.storage_bytes.div_ceil(1024)
    }
}

/// The next reservation number (see `UserStore::reserve`).
static RESERVATION_IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Room held for one message not stored yet (see the module docs). Give it back with
/// [`UserStore::release`] or use it with [`UserStore::append_reserved`]; dropping it keeps the
/// room held until the store is closed.
#[must_use = "a reservation holds quota until released or consumed"]
#[derive(Debug, PartialEq, Eq)]
pub struct QuotaReservation {
    id: u64,
    bytes: u64,
}

impl QuotaReservation {
    /// The bytes reserved.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// `quota.limits` as read, or what is known of it.
enum StoredLimits<F> {
    /// Not read yet.
    Unread,
    /// Read: the file (once it exists), the newest valid slot's sequence and its limits.
    Read { file: Option<F>, sequence: u64, limits: Option<QuotaLimits> },
}

/// The store's quota state (a field of [`UserStore`]).
pub(crate) struct Quota<F> {
    messages: u64,
    storage_bytes: u64,
    given: QuotaLimits,
    stored: StoredLimits<F>,
    reservations: BTreeMap<u64, u64>,
    reserved_bytes: u64,
}

impl<F> Quota<F> {
    /// The totals of `indexes`' counters (at open, after recovery).
    pub(crate) fn counted<'a>(counts: impl Iterator<Item = Counts> + 'a) -> Quota<F> {
        let (mut messages, mut storage_bytes) = (0u64, 0u64);
        for count in counts {
            messages += u64::from(count.messages);
            storage_bytes += count.size;
        }
        Quota {
            messages,
            storage_bytes,
            given: QuotaLimits::UNLIMITED,
            stored: StoredLimits::Unread,
            reservations: BTreeMap::new(),
            reserved_bytes: 0,
        }
    }

    /// Adds what one mailbox's counters changed by.
    fn apply(&mut self, before: Counts, after: Counts) {
        self.messages = self.messages + u64::from(after.messages) - u64::from(before.messages);
        self.storage_bytes = self.storage_bytes + after.size - before.size;
    }
}

/// What one operation would add.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Adds {
    pub bytes: u64,
    pub messages: u64,
    pub mailboxes: u64,
}

/// Refuses `adds` when usage plus reservations plus `adds` passes a limit of `limits`.
fn check(
    limits: QuotaLimits,
    usage: QuotaUsage,
    reserved: (u64, u64),
    adds: Adds,
) -> Result<(), OverQuota> {
    let over = |limit: Option<u64>, used: u64, add: u64| {
        add > 0 && limit.is_some_and(|limit| used.saturating_add(add) > limit)
    };
    let storage_limit = limits.storage_kib.map(|kib| kib.saturating_mul(1024));
    if over(storage_limit, usage.storage_bytes + reserved.0, adds.bytes) {
        return Err(OverQuota { resource: QuotaResource::Storage });
    }
    if over(limits.messages, usage.messages + reserved.1, adds.messages) {
        return Err(OverQuota { resource: QuotaResource::Message });
    }
    if over(limits.mailboxes, usage.mailboxes, adds.mailboxes) {
        return Err(OverQuota { resource: QuotaResource::Mailbox });
    }
    Ok(())
}

impl<D: Disk> UserStore<D> {
    /// The user's usage, O(1).
    #[must_use]
    pub fn quota_usage(&self) -> QuotaUsage {
        QuotaUsage {
            storage_bytes: self.quota.storage_bytes,
            messages: self.quota.messages,
            mailboxes: self.catalog.mailboxes.len() as u64,
        }
    }

    /// Bytes and messages currently reserved.
    #[must_use]
    pub fn quota_reserved(&self) -> (u64, u64) {
        (self.quota.reserved_bytes, self.quota.reservations.len() as u64)
    }

    /// Sets the limits that apply when no SETQUOTA'd limits are stored (the shard resolves
    /// them after open: passwd-file rules over the config default). Not persisted.
    pub fn set_default_quota(&mut self, limits: QuotaLimits) {
        self.quota.given = limits;
    }

    /// The limits that apply now and where they came from. Reads `quota.limits` on first
    /// use.
    ///
    /// # Errors
    /// The disk failed reading `quota.limits`.
    pub fn quota_limits(&mut self) -> Result<(QuotaLimits, QuotaSource), StorageError> {
        let stored = self.stored_limits()?;
        Ok(effective_limits(stored, self.quota.given))
    }

    /// Stores `limits` as the user's own (SETQUOTA), replacing every other source until
    /// [`UserStore::clear_quota`]. Durable after the caller's next flush round; a crash
    /// before it keeps the previous limits.
    ///
    /// # Errors
    /// The disk failed.
    pub fn set_quota(&mut self, limits: QuotaLimits) -> Result<(), StorageError> {
        self.write_limits(Some(limits))
    }

    /// Forgets the stored limits, so the shard's apply again.
    ///
    /// # Errors
    /// The disk failed.
    pub fn clear_quota(&mut self) -> Result<(), StorageError> {
        if self.stored_limits()?.is_none() {
            return Ok(());
        }
        self.write_limits(None)
    }

    /// Holds room for one message of `bytes` not stored yet (see the module docs).
    ///
    /// # Errors
    /// The limits have no room for it beside usage and other reservations, the store holds
    /// [`QUOTA_RESERVATIONS_MAX`] reservations (refused as STORAGE: try later), or the disk
    /// failed reading `quota.limits`.
    pub fn reserve(&mut self, bytes: u64) -> Result<QuotaReservation, AppendError> {
        if self.quota.reservations.len() >= QUOTA_RESERVATIONS_MAX {
            return Err(AppendError::OverQuota(OverQuota { resource: QuotaResource::Storage }));
        }
        self.quota_check(Adds { bytes, messages: 1, mailboxes: 0 })
            .map_err(|error| error.into_append())?;
        // Numbered process-wide, so a reservation of a closed instance of this store never
        // names one of a later instance.
        let id = RESERVATION_IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.quota.reservations.insert(id, bytes);
        self.quota.reserved_bytes += bytes;
        Ok(QuotaReservation { id, bytes })
    }

    /// Gives a reservation's room back; false when this store does not hold it (it was made
    /// by an earlier instance of the store, closed since, whose reservations went with it).
    pub fn release(&mut self, reservation: QuotaReservation) -> bool {
        match self.quota.reservations.get(&reservation.id) {
            Some(&bytes) if bytes == reservation.bytes => {
                self.quota.reservations.remove(&reservation.id);
                self.quota.reserved_bytes -= bytes;
                true
            }
            _ => false,
        }
    }

    /// [`UserStore::append_threaded`] of the message `reservation` was made for: the
    /// reservation is consumed whatever the outcome, and the append is checked against the
    /// limits with every other reservation counted (a message larger than reserved may be
    /// refused here).
    ///
    /// # Errors
    /// As [`UserStore::append`].
    ///
    /// # Panics
    /// As [`UserStore::append`].
    #[allow(clippy::too_many_arguments)]
    pub fn append_reserved(
        &mut self,
        reservation: QuotaReservation,
        id: MailboxId,
        message: &[u8],
        cache: &[u8],
        keys: ThreadKeys<'_>,
        flags: Flags,
        date: Option<InternalDate>,
    ) -> Result<(Uid, ModSeq), AppendError> {
        let _ = self.release(reservation);
        self.append_threaded(id, message, cache, keys, flags, date)
    }

    /// Refuses what `adds` would add when it does not fit (see [`check`]).
    pub(super) fn quota_check(&mut self, adds: Adds) -> Result<(), QuotaRefusal> {
        let (limits, _) = self.quota_limits().map_err(QuotaRefusal::Storage)?;
        let reserved = self.quota_reserved();
        check(limits, self.quota_usage(), reserved, adds).map_err(QuotaRefusal::Over)
    }

    /// [`UserStore::quota_check`] of a COPY of `uids` from `source` (their live sizes).
    pub(super) fn quota_check_copy(
        &mut self,
        source: MailboxId,
        uids: &[Uid],
    ) -> Result<(), CopyError> {
        let Some(index) = self.indexes.get(&source) else { return Ok(()) };
        let mut adds = Adds::default();
        let mut previous = None;
        for &uid in uids {
            if previous.is_some_and(|p| p >= uid) {
                // Not ascending: count each UID once the slow way.
                return self.quota_check_copy_unsorted(source, uids);
            }
            previous = Some(uid);
            if let Some(slot) = index.find(uid) {
                let entry = index.entries()[slot];
                if !entry.expunged {
                    adds.bytes += u64::from(entry.size);
                    adds.messages += 1;
                }
            }
        }
        self.quota_check(adds).map_err(QuotaRefusal::into_copy)
    }

    fn quota_check_copy_unsorted(
        &mut self,
        source: MailboxId,
        uids: &[Uid],
    ) -> Result<(), CopyError> {
        let mut sorted = uids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        self.quota_check_copy(source, &sorted)
    }

    /// Mailbox `id`'s counters, before a mutation (see the module docs).
    pub(super) fn quota_mark(&self, id: MailboxId) -> Option<Counts> {
        self.indexes.get(&id).map(super::index::Index::counts)
    }

    /// After a mutation of mailbox `id`: adds what its counters changed by since `before`.
    /// A mailbox gone meanwhile counts as empty (delete subtracts it itself).
    pub(super) fn quota_settle(&mut self, id: MailboxId, before: Option<Counts>) {
        let Some(before) = before else { return };
        let after = self.quota_mark(id).unwrap_or_default();
        self.quota.apply(before, after);
    }

    /// Takes a deleted mailbox's live messages off the totals.
    pub(super) fn quota_forget(&mut self, counts: Counts) {
        self.quota.apply(counts, Counts::default());
    }

    /// The bytes an EXPUNGE of mailbox `id` would free: the sizes of its live messages
    /// flagged `\Deleted` (STATUS `DELETED-STORAGE`, RFC 9208 §4.2). Walks the mailbox:
    /// O(messages), only when asked.
    #[must_use]
    pub fn deleted_storage_bytes(&self, id: MailboxId) -> Option<u64> {
        let index = self.indexes.get(&id)?;
        let deleted = index.entries().iter().filter(|entry| {
            !entry.expunged && entry.flags.system.contains(crate::types::SystemFlags::DELETED)
        });
        Some(deleted.map(|entry| u64::from(entry.size)).sum())
    }

    /// The totals recounted from every index (tests and `check_invariants`).
    #[must_use]
    pub fn quota_recount(&self) -> QuotaUsage {
        let mut usage =
            QuotaUsage { mailboxes: self.catalog.mailboxes.len() as u64, ..QuotaUsage::default() };
        for index in self.indexes.values() {
            let counts = index.counts();
            usage.messages += u64::from(counts.messages);
            usage.storage_bytes += counts.size;
        }
        usage
    }

    /// Recounts every mailbox's counters from its index records and sets the quota totals to
    /// their sum (`skua quota --fix` on a running server; a store that opens counts afresh, so
    /// nothing is persisted). True when anything differed. O(messages).
    pub fn quota_fix(&mut self) -> bool {
        let mut differed = false;
        let (mut messages, mut storage_bytes) = (0u64, 0u64);
        for index in self.indexes.values_mut() {
            differed |= index.recount();
            let counts = index.counts();
            messages += u64::from(counts.messages);
            storage_bytes += counts.size;
        }
        differed |= messages != self.quota.messages || storage_bytes != self.quota.storage_bytes;
        self.quota.messages = messages;
        self.quota.storage_bytes = storage_bytes;
        differed
    }

    /// Skews the counters of mailbox `id` and the totals (tests of [`Self::quota_fix`]).
    #[cfg(test)]
    pub(crate) fn skew_quota_for_test(&mut self, id: MailboxId) {
        self.indexes.get_mut(&id).expect("mailbox").skew_counts_for_test();
        self.quota.storage_bytes += 1000;
    }

    fn limits_path(&self) -> PathBuf {
        self.dir.join(LIMITS_FILE)
    }

    /// The stored limits, reading the file on first use.
    fn stored_limits(&mut self) -> Result<Option<QuotaLimits>, StorageError> {
        if let StoredLimits::Read { limits, .. } = &self.quota.stored {
            return Ok(*limits);
        }
        let path = self.limits_path();
        let (file, sequence, limits) = if self.disk.exists(&path) {
            let file = self
                .disk
                .open(&path, OpenMode::Existing)
                .map_err(|e| StorageError::io(&path, e))?;
            let (sequence, limits) = read_slots(&file, &path)?;
            (Some(file), sequence, limits)
        } else {
            (None, 0, None)
        };
        self.quota.stored = StoredLimits::Read { file, sequence, limits };
        Ok(limits)
    }

    /// Writes `limits` (or their absence) into the slot the next sequence number picks.
    fn write_limits(&mut self, limits: Option<QuotaLimits>) -> Result<(), StorageError> {
        self.stored_limits()?;
        let path = self.limits_path();
        let StoredLimits::Read { file, sequence, .. } = &mut self.quota.stored else {
            unreachable!("read above");
        };
        if file.is_none() {
            let created = self
                .disk
                .open(&path, OpenMode::CreateIfMissing)
                .map_err(|e| StorageError::io(&path, e))?;
            *file = Some(created);
        }
        let next = *sequence + 1;
        let slot = encode_slot(next, limits);
        let offset = (next % 2) * SLOT_BYTES as u64;
        let handle = file.as_ref().expect("opened above");
        handle.write_all_at(&slot, offset).map_err(|e| StorageError::io(&path, e))?;
        assert_eq!(decode_slot(&slot, &path)?, Some((next, limits)), "a slot just encoded reads");
        self.quota.stored =
            StoredLimits::Read { file: Some(handle.clone()), sequence: next, limits };
        self.change_counter += 1;
        Ok(())
    }
}

/// Why a quota check refused.
pub(super) enum QuotaRefusal {
    Over(OverQuota),
    Storage(StorageError),
}

impl QuotaRefusal {
    pub(super) fn into_append(self) -> AppendError {
        match self {
            QuotaRefusal::Over(over) => AppendError::OverQuota(over),
            QuotaRefusal::Storage(error) => AppendError::Storage(error),
        }
    }

    pub(super) fn into_copy(self) -> CopyError {
        match self {
            QuotaRefusal::Over(over) => CopyError::OverQuota(over),
            QuotaRefusal::Storage(error) => CopyError::Storage(error),
        }
    }

    pub(super) fn into_mailbox(self) -> crate::error::MailboxError {
        match self {
            QuotaRefusal::Over(over) => crate::error::MailboxError::OverQuota(over),
            QuotaRefusal::Storage(error) => crate::error::MailboxError::Storage(error),
        }
    }
}

/// One slot's bytes (`core/FORMAT.md`, "quota.limits").
fn encode_slot(sequence: u64, limits: Option<QuotaLimits>) -> [u8; SLOT_BYTES] {
    let mut slot = [0u8; SLOT_BYTES];
    PREAMBLE.write(&mut slot, SLOT_BYTES as u32);
    put_u64(&mut slot, 16, sequence);
    let mut present = 0;
    if let Some(limits) = limits {
        let mut field = |bit: u32, at: usize, value: Option<u64>| {
            if let Some(value) = value {
                present |= bit;
                put_u64(&mut slot, at, value);
            }
        };
        field(HAS_STORAGE, 32, limits.storage_kib);
        field(HAS_MESSAGES, 40, limits.messages);
        field(HAS_MAILBOXES, 48, limits.mailboxes);
        // Bit 31: a set is stored (possibly with no limit in it).
        present |= 1 << 31;
    }
    put_u32(&mut slot, 24, present);
    let crc = crc32c::crc32c(&slot[..CRC_AT]);
    put_u32(&mut slot, CRC_AT, crc);
    slot
}

/// A slot's sequence and limits; `None` when it is torn, damaged or empty.
fn decode_slot(
    slot: &[u8],
    path: &std::path::Path,
) -> Result<Option<(u64, Option<QuotaLimits>)>, StorageError> {
    let Some(size) = PREAMBLE.check(slot, CRC_AT, path)? else { return Ok(None) };
    let present = get_u32(slot, 24);
    let known = HAS_STORAGE | HAS_MESSAGES | HAS_MAILBOXES | (1 << 31);
    if size as usize != SLOT_BYTES
        || present & !known != 0
        || !all_zero(&slot[28..32])
        || !all_zero(&slot[56..CRC_AT])
    {
        return Ok(None);
    }
    let field = |bit: u32, at: usize| (present & bit != 0).then(|| get_u64(slot, at));
    let limits = (present & (1 << 31) != 0).then(|| QuotaLimits {
        storage_kib: field(HAS_STORAGE, 32),
        messages: field(HAS_MESSAGES, 40),
        mailboxes: field(HAS_MAILBOXES, 48),
    });
    Ok(Some((get_u64(slot, 16), limits)))
}

/// The newest valid slot of the file: `(0, None)` when neither is valid (no limits stored:
/// a torn first write, which was never acknowledged).
fn read_slots<F: DiskFile>(
    file: &F,
    path: &std::path::Path,
) -> Result<(u64, Option<QuotaLimits>), StorageError> {
    let len = file_len(file, path)?;
    let mut best: (u64, Option<QuotaLimits>) = (0, None);
    for slot_index in 0..2u64 {
        let offset = slot_index * SLOT_BYTES as u64;
        if offset + SLOT_BYTES as u64 > len {
            break;
        }
        let mut slot = [0u8; SLOT_BYTES];
        read_at(file, path, &mut slot, offset)?;
        if let Some((sequence, limits)) = decode_slot(&slot, path)?
            && sequence % 2 == slot_index
            && sequence > best.0
        {
            best = (sequence, limits);
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(storage_kib: Option<u64>, messages: Option<u64>) -> QuotaLimits {
        QuotaLimits { storage_kib, messages, mailboxes: None }
    }

    #[test]
    fn slot_round_trip_and_damage() {
        let path = std::path::Path::new("quota.limits");
        for stored in [None, Some(QuotaLimits::UNLIMITED), Some(limits(Some(5), Some(7)))] {
            let slot = encode_slot(9, stored);
            assert_eq!(decode_slot(&slot, path).unwrap(), Some((9, stored)));
            for byte in 0..SLOT_BYTES {
                let mut bad = slot;
                bad[byte] ^= 0x10;
                assert_eq!(decode_slot(&bad, path).unwrap(), None, "flip in byte {byte}");
            }
        }
    }

    #[test]
    fn check_counts_reservations_and_allows_reaching_the_limit() {
        let lim = limits(Some(2), Some(3));
        let usage = QuotaUsage { storage_bytes: 1000, messages: 1, mailboxes: 1 };
        let add = |bytes| Adds { bytes, messages: 1, mailboxes: 0 };
        assert_eq!(check(lim, usage, (0, 0), add(1048)), Ok(()));
        let over = check(lim, usage, (0, 0), add(1049)).unwrap_err();
        assert_eq!(over.resource, QuotaResource::Storage);
        assert_eq!(check(lim, usage, (48, 1), add(1000)), Ok(()));
        let over = check(lim, usage, (49, 1), add(1000)).unwrap_err();
        assert_eq!(over.resource, QuotaResource::Storage);
        let over = check(lim, usage, (0, 2), add(1)).unwrap_err();
        assert_eq!(over.resource, QuotaResource::Message);
        // Over a lowered limit, nothing is added, but removing (adds zero) is never refused.
        let full = QuotaUsage { storage_bytes: 9999, messages: 9, mailboxes: 1 };
        assert_eq!(check(lim, full, (0, 0), Adds::default()), Ok(()));
    }

    #[test]
    fn stored_limits_win_over_given() {
        let given = limits(Some(1), None);
        assert_eq!(effective_limits(None, given), (given, QuotaSource::Given));
        let stored = QuotaLimits::UNLIMITED;
        assert_eq!(effective_limits(Some(stored), given), (stored, QuotaSource::Stored));
    }

    #[test]
    fn storage_kib_rounds_up() {
        let usage = |storage_bytes| QuotaUsage { storage_bytes, messages: 0, mailboxes: 0 };
        assert_eq!(usage(0).storage_kib(), 0);
        assert_eq!(usage(1).storage_kib(), 1);
        assert_eq!(usage(1024).storage_kib(), 1);
        assert_eq!(usage(1025).storage_kib(), 2);
    }
}
