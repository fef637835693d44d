//! The users of the passwd-file, shared by every shard and reloaded as soon as the file
//! changes, so `skua user add|passwd|del` is in effect before the command returns.
//!
//! Readers take an `Arc<UserDb>` snapshot (a mutex held for one `Arc` clone; users are not
//! mail data, and a login or an RCPT is rare next to everything else).
//!
//! **Watching.** [`Watcher`] is a thread of its own (started by shard 0) that waits on inotify
//! for the passwd-file's directory (the file is replaced by rename, so the file itself cannot
//! be watched) and on an eventfd that stops it. An event naming the file, or an overflow of the
//! event queue, reloads at once; every
//! [`ServerConfig::users_reload_interval`](crate::ServerConfig::users_reload_interval) without
//! an event it still compares the file's identity (size, modification time, inode), the
//! fallback for filesystems where inotify says nothing (NFS) or when it cannot be set up. A
//! reload reads the file once and compares its SHA-256 with the version in use, so a change of
//! identity without a change of content reloads nothing. A file that fails to load keeps the
//! previous users, with an error in the log once per version.
//!
//! **Acknowledging.** After every load attempt the watcher replaces `DATA_DIR/users-loaded`
//! ([`skua_core::lock::UsersAck`]): the version read, loaded or refused, the user count and
//! the number of ignored lines. The CLI waits for it (`src/users.rs`).
//!
//! **Padding failed logins.** Each load also measures what a failed login costs with this
//! file ([`Users::slowest_check`]): one check with a wrong password for one user of each
//! scheme present, and one for an unknown user (the dummy hash). Failed logins are padded to
//! the slowest (see `auth.rs`), so a guesser cannot tell known users from unknown ones by
//! timing. Users of one scheme may differ in cost (rounds, memory), so a slower check seen
//! later raises the figure ([`Users::note_check`]). At start-up the figure is measured before
//! serving. On a reload the new users are swapped in and acknowledged *first*, and a second
//! thread of the watcher measures them meanwhile: the probes cost one check per scheme (a
//! few ms for the default scheme, far more in a debug build or for Argon2), which must not
//! delay a user's arrival nor the next edit of a script adding users one by one. Requests to
//! measure coalesce (a measurement takes the users in use when it starts). Until it ends the
//! previous figure stays, raised by any slower check seen meanwhile; so a file that brings a
//! slower scheme is under-padded for at most two measurements' time (one under way for an
//! older file, then its own), never until the next reload, and a file that drops the slowest
//! scheme lowers the figure only once measured.

use std::io::{self, Read};
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use skua_core::lock::{FileVersion, LoadOutcome, UsersAck};
use skua_core::users::limits::PASSWD_FILE_BYTES_MAX;
use skua_core::users::{Scheme, Secret, UserDb, UsersError};

use crate::limits::TIMING_PAD_RAISE_MAX;

/// What identifies one version of the file cheaply (the poll's first test).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let metadata = std::fs::metadata(path).ok()?;
    Some(Stamp { len: metadata.len(), modified: metadata.modified().ok(), inode: metadata.ino() })
}

/// The users in use and what the last load attempt saw.
struct Current {
    db: Arc<UserDb>,
    /// Identity of the file at the last load attempt.
    stamp: Option<Stamp>,
    /// The version read at the last load attempt (loaded or refused).
    version: FileVersion,
    /// What became of it.
    outcome: LoadOutcome,
}

/// The current users and the file they came from. Cloning shares them.
#[derive(Clone)]
pub(crate) struct Users {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    current: Mutex<Current>,
    /// Serializes load attempts (the watcher, and any direct caller).
    loading: Mutex<()>,
    /// The slowest password check of the current file, in nanoseconds.
    slowest_check_ns: AtomicU64,
    /// The figure measured at the last load; later checks raise the figure to at most
    /// [`TIMING_PAD_RAISE_MAX`] times this.
    measured_check_ns: AtomicU64,
}

/// What a load attempt did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reload {
    /// The file is as last seen: nothing to do.
    Unchanged,
    /// New users are in use (not yet measured: call [`Users::measure`]).
    Loaded,
    /// A new version could not be loaded; the previous users stay.
    Refused,
}

/// The password the cost probes check (no user can have it: it holds a control character,
/// which the passwd-file tools refuse; and a probe that matched would only be a success).
const PROBE_PASSWORD: &str = "\u{1}skua cost probe";

/// A name no passwd-file user has (a control character again): the probe of an unknown user.
const PROBE_UNKNOWN_USER: &str = "\u{1}skua-no-such-user";

/// Checks a wrong password for one user of each scheme present and for an unknown user;
/// the slowest check's duration. CPU-heavy (one check per scheme): off the reactor only.
fn measure_slowest_check(db: &UserDb) -> Duration {
    let mut seen: Vec<Scheme> = Vec::new();
    let mut names = vec![PROBE_UNKNOWN_USER.to_owned()];
    for entry in db.iter() {
        if let Some(scheme) = entry.scheme()
            && !seen.contains(&scheme)
        {
            seen.push(scheme);
            names.push(entry.name().to_owned());
        }
    }
    let probe = Secret::from(PROBE_PASSWORD);
    names
        .iter()
        .map(|name| {
            let started = Instant::now();
            let _ = db.check_login(name, &probe);
            started.elapsed()
        })
        .max()
        .unwrap_or(Duration::ZERO)
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// The file read once: its version, and its contents (`None`: no file) or why not.
fn read_file(path: &Path) -> (FileVersion, Result<Option<Vec<u8>>, UsersError>) {
    let io_error = |source| UsersError::Io { path: path.to_owned(), source };
    let too_large =
        || UsersError::FileTooLarge { path: path.to_owned(), max: PASSWD_FILE_BYTES_MAX };
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return (FileVersion::Absent, Ok(None));
        }
        Err(error) => return (FileVersion::Unreadable, Err(io_error(error))),
    };
    let length = match file.metadata() {
        Ok(metadata) => metadata.len(),
        Err(error) => return (FileVersion::Unreadable, Err(io_error(error))),
    };
    if length > PASSWD_FILE_BYTES_MAX {
        return (FileVersion::of_file(path), Err(too_large()));
    }
    let mut contents = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
    // The `take` bounds a file that grows while we read it.
    if let Err(error) = file.take(PASSWD_FILE_BYTES_MAX + 1).read_to_end(&mut contents) {
        return (FileVersion::Unreadable, Err(io_error(error)));
    }
    if contents.len() as u64 > PASSWD_FILE_BYTES_MAX {
        return (FileVersion::of_file(path), Err(too_large()));
    }
    (FileVersion::of_bytes(&contents), Ok(Some(contents)))
}

/// Lines that should be users: neither blank nor comments (the loader's rules). Those that
/// did not become users were ignored, with a warning each in the log.
fn user_like_lines(contents: &[u8]) -> u64 {
    let count = contents
        .split(|&b| b == b'\n')
        .filter(|line| match std::str::from_utf8(line) {
            Ok(text) => {
                let text = text.trim_start();
                !text.is_empty() && !text.starts_with('#')
            }
            Err(_) => true,
        })
        .count();
    u64::try_from(count).unwrap_or(u64::MAX)
}

/// Parses what [`read_file`] read: the users and the outcome to acknowledge.
fn parse(path: &Path, contents: Option<&[u8]>) -> (UserDb, LoadOutcome) {
    let Some(contents) = contents else {
        tracing::warn!(path = %path.display(), "no passwd-file: no users");
        return (UserDb::default(), LoadOutcome::Loaded { users: 0, ignored_lines: 0 });
    };
    let db = UserDb::parse(contents, &path.display().to_string());
    let users = u64::try_from(db.len()).unwrap_or(u64::MAX);
    let ignored_lines = user_like_lines(contents).saturating_sub(users);
    tracing::info!(path = %path.display(), users, ignored_lines, "loaded passwd-file");
    (db, LoadOutcome::Loaded { users, ignored_lines })
}

impl Users {
    /// Loads the file and measures the failed-login cost.
    ///
    /// # Errors
    /// The file cannot be read or is too large (a missing file is an empty database, not an
    /// error).
    pub(crate) fn load(path: &Path) -> Result<Users, UsersError> {
        let before = stamp(path);
        let (version, read) = read_file(path);
        let (db, outcome) = parse(path, read?.as_deref());
        let slowest = measure_slowest_check(&db);
        tracing::info!(slowest_check_ms = slowest.as_millis(), "failed logins padded to this");
        let current = Current { db: Arc::new(db), stamp: before, version, outcome };
        Ok(Users {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                current: Mutex::new(current),
                loading: Mutex::new(()),
                slowest_check_ns: AtomicU64::new(nanos(slowest)),
                measured_check_ns: AtomicU64::new(nanos(slowest)),
            }),
        })
    }

    /// What the slowest password check of the current passwd-file takes: every failed login
    /// is answered no sooner than this after its check began.
    pub(crate) fn slowest_check(&self) -> Duration {
        Duration::from_nanos(self.inner.slowest_check_ns.load(Ordering::Relaxed))
    }

    /// A check took `took`: a slower one than measured raises the figure (a user whose hash
    /// costs more than the probed one of its scheme), but to at most [`TIMING_PAD_RAISE_MAX`]
    /// times the measured figure: a check slowed by a busy machine must not make every later
    /// failure wait as long until the next reload.
    pub(crate) fn note_check(&self, took: Duration) {
        let ceiling = self
            .inner
            .measured_check_ns
            .load(Ordering::Relaxed)
            .saturating_mul(TIMING_PAD_RAISE_MAX);
        self.inner.slowest_check_ns.fetch_max(nanos(took).min(ceiling), Ordering::Relaxed);
    }

    /// The users now.
    pub(crate) fn get(&self) -> Arc<UserDb> {
        self.current().db.clone()
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Current> {
        self.inner.current.lock().expect("users lock")
    }

    /// The acknowledgement of the last load attempt, for the process `pid`.
    pub(crate) fn acknowledgement(&self, pid: u32) -> UsersAck {
        let current = self.current();
        UsersAck {
            pid,
            passwd: UsersAck::spell_path(&self.inner.path),
            version: current.version.clone(),
            outcome: current.outcome.clone(),
        }
    }

    /// Loads the file if it changed since the last attempt. `look` reads it even when its
    /// identity (size, mtime, inode) is unchanged (after an inotify event: a rename can reuse
    /// an inode within one timestamp tick); either way only new content is parsed. Blocking:
    /// call it off the reactor. After [`Reload::Loaded`], call [`Users::measure`].
    pub(crate) fn reload(&self, look: bool) -> Reload {
        let _turn = self.inner.loading.lock().expect("users loading lock");
        let path = &self.inner.path;
        let now = stamp(path);
        if !look && now == self.current().stamp {
            return Reload::Unchanged;
        }
        let (version, read) = read_file(path);
        if version == self.current().version {
            self.current().stamp = now;
            return Reload::Unchanged;
        }
        match read {
            Ok(contents) => {
                let (db, outcome) = parse(path, contents.as_deref());
                *self.current() = Current { db: Arc::new(db), stamp: now, version, outcome };
                Reload::Loaded
            }
            Err(error) => {
                tracing::error!(%error, "passwd-file changed but cannot be loaded; keeping the old users");
                // Remember the broken version so the error is logged once, not every period.
                let mut current = self.current();
                current.stamp = now;
                current.version = version;
                current.outcome = LoadOutcome::Refused { reason: error.to_string() };
                Reload::Refused
            }
        }
    }

    /// Measures the failed-login cost of the users in use and makes it the padding figure.
    /// Blocking and CPU-heavy (one check per scheme).
    pub(crate) fn measure(&self) {
        let slowest = measure_slowest_check(&self.get());
        self.inner.slowest_check_ns.store(nanos(slowest), Ordering::Relaxed);
        self.inner.measured_check_ns.store(nanos(slowest), Ordering::Relaxed);
        tracing::info!(slowest_check_ms = slowest.as_millis(), "failed logins padded to this");
    }

    /// Reloads the file if it changed since the last load, and measures it; true when it
    /// loaded. Blocking: call it off the reactor.
    #[cfg(test)]
    pub(crate) fn reload_if_changed(&self) -> bool {
        let loaded = self.reload(false) == Reload::Loaded;
        if loaded {
            self.measure();
        }
        loaded
    }
}

/// The inotify watch on the passwd-file's directory.
struct Inotify {
    fd: OwnedFd,
    directory: PathBuf,
    file_name: std::ffi::OsString,
    /// `None` after the directory went away (then: polling, and trying again each period).
    watch: Option<i32>,
}

/// Largest inotify read at once; events past it stay queued for the next read.
const INOTIFY_BUFFER_BYTES: usize = 4096;

impl Inotify {
    fn new(path: &Path) -> io::Result<Inotify> {
        use rustix::fs::inotify::{CreateFlags, init};
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        };
        let file_name = path.file_name().unwrap_or_default().to_owned();
        let fd = init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
        let mut inotify = Inotify { fd, directory, file_name, watch: None };
        inotify.add_watch()?;
        Ok(inotify)
    }

    fn add_watch(&mut self) -> io::Result<()> {
        use rustix::fs::inotify::{WatchFlags, add_watch};
        // Every way the name can get new content or lose it: written in place and closed,
        // renamed onto, created, deleted, renamed away. `ONLYDIR`: the parent, not a link.
        let flags = WatchFlags::CLOSE_WRITE
            | WatchFlags::MOVED_TO
            | WatchFlags::CREATE
            | WatchFlags::DELETE
            | WatchFlags::MOVED_FROM
            | WatchFlags::ONLYDIR;
        self.watch = Some(add_watch(&self.fd, &self.directory, flags)?);
        Ok(())
    }

    /// Reads every queued event; true when one concerns the file (or events were lost).
    fn drain(&mut self) -> bool {
        use rustix::fs::inotify::{ReadFlags, Reader};
        let mut buffer = [MaybeUninit::<u8>::uninit(); INOTIFY_BUFFER_BYTES];
        let mut reader = Reader::new(&self.fd, &mut buffer);
        let mut relevant = false;
        let mut lost_watch = false;
        loop {
            match reader.next() {
                Ok(event) => {
                    let flags = event.events();
                    if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
                        relevant = true;
                    }
                    if flags.contains(ReadFlags::IGNORED) {
                        // The directory was removed or unmounted: the watch is gone.
                        relevant = true;
                        lost_watch = true;
                    }
                    let name = event.file_name().map(|n| n.to_bytes());
                    if name == Some(self.file_name.as_encoded_bytes()) {
                        relevant = true;
                    }
                }
                Err(rustix::io::Errno::INTR) => {}
                // AGAIN: nothing more queued. Anything else: treat as a change (the poll
                // would find it anyway) rather than spin.
                Err(rustix::io::Errno::AGAIN) => break,
                Err(error) => {
                    tracing::warn!(%error, "reading inotify events");
                    relevant = true;
                    break;
                }
            }
        }
        if lost_watch {
            self.watch = None;
        }
        relevant
    }
}

/// Why the watcher woke.
enum Wake {
    Stop,
    Changed,
    Period,
}

/// The thread that reloads the passwd-file on change and acknowledges every load attempt
/// (see the module docs). Stopped by [`Watcher::stop`].
pub(crate) struct Watcher {
    stop: Arc<OwnedFd>,
    thread: std::thread::JoinHandle<()>,
    measurer: std::thread::JoinHandle<()>,
}

impl Watcher {
    /// Starts the thread: it first loads the file if it changed since [`Users::load`] and
    /// writes the acknowledgement into `data_dir`.
    ///
    /// # Errors
    /// The eventfd or the thread cannot be made (inotify failing is not an error: the thread
    /// then polls every `period`).
    pub(crate) fn start(users: Users, data_dir: PathBuf, period: Duration) -> io::Result<Watcher> {
        use rustix::event::{EventfdFlags, eventfd};
        let stop = Arc::new(eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?);
        let inotify = match Inotify::new(&users.inner.path) {
            Ok(inotify) => Some(inotify),
            Err(error) => {
                tracing::warn!(%error, period_ms = period.as_millis(),
                    "cannot watch the passwd-file's directory; checking it periodically only");
                None
            }
        };
        // One pending request at most: requests made while one waits are the same request.
        let (measure, requests) = std::sync::mpsc::sync_channel::<()>(1);
        let measured = users.clone();
        let measurer =
            std::thread::Builder::new().name("skua-users-cost".to_owned()).spawn(move || {
                // Ends when the watcher, the only sender, ends.
                while requests.recv().is_ok() {
                    if let Err(detail) = crate::guard::guarded(|| measured.measure()) {
                        tracing::error!(detail, "failed-login cost measurement panicked");
                    }
                }
            })?;
        let thread_stop = stop.clone();
        let thread =
            std::thread::Builder::new().name("skua-users".to_owned()).spawn(move || {
                let mut watch =
                    Watch { users, measure, data_dir, period, inotify, stop: thread_stop };
                if let Err(detail) = crate::guard::guarded(|| watch.run()) {
                    tracing::error!(detail, "passwd-file watcher panicked; reloads stop");
                }
            })?;
        Ok(Watcher { stop, thread, measurer })
    }

    /// Tells the threads to stop and waits for them (at most one load attempt and one
    /// measurement). Blocking.
    pub(crate) fn stop(self) {
        // An eventfd write of a non-zero count cannot fail short of overflow (never here).
        let _ = rustix::io::write(&*self.stop, &1u64.to_ne_bytes());
        let _ = self.thread.join();
        let _ = self.measurer.join();
    }
}

/// The watcher thread's state.
struct Watch {
    users: Users,
    /// Asks the measuring thread to measure the users in use (see the module docs).
    measure: std::sync::mpsc::SyncSender<()>,
    data_dir: PathBuf,
    period: Duration,
    inotify: Option<Inotify>,
    stop: Arc<OwnedFd>,
}

impl Watch {
    fn run(&mut self) {
        let pid = std::process::id();
        // The file may have changed between the start-up load and the watch.
        let mut outcome = self.users.reload(true);
        let mut unacknowledged = true;
        loop {
            if outcome == Reload::Loaded {
                tracing::info!(users = self.users.get().len(), "passwd-file reloaded");
            }
            if outcome != Reload::Unchanged {
                unacknowledged = true;
            }
            if unacknowledged {
                match self.users.acknowledgement(pid).write(&self.data_dir) {
                    Ok(()) => unacknowledged = false,
                    Err(error) => tracing::error!(%error, data_dir = %self.data_dir.display(),
                        "cannot write the passwd-file acknowledgement; `skua user` will wait"),
                }
            }
            if outcome == Reload::Loaded {
                // Full: a measurement is pending already, and it measures the users in use
                // when it starts, these included.
                let _ = self.measure.try_send(());
            }
            outcome = match self.wait(self.period) {
                Wake::Stop => return,
                Wake::Changed => self.users.reload(true),
                Wake::Period => {
                    if let Some(inotify) = self.inotify.as_mut().filter(|i| i.watch.is_none())
                        && inotify.add_watch().is_ok()
                    {
                        tracing::info!("watching the passwd-file's directory again");
                    }
                    self.users.reload(false)
                }
            };
        }
    }

    /// Waits for an event on the file, the stop signal, or `timeout`.
    fn wait(&mut self, timeout: Duration) -> Wake {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let timeout = Timespec {
            tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        let watched = self.inotify.as_ref().filter(|i| i.watch.is_some()).map(|i| &i.fd);
        let mut fds = vec![PollFd::new(&*self.stop, PollFlags::IN)];
        if let Some(fd) = watched {
            fds.push(PollFd::new(fd, PollFlags::IN));
        }
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) => return Wake::Period,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => return Wake::Period,
            Err(error) => {
                tracing::warn!(%error, "waiting for passwd-file events");
                // Do not spin on a persistent error: sleep the period instead.
                std::thread::sleep(self.period);
                return Wake::Period;
            }
        }
        if !fds[0].revents().is_empty() {
            return Wake::Stop;
        }
        if self.inotify.as_mut().is_some_and(Inotify::drain) { Wake::Changed } else { Wake::Period }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_file_is_reloaded_and_an_unchanged_one_is_not() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("passwd");
        std::fs::write(&path, "alice:{PLAIN}a::::::\n").expect("write");
        let users = Users::load(&path).expect("load");
        assert!(users.get().lookup("alice").is_some());
        assert!(users.get().lookup("bob").is_none());
        assert!(!users.reload_if_changed(), "nothing changed");
        let held = users.get();
        std::fs::write(&path, "alice:{PLAIN}a::::::\nbob:{PLAIN}b::::::\n").expect("rewrite");
        assert!(users.reload_if_changed());
        assert!(users.get().lookup("bob").is_some());
        assert!(held.lookup("bob").is_none(), "snapshots already taken stay as they were");
    }

    #[test]
    fn a_load_measures_one_failed_check_per_scheme_and_one_unknown_user() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("passwd");
        let sha = skua_core::users::hash_password(Scheme::Sha512Crypt, b"x").expect("hash");
        let text =
            format!("a:{{PLAIN}}a::::::\nb:{{PLAIN}}b::::::\nc:{sha}::::::\nd:{sha}::::::\n");
        std::fs::write(&path, text).expect("write");
        let users = Users::load(&path).expect("load");
        assert_eq!(users.get().verifications(), 3, "PLAIN, SHA512-CRYPT, and the unknown user");
        assert!(users.slowest_check() > Duration::ZERO);
        let measured = users.slowest_check();
        users.note_check(measured / 2);
        assert_eq!(users.slowest_check(), measured, "a faster check changes nothing");
        users.note_check(measured * 3);
        assert_eq!(users.slowest_check(), measured * 3, "a slower one raises the figure");
        users.note_check(measured * 100);
        let ceiling = measured * u32::try_from(TIMING_PAD_RAISE_MAX).expect("small");
        assert_eq!(users.slowest_check(), ceiling, "up to a bound");
        std::fs::write(&path, "a:{PLAIN}a::::::\n").expect("rewrite");
        assert!(users.reload_if_changed());
        assert_eq!(users.get().verifications(), 2, "measured again for the new file");
    }

    #[test]
    fn ignored_lines_are_counted_for_the_acknowledgement() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("passwd");
        let text = b"# users\n\n  \r\nnot a user line\xff\nalice:{PLAIN}a\nALICE:{PLAIN}b\n\
                    bad name!:{PLAIN}c\n";
        std::fs::write(&path, text).expect("write");
        let users = Users::load(&path).expect("load");
        let ack = users.acknowledgement(7);
        assert_eq!(ack.outcome, LoadOutcome::Loaded { users: 1, ignored_lines: 3 });
        assert_eq!(ack.version, FileVersion::of_bytes(text));
        assert_eq!(ack.pid, 7);
        assert!(ack.passwd.ends_with("/passwd") && ack.passwd.starts_with('/'), "{}", ack.passwd);
    }

    #[test]
    fn a_reload_swaps_first_and_measures_after() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("passwd");
        std::fs::write(&path, "a:{PLAIN}a::::::\n").expect("write");
        let users = Users::load(&path).expect("load");
        std::fs::write(&path, "a:{PLAIN}a::::::\nb:{PLAIN}b::::::\n").expect("rewrite");
        assert_eq!(users.reload(false), Reload::Loaded);
        assert!(users.get().lookup("b").is_some(), "in use before any measurement");
        assert_eq!(users.get().verifications(), 0, "the probes have not run yet");
        users.measure();
        assert_eq!(users.get().verifications(), 2, "PLAIN and the unknown user");
    }

    #[test]
    fn new_identity_with_the_same_content_reloads_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("passwd");
        std::fs::write(&path, "a:{PLAIN}a\n").expect("write");
        let users = Users::load(&path).expect("load");
        let before = users.get();
        let other = dir.path().join("other");
        std::fs::write(&other, "a:{PLAIN}a\n").expect("write");
        std::fs::rename(&other, &path).expect("rename over");
        assert_eq!(users.reload(false), Reload::Unchanged, "same bytes");
        assert_eq!(users.reload(true), Reload::Unchanged);
        assert!(Arc::ptr_eq(&before, &users.get()), "the same database is kept");
    }

    #[test]
    fn an_unloadable_file_is_refused_once_and_the_old_users_stay() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("passwd");
        std::fs::write(&path, "a:{PLAIN}a\n").expect("write");
        let users = Users::load(&path).expect("load");
        std::fs::remove_file(&path).expect("remove");
        std::fs::create_dir(&path).expect("a directory where the file was");
        assert_eq!(users.reload(true), Reload::Refused);
        assert_eq!(users.reload(true), Reload::Unchanged, "refused once, not every look");
        assert!(users.get().lookup("a").is_some(), "old users kept");
        let ack = users.acknowledgement(1);
        assert_eq!(ack.version, FileVersion::Unreadable);
        assert!(matches!(ack.outcome, LoadOutcome::Refused { .. }), "{ack:?}");
        std::fs::remove_dir(&path).expect("rmdir");
        std::fs::write(&path, "b:{PLAIN}b\n").expect("write");
        assert_eq!(users.reload(false), Reload::Loaded);
        assert!(users.get().lookup("b").is_some());
    }

    /// Waits (bounded) until the acknowledgement in `dir` satisfies `done`.
    fn wait_for_ack(dir: &Path, done: impl Fn(&UsersAck) -> bool) -> UsersAck {
        for _ in 0..2000 {
            if let Some(ack) = UsersAck::read(dir).expect("readable ack")
                && done(&ack)
            {
                return ack;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("no such acknowledgement: {:?}", UsersAck::read(dir));
    }

    #[test]
    fn the_watcher_reloads_on_inotify_and_acknowledges_each_version() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("passwd");
        let hash = |p: &str| format!("{{PLAIN}}{p}");
        skua_core::users::add_user(&path, "alice", &hash("a")).expect("add");
        let users = Users::load(&path).expect("load");
        // A period of an hour: only inotify can make the watcher look within the test.
        let watcher =
            Watcher::start(users.clone(), dir.path().to_owned(), Duration::from_secs(3600))
                .expect("start");
        let first = FileVersion::of_file(&path);
        let ack = wait_for_ack(dir.path(), |ack| ack.version == first);
        assert_eq!(ack.pid, std::process::id());
        assert_eq!(ack.passwd, UsersAck::spell_path(&path));
        for round in 0..5 {
            let name = format!("user{round}");
            skua_core::users::add_user(&path, &name, &hash("b")).expect("add");
            let version = FileVersion::of_file(&path);
            let ack = wait_for_ack(dir.path(), |ack| ack.version == version);
            assert_eq!(ack.outcome, LoadOutcome::Loaded { users: round + 2, ignored_lines: 0 });
            assert!(users.get().lookup(&name).is_some(), "acknowledged means in use");
            let db = users.get();
            for _ in 0..2000 {
                if db.verifications() >= 2 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            assert_eq!(db.verifications(), 2, "measured after: PLAIN and the unknown user");
            skua_core::users::set_password(&path, &name, &hash("c")).expect("passwd");
            let version = FileVersion::of_file(&path);
            wait_for_ack(dir.path(), |ack| ack.version == version);
            let db = users.get();
            let entry = db.lookup(&name).expect("still there");
            assert!(entry.verify("c") && !entry.verify("b"), "the new password at once");
        }
        skua_core::users::delete_user(&path, "alice").expect("del");
        let version = FileVersion::of_file(&path);
        wait_for_ack(dir.path(), |ack| ack.version == version);
        assert!(users.get().lookup("alice").is_none());
        // A hand edit in place (written and closed, no rename) is seen too.
        std::fs::write(&path, "zed:{PLAIN}z\nnot a user\n").expect("edit in place");
        let ack = wait_for_ack(dir.path(), |ack| ack.version == FileVersion::of_file(&path));
        assert_eq!(ack.outcome, LoadOutcome::Loaded { users: 1, ignored_lines: 1 });
        watcher.stop();
    }

    #[test]
    fn the_watcher_acknowledges_a_refused_file_and_keeps_watching() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("passwd");
        std::fs::write(&path, "a:{PLAIN}a\n").expect("write");
        let users = Users::load(&path).expect("load");
        let watcher =
            Watcher::start(users.clone(), dir.path().to_owned(), Duration::from_secs(3600))
                .expect("start");
        wait_for_ack(dir.path(), |ack| ack.version == FileVersion::of_file(&path));
        std::fs::remove_file(&path).expect("remove");
        // The removal alone is a version too (no file: no users); then the directory.
        std::fs::create_dir(&path).expect("a directory where the file was");
        let ack = wait_for_ack(dir.path(), |ack| ack.version == FileVersion::Unreadable);
        assert!(matches!(ack.outcome, LoadOutcome::Refused { .. }), "{ack:?}");
        std::fs::remove_dir(&path).expect("rmdir");
        std::fs::write(&path, "b:{PLAIN}b\n").expect("write");
        let ack = wait_for_ack(dir.path(), |ack| ack.version == FileVersion::of_file(&path));
        assert_eq!(ack.outcome, LoadOutcome::Loaded { users: 1, ignored_lines: 0 });
        assert!(users.get().lookup("b").is_some());
        watcher.stop();
    }

    #[test]
    fn a_missing_file_means_no_users_until_it_appears() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("passwd");
        let users = Users::load(&path).expect("missing is empty");
        assert!(users.get().is_empty());
        std::fs::write(&path, "carol:{PLAIN}c::::::\n").expect("write");
        assert!(users.reload_if_changed());
        assert_eq!(users.get().len(), 1);
    }
}
