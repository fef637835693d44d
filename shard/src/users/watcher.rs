//! The watcher thread (see the parent module): inotify on the watched files' directories,
//! SIGHUP through a socket signal-hook writes to, an eventfd that stops it, and the period
//! after which it compares each file's identity anyway. It acknowledges every load attempt of
//! the passwd-file and asks a second thread to measure the users it loaded.

use std::io::{self, Read};
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{Reload, Reloadable, Users};

/// The inotify watches on the watched files' directories.
struct Inotify {
    fd: OwnedFd,
    /// Each directory holding a watched file, and its watch: `None` before it could be set up
    /// or after the directory went away (then: polling, and trying again each period).
    directories: Vec<(PathBuf, Option<i32>)>,
    /// Each watched file, in the watcher's order: its directory's index and its name.
    files: Vec<(usize, std::ffi::OsString)>,
}

/// Largest inotify read at once; events past it stay queued for the next read.
const INOTIFY_BUFFER_BYTES: usize = 4096;

impl Inotify {
    /// Watches the directories of `paths`; one that cannot be watched is logged and tried again
    /// each period.
    fn new(paths: &[&Path]) -> io::Result<Inotify> {
        use rustix::fs::inotify::{CreateFlags, init};
        let fd = init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
        let mut inotify = Inotify { fd, directories: Vec::new(), files: Vec::new() };
        for path in paths {
            let directory = match path.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
                _ => PathBuf::from("."),
            };
            let index = match inotify.directories.iter().position(|(known, _)| *known == directory)
            {
                Some(index) => index,
                None => {
                    inotify.directories.push((directory, None));
                    inotify.directories.len() - 1
                }
            };
            inotify.files.push((index, path.file_name().unwrap_or_default().to_owned()));
        }
        inotify.add_watches();
        Ok(inotify)
    }

    /// Watches every directory not watched now; true when one was watched again.
    fn add_watches(&mut self) -> bool {
        use rustix::fs::inotify::{WatchFlags, add_watch};
        // Every way a name can get new content or lose it: written in place and closed,
        // renamed onto, created, deleted, renamed away. `ONLYDIR`: the parent, not a link.
        let flags = WatchFlags::CLOSE_WRITE
            | WatchFlags::MOVED_TO
            | WatchFlags::CREATE
            | WatchFlags::DELETE
            | WatchFlags::MOVED_FROM
            | WatchFlags::ONLYDIR;
        let mut added = false;
        for (directory, watch) in self.directories.iter_mut().filter(|(_, w)| w.is_none()) {
            match add_watch(&self.fd, directory.as_path(), flags) {
                Ok(descriptor) => {
                    *watch = Some(descriptor);
                    added = true;
                }
                Err(error) => tracing::warn!(%error, directory = %directory.display(),
                    "cannot watch a directory; checking its files periodically only"),
            }
        }
        added
    }

    /// Whether any directory is watched.
    fn watching(&self) -> bool {
        self.directories.iter().any(|(_, watch)| watch.is_some())
    }

    /// Reads every queued event; for each file, whether one concerns it (all of them when
    /// events were lost).
    fn drain(&mut self) -> Vec<bool> {
        use rustix::fs::inotify::{ReadFlags, Reader};
        let mut buffer = [MaybeUninit::<u8>::uninit(); INOTIFY_BUFFER_BYTES];
        let mut reader = Reader::new(&self.fd, &mut buffer);
        let mut relevant = vec![false; self.files.len()];
        loop {
            match reader.next() {
                Ok(event) => {
                    let flags = event.events();
                    if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
                        relevant.fill(true);
                    }
                    let Some(directory) =
                        self.directories.iter().position(|(_, w)| *w == Some(event.wd()))
                    else {
                        continue;
                    };
                    // IGNORED: the directory was removed or unmounted, and the watch is gone.
                    let lost = flags.contains(ReadFlags::IGNORED);
                    if lost {
                        self.directories[directory].1 = None;
                    }
                    let name = event.file_name().map(|n| n.to_bytes());
                    for (slot, (index, file_name)) in relevant.iter_mut().zip(&self.files) {
                        if *index == directory
                            && (lost || name == Some(file_name.as_encoded_bytes()))
                        {
                            *slot = true;
                        }
                    }
                }
                Err(rustix::io::Errno::INTR) => {}
                // AGAIN: nothing more queued. Anything else: treat as a change (the poll
                // would find it anyway) rather than spin.
                Err(rustix::io::Errno::AGAIN) => break,
                Err(error) => {
                    tracing::warn!(%error, "reading inotify events");
                    relevant.fill(true);
                    break;
                }
            }
        }
        relevant
    }
}

/// SIGHUP as a socket that turns readable when the signal comes (the handler, installed
/// through signal-hook beside any other SIGHUP handler such as the TLS reload's, writes a
/// byte to the other end, which signal-hook owns and closes). Dropping it removes the handler.
struct Hangup {
    id: signal_hook::SigId,
    read: UnixStream,
}

impl Hangup {
    fn new() -> io::Result<Hangup> {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        let id = signal_hook::low_level::pipe::register(signal_hook::consts::SIGHUP, write)?;
        Ok(Hangup { id, read })
    }

    /// Reads what the handler wrote; true when there was anything (a signal came).
    fn drain(&self) -> bool {
        let mut buffer = [0u8; 64];
        let mut came = false;
        loop {
            match (&self.read).read(&mut buffer) {
                Ok(0) => return came,
                Ok(_) => came = true,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return came,
            }
        }
    }
}

impl Drop for Hangup {
    fn drop(&mut self) {
        signal_hook::low_level::unregister(self.id);
    }
}

/// Why the watcher woke.
enum Wake {
    Stop,
    /// Inotify events: for each file, whether one concerned it.
    Changed(Vec<bool>),
    Hangup,
    Period,
}

/// The thread that reloads the watched files on change and on SIGHUP, and acknowledges every
/// load attempt of the passwd-file (see the module docs). Stopped by [`Watcher::stop`].
pub(crate) struct Watcher {
    stop: Arc<OwnedFd>,
    thread: std::thread::JoinHandle<()>,
    measurer: std::thread::JoinHandle<()>,
}

impl Watcher {
    /// Starts the thread for the passwd-file of `users` and the `others` (the master users and
    /// JWKS files, when configured): it first loads the files changed since they were loaded
    /// and writes the passwd-file's acknowledgement into `data_dir`.
    ///
    /// # Errors
    /// The eventfd or the thread cannot be made (inotify or SIGHUP failing is not an error:
    /// the thread then polls every `period`).
    pub(crate) fn start(
        users: Users,
        others: Vec<Arc<dyn Reloadable>>,
        data_dir: PathBuf,
        period: Duration,
    ) -> io::Result<Watcher> {
        use rustix::event::{EventfdFlags, eventfd};
        let stop = Arc::new(eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?);
        let mut files: Vec<Arc<dyn Reloadable>> = vec![Arc::new(users.file.clone())];
        files.extend(others);
        let paths: Vec<&Path> = files.iter().map(|file| file.path()).collect();
        let inotify = match Inotify::new(&paths) {
            Ok(inotify) => Some(inotify),
            Err(error) => {
                tracing::warn!(%error, period_ms = period.as_millis(),
                    "cannot watch the files' directories; checking them periodically only");
                None
            }
        };
        let hangup = match Hangup::new() {
            Ok(hangup) => Some(hangup),
            Err(error) => {
                tracing::warn!(%error, "no SIGHUP handler: these files reload on change only");
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
                let mut watch = Watch {
                    users,
                    files,
                    measure,
                    data_dir,
                    period,
                    inotify,
                    hangup,
                    stop: thread_stop,
                };
                if let Err(detail) = crate::guard::guarded(|| watch.run()) {
                    tracing::error!(detail, "users files watcher panicked; reloads stop");
                }
            })?;
        Ok(Watcher { stop, thread, measurer })
    }

    /// Tells the threads to stop and waits for them (at most one load attempt of each file
    /// and one measurement). Blocking.
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
    /// Every file watched: the passwd-file (`users`'s) first.
    files: Vec<Arc<dyn Reloadable>>,
    /// Asks the measuring thread to measure the users in use (see the module docs).
    measure: std::sync::mpsc::SyncSender<()>,
    data_dir: PathBuf,
    period: Duration,
    inotify: Option<Inotify>,
    hangup: Option<Hangup>,
    stop: Arc<OwnedFd>,
}

impl Watch {
    fn run(&mut self) {
        let pid = std::process::id();
        // The files may have changed between the start-up load and the watch.
        let mut outcomes = self.reload(|_| Some(true));
        let mut unacknowledged = true;
        loop {
            for (file, outcome) in self.files.iter().zip(&outcomes) {
                if *outcome == Reload::Loaded {
                    tracing::info!(path = %file.path().display(), "{} reloaded", file.kind().what);
                }
            }
            let passwd = outcomes[0];
            if passwd != Reload::Unchanged {
                unacknowledged = true;
            }
            if unacknowledged {
                match self.users.acknowledgement(pid).write(&self.data_dir) {
                    Ok(()) => unacknowledged = false,
                    Err(error) => tracing::error!(%error, data_dir = %self.data_dir.display(),
                        "cannot write the passwd-file acknowledgement; `skua user` will wait"),
                }
            }
            if passwd == Reload::Loaded {
                // Full: a measurement is pending already, and it measures the users in use
                // when it starts, these included.
                let _ = self.measure.try_send(());
            }
            outcomes = match self.wait(self.period) {
                Wake::Stop => return,
                Wake::Changed(changed) => self.reload(|index| changed[index].then_some(true)),
                Wake::Hangup => {
                    tracing::info!("SIGHUP: reading the passwd, master users and JWKS files again");
                    self.reload(|_| Some(true))
                }
                Wake::Period => {
                    if self.inotify.as_mut().is_some_and(Inotify::add_watches) {
                        tracing::info!("watching the files' directories again");
                    }
                    self.reload(|_| Some(false))
                }
            };
        }
    }

    /// Reloads each file for which `how` says `Some(look)` ([`WatchedFile::reload`]).
    fn reload(&self, how: impl Fn(usize) -> Option<bool>) -> Vec<Reload> {
        let reload = |(index, file): (usize, &Arc<dyn Reloadable>)| {
            how(index).map_or(Reload::Unchanged, |look| file.reload(look))
        };
        self.files.iter().enumerate().map(reload).collect()
    }

    /// Waits for an event on a file, SIGHUP, the stop signal, or `timeout`.
    fn wait(&mut self, timeout: Duration) -> Wake {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let timeout = Timespec {
            tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        let watched = self.inotify.as_ref().filter(|i| i.watching()).map(|i| &i.fd);
        let mut fds = vec![PollFd::new(&*self.stop, PollFlags::IN)];
        if let Some(hangup) = &self.hangup {
            fds.push(PollFd::new(&hangup.read, PollFlags::IN));
        }
        if let Some(fd) = watched {
            fds.push(PollFd::new(fd, PollFlags::IN));
        }
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) => return Wake::Period,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => return Wake::Period,
            Err(error) => {
                tracing::warn!(%error, "waiting for users file events");
                // Do not spin on a persistent error: sleep the period instead.
                std::thread::sleep(self.period);
                return Wake::Period;
            }
        }
        if !fds[0].revents().is_empty() {
            return Wake::Stop;
        }
        drop(fds);
        // Events, then the signal: a SIGHUP reads every file anyway.
        let changed = self.inotify.as_mut().map(Inotify::drain);
        if self.hangup.as_ref().is_some_and(Hangup::drain) {
            return Wake::Hangup;
        }
        match changed {
            Some(changed) if changed.contains(&true) => Wake::Changed(changed),
            _ => Wake::Period,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use skua_core::lock::{FileVersion, LoadOutcome, UsersAck};
    use skua_core::users::{UserDb, UsersError};

    use super::*;
    use crate::users::tests::passwd_with;
    use crate::users::{MASTERS_FILE, WatchedFile, passwd_parser};

    /// A watcher of `users` and `others` acknowledging into `dir`, with a period of an hour:
    /// only inotify and SIGHUP can make it look within a test.
    fn watch(users: &Users, others: Vec<Arc<dyn Reloadable>>, dir: &Path) -> Watcher {
        Watcher::start(users.clone(), others, dir.to_owned(), Duration::from_secs(3600))
            .expect("start")
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
        let watcher = watch(&users, Vec::new(), dir.path());
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
        let (dir, path, users) = passwd_with("a:{PLAIN}a\n");
        let watcher = watch(&users, Vec::new(), dir.path());
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

    /// Waits (bounded) until `done`.
    fn wait_until(what: &str, done: impl Fn() -> bool) {
        for _ in 0..2000 {
            if done() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("never happened: {what}");
    }

    fn masters_file(path: &Path) -> WatchedFile<UserDb, UsersError> {
        WatchedFile::load(path, MASTERS_FILE, passwd_parser(path, MASTERS_FILE)).expect("load")
    }

    #[test]
    fn the_watcher_reloads_the_other_files_on_inotify_and_every_file_on_sighup() {
        let (dir, passwd, users) = passwd_with("alice:{PLAIN}a\n");
        let watched = dir.path().join("masters");
        std::fs::write(&watched, "support:{PLAIN}s\n").expect("write");
        // A file reached through a link into a directory nobody watches: editing it there
        // makes no event the watcher sees, so only SIGHUP (or the hour-long period) reloads it.
        let elsewhere = tempfile::tempdir().expect("temp dir");
        let real = elsewhere.path().join("masters");
        std::fs::write(&real, "support:{PLAIN}s\n").expect("write");
        let linked = dir.path().join("linked-masters");
        std::os::unix::fs::symlink(&real, &linked).expect("symlink");
        let (watched_masters, linked_masters) = (masters_file(&watched), masters_file(&linked));
        let others: Vec<Arc<dyn Reloadable>> =
            vec![Arc::new(watched_masters.clone()), Arc::new(linked_masters.clone())];
        let watcher = watch(&users, others, dir.path());
        wait_for_ack(dir.path(), |ack| ack.version == FileVersion::of_file(&passwd));
        std::fs::write(&watched, "support:{PLAIN}s\nhelper:{PLAIN}h\n").expect("edit");
        wait_until("the edit is seen", || watched_masters.get().lookup("helper").is_some());
        std::fs::write(&real, "support:{PLAIN}s\nnight:{PLAIN}n\n").expect("edit");
        // Another SIGHUP handler (the TLS reload has one) sees the signal too.
        let other_handler = Arc::new(std::sync::atomic::AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGHUP, other_handler.clone())
            .expect("register");
        signal_hook::low_level::raise(signal_hook::consts::SIGHUP).expect("raise");
        wait_until("SIGHUP reloads", || linked_masters.get().lookup("night").is_some());
        assert!(other_handler.load(Ordering::Relaxed));
        assert!(users.get().lookup("alice").is_some(), "the passwd-file is as it was");
        watcher.stop();
    }
}
