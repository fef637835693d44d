//! The files the server keeps loaded while it runs, reloaded as soon as they change: the
//! passwd-file (so `skua user add|passwd|del` is in effect before the command returns), and the
//! master users file and the JWKS file when `[auth]` names them (`crate::sasl`).
//!
//! Each is a [`WatchedFile`]: what the file parsed into, behind an `Arc` readers take a snapshot
//! of (a mutex held for one `Arc` clone; users and keys are not mail data, and a login or an
//! RCPT is rare next to everything else). [`Users`] is the passwd-file's, with what failed logins
//! cost (below).
//!
//! **Watching.** [`Watcher`] is a thread of its own (started by shard 0) that waits on inotify
//! for the files' directories (a file is replaced by rename, so the file itself cannot be
//! watched), on SIGHUP, and on an eventfd that stops it. An event naming a file reloads that
//! file at once, an overflow of the event queue every file, and SIGHUP every file too; every
//! [`ServerConfig::users_reload_interval`](crate::ServerConfig::users_reload_interval) without
//! an event it still compares each file's identity (size, modification time, inode), the
//! fallback for filesystems where inotify says nothing (NFS) or when it cannot be set up. A
//! reload reads the file once and compares its SHA-256 with the version in use, so a change of
//! identity without a change of content reloads nothing. A file that fails to load keeps the
//! previous contents, with a warning in the log once per version.
//!
//! **Acknowledging.** After every load attempt of the passwd-file the watcher replaces
//! `DATA_DIR/users-loaded` ([`skua_core::lock::UsersAck`]): the version read, loaded or refused,
//! the user count and the number of ignored lines. The CLI waits for it (`src/users.rs`).
//!
//! **Padding failed logins.** Each load of the passwd-file also measures what a failed login
//! costs with it ([`Users::slowest_check`]): one check with a wrong password for one user of
//! each scheme present, and one for an unknown user (the dummy hash). Failed logins are padded
//! to the slowest (see `auth.rs`), so a guesser cannot tell known users from unknown ones by
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

mod file;
mod watcher;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use skua_core::lock::{LoadOutcome, UsersAck};
use skua_core::users::limits::PASSWD_FILE_BYTES_MAX;
use skua_core::users::{Scheme, Secret, UserDb, UsersError};

pub(crate) use self::file::{FileKind, Reload, Reloadable, WatchedFile};
pub(crate) use self::watcher::Watcher;
use crate::limits::TIMING_PAD_RAISE_MAX;

/// The passwd-file.
pub(crate) const PASSWD_FILE: FileKind =
    FileKind { what: "passwd-file", holds: "users", bytes_max: PASSWD_FILE_BYTES_MAX };

/// The master users file (`[auth] master_passwd_file`): a passwd-file too.
pub(crate) const MASTERS_FILE: FileKind =
    FileKind { what: "master users file", holds: "master users", bytes_max: PASSWD_FILE_BYTES_MAX };

/// The parser of a passwd-file (the users file or the master users file) at `path`: no file
/// means no users; lines that cannot be users are ignored, each with a warning.
pub(crate) fn passwd_parser(
    path: &Path,
    kind: FileKind,
) -> impl Fn(Option<&[u8]>) -> Result<UserDb, UsersError> + Send + Sync + 'static {
    let origin = path.display().to_string();
    move |contents| {
        let Some(contents) = contents else {
            tracing::warn!(path = %origin, "no {}: no {}", kind.what, kind.holds);
            return Ok(UserDb::default());
        };
        let db = UserDb::parse(contents, &origin);
        let (users, ignored_lines) = (db.len(), db.ignored_lines());
        tracing::info!(path = %origin, users, ignored_lines, "loaded {}", kind.what);
        Ok(db)
    }
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

/// The users of the passwd-file and what a failed login costs with them. Cloning shares them.
#[derive(Clone)]
pub(crate) struct Users {
    file: WatchedFile<UserDb, UsersError>,
    costs: Arc<Costs>,
}

struct Costs {
    /// The slowest password check of the current file, in nanoseconds.
    slowest_check_ns: AtomicU64,
    /// The figure measured at the last load; later checks raise the figure to at most
    /// [`TIMING_PAD_RAISE_MAX`] times this.
    measured_check_ns: AtomicU64,
}

impl Users {
    /// Loads the file and measures the failed-login cost.
    ///
    /// # Errors
    /// The file cannot be read or is too large (a missing file is an empty database, not an
    /// error).
    pub(crate) fn load(path: &Path) -> Result<Users, UsersError> {
        let file = WatchedFile::load(path, PASSWD_FILE, passwd_parser(path, PASSWD_FILE))?;
        let slowest = measure_slowest_check(&file.get());
        tracing::info!(slowest_check_ms = slowest.as_millis(), "failed logins padded to this");
        let costs = Costs {
            slowest_check_ns: AtomicU64::new(nanos(slowest)),
            measured_check_ns: AtomicU64::new(nanos(slowest)),
        };
        Ok(Users { file, costs: Arc::new(costs) })
    }

    /// What the slowest password check of the current passwd-file takes: every failed login
    /// is answered no sooner than this after its check began.
    pub(crate) fn slowest_check(&self) -> Duration {
        Duration::from_nanos(self.costs.slowest_check_ns.load(Ordering::Relaxed))
    }

    /// A check took `took`: a slower one than measured raises the figure (a user whose hash
    /// costs more than the probed one of its scheme), but to at most [`TIMING_PAD_RAISE_MAX`]
    /// times the measured figure: a check slowed by a busy machine must not make every later
    /// failure wait as long until the next reload.
    pub(crate) fn note_check(&self, took: Duration) {
        let ceiling = self
            .costs
            .measured_check_ns
            .load(Ordering::Relaxed)
            .saturating_mul(TIMING_PAD_RAISE_MAX);
        self.costs.slowest_check_ns.fetch_max(nanos(took).min(ceiling), Ordering::Relaxed);
    }

    /// The users now.
    pub(crate) fn get(&self) -> Arc<UserDb> {
        self.file.get()
    }

    /// The acknowledgement of the last load attempt, for the process `pid`.
    pub(crate) fn acknowledgement(&self, pid: u32) -> UsersAck {
        let (db, version, refused) = self.file.last_attempt();
        let outcome = match refused {
            Some(reason) => LoadOutcome::Refused { reason },
            None => LoadOutcome::Loaded {
                users: u64::try_from(db.len()).unwrap_or(u64::MAX),
                ignored_lines: u64::try_from(db.ignored_lines()).unwrap_or(u64::MAX),
            },
        };
        UsersAck { pid, passwd: UsersAck::spell_path(self.file.path()), version, outcome }
    }

    /// Loads the file if it changed since the last attempt ([`WatchedFile::reload`]). After
    /// [`Reload::Loaded`], call [`Users::measure`].
    pub(crate) fn reload(&self, look: bool) -> Reload {
        self.file.reload(look)
    }

    /// Measures the failed-login cost of the users in use and makes it the padding figure.
    /// Blocking and CPU-heavy (one check per scheme).
    pub(crate) fn measure(&self) {
        let slowest = measure_slowest_check(&self.get());
        self.costs.slowest_check_ns.store(nanos(slowest), Ordering::Relaxed);
        self.costs.measured_check_ns.store(nanos(slowest), Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use skua_core::lock::FileVersion;

    use super::*;

    /// A passwd-file holding `text` in a new temporary directory, and its users loaded.
    pub(super) fn passwd_with(text: &str) -> (tempfile::TempDir, PathBuf, Users) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("passwd");
        std::fs::write(&path, text).expect("write");
        let users = Users::load(&path).expect("load");
        (dir, path, users)
    }

    #[test]
    fn a_changed_file_is_reloaded_and_an_unchanged_one_is_not() {
        let (_dir, path, users) = passwd_with("alice:{PLAIN}a::::::\n");
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
        let (_dir, path, users) = passwd_with("a:{PLAIN}a::::::\n");
        std::fs::write(&path, "a:{PLAIN}a::::::\nb:{PLAIN}b::::::\n").expect("rewrite");
        assert_eq!(users.reload(false), Reload::Loaded);
        assert!(users.get().lookup("b").is_some(), "in use before any measurement");
        assert_eq!(users.get().verifications(), 0, "the probes have not run yet");
        users.measure();
        assert_eq!(users.get().verifications(), 2, "PLAIN and the unknown user");
    }

    #[test]
    fn new_identity_with_the_same_content_reloads_nothing() {
        let (dir, path, users) = passwd_with("a:{PLAIN}a\n");
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
        let (_dir, path, users) = passwd_with("a:{PLAIN}a\n");
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

    #[test]
    fn a_master_users_file_that_goes_means_no_master_users() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("masters");
        std::fs::write(&path, "support:{PLAIN}s\n").expect("write");
        let masters = WatchedFile::load(&path, MASTERS_FILE, passwd_parser(&path, MASTERS_FILE))
            .expect("load");
        assert_eq!(masters.get().len(), 1);
        std::fs::remove_file(&path).expect("remove");
        assert_eq!(masters.reload(true), Reload::Loaded);
        assert!(masters.get().is_empty(), "no file: nobody may log in as another");
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
