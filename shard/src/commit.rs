//! The group-commit driver: one task per shard that turns "some reply needs durability" into
//! flush rounds of the shard's disk, off the reactor thread.
//!
//! ```text
//!  session/delivery:  mutate store ─ ticket = disk.epoch_open() ─ wait_durable(ticket) ─ reply
//!                                                   │ (wanted.notify)          ▲ (durable.notify)
//!  commit task:   loop { wait for wanted/interval ─ yield (let this turn's writes join)
//!                        ─ flush = disk.flush_begin() ─ spawn round task ─┐ }
//!  round task:    spawn_blocking(flush.run) ─ wait until every earlier round finished
//!                 ─ disk.flush_end(epoch) ─ wake every waiter
//! ```
//!
//! Many waiters → one round; a lone waiter waits for exactly one round. Rounds may *overlap*:
//! with [`ROUNDS_IN_FLIGHT_MAX`] above one, writes made while a round syncs get the next round
//! at once instead of waiting for the first to end. Rounds *finish* in the order they began: an
//! epoch is marked durable only after every earlier epoch is, whatever order their syncs
//! complete in.
//!
//! A round whose epoch holds no writes makes no flush: if no round is in flight either, every
//! write made so far is durable, and every waiter that was waiting then is released (a
//! *clean observation*). The open epoch itself is never marked durable, since later writes
//! still land in it.
//!
//! If a flush fails the shard is *poisoned*: every present and future wait returns
//! [`CommitError::Failed`], so no reply is ever acknowledged after a failed fsync (the data may
//! be lost: Linux may drop the dirty pages and a retried fsync would succeed without them).

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::future;
use skua_core::disk::os::observed_sync;
use skua_core::disk::{Disk, Flush, FlushTargets};
use skua_core::types::Epoch;

use crate::event::Event;
use crate::limits::ROUNDS_IN_FLIGHT_MAX;

const _: () = assert!(ROUNDS_IN_FLIGHT_MAX >= 1);
/// Rounds of at most this many files sync through the ring; larger ones on the disk's sync
/// threads, which ran many syncs at once faster here (ARCHITECTURE.md, "Group commit").
const RING_SYNC_FILES_MAX: usize = 1;

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
    /// A waiter holds a ticket of the open epoch: the open epoch must be closed (or seen clean).
    round_wanted: Cell<bool>,
    failed: Cell<bool>,
    /// Rounds begun and not yet finished, and the most allowed at once.
    in_flight: Cell<usize>,
    in_flight_max: usize,
    /// The most rounds ever in flight at once (for tests and stats).
    in_flight_peak: Cell<usize>,
    /// Sequence number the next round to begin gets.
    next_sequence: Cell<u64>,
    /// Sequence number of the next round allowed to finish (rounds finish in order).
    finish_sequence: Cell<u64>,
    /// Clean observations so far (see the module docs).
    clean_observations: Cell<u64>,
    wanted: Event,
    durable: Event,
    rounds: Cell<u64>,
    /// Rounds whose syncs were submitted through the ring.
    rounds_on_ring: Cell<u64>,
    /// The shard's counters (flush round latency), once set.
    metrics: std::cell::OnceCell<std::sync::Arc<crate::metrics::ShardMetrics>>,
}

impl<D: Disk + 'static> GroupCommit<D> {
    /// A driver for `disk`; start its loop with [`GroupCommit::run`].
    #[must_use]
    pub fn new(disk: Rc<D>) -> Rc<GroupCommit<D>> {
        GroupCommit::with_rounds_in_flight(disk, ROUNDS_IN_FLIGHT_MAX)
    }

    /// A driver that runs up to `in_flight_max` rounds at once (at least one).
    #[must_use]
    pub fn with_rounds_in_flight(disk: Rc<D>, in_flight_max: usize) -> Rc<GroupCommit<D>> {
        Rc::new(GroupCommit {
            disk,
            round_wanted: Cell::new(false),
            failed: Cell::new(false),
            in_flight: Cell::new(0),
            in_flight_max: in_flight_max.max(1),
            in_flight_peak: Cell::new(0),
            next_sequence: Cell::new(0),
            finish_sequence: Cell::new(0),
            clean_observations: Cell::new(0),
            wanted: Event::new(),
            durable: Event::new(),
            rounds: Cell::new(0),
            rounds_on_ring: Cell::new(0),
            metrics: std::cell::OnceCell::new(),
        })
    }

    /// Counts every finished round's latency into `metrics` (the first set stays).
    pub(crate) fn set_metrics(&self, metrics: std::sync::Arc<crate::metrics::ShardMetrics>) {
        let _ = self.metrics.set(metrics);
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

    /// Rounds begun so far whose syncs went through the ring (the rest ran on threads).
    #[must_use]
    pub fn rounds_on_ring(&self) -> u64 {
        self.rounds_on_ring.get()
    }

    /// The most rounds that were in flight at once so far.
    #[must_use]
    pub fn in_flight_peak(&self) -> usize {
        self.in_flight_peak.get()
    }

    /// Waits until everything written up to `ticket` is on stable storage.
    ///
    /// # Errors
    /// [`CommitError::Failed`] if a flush failed (before or during the wait).
    pub async fn wait_durable(&self, ticket: Epoch) -> Result<(), CommitError> {
        // Every write this waiter depends on was made before this line, so any clean
        // observation made after it covers them.
        let clean_before = self.clean_observations.get();
        loop {
            if self.failed.get() {
                return Err(CommitError::Failed);
            }
            if self.disk.epoch_durable() >= ticket || self.clean_observations.get() > clean_before {
                return Ok(());
            }
            let seen = self.durable.generation();
            if ticket >= self.disk.epoch_open() {
                // The epoch is still open: no round in flight covers it.
                self.round_wanted.set(true);
                self.wanted.notify();
            }
            self.durable.wait_past(seen).await;
        }
    }

    /// The commit loop. Returns only when a flush failed (the shard is then poisoned).
    pub async fn run(self: Rc<Self>, flush_interval: Duration) {
        loop {
            if self.failed.get() {
                return;
            }
            if self.round_wanted.get() {
                let seen = self.durable.generation();
                if self.in_flight.get() < self.in_flight_max {
                    // Let the rest of this executor turn's writes join the round.
                    glommio::executor().yield_now().await;
                    if self.begin_round() {
                        continue;
                    }
                }
                // Too many rounds running, or a clean epoch behind unfinished rounds: retry
                // when a round finishes.
                self.durable.wait_past(seen).await;
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
            if !woken && self.in_flight.get() < self.in_flight_max {
                // Periodic round for writes nobody waits on; free when nothing was written.
                self.begin_round();
            }
        }
    }

    /// One flush round covering everything written so far, waited for: the final flush at
    /// shutdown. Runs without the loop of [`GroupCommit::run`].
    pub async fn round(self: &Rc<Self>) {
        glommio::executor().yield_now().await;
        loop {
            if self.failed.get() {
                return;
            }
            let seen = self.durable.generation();
            if self.in_flight.get() < self.in_flight_max && self.begin_round() {
                break;
            }
            self.durable.wait_past(seen).await;
        }
        let last = self.next_sequence.get();
        while self.finish_sequence.get() < last && !self.failed.get() {
            let seen = self.durable.generation();
            self.durable.wait_past(seen).await;
        }
    }

    /// Closes the open epoch and starts its flush as a task of its own. With nothing written
    /// and no round in flight, records a clean observation instead. Returns false when
    /// nothing was written but earlier rounds still run (nothing can be concluded yet).
    fn begin_round(self: &Rc<Self>) -> bool {
        match self.disk.flush_begin() {
            None if self.in_flight.get() > 0 => false,
            None => {
                self.round_wanted.set(false);
                self.clean_observations.set(self.clean_observations.get() + 1);
                self.durable.notify();
                true
            }
            Some(flush) => {
                self.round_wanted.set(false);
                let sequence = self.next_sequence.get();
                self.next_sequence.set(sequence + 1);
                self.in_flight.set(self.in_flight.get() + 1);
                self.in_flight_peak.set(self.in_flight_peak.get().max(self.in_flight.get()));
                glommio::spawn_local(self.clone().finish_round(flush, sequence)).detach();
                true
            }
        }
    }

    /// Runs one round's flush, then marks its epoch durable once every earlier round has.
    // Not cancel-safe on purpose: the task is detached and never dropped mid-flush; if it were,
    // `in_flight` and `finish_sequence` would stay put and the shard would stop acknowledging,
    // which is safe.
    async fn finish_round(self: Rc<Self>, flush: D::Flush, sequence: u64) {
        let started = std::time::Instant::now();
        let epoch = flush.epoch();
        let result = run_flush(flush, &self.rounds_on_ring).await;
        while self.finish_sequence.get() != sequence {
            let seen = self.durable.generation();
            self.durable.wait_past(seen).await;
        }
        match result {
            Ok(()) if !self.failed.get() => {
                self.disk.flush_end(epoch);
                self.rounds.set(self.rounds.get() + 1);
                if let Some(metrics) = self.metrics.get() {
                    metrics.flush_round(started.elapsed());
                    if let Some(stats) = self.disk.journal_stats() {
                        metrics.journal(stats);
                    }
                }
                self.start_checkpoint_job();
            }
            Ok(()) => {}
            Err(error) => {
                tracing::error!(
                    %error, epoch = epoch.0,
                    "FLUSH FAILED: this shard stops acknowledging writes; \
                     restart the server after fixing the disk (recovery repairs the store)"
                );
                self.failed.set(true);
            }
        }
        self.finish_sequence.set(sequence + 1);
        self.in_flight.set(self.in_flight.get() - 1);
        self.durable.notify();
    }
}

impl<D: Disk + 'static> GroupCommit<D> {
    /// Hands the disk's background work (a journal's checkpoint: its users' files synced
    /// while rounds go on) to the blocking pool, one job at a time, asking for the next when
    /// one ends. A failed job is an fsync error: the shard stops acknowledging, as after a
    /// failed round.
    fn start_checkpoint_job(self: &Rc<Self>) {
        let Some(job) = self.disk.checkpoint_job() else { return };
        let commit = self.clone();
        glommio::spawn_local(async move {
            let (id, run) = (job.id, job.run);
            let result = glommio::executor()
                .spawn_blocking(move || {
                    crate::guard::guarded(run).unwrap_or_else(|detail| {
                        Err(std::io::Error::other(format!("checkpoint panicked: {detail}")))
                    })
                })
                .await;
            if let Err(error) = &result {
                tracing::error!(
                    %error,
                    "CHECKPOINT FAILED: this shard stops acknowledging writes; restart the \
                     server after fixing the disk (the journal's replay repairs the files)"
                );
                commit.failed.set(true);
                commit.durable.notify();
            }
            commit.disk.checkpoint_done(id, result);
            commit.start_checkpoint_job();
        })
        .detach();
    }
}

/// Runs one round's syncs: through the shard's io_uring when the disk hands out descriptors
/// ([`Flush::targets`]: the real disk), else on the blocking pool ([`Flush::run`]: the
/// simulated disk, or a real one out of descriptors).
async fn run_flush<F: Flush>(flush: F, on_ring: &Cell<u64>) -> std::io::Result<()> {
    match flush.targets() {
        Some(Ok(targets)) if targets.files.len() <= RING_SYNC_FILES_MAX => {
            on_ring.set(on_ring.get() + 1);
            sync_on_ring(targets).await
        }
        Some(Ok(_)) => run_flush_off_reactor(flush).await,
        Some(Err(error)) => {
            tracing::debug!(%error, "no descriptors for the ring; this round syncs on threads");
            run_flush_off_reactor(flush).await
        }
        None => run_flush_off_reactor(flush).await,
    }
}

/// `fdatasync` of every file submitted through the ring at once (the kernel runs them
/// concurrently, and the file system folds them into few journal commits), then, only once
/// every one succeeded, `fsync` of the directories. glommio's ring offers only `fdatasync`,
/// and a directory's entries need `fsync`: those run on the blocking pool, and only rounds
/// that created, renamed or removed a file have any. Every file is synced even if another
/// fails; the first error is returned.
async fn sync_on_ring(targets: FlushTargets) -> std::io::Result<()> {
    let syncs = targets.files.into_iter().map(|fd| async move {
        let file = crate::handoff::ring_file(fd);
        let started = std::time::Instant::now();
        let synced = file.fdatasync().await;
        observed_sync(started.elapsed());
        glommio::spawn_local(async move { drop(file.close().await) }).detach();
        synced.map_err(std::io::Error::from)
    });
    let mut first_error = None;
    for result in join_all(syncs.collect()).await {
        if let (Err(error), None) = (result, &first_error) {
            first_error = Some(error);
        }
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    if targets.dirs.is_empty() {
        return Ok(());
    }
    let dirs = targets.dirs;
    glommio::executor()
        .spawn_blocking(move || {
            let mut result = Ok(());
            for dir in dirs {
                let started = std::time::Instant::now();
                let synced = std::fs::File::from(dir).sync_all();
                observed_sync(started.elapsed());
                result = result.and(synced);
            }
            result
        })
        .await
}

/// Polls every future until all are done; their outputs in order.
async fn join_all<T, F: std::future::Future<Output = T>>(futures: Vec<F>) -> Vec<T> {
    let mut futures: Vec<_> = futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut outputs: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => {
                        *output = Some(value);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().map(|output| output.expect("every future finished")).collect()
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
        let file = disk.open(Path::new(name), OpenMode::CreateIfMissing).expect("open");
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
            assert_eq!(disk.durable_contents(Path::new("f9")), Some(b"mail".to_vec()));
        });
    }

    #[test]
    fn a_lone_write_waits_for_exactly_one_round_and_reads_need_none() {
        crate::testutil::executor().run(async {
            let disk = Rc::new(SimDisk::new());
            let commit = GroupCommit::new(disk.clone());
            glommio::spawn_local(commit.clone().run(Duration::from_secs(60))).detach();
            let ticket = write(&disk, "one");
            assert_eq!(disk.durable_contents(Path::new("one")), None, "not durable yet");
            assert_eq!(commit.wait_durable(ticket).await, Ok(()));
            assert_eq!(disk.durable_contents(Path::new("one")), Some(b"mail".to_vec()));
            assert_eq!(commit.rounds(), 1);
            // A ticket taken with nothing written since is satisfied without another fsync.
            let idle_ticket = commit.ticket();
            assert_eq!(commit.wait_durable(idle_ticket).await, Ok(()));
            assert_eq!(disk.flushes_done(), 1);
        });
    }

    #[test]
    fn a_write_after_an_idle_round_still_waits_for_its_flush() {
        // Regression: an empty round used to mark the *open* epoch durable, so the next write,
        // made in that same epoch, was acknowledged at once without any flush.
        crate::testutil::executor().run(async {
            let disk = Rc::new(SimDisk::new());
            let commit = GroupCommit::new(disk.clone());
            glommio::spawn_local(commit.clone().run(Duration::from_millis(5))).detach();
            assert_eq!(commit.wait_durable(commit.ticket()).await, Ok(()));
            // Let a few periodic (empty) rounds pass.
            glommio::timer::sleep(Duration::from_millis(30)).await;
            assert_eq!(disk.flushes_done(), 0, "nothing was written");
            let ticket = write(&disk, "late");
            assert_eq!(commit.wait_durable(ticket).await, Ok(()));
            assert_eq!(
                disk.durable_contents(Path::new("late")),
                Some(b"mail".to_vec()),
                "acknowledged only once durable"
            );
            assert_eq!(disk.flushes_done(), 1);
        });
    }

    #[test]
    fn the_final_round_flushes_without_the_loop() {
        crate::testutil::executor().run(async {
            let disk = Rc::new(SimDisk::new());
            let commit = GroupCommit::new(disk.clone());
            write(&disk, "a");
            commit.round().await;
            assert_eq!(disk.durable_contents(Path::new("a")), Some(b"mail".to_vec()));
            assert_eq!(commit.rounds(), 1);
            // Nothing new: no flush.
            commit.round().await;
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
            assert!(second > first, "the first round closed its epoch before the second write");
            assert_eq!(commit.wait_durable(second).await, Ok(()));
            assert_eq!(waiter.await, Ok(()));
            assert_eq!(disk.durable_contents(Path::new("b")), Some(b"mail".to_vec()));
            assert_eq!(
                commit.rounds(),
                2,
                "the write made during the flush got a round of its own"
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
            assert_eq!(commit.wait_durable(Epoch(0)).await, Err(CommitError::Failed));
        });
    }

    #[test]
    fn two_rounds_really_in_flight_finish_in_order() {
        crate::testutil::executor().run(async {
            let disk = Rc::new(SimDisk::new());
            disk.delay_flushes(Duration::from_millis(100));
            let commit = GroupCommit::with_rounds_in_flight(disk.clone(), 2);
            glommio::spawn_local(commit.clone().run(Duration::from_secs(60))).detach();
            let first = write(&disk, "a");
            let first_waiter = {
                let commit = commit.clone();
                glommio::spawn_local(async move {
                    commit.wait_durable(first).await.expect("first round");
                    commit.disk().epoch_durable()
                })
            };
            // Let the first round begin (its flush now sleeps on a thread), then write more.
            glommio::timer::sleep(Duration::from_millis(10)).await;
            assert_eq!(commit.rounds(), 0, "the first round is still syncing");
            let second = write(&disk, "b");
            assert!(second > first);
            assert_eq!(commit.wait_durable(second).await, Ok(()));
            assert_eq!(commit.in_flight_peak(), 2, "the second round began before the first ended");
            assert!(first_waiter.await >= first);
            assert_eq!(commit.rounds(), 2);
            assert_eq!(disk.durable_contents(Path::new("b")), Some(b"mail".to_vec()));
            assert_eq!(disk.epoch_durable(), second, "both epochs durable, in order");
        });
    }

    #[test]
    fn a_real_disk_round_of_one_file_syncs_through_the_ring() {
        use skua_core::disk::os::OsDisk;
        let dir = tempfile::tempdir().expect("temp dir");
        crate::testutil::executor().run(async move {
            let disk = Rc::new(OsDisk::new(dir.path()).expect("disk"));
            let commit = GroupCommit::new(disk.clone());
            glommio::spawn_local(commit.clone().run(Duration::from_secs(60))).detach();
            // A new directory and files: a round with files and directories.
            disk.create_dir_all(Path::new("d")).expect("dir");
            let tickets: Vec<Epoch> = (0..6)
                .map(|i| {
                    let name = format!("d/f{i}");
                    let file =
                        disk.open(Path::new(&name), OpenMode::CreateIfMissing).expect("open");
                    file.write_all_at(b"mail", 0).expect("write");
                    disk.epoch_open()
                })
                .collect();
            for ticket in tickets {
                assert_eq!(commit.wait_durable(ticket).await, Ok(()));
            }
            // Then a round of file syncs only.
            let file = disk.open(Path::new("d/f0"), OpenMode::Existing).expect("open");
            file.write_all_at(b"more", 4).expect("write");
            assert_eq!(commit.wait_durable(disk.epoch_open()).await, Ok(()));
            assert_eq!(commit.rounds(), 2);
            assert_eq!(commit.rounds_on_ring(), 1, "six files on threads, then one on the ring");
            assert_eq!(std::fs::read(dir.path().join("d/f0")).expect("read"), b"mailmore");
        });
    }

    #[test]
    fn a_journaled_disk_checkpoints_in_the_background_while_rounds_go_on() {
        use skua_core::disk::journal::{Journaled, shard_journal_path};
        use skua_core::disk::os::OsDisk;
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        crate::testutil::executor().run(async move {
            let os = OsDisk::new(&root).expect("disk");
            let (journaled, _) =
                Journaled::open(os, &shard_journal_path(0), 64 * 1024).expect("journal");
            let disk = Rc::new(journaled);
            let commit = GroupCommit::new(disk.clone());
            glommio::spawn_local(commit.clone().run(Duration::from_secs(60))).detach();
            disk.create_dir_all(Path::new("d")).expect("dir");
            for round in 0..200u32 {
                let name = format!("d/f{}", round % 7);
                let file = disk.open(Path::new(&name), OpenMode::CreateIfMissing).expect("open");
                let at = file.len().expect("len");
                file.write_all_at(&[b'a' + (round % 26) as u8; 1000], at).expect("write");
                assert_eq!(commit.wait_durable(disk.epoch_open()).await, Ok(()));
                if round % 20 == 0 {
                    // Give the blocking pool's checkpoint a moment between bursts.
                    glommio::timer::sleep(Duration::from_millis(5)).await;
                }
            }
            let stats = disk.journal_stats().expect("a journal");
            assert!(stats.background_checkpoints > 0, "{stats:?}");
            assert!(stats.bytes_written > 4 * 64 * 1024, "the journal wrapped: {stats:?}");
            assert!(!commit.is_failed());
            let total: u64 = (0..7)
                .map(|i| std::fs::metadata(root.join(format!("d/f{i}"))).expect("file").len())
                .sum();
            assert_eq!(total, 200 * 1000);
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
            assert_eq!(disk.durable_contents(Path::new("quiet")), Some(b"mail".to_vec()));
        });
    }
}

#[cfg(test)]
mod ring_timing {
    use super::*;
    use skua_core::disk::os::OsDisk;
    use skua_core::disk::{DiskFile, OpenMode};
    use std::path::Path;

    /// How long a round of `PROBE_FILES` (default 8) appended files takes with its syncs
    /// through the ring and on the sync threads, alternately: the figures behind
    /// [`RING_SYNC_FILES_MAX`] (ARCHITECTURE.md, "Group commit"). Run on an idle machine:
    /// `PROBE_FILES=1 cargo test -p skua-shard --lib ring_timing -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing probe, not a test"]
    fn ring_against_threads() {
        let dir = tempfile::tempdir().expect("temp dir");
        crate::testutil::executor().run(async move {
            let disk = Rc::new(OsDisk::new(dir.path()).expect("disk"));
            let count: usize = std::env::var("PROBE_FILES").map_or(8, |v| v.parse().unwrap());
            let files: Vec<_> = (0..count)
                .map(|i| disk.open(Path::new(&format!("f{i}")), OpenMode::CreateIfMissing).unwrap())
                .collect();
            let flush = disk.flush_begin().unwrap();
            flush.run().unwrap();
            for mode in ["ring", "threads", "ring", "threads"] {
                let mut times = Vec::new();
                for round in 0..200u64 {
                    for file in &files {
                        file.write_all_at(&[7u8; 4096], round * 4096).unwrap();
                    }
                    let flush = disk.flush_begin().unwrap();
                    let started = std::time::Instant::now();
                    if mode == "ring" {
                        sync_on_ring(flush.targets().unwrap().unwrap()).await.unwrap();
                    } else {
                        run_flush_off_reactor(flush).await.unwrap();
                    }
                    times.push(started.elapsed().as_micros());
                }
                times.sort_unstable();
                println!("{mode}: p50 {} us p90 {} us", times[100], times[180]);
            }
        });
    }
}
