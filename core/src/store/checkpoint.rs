//! Which spool position is known durable, and when index headers should record it.
//!
//! Every spool write notes `(epoch it was made in, spool end after it)`. Once the disk reports
//! that epoch durable, that end is durable: every byte of spool before it survived a flush.
//! When the durable end has moved `limits::CHECKPOINT_INTERVAL_BYTES` past the checkpoint last
//! written to the index headers, the store writes a new one, which bounds the spool scan the
//! next open must do (`core/FORMAT.md`, "Recovery on open").
//!
//! Other work waits for durability the same way ([`Deferred`]): sealing the header of a new
//! index once its creation is durable, removing the index file of a deleted mailbox once the
//! delete is, and replacing `mailboxes.log` with a compacted copy (`compact.rs`). All of it
//! runs at the start of the next mutation, so the store needs no timer of its own.

use std::collections::VecDeque;

use super::UserStore;
use super::codec::SpoolPos;
use crate::disk::Disk;
use crate::error::StorageError;
use crate::limits::CHECKPOINT_INTERVAL_BYTES;
use crate::types::Epoch;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Checkpoints {
    /// `(epoch, spool end)`, oldest first; one entry per epoch.
    pending: VecDeque<(Epoch, SpoolPos)>,
    /// The newest spool end known durable.
    durable: SpoolPos,
    /// The checkpoint the index headers hold (the smallest, after open).
    written: SpoolPos,
}

impl Checkpoints {
    /// Starts from the checkpoint the headers hold.
    pub(crate) fn new(written: SpoolPos) -> Checkpoints {
        Checkpoints { pending: VecDeque::new(), durable: written, written }
    }

    /// Notes that the spool ends at `end` after a write in `epoch`.
    pub(crate) fn note_write(&mut self, epoch: Epoch, end: SpoolPos) {
        match self.pending.back_mut() {
            Some((last, pos)) if *last == epoch => *pos = (*pos).max(end),
            _ => self.pending.push_back((epoch, end)),
        }
    }

    /// Takes in what became durable; returns a new checkpoint to write when it is due.
    pub(crate) fn due(&mut self, durable: Epoch) -> Option<SpoolPos> {
        while let Some(&(epoch, pos)) = self.pending.front() {
            if epoch > durable {
                break;
            }
            self.durable = self.durable.max(pos);
            self.pending.pop_front();
        }
        let moved = if self.durable.segment() != self.written.segment() {
            self.durable > self.written
        } else {
            u64::from(self.durable.offset().saturating_sub(self.written.offset()))
                >= CHECKPOINT_INTERVAL_BYTES
        };
        moved.then_some(self.durable)
    }

    /// Forgets spool written past `mark` in epochs not yet durable: a failed operation's
    /// records were cut (`Spool::cut_back`), so no checkpoint may claim them.
    pub(crate) fn cut(&mut self, mark: SpoolPos) {
        assert!(self.durable <= mark, "a cut never reaches durable spool");
        for (_, pos) in &mut self.pending {
            *pos = (*pos).min(mark);
        }
    }

    /// Records that the headers now hold `checkpoint`.
    pub(crate) fn written(&mut self, checkpoint: SpoolPos) {
        assert!(checkpoint >= self.written, "checkpoints never go backwards");
        self.written = checkpoint;
    }

    /// The checkpoint the headers hold.
    pub(crate) fn current(&self) -> SpoolPos {
        self.written
    }
}

/// The appended records of one index that may not be durable yet.
///
/// Appends write their index record with `DiskFile::write_all_at_unsynced`, which does not add
/// the index file to the flush round: the spool record is what makes the append durable, and
/// recovery rebuilds index records from the spool past the header's checkpoint. Such a record
/// becomes durable once a round that syncs the index file completes, that is the round of the
/// epoch of any later normal write to the file (a flag change, an expunge, a header). This
/// tracks the spool position of the first record not known durable, so a header never claims a
/// checkpoint past it (`core/FORMAT.md`, "Write and flush order").
///
/// A normal write's epoch is learned late ([`UnsyncedRecords::settle`] stamps it with the epoch
/// open then, never earlier than the write's own): waiting for a later epoch is only slower.
#[derive(Debug, Default)]
pub(crate) struct UnsyncedRecords {
    /// Runs of records, oldest first, each by the spool position of its first record: the
    /// covered ones, then at most one unstamped run, then at most one uncovered run.
    runs: VecDeque<(SpoolPos, Cover)>,
}

/// What is known about when a run of unsynced records becomes durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cover {
    /// A normal write of this epoch (or an earlier one) came after them: durable with it.
    Epoch(Epoch),
    /// A normal write came after them; its epoch is not stamped yet.
    Unstamped,
    /// No normal write since they were written.
    None,
}

impl UnsyncedRecords {
    /// Notes an unsynced record written for the spool record at `pos`.
    pub(crate) fn note_unsynced(&mut self, pos: SpoolPos) {
        if !matches!(self.runs.back(), Some((_, Cover::None))) {
            self.runs.push_back((pos, Cover::None));
        }
    }

    /// Notes a normal (dirtying) write to the index file: the round of its epoch syncs every
    /// record written before it.
    pub(crate) fn note_synced_write(&mut self) {
        let len = self.runs.len();
        if !matches!(self.runs.back(), Some((_, Cover::None))) {
            return;
        }
        if len >= 2 && self.runs[len - 2].1 == Cover::Unstamped {
            self.runs.pop_back();
        } else {
            self.runs[len - 1].1 = Cover::Unstamped;
        }
    }

    /// Stamps pending normal writes with `open` (not earlier than their epoch) and forgets the
    /// records whose covering epoch is `durable`.
    pub(crate) fn settle(&mut self, open: Epoch, durable: Epoch) {
        if let Some(at) = self.runs.iter().position(|&(_, c)| c == Cover::Unstamped) {
            if at > 0 && self.runs[at - 1].1 == Cover::Epoch(open) {
                self.runs.remove(at);
            } else {
                self.runs[at].1 = Cover::Epoch(open);
            }
        }
        while let Some(&(_, Cover::Epoch(epoch))) = self.runs.front()
            && epoch <= durable
        {
            self.runs.pop_front();
        }
    }

    /// The spool position of the first record not known durable.
    pub(crate) fn first(&self) -> Option<SpoolPos> {
        self.runs.front().map(|&(pos, _)| pos)
    }

    /// `checkpoint`, lowered so it never passes a record not known durable.
    pub(crate) fn clamp(&self, checkpoint: SpoolPos) -> SpoolPos {
        self.first().map_or(checkpoint, |first| first.min(checkpoint))
    }
}

/// Work that must wait until earlier writes are durable.
#[derive(Debug, Default)]
pub(crate) struct Deferred {
    /// Mailboxes whose index header is to be sealed once their creation epoch is durable.
    pub unsealed: Vec<(Epoch, crate::types::MailboxId)>,
    /// Files to remove once the epoch that logged their removal is durable.
    pub doomed: Vec<(Epoch, std::path::PathBuf)>,
}

impl<D: Disk> UserStore<D> {
    /// Housekeeping before every mutation: finish a cut a failed operation could not make
    /// (until it is made, every mutation is refused: see [`UserStore::cut_spool_back`]), then
    /// write a new spool checkpoint into the index headers when one is due (see
    /// `checkpoint.rs`). A checkpoint failure only means the checkpoint stays older.
    ///
    /// # Errors
    /// The spool still holds records of a failed operation that cannot be cut.
    pub(super) fn before_mutation(&mut self) -> Result<(), StorageError> {
        if let Some(mark) = self.pending_cut {
            self.spool.cut_back(&self.disk, mark)?;
            self.checkpoints.cut(mark);
            self.pending_cut = None;
            tracing::info!(user = %self.dir.display(), "spool cut made; writes accepted again");
        }
        self.before_mutation_housekeeping();
        Ok(())
    }

    fn before_mutation_housekeeping(&mut self) {
        let durable = self.disk.epoch_durable();
        self.run_deferred(durable);
        let open = self.disk.epoch_open();
        for index in self.indexes.values_mut() {
            index.settle_unsynced(open, durable);
        }
        self.write_recent_claims();
        if let Err(error) = self.threads.settle(durable) {
            tracing::warn!(%error, "cannot write the threads.log header");
        }
        let Some(checkpoint) = self.checkpoints.due(durable) else {
            self.catch_up_clamped_headers();
            return;
        };
        // The map's entries of records before the checkpoint (durable) go to `threads.log`.
        if let Err(error) = self.threads.checkpoint(checkpoint, open) {
            tracing::warn!(%error, "cannot write threads.log");
        }
        let result: Result<(), StorageError> =
            self.indexes.values_mut().try_for_each(|index| index.write_header(checkpoint));
        match result {
            Ok(()) => self.checkpoints.written(checkpoint),
            Err(error) => tracing::warn!(%error, "cannot write spool checkpoint"),
        }
    }

    /// Writes the header of each index whose `\Recent` claims (`Index::claim_recent`) moved
    /// since it was written, keeping its checkpoint: a claim then becomes durable with the
    /// next mutation's flush round, before any message arrives after it. Claims made since
    /// the last mutation are lost by a crash (those messages are recent again). Failures only
    /// mean the same.
    fn write_recent_claims(&mut self) {
        for index in self.indexes.values_mut() {
            if index.header().first_recent_uid != index.first_recent_uid() {
                let checkpoint = index.header().checkpoint;
                if let Err(error) = index.write_header(checkpoint) {
                    tracing::warn!(%error, "cannot write the recent claims");
                }
            }
        }
    }

    /// Rewrites, once, the header of each index whose last checkpoint was lowered because
    /// records before it were not known durable (see [`UnsyncedRecords`]), as soon as they
    /// are: the scan on open stays bounded by one checkpoint interval. Failures only mean the
    /// checkpoint stays older.
    fn catch_up_clamped_headers(&mut self) {
        let current = self.checkpoints.current();
        for index in self.indexes.values_mut() {
            if index.header().checkpoint < current
                && index.checkpoint_reachable(current)
                && let Err(error) = index.write_header(current)
            {
                tracing::warn!(%error, "cannot write spool checkpoint");
            }
        }
    }

    /// Seals index headers and removes files whose epochs became durable. Failures only delay
    /// the work (a later mutation or the next open retries).
    fn run_deferred(&mut self, durable: crate::types::Epoch) {
        let deferred = &mut self.deferred;
        let indexes = &mut self.indexes;
        deferred.unsealed.retain(|&(epoch, id)| {
            if epoch > durable {
                return true;
            }
            let Some(index) = indexes.get_mut(&id) else {
                return false;
            };
            match index.seal() {
                Ok(()) => false,
                Err(error) => {
                    tracing::warn!(%error, "cannot seal index");
                    true
                }
            }
        });
        let disk = &self.disk;
        deferred.doomed.retain(|(epoch, path)| {
            if *epoch > durable {
                return true;
            }
            match disk.remove_file(path) {
                Ok(()) => false,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => false,
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "cannot remove file");
                    true
                }
            }
        });
        // A compaction starts only when no removal is outstanding: the compacted log forgets
        // deleted mailboxes, so their index files must be gone before it replaces the log.
        let compaction = self.log.finish_compaction(&*self.disk, durable).and_then(|_| {
            if self.deferred.doomed.is_empty() {
                self.log.maybe_compact(&*self.disk, &self.dir, &self.catalog)
            } else {
                Ok(false)
            }
        });
        if let Err(error) = compaction {
            tracing::warn!(%error, "mailbox log compaction failed");
            self.log.abandon_compaction();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsynced_records_wait_for_a_covering_epoch() {
        let mut u = UnsyncedRecords::default();
        let (a, b, c) = (SpoolPos::new(1, 64), SpoolPos::new(1, 200), SpoolPos::new(1, 400));
        assert_eq!(u.clamp(c), c);
        u.note_unsynced(a);
        u.note_unsynced(b);
        u.settle(Epoch(2), Epoch(5));
        assert_eq!(u.first(), Some(a), "no normal write yet: nothing is known durable");
        u.note_synced_write();
        u.note_unsynced(c);
        u.settle(Epoch(6), Epoch(5));
        assert_eq!(u.clamp(SpoolPos::new(2, 64)), a, "the covering epoch is not durable yet");
        u.settle(Epoch(7), Epoch(6));
        assert_eq!(u.first(), Some(c), "a and b are durable, c came after the normal write");
        u.note_synced_write();
        u.settle(Epoch(7), Epoch(6));
        assert_eq!(u.first(), Some(c));
        u.settle(Epoch(8), Epoch(7));
        assert_eq!(u.first(), None);
    }

    #[test]
    fn checkpoint_waits_for_durability_and_distance() {
        let mut c = Checkpoints::new(SpoolPos::new(1, 64));
        let far = SpoolPos::new(1, 64 + u32::try_from(CHECKPOINT_INTERVAL_BYTES).unwrap());
        c.note_write(Epoch(3), SpoolPos::new(1, 1000));
        c.note_write(Epoch(3), far);
        assert_eq!(c.due(Epoch(2)), None, "not durable yet");
        assert_eq!(c.due(Epoch(3)), Some(far));
        c.written(far);
        assert_eq!(c.due(Epoch(3)), None);
        c.note_write(Epoch(4), SpoolPos::new(2, 64));
        assert_eq!(c.due(Epoch(4)), Some(SpoolPos::new(2, 64)), "a new segment is far");
        let mut small = Checkpoints::new(SpoolPos::new(1, 64));
        small.note_write(Epoch(1), SpoolPos::new(1, 4096));
        assert_eq!(small.due(Epoch(1)), None, "too close to bother");
        assert_eq!(small.current(), SpoolPos::new(1, 64));
    }
}
