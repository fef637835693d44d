//! Concurrent `fdatasync`/`fsync` for the real disk's flush rounds.
//!
//! Why: a flush round syncs every file written in its epoch, typically two per user delivered
//! to (spool segment and index). Synced one after another, each `fdatasync` of an appended file
//! waits for its own journal commit and device cache flush, so a round of N files costs about
//! N flushes. Issued at the same time, the file system folds them into one or two journal
//! commits (ext4's jbd2 batches waiters), and a virtio or NVMe device serves them in parallel:
//! measured here, 8 files took 8-14 ms one after another and 2-3 ms concurrently.
//!
//! How: a small pool of plain threads per disk, started on first need and kept, each running
//! one sync at a time. The thread that runs the round submits all but one target, syncs that
//! one itself, then waits for the rest. Every target is synced even if another fails; the
//! round returns the first error. The pool ends when the last flush and the disk holding it are
//! dropped (the job channel closes).

use crate::limits::SYNC_THREADS_MAX;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// Stack of a sync thread: it only calls `fdatasync`/`fsync`.
const SYNC_THREAD_STACK_BYTES: usize = 64 * 1024;
const _: () = assert!(SYNC_THREADS_MAX >= 1);

/// What one sync makes durable.
#[derive(Debug, Clone)]
pub(crate) enum SyncTarget {
    /// A file's data (and the metadata needed to read it back): `fdatasync`.
    Data(Arc<super::os::Handle>),
    /// A directory's entries: open it and `fsync`.
    Dir(PathBuf),
}

impl SyncTarget {
    fn sync(&self) -> io::Result<()> {
        let started = std::time::Instant::now();
        let synced = match self {
            SyncTarget::Data(file) => file.sync_data(),
            SyncTarget::Dir(path) => open_dir(path)?.sync_all(),
        };
        observed_sync(started.elapsed());
        synced
    }
}

/// Tells the observer set with [`observe_syncs`] that a sync took `took`: for syncs a runtime
/// issues itself ([`super::Flush::targets`]).
pub fn observed_sync(took: std::time::Duration) {
    if let Some(observe) = SYNC_OBSERVER.get() {
        observe(took);
    }
}

/// Told how long each `fdatasync`/`fsync` of a flush round took (the runtime's metrics).
static SYNC_OBSERVER: std::sync::OnceLock<fn(std::time::Duration)> = std::sync::OnceLock::new();

/// Has `observer` told the duration of every sync of every real disk's flush rounds, on the
/// sync thread that ran it (so it must be cheap and thread-safe: an atomic add). The first
/// observer set stays.
pub fn observe_syncs(observer: fn(std::time::Duration)) {
    let _ = SYNC_OBSERVER.set(observer);
}

/// Attempts to open a directory while the process is out of descriptors, and the pause
/// between them. Running out of descriptors is not a disk failure: nothing written was lost,
/// and connections closing give descriptors back, so the sync waits (on its own thread, never
/// the reactor) instead of failing the round, which would stop the shard acknowledging for
/// good. Only a failed `fsync` is fatal. 100 x 20 ms: two seconds.
const DIR_OPEN_ATTEMPTS: u32 = 100;
const DIR_OPEN_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// Opens a directory to sync it, waiting out a temporary lack of descriptors.
fn open_dir(path: &std::path::Path) -> io::Result<File> {
    let mut attempt = 1;
    loop {
        match File::open(path) {
            Err(error) if out_of_descriptors(&error) && attempt < DIR_OPEN_ATTEMPTS => {
                attempt += 1;
                std::thread::sleep(DIR_OPEN_PAUSE);
            }
            other => return other,
        }
    }
}

/// EMFILE (this process's limit) or ENFILE (the system's).
fn out_of_descriptors(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// One batch in flight: how many syncs are outstanding and the first error.
struct Batch {
    state: Mutex<BatchState>,
    done: Condvar,
}

struct BatchState {
    remaining: usize,
    error: Option<io::Error>,
}

impl Batch {
    fn finish(&self, result: io::Result<()>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        assert!(state.remaining > 0, "more sync results than syncs");
        state.remaining -= 1;
        if let (Err(error), None) = (result, &state.error) {
            state.error = Some(error);
        }
        if state.remaining == 0 {
            self.done.notify_all();
        }
    }

    fn wait(&self) -> io::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while state.remaining > 0 {
            state = self.done.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        state.error.take().map_or(Ok(()), Err)
    }
}

struct Job {
    target: SyncTarget,
    batch: Arc<Batch>,
}

/// The sync threads of one disk.
pub(crate) struct SyncPool {
    jobs: Mutex<Sender<Job>>,
    queue: Arc<Mutex<Receiver<Job>>>,
    /// Threads started so far (never more than [`SYNC_THREADS_MAX`]).
    threads: Mutex<usize>,
}

impl std::fmt::Debug for SyncPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let threads = *self.threads.lock().unwrap_or_else(PoisonError::into_inner);
        write!(f, "SyncPool({threads} threads)")
    }
}

impl SyncPool {
    /// A pool with no threads yet.
    pub(crate) fn new() -> SyncPool {
        let (jobs, queue) = mpsc::channel();
        SyncPool {
            jobs: Mutex::new(jobs),
            queue: Arc::new(Mutex::new(queue)),
            threads: Mutex::new(0),
        }
    }

    /// Threads started so far.
    #[cfg(test)]
    pub(crate) fn threads(&self) -> usize {
        *self.threads.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Syncs every target, concurrently, and returns once all are done.
    ///
    /// # Errors
    /// The first sync error (every target is still attempted).
    pub(crate) fn sync_all(&self, targets: Vec<SyncTarget>) -> io::Result<()> {
        let mut targets = targets.into_iter();
        let Some(own) = targets.next() else {
            return Ok(());
        };
        let others: Vec<SyncTarget> = targets.collect();
        let batch = Arc::new(Batch {
            state: Mutex::new(BatchState { remaining: others.len() + 1, error: None }),
            done: Condvar::new(),
        });
        let threads = self.start_threads(others.len());
        for target in others {
            let job = Job { target, batch: batch.clone() };
            let sent = if threads == 0 {
                Err(mpsc::SendError(job))
            } else {
                self.jobs.lock().unwrap_or_else(PoisonError::into_inner).send(job)
            };
            // No thread could be started: sync here, one after another.
            if let Err(mpsc::SendError(job)) = sent {
                job.batch.finish(job.target.sync());
            }
        }
        batch.finish(own.sync());
        batch.wait()
    }

    /// Makes sure up to `wanted` threads run (bounded); returns how many run.
    fn start_threads(&self, wanted: usize) -> usize {
        let mut threads = self.threads.lock().unwrap_or_else(PoisonError::into_inner);
        while *threads < wanted.min(SYNC_THREADS_MAX) {
            let queue = self.queue.clone();
            let started = std::thread::Builder::new()
                .name("skua-sync".into())
                .stack_size(SYNC_THREAD_STACK_BYTES)
                .spawn(move || sync_thread(&queue));
            match started {
                Ok(_) => *threads += 1,
                Err(error) => {
                    tracing::warn!(%error, "cannot start a sync thread; syncing with fewer");
                    break;
                }
            }
        }
        *threads
    }
}

/// A sync thread: runs jobs until the pool is dropped.
fn sync_thread(queue: &Mutex<Receiver<Job>>) {
    loop {
        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = job else {
            return;
        };
        job.batch.finish(job.target.sync());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn only_a_lack_of_descriptors_is_waited_out() {
        assert!(out_of_descriptors(&io::Error::from_raw_os_error(libc::EMFILE)));
        assert!(out_of_descriptors(&io::Error::from_raw_os_error(libc::ENFILE)));
        assert!(!out_of_descriptors(&io::Error::from_raw_os_error(libc::EIO)));
        let missing = std::path::Path::new("/nonexistent-skua-dir/sub");
        assert_eq!(open_dir(missing).unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn syncs_every_target_and_reuses_threads() {
        let dir = tempfile::tempdir().unwrap();
        let pool = SyncPool::new();
        assert!(pool.sync_all(Vec::new()).is_ok());
        for round in 0..3 {
            let mut targets = vec![SyncTarget::Dir(dir.path().to_path_buf())];
            for i in 0..5 {
                let mut file = File::create(dir.path().join(format!("f{round}-{i}"))).unwrap();
                file.write_all(b"mail").unwrap();
                targets.push(SyncTarget::Data(Arc::new(super::super::os::Handle::new(file))));
            }
            pool.sync_all(targets).unwrap();
        }
        assert_eq!(pool.threads(), 5, "one thread per extra target, kept");
    }

    #[test]
    fn an_error_is_reported_after_every_target_ran() {
        let dir = tempfile::tempdir().unwrap();
        let pool = SyncPool::new();
        let file = File::create(dir.path().join("f")).unwrap();
        let file = Arc::new(super::super::os::Handle::new(file));
        let targets = vec![
            SyncTarget::Data(file.clone()),
            SyncTarget::Dir(dir.path().join("missing")),
            SyncTarget::Data(file),
        ];
        let error = pool.sync_all(targets).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        // The pool still works after an error.
        let targets = vec![SyncTarget::Dir(dir.path().to_path_buf()); 3];
        pool.sync_all(targets).unwrap();
    }

    #[test]
    fn the_pool_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let pool = SyncPool::new();
        let targets = vec![SyncTarget::Dir(dir.path().to_path_buf()); SYNC_THREADS_MAX * 2];
        pool.sync_all(targets).unwrap();
        assert_eq!(pool.threads(), SYNC_THREADS_MAX);
    }
}
