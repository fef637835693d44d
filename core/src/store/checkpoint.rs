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

/// Work that must wait until earlier writes are durable.
#[derive(Debug, Default)]
pub(crate) struct Deferred {
    /// Mailboxes whose index header is to be sealed once their creation epoch is durable.
    pub unsealed: Vec<(Epoch, crate::types::MailboxId)>,
    /// Files to remove once the epoch that logged their removal is durable.
    pub doomed: Vec<(Epoch, std::path::PathBuf)>,
}

impl<D: Disk> UserStore<D> {
    /// Housekeeping before every mutation: write a new spool checkpoint into the index headers
    /// when one is due (see `checkpoint.rs`). A failure only means the checkpoint stays older.
    pub(super) fn before_mutation(&mut self) {
        let durable = self.disk.epoch_durable();
        self.run_deferred(durable);
        let Some(checkpoint) = self.checkpoints.due(durable) else {
            return;
        };
        let result: Result<(), StorageError> =
            self.indexes.values_mut().try_for_each(|index| index.write_header(checkpoint));
        match result {
            Ok(()) => self.checkpoints.written(checkpoint),
            Err(error) => tracing::warn!(%error, "cannot write spool checkpoint"),
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
