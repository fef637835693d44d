//! Per-reader `\Seen` on this store's mailboxes, for users other than the owner who read them
//! (shared folders; issue 10 item 4): what the session layer calls. Storage and recovery are
//! `seen_log.rs`, range arithmetic `seen_ranges.rs`; bytes in `core/FORMAT.md`, "seen.log".
//!
//! The owner's `\Seen` stays the message's system flag in the index; every other flag is
//! shared. A *reader* (any user name but the owner's, compared byte for byte as given: the
//! caller passes the canonical name) has a set of seen UIDs per mailbox, kept as canonical UID
//! ranges, so a reader who read everything is one range.
//!
//! *Modseqs.* A reader's change gives each message whose reader state changed a new modseq in
//! the index (the record is rewritten with its flags unchanged), so the reader's own sessions
//! find the change through CHANGEDSINCE and HIGHESTMODSEQ like any flag change. Other users'
//! sessions see a modseq rise without a visible change: they fetch flags they already have,
//! which costs a line and breaks nothing (RFC 7162 asks that every change raise the modseq,
//! not that every raise be a change). One counter for the mailbox keeps every modseq
//! comparable, with no per-reader counter to persist.
//!
//! *Expunged UIDs* are harmless in a set: nothing asks about them (the answers below are
//! about live messages), and a UID is never given again. When a reader marks messages seen,
//! gaps between the set's ranges that hold no live message (expunged or never-present UIDs,
//! and the span below the first range) are filled, so expunges do not fragment the set.

use super::UserStore;
use super::index::Entry;
use super::seen_log::{Kind, Owner, SeenLog};
use super::seen_ranges::{self, Ranges};
use crate::disk::Disk;
use crate::error::{ReadError, StorageError};
use crate::limits::{
    SEEN_RANGES_PER_READER_MAX, SEEN_RANGES_PER_USER_MAX, SEEN_READER_BYTES_MAX,
    SEEN_READERS_PER_MAILBOX_MAX, SEEN_SETS_PER_USER_MAX,
};
use crate::types::{MailboxId, ModSeq, Uid};

/// One reader's `\Seen` set of one mailbox: seen UIDs as sorted, disjoint, non-adjacent
/// inclusive ranges. It may hold expunged UIDs (they are never given again).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeenSet {
    ranges: Ranges,
}

impl SeenSet {
    /// True when the reader has seen `uid`. O(log ranges).
    #[must_use]
    pub fn contains(&self, uid: Uid) -> bool {
        seen_ranges::contains(&self.ranges, uid.get())
    }

    /// The set as ascending, disjoint, non-adjacent inclusive UID ranges.
    pub fn ranges(&self) -> impl ExactSizeIterator<Item = std::ops::RangeInclusive<u32>> + '_ {
        self.ranges.iter().map(|&(first, last)| first..=last)
    }

    /// True when the reader has seen nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// How many of `uids` (each counted as often as given) the reader has seen.
    #[must_use]
    pub fn count_in(&self, uids: &[Uid]) -> u32 {
        let seen = uids.iter().filter(|&&uid| self.contains(uid)).count();
        u32::try_from(seen).unwrap_or(u32::MAX)
    }
}

/// Why a reader's `\Seen` change was refused. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum SeenError {
    /// The mailbox does not exist.
    #[error("no such mailbox")]
    NoSuchMailbox,
    /// The reader name is empty, longer than `limits::SEEN_READER_BYTES_MAX`, or the
    /// owner's own (whose `\Seen` is the message's flag: use `store_flags`).
    #[error("bad reader name")]
    BadReader,
    /// A new reader would pass `limits::SEEN_READERS_PER_MAILBOX_MAX` on the mailbox, or
    /// `limits::SEEN_SETS_PER_USER_MAX` sets in the store.
    #[error("too many readers with their own \\Seen")]
    TooManyReaders,
    /// The reader's set would pass `limits::SEEN_RANGES_PER_READER_MAX` ranges, or all sets
    /// of the store `limits::SEEN_RANGES_PER_USER_MAX`.
    #[error("\\Seen set too fragmented")]
    TooManyRanges,
    /// `seen.log` is full (`limits::SEEN_LOG_BYTES_MAX`) until its compaction completes.
    #[error("seen log full")]
    LogFull,
    /// The disk failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl<D: Disk> UserStore<D> {
    /// Replays `seen.log` (created if missing) the first time it is called; a no-op after.
    /// [`UserStore::reader_seen`] and [`UserStore::set_reader_seen`] call it. Returns true
    /// when it replayed the log now: what it read then may not be durable yet (a crashed
    /// process may have left it in the page cache only), so a reply showing it waits for the
    /// disk's open epoch, like a mutation's.
    ///
    /// # Errors
    /// The disk failed, or the log is from a newer skua.
    pub fn load_seen(&mut self) -> Result<bool, StorageError> {
        let loading = self.seen.is_none();
        if loading {
            let opened = SeenLog::open(&*self.disk, &self.dir)?;
            if opened.replaced || opened.truncated_bytes > 0 {
                tracing::warn!(
                    dir = %self.dir.display(),
                    truncated_bytes = opened.truncated_bytes,
                    replaced = opened.replaced,
                    "seen log recovered"
                );
            }
            self.seen = Some(Box::new(opened.log));
        }
        Ok(loading)
    }

    /// `reader`'s `\Seen` set of mailbox `id` (empty for a reader who never marked anything,
    /// or a name no reader can have). Loads `seen.log` on first use; a caller that must know
    /// whether its reply waits for the disk (what a replay read may not be durable yet) calls
    /// [`UserStore::load_seen`] first.
    ///
    /// # Errors
    /// [`ReadError::NoSuchMailbox`]; the disk failed loading the log.
    pub fn reader_seen(&mut self, id: MailboxId, reader: &str) -> Result<SeenSet, ReadError> {
        let owner = self.seen_owner(id).ok_or(ReadError::NoSuchMailbox)?;
        self.load_seen()?;
        Ok(SeenSet { ranges: self.seen_ranges(owner, reader).to_vec() })
    }

    /// Live messages of `id` that `reader` has not seen (STATUS UNSEEN for a reader).
    /// O(messages + ranges).
    ///
    /// # Errors
    /// As [`UserStore::reader_seen`].
    pub fn reader_unseen(&mut self, id: MailboxId, reader: &str) -> Result<u32, ReadError> {
        let owner = self.seen_owner(id).ok_or(ReadError::NoSuchMailbox)?;
        self.load_seen()?;
        let ranges = self.seen_ranges(owner, reader);
        let index = self.indexes.get(&id).expect("every mailbox has an index");
        let mut next = 0usize;
        let mut unseen = 0u32;
        for entry in index.entries().iter().filter(|e| !e.expunged) {
            let uid = entry.uid.get();
            while ranges.get(next).is_some_and(|&(_, last)| last < uid) {
                next += 1;
            }
            if ranges.get(next).is_none_or(|&(first, _)| first > uid) {
                unseen += 1;
            }
        }
        Ok(unseen)
    }

    /// Marks (`on`) or unmarks the live messages among `uids` as seen by `reader` in mailbox
    /// `id` (others are skipped), in one record of `seen.log`, all or none. Each message
    /// whose state for the reader changed gets a new modseq (its flags stay): returns those
    /// UIDs with their new modseqs, ascending (empty when nothing changed: nothing is
    /// written). Durable once the disk's open epoch is (the caller's reply waits for it).
    ///
    /// # Errors
    /// [`SeenError`]: no such mailbox, a bad reader name, a bound would be passed, or the
    /// disk failed (modseqs given before the failure stay: a rise without a change).
    pub fn set_reader_seen(
        &mut self,
        id: MailboxId,
        reader: &str,
        uids: &[Uid],
        on: bool,
    ) -> Result<Vec<(Uid, ModSeq)>, SeenError> {
        let owner = self.seen_owner(id).ok_or(SeenError::NoSuchMailbox)?;
        if !self.is_reader_name(reader) {
            return Err(SeenError::BadReader);
        }
        self.before_mutation().map_err(|e| self.logged("seen", e))?;
        self.load_seen()?;
        let Some(plan) = self.seen_plan(owner, reader, uids, on)? else {
            return Ok(Vec::new());
        };
        // The modseqs first: alone (the record's write failing), they are a rise without a
        // change, which breaks nothing. Sessions are told even when a write fails part-way.
        self.change_counter += 1;
        self.changes.touch(id, super::changes::MailboxChange { messages: false, flags: true });
        let mut modseqs = Vec::with_capacity(plan.changed.len());
        let index = self.indexes.get_mut(&id).expect("every mailbox has an index");
        for uid in plan.changed {
            let slot = index.find(uid).expect("a live message");
            let entry = index.entries()[slot];
            let modseq = index.next_modseq();
            if let Err(error) = index.rewrite(slot, Entry { modseq, ..entry }) {
                return Err(self.logged("seen", error).into());
            }
            modseqs.push((uid, ModSeq(modseq)));
        }
        let log = self.seen.as_mut().expect("loaded above");
        let appended = log.append(plan.kind, owner, reader, plan.ranges, self.disk.epoch_open());
        appended.map_err(|error| self.logged("seen", error))?;
        Ok(modseqs)
    }

    /// What [`UserStore::set_reader_seen`] will write, checked against every bound; `None`
    /// when no live message among `uids` changes state for `reader`. Runs the log's
    /// housekeeping first (sets of mailboxes that are gone leave memory; compaction).
    fn seen_plan(
        &mut self,
        owner: Owner,
        reader: &str,
        uids: &[Uid],
        on: bool,
    ) -> Result<Option<SeenPlan>, SeenError> {
        let durable = self.disk.epoch_durable();
        let catalog = &self.catalog;
        let live = |owner: Owner| {
            catalog
                .mailboxes
                .get(&owner.id)
                .is_some_and(|m| m.uid_validity.get() == owner.uid_validity)
        };
        let log = self.seen.as_mut().expect("loaded by the caller");
        log.housekeeping(&*self.disk, &self.dir, durable, live);
        let current = self.seen_ranges(owner, reader).to_vec();
        let index = self.indexes.get(&owner.id).expect("every mailbox has an index");
        let mut given: Vec<Uid> = uids.to_vec();
        given.sort_unstable();
        given.dedup();
        let changed: Vec<Uid> = given
            .into_iter()
            .filter(|&uid| index.find(uid).is_some_and(|slot| !index.entries()[slot].expunged))
            .filter(|&uid| seen_ranges::contains(&current, uid.get()) != on)
            .collect();
        if changed.is_empty() {
            return Ok(None);
        }
        let delta = seen_ranges::from_sorted(changed.iter().map(|uid| uid.get()));
        let next = if on {
            let merged = seen_ranges::union(&current, &delta);
            // Every UID from 1 to the last entry live: every gap holds a live message, and
            // bridging would change nothing.
            let entries = index.entries();
            let dense = index.counts().messages as usize == entries.len()
                && entries.last().is_none_or(|last| last.uid.get() as usize == entries.len());
            if dense { merged } else { bridge(entries, &merged) }
        } else {
            seen_ranges::difference(&current, &delta)
        };
        self.seen_check_bounds(owner, &current, &next)?;
        let (kind, ranges) = record_for(on, &current, next);
        if !self.seen.as_ref().expect("loaded").fits(reader, ranges.len()) {
            return Err(SeenError::LogFull);
        }
        Ok(Some(SeenPlan { changed, kind, ranges }))
    }

    /// Bytes `seen.log` holds, header included (`None` before it is loaded): tests of its
    /// compaction.
    #[cfg(feature = "sim")]
    #[must_use]
    pub fn seen_log_bytes(&self) -> Option<u64> {
        self.seen.as_ref().map(|log| log.len_bytes())
    }

    /// The owner key of mailbox `id`, if it exists.
    pub(super) fn seen_owner(&self, id: MailboxId) -> Option<Owner> {
        let entry = self.catalog.mailboxes.get(&id)?;
        Some(Owner { id, uid_validity: entry.uid_validity.get() })
    }

    /// The loaded set of `reader` on `owner` (empty if none).
    pub(super) fn seen_ranges(&self, owner: Owner, reader: &str) -> &[(u32, u32)] {
        let log = self.seen.as_ref().expect("loaded by the caller");
        log.sets.get(&owner).and_then(|readers| readers.get(reader)).map_or(&[], Vec::as_slice)
    }

    /// True when `reader` can have a set here: 1 to `SEEN_READER_BYTES_MAX` bytes, and not
    /// the owner (the store's directory is named after its user).
    fn is_reader_name(&self, reader: &str) -> bool {
        let owner = self.dir.file_name().and_then(|name| name.to_str());
        !reader.is_empty() && reader.len() <= SEEN_READER_BYTES_MAX && owner != Some(reader)
    }

    /// Refuses a change of a reader's set on `owner` from `current` to `next` that would pass
    /// a bound.
    fn seen_check_bounds(
        &self,
        owner: Owner,
        current: &[(u32, u32)],
        next: &[(u32, u32)],
    ) -> Result<(), SeenError> {
        if next.len() > current.len() && next.len() > SEEN_RANGES_PER_READER_MAX {
            return Err(SeenError::TooManyRanges);
        }
        let sets = &self.seen.as_ref().expect("loaded by the caller").sets;
        if current.is_empty() && !next.is_empty() {
            let readers = sets.get(&owner).map_or(0, std::collections::BTreeMap::len);
            let total: usize = sets.values().map(std::collections::BTreeMap::len).sum();
            if readers >= SEEN_READERS_PER_MAILBOX_MAX || total >= SEEN_SETS_PER_USER_MAX {
                return Err(SeenError::TooManyReaders);
            }
        }
        if next.len() > current.len() {
            let total: usize =
                sets.values().flat_map(|readers| readers.values()).map(Vec::len).sum();
            if total - current.len() + next.len() > SEEN_RANGES_PER_USER_MAX {
                return Err(SeenError::TooManyRanges);
            }
        }
        Ok(())
    }
}

/// A checked change: the messages whose state changes (ascending), and the record.
struct SeenPlan {
    changed: Vec<Uid>,
    kind: Kind,
    ranges: Ranges,
}

/// The record that turns `current` into `next`: the ranges added (`on`) or removed, or, when
/// that takes more ranges than `next` itself, `next` as a replacement.
fn record_for(on: bool, current: &[(u32, u32)], next: Ranges) -> (Kind, Ranges) {
    let delta = if on {
        seen_ranges::difference(&next, current)
    } else {
        seen_ranges::difference(current, &next)
    };
    assert!(!delta.is_empty(), "a change changes the set");
    if delta.len() <= next.len() {
        (if on { Kind::Add } else { Kind::Remove }, delta)
    } else {
        (Kind::Replace, next)
    }
}

/// `ranges` with every gap that holds no live message of `entries` filled: the gaps between
/// ranges, and the span from UID 1 to the first range. Never past the last range (UIDs not
/// given yet). The gaps are visited in order, each found by galloping from the last: about
/// O(ranges · log(entries / ranges)) entries read, near each other, plus the expunged
/// entries inside gaps.
fn bridge(entries: &[Entry], ranges: &[(u32, u32)]) -> Ranges {
    let mut out: Ranges = Vec::with_capacity(ranges.len());
    let mut gap_first = 1u32;
    let mut from = 0usize;
    for &(first, last) in ranges {
        let mut gap_has_live = false;
        if first > gap_first {
            from = seek(entries, from, gap_first);
            gap_has_live = entries[from..]
                .iter()
                .take_while(|entry| entry.uid.get() < first)
                .any(|entry| !entry.expunged);
        }
        match out.last_mut() {
            Some(previous) if !gap_has_live => previous.1 = last,
            None if !gap_has_live => out.push((1, last)),
            _ => out.push((first, last)),
        }
        gap_first = last.saturating_add(1);
    }
    debug_assert!(seen_ranges::is_canonical(&out));
    out
}

/// The first slot at or after `from` whose UID is at least `uid` (`entries.len()` if none),
/// every entry before `from` having a smaller UID: an exponential search from `from`.
fn seek(entries: &[Entry], from: usize, uid: u32) -> usize {
    debug_assert!(entries[..from].last().is_none_or(|entry| entry.uid.get() < uid));
    let mut low = from;
    let mut step = 1usize;
    let high = loop {
        let probe = low + step - 1;
        if probe >= entries.len() {
            break entries.len();
        }
        if entries[probe].uid.get() >= uid {
            break probe + 1;
        }
        low = probe + 1;
        step *= 2;
    };
    low + entries[low..high].partition_point(|entry| entry.uid.get() < uid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::spool::SpoolRef;
    use crate::types::{Flags, InternalDate, Keywords, SystemFlags};
    use std::collections::BTreeSet;

    fn entry(uid: u32, expunged: bool) -> Entry {
        Entry {
            uid: Uid::new(uid).unwrap(),
            flags: Flags { system: SystemFlags(0), keywords: Keywords(0) },
            expunged,
            modseq: 1,
            date: InternalDate { unix_seconds: 0, zone_minutes: 0 },
            size: 1,
            spool: SpoolRef { segment: 1, offset: 64, len: 56, crc: 0 },
            save_date: 0,
        }
    }

    proptest::proptest! {
        /// `bridge` against its definition: a gap is filled exactly when no live entry lies
        /// in it, for any entries (with holes and expunges) and any set.
        #[test]
        fn bridge_fills_exactly_the_gaps_without_live_messages(
            present in proptest::collection::btree_map(1u32..300, proptest::bool::ANY, 0..200),
            seen in proptest::collection::btree_set(1u32..300, 0..60),
        ) {
            let entries: Vec<Entry> =
                present.iter().map(|(&uid, &expunged)| entry(uid, expunged)).collect();
            let ranges = seen_ranges::from_sorted(seen.iter().copied());
            let live: BTreeSet<u32> =
                present.iter().filter(|&(_, &expunged)| !expunged).map(|(&uid, _)| uid).collect();
            let mut want: Ranges = Vec::new();
            let mut gap_first = 1u32;
            for &(first, last) in &ranges {
                let gap_live = live.range(gap_first..first).next().is_some();
                match want.last_mut() {
                    Some(previous) if !gap_live => previous.1 = last,
                    None if !gap_live => want.push((1, last)),
                    _ => want.push((first, last)),
                }
                gap_first = last + 1;
            }
            proptest::prop_assert_eq!(bridge(&entries, &ranges), want);
            for uid in 1..300 {
                let slot = seek(&entries, 0, uid);
                proptest::prop_assert_eq!(slot, entries.partition_point(|e| e.uid.get() < uid));
            }
        }
    }
}
