//! The users of the passwd-file, shared by every shard and reloaded when the file changes, so
//! `skua user add` takes effect without a restart.
//!
//! Readers take an `Arc<UserDb>` snapshot (a mutex held for one `Arc` clone; users are not
//! mail data, and a login or an RCPT is rare next to everything else). Shard 0 checks the
//! file's identity (size, modification time, inode) every
//! [`ServerConfig::users_reload_interval`](crate::ServerConfig::users_reload_interval) on
//! its blocking pool and swaps in a freshly loaded database when it changed. A file that
//! fails to load keeps the previous users, with an error in the log.
//!
//! Each load also measures what a failed login costs with this file
//! ([`Users::slowest_check`]): one check with a wrong password for one user of each scheme
//! present, and one for an unknown user (the dummy hash), on the loading thread (the main
//! thread at start-up, the blocking pool on reload). Failed logins are padded to the slowest
//! (see `auth.rs`), so a guesser cannot tell known users from unknown ones by timing. Users of
//! one scheme may differ in cost (rounds, memory), so a slower check seen later raises the
//! figure ([`Users::note_check`]).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use skua_core::users::{Scheme, Secret, UserDb, UsersError};

use crate::limits::TIMING_PAD_RAISE_MAX;

/// What identifies one version of the file.
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

/// The current users and the file they came from.
pub(crate) struct Users {
    path: PathBuf,
    current: Mutex<(Arc<UserDb>, Option<Stamp>)>,
    /// The slowest password check of the current file, in nanoseconds.
    slowest_check_ns: AtomicU64,
    /// The figure measured at the last load; later checks raise the figure to at most
    /// [`TIMING_PAD_RAISE_MAX`] times this.
    measured_check_ns: AtomicU64,
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

impl Users {
    /// Loads the file.
    ///
    /// # Errors
    /// The loader's error (a missing file is an empty database, not an error).
    pub(crate) fn load(path: &Path) -> Result<Users, UsersError> {
        let before = stamp(path);
        let db = UserDb::load(path)?;
        let slowest = measure_slowest_check(&db);
        tracing::info!(slowest_check_ms = slowest.as_millis(), "failed logins padded to this");
        Ok(Users {
            path: path.to_owned(),
            current: Mutex::new((Arc::new(db), before)),
            slowest_check_ns: AtomicU64::new(nanos(slowest)),
            measured_check_ns: AtomicU64::new(nanos(slowest)),
        })
    }

    /// What the slowest password check of the current passwd-file takes: every failed login
    /// is answered no sooner than this after its check began.
    pub(crate) fn slowest_check(&self) -> Duration {
        Duration::from_nanos(self.slowest_check_ns.load(Ordering::Relaxed))
    }

    /// A check took `took`: a slower one than measured raises the figure (a user whose hash
    /// costs more than the probed one of its scheme), but to at most [`TIMING_PAD_RAISE_MAX`]
    /// times the measured figure: a check slowed by a busy machine must not make every later
    /// failure wait as long until the next reload.
    pub(crate) fn note_check(&self, took: Duration) {
        let ceiling =
            self.measured_check_ns.load(Ordering::Relaxed).saturating_mul(TIMING_PAD_RAISE_MAX);
        self.slowest_check_ns.fetch_max(nanos(took).min(ceiling), Ordering::Relaxed);
    }

    /// The users now.
    pub(crate) fn get(&self) -> Arc<UserDb> {
        self.current.lock().expect("users lock").0.clone()
    }

    /// Reloads the file if it changed since the last load; true when it did. Blocking: call
    /// it off the reactor.
    pub(crate) fn reload_if_changed(&self) -> bool {
        let now = stamp(&self.path);
        if now == self.current.lock().expect("users lock").1 {
            return false;
        }
        match UserDb::load(&self.path) {
            Ok(db) => {
                let slowest = measure_slowest_check(&db);
                *self.current.lock().expect("users lock") = (Arc::new(db), now);
                self.slowest_check_ns.store(nanos(slowest), Ordering::Relaxed);
                self.measured_check_ns.store(nanos(slowest), Ordering::Relaxed);
                tracing::info!(
                    slowest_check_ms = slowest.as_millis(),
                    "failed logins padded to this"
                );
                true
            }
            Err(error) => {
                tracing::error!(%error, "passwd-file changed but cannot be loaded; keeping the old users");
                // Remember the broken version so the error is logged once, not every period.
                self.current.lock().expect("users lock").1 = now;
                false
            }
        }
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
