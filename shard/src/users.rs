//! The users of the passwd-file, shared by every shard and reloaded when the file changes, so
//! `skua user add` takes effect without a restart.
//!
//! Readers take an `Arc<UserDb>` snapshot (a mutex held for one `Arc` clone; users are not
//! mail data, and a login or an RCPT is rare next to everything else). Shard 0 checks the
//! file's identity (size, modification time, inode) every
//! [`ServerConfig::users_reload_interval`](crate::ServerConfig::users_reload_interval) on
//! its blocking pool and swaps in a freshly loaded database when it changed. A file that
//! fails to load keeps the previous users, with an error in the log.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use skua_core::users::{UserDb, UsersError};

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
}

impl Users {
    /// Loads the file.
    ///
    /// # Errors
    /// The loader's error (a missing file is an empty database, not an error).
    pub(crate) fn load(path: &Path) -> Result<Users, UsersError> {
        let before = stamp(path);
        let db = UserDb::load(path)?;
        Ok(Users { path: path.to_owned(), current: Mutex::new((Arc::new(db), before)) })
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
                *self.current.lock().expect("users lock") = (Arc::new(db), now);
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
