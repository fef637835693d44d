//! The group-commit driver: one task per shard that turns "some reply needs durability" into
//! flush rounds of the shard's disk, off the reactor thread.
//!
//! ```text
//!  session/delivery:  mutate store ─ ticket = disk.epoch_open() ─ wait_durable(ticket) ─ reply
//!                                                   │ (wanted.notify)          ▲ (durable.notify)
//!  commit task:   loop { wait for wanted/interval ─ yield (let this turn's writes join)
//!                        ─ flush = disk.flush_begin() ─ spawn_blocking(flush.run)
//!                        ─ disk.flush_end(epoch) ─ wake every waiter }
//! ```
//!
//! Many waiters → one round; a lone waiter waits for exactly one round. If a flush fails the
//! shard is *poisoned*: every present and future wait returns [`CommitError::Failed`], so no
//! reply is ever acknowledged after a failed fsync (the data may be lost: Linux may drop the
//! dirty pages and a retried fsync would succeed without them).

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::future;
use skua_core::disk::{Disk, Flush};
use skua_core::types::Epoch;

use crate::event::Event;

/// Why a durability wait failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommitError {
    /// A flush round failed earlier on this shard; nothing more is acknowledged.
    #[error("a flush round failed; the shard no longer acknowledges writes")]
    Failed,
}

/// The shard's durability service. Shared (`Rc`) by every session on the shard.
pub struct GroupCommit<D: Disk> {
    disk: Rc<D>,
    /// Highest ticket anyone asked for.
    requested: Cell<Epoch>,
    /// Every ticket `<=` this is durable (also covers epochs in which nothing was written).
    durable_through: Cell<Epoch>,
    failed: Cell<bool>,
    /// A round is running; rounds never overlap (an epoch is marked durable only after every
    /// earlier epoch's flush finished).
    in_round: Cell<bool>,
    wanted: Event,
    durable: Event,
    rounds: Cell<u64>,
}

impl<D: Disk> GroupCommit<D> {
    /// A driver for `disk`; start its loop with [`GroupCommit::run`].
    #[must_use]
    pub fn new(disk: Rc<D>) -> Rc<GroupCommit<D>> {
        let durable_through = disk.epoch_durable();
        Rc::new(GroupCommit {
            disk,
            requested: Cell::new(Epoch(0)),
            durable_through: Cell::new(durable_through),
            failed: Cell::new(false),
            in_round: Cell::new(false),
            wanted: Event::new(),
            durable: Event::new(),
            rounds: Cell::new(0),
        })
    }

    /// The disk this driver flushes.
    #[must_use]
    pub fn disk(&self) -> &Rc<D> {
        &self.disk
    }

    /// The ticket for a reply that depends on every write made so far.
    #[must_use]
    pub fn ticket(&self) -> Epoch {
        self.disk.epoch_open()
    }

    /// True once a flush failed.
    #[must_use]
    pub fn is_failed(&self) -> bool {
        self.failed.get()
    }

    /// Flush rounds completed so far (for tests and stats).
    #[must_use]
    pub fn rounds(&self) -> u64 {
        self.rounds.get()
    }

    fn is_durable(&self, ticket: Epoch) -> bool {
        self.durable_through.get() >= ticket || self.disk.epoch_durable() >= ticket
    }

    /// Waits until everything written up to `ticket` is on stable storage.
    ///
    /// # Errors
    /// [`CommitError::Failed`] if a flush failed (before or during the wait).
    pub async fn wait_durable(&self, ticket: Epoch) -> Result<(), CommitError> {
        loop {
            if self.failed.get() {
                return Err(CommitError::Failed);
            }
            if self.is_durable(ticket) {
                return Ok(());
            }
            let seen = self.durable.generation();
            if ticket > self.requested.get() {
                self.requested.set(ticket);
            }
            self.wanted.notify();
            self.durable.wait_past(seen).await;
        }
    }

    /// The commit loop. Returns only when a flush failed (the shard is then poisoned).
    pub async fn run(self: Rc<Self>, flush_interval: Duration) {
        loop {
            if self.failed.get() {
                return;
            }
            if !self.is_durable(self.requested.get()) {
                self.round().await;
                continue;
            }
            let seen = self.wanted.generation();
            let woken = future::or(
                async {
                    self.wanted.wait_past(seen).await;
                    true
                },
                async {
                    glommio::timer::sleep(flush_interval).await;
                    false
                },
            )
            .await;
            if !woken {
                // Periodic round for writes nobody waits on; free when nothing was written.
                self.round().await;
            }
        }
    }

    /// One flush round: everything written before it becomes durable, and every waiter wakes.
    /// Also used for the final flush at shutdown.
    pub async fn round(&self) {
        while self.in_round.get() {
            let seen = self.durable.generation();
            self.durable.wait_past(seen).await;
        }
        if self.failed.get() {
            return;
        }
        // Not cancel-safe on purpose: if this future were dropped mid-flush, `in_round` stays
        // set and the shard stops acknowledging, which is safe; clearing it would let a later
        // round mark this epoch durable while its fsync may still be running.
        self.in_round.set(true);
        self.round_inner().await;
        self.in_round.set(false);
        self.durable.notify();
    }

    async fn round_inner(&self) {
        // Let the rest of this executor turn's writes join the round.
        glommio::executor().yield_now().await;
        let open = self.disk.epoch_open();
        match self.disk.flush_begin() {
            None => self.mark_durable(open),
            Some(flush) => {
                let epoch = flush.epoch();
                match run_flush_off_reactor(flush).await {
                    Ok(()) => {
                        self.disk.flush_end(epoch);
                        self.mark_durable(epoch);
                        self.rounds.set(self.rounds.get() + 1);
                    }
                    Err(error) => {
                        tracing::error!(
                            %error, epoch = epoch.0,
                            "FLUSH FAILED: this shard stops acknowledging writes; \
                             restart the server after fixing the disk (recovery repairs the store)"
                        );
                        self.failed.set(true);
                    }
                }
            }
        }
    }

    fn mark_durable(&self, epoch: Epoch) {
        if epoch > self.durable_through.get() {
            self.durable_through.set(epoch);
        }
    }
}

/// Runs a flush on the shard's blocking pool. A panic inside the flush is an error, not UB:
/// glommio's `spawn_blocking` must get a value back.
async fn run_flush_off_reactor<F: Flush>(flush: F) -> std::io::Result<()> {
    glommio::executor()
        .spawn_blocking(move || {
            crate::guard::guarded(|| flush.run()).unwrap_or_else(|detail| {
                Err(std::io::Error::other(format!("flush panicked: {detail}")))
            })
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use skua_core::disk::sim::SimDisk;
    use skua_core::disk::{DiskFile, OpenMode};
    use std::path::Path;

    fn write(disk: &SimDisk, name: &str) -> Epoch {
        let file = disk
            .open(Path::new(name), OpenMode::CreateIfMissing)
            .expect("open");
        file.write_all_at(b"mail", 0).expect("write");
        disk.epoch_open()
    }

    #[test]
    fn many_waiters_share_one_flush_round() {
        crate::testutil::executor().run(async {
            let disk = Rc::new(SimDisk::new());
            let commit = GroupCommit::new(disk.clone());
            glommio::spawn_local(commit.clone().run(Duration::from_secs(60))).detach();
            let waiters: Vec<_> = (0..10)
                .map(|i| {
                    let ticket = write(&disk, &format!("f{i}"));
                    let commit = commit.clone();
                    glommio::spawn_local(async move { commit.wait_durable(ticket).await })
                })
                .collect();
            for waiter in waiters {
                assert_eq!(waiter.await, Ok(()));
            }
            assert_eq!(commit.rounds(), 1, "ten writes of one turn, one flush");
            assert_eq!(disk.flushes_done(), 1);
            assert_eq!(
                disk.durable_contents(Path::new("f9")),
                Some(b"mail".to_vec())
            );
        });
    }

    #[test]
    fn a_lone_write_waits_for_exactly_one_round_and_reads_need_none() {
        crate::testutil::executor().run(async {
            let disk = Rc::new(SimDisk::new());
            let commit = GroupCommit::new(disk.clone());
            glommio::spawn_local(commit.clone().run(Duration::from_secs(60))).detach();
            let ticket = write(&disk, "one");
            assert_eq!(
                disk.durable_contents(Path::new("one")),
                None,
                "not durable yet"
            );
            assert_eq!(commit.wait_durable(ticket).await, Ok(()));
            assert_eq!(
                disk.durable_contents(Path::new("one")),
                Some(b"mail".to_vec())
            );
            assert_eq!(commit.rounds(), 1);
            // A ticket taken with nothing written since is satisfied without another fsync.
            let idle_ticket = commit.ticket();
            assert_eq!(commit.wait_durable(idle_ticket).await, Ok(()));
            assert_eq!(disk.flushes_done(), 1);
        });
    }

    #[test]
    fn writes_during_a_flush_get_the_next_round() {
        crate::testutil::executor().run(async {
            let disk = Rc::new(SimDisk::new());
            let commit = GroupCommit::new(disk.clone());
            glommio::spawn_local(commit.clone().run(Duration::from_secs(60))).detach();
            let first = write(&disk, "a");
            let waiter = {
                let commit = commit.clone();
                glommio::spawn_local(async move { commit.wait_durable(first).await })
            };
            // Let the round start, then write more before it ends.
            glommio::executor().yield_now().await;
            glommio::executor().yield_now().await;
            let second = write(&disk, "b");
            assert_eq!(commit.wait_durable(second).await, Ok(()));
            assert_eq!(waiter.await, Ok(()));
            assert_eq!(
                disk.durable_contents(Path::new("b")),
                Some(b"mail".to_vec())
            );
        });
    }

    #[test]
    fn a_failed_flush_is_never_acknowledged() {
        crate::testutil::executor().run(async {
            let disk = Rc::new(SimDisk::new());
            disk.freeze_after_flushes(0);
            let commit = GroupCommit::new(disk.clone());
            glommio::spawn_local(commit.clone().run(Duration::from_secs(60))).detach();
            let ticket = write(&disk, "lost");
            assert_eq!(commit.wait_durable(ticket).await, Err(CommitError::Failed));
            assert!(commit.is_failed());
            // Everything after a failure is refused too, even tickets already covered.
            let later = write(&disk, "later");
            assert_eq!(commit.wait_durable(later).await, Err(CommitError::Failed));
            assert_eq!(
                commit.wait_durable(Epoch(0)).await,
                Err(CommitError::Failed)
            );
        });
    }

    #[test]
    fn unwaited_writes_are_flushed_by_the_interval() {
        crate::testutil::executor().run(async {
            let disk = Rc::new(SimDisk::new());
            let commit = GroupCommit::new(disk.clone());
            glommio::spawn_local(commit.clone().run(Duration::from_millis(20))).detach();
            write(&disk, "quiet");
            glommio::timer::sleep(Duration::from_millis(200)).await;
            assert_eq!(
                disk.durable_contents(Path::new("quiet")),
                Some(b"mail".to_vec())
            );
        });
    }
}
