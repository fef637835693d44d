//! Which spool position is known durable, and when index headers should record it.
//!
//! Every spool write notes `(epoch it was made in, spool end after it)`. Once the disk reports
//! that epoch durable, that end is durable: every byte of spool before it survived a flush.
//! When the durable end has moved `limits::CHECKPOINT_INTERVAL_BYTES` past the checkpoint last
//! written to the index headers, the store writes a new one, which bounds the spool scan the
//! next open must do (`core/FORMAT.md`, "Recovery on open").

use std::collections::VecDeque;

use super::codec::SpoolPos;
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
