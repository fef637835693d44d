//! [`WatchedFile`]: one file kept loaded and reloaded when it changes (see the parent module):
//! the file read once (bounded), its SHA-256 compared with the version in use, parsed by the
//! file's own parser, and swapped in whole; a version that cannot be used is logged once and
//! the previous contents stay. [`Reloadable`] is what the watcher needs of any of them.

use std::fmt;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use skua_core::lock::FileVersion;
use skua_core::users::UsersError;

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

/// One kind of watched file, as logs name it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FileKind {
    /// What the file is: "passwd-file".
    pub(crate) what: &'static str,
    /// What it holds: "users" (a refused version keeps "the old users").
    pub(crate) holds: &'static str,
    /// The largest file read; a larger one is refused.
    pub(crate) bytes_max: u64,
}

/// Parses a file's contents (`None`: there is no file), or says why they cannot be used.
type Parser<T, E> = dyn Fn(Option<&[u8]>) -> Result<T, E> + Send + Sync;

/// A file kept loaded: what it parsed into, swapped whole by [`WatchedFile::reload`] when the
/// file changes. Cloning shares it.
pub(crate) struct WatchedFile<T, E> {
    inner: Arc<FileInner<T, E>>,
}

impl<T, E> Clone for WatchedFile<T, E> {
    fn clone(&self) -> Self {
        WatchedFile { inner: self.inner.clone() }
    }
}

struct FileInner<T, E> {
    path: PathBuf,
    kind: FileKind,
    parse: Box<Parser<T, E>>,
    current: Mutex<Loaded<T>>,
    /// Serializes load attempts (the watcher, and any direct caller).
    loading: Mutex<()>,
}

/// The contents in use and what the last load attempt saw.
struct Loaded<T> {
    value: Arc<T>,
    /// Identity of the file at the last load attempt.
    stamp: Option<Stamp>,
    /// The version read at the last load attempt (loaded or refused).
    version: FileVersion,
    /// Why that version was refused; `None` when it is the one in use.
    refused: Option<String>,
}

/// What a load attempt did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reload {
    /// The file is as last seen: nothing to do.
    Unchanged,
    /// New contents are in use (for the passwd-file, not yet measured: [`super::Users::measure`]).
    Loaded,
    /// A new version could not be loaded; the previous contents stay.
    Refused,
}

/// The file read once: its version, and its contents (`None`: no file) or why not.
fn read_file(path: &Path, bytes_max: u64) -> (FileVersion, Result<Option<Vec<u8>>, UsersError>) {
    let io_error = |source| UsersError::Io { path: path.to_owned(), source };
    let too_large = || UsersError::FileTooLarge { path: path.to_owned(), max: bytes_max };
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
    if length > bytes_max {
        return (FileVersion::of_file(path), Err(too_large()));
    }
    let mut contents = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
    // The `take` bounds a file that grows while we read it.
    if let Err(error) = file.take(bytes_max + 1).read_to_end(&mut contents) {
        return (FileVersion::Unreadable, Err(io_error(error)));
    }
    if contents.len() as u64 > bytes_max {
        return (FileVersion::of_file(path), Err(too_large()));
    }
    (FileVersion::of_bytes(&contents), Ok(Some(contents)))
}

impl<T, E> WatchedFile<T, E>
where
    T: Send + Sync + 'static,
    E: From<UsersError> + fmt::Display + 'static,
{
    /// Reads the file and parses it with `parse`, which later reloads use too.
    ///
    /// # Errors
    /// The file cannot be read or is too large, or `parse` refuses it.
    pub(crate) fn load(
        path: &Path,
        kind: FileKind,
        parse: impl Fn(Option<&[u8]>) -> Result<T, E> + Send + Sync + 'static,
    ) -> Result<WatchedFile<T, E>, E> {
        let stamp = stamp(path);
        let (version, read) = read_file(path, kind.bytes_max);
        let value = parse(read?.as_deref())?;
        let current = Loaded { value: Arc::new(value), stamp, version, refused: None };
        Ok(WatchedFile {
            inner: Arc::new(FileInner {
                path: path.to_owned(),
                kind,
                parse: Box::new(parse),
                current: Mutex::new(current),
                loading: Mutex::new(()),
            }),
        })
    }

    /// The contents now.
    pub(crate) fn get(&self) -> Arc<T> {
        self.current().value.clone()
    }

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The contents in use, the version read at the last load attempt, and why that version
    /// was refused (`None`: it is the one in use).
    pub(crate) fn last_attempt(&self) -> (Arc<T>, FileVersion, Option<String>) {
        let current = self.current();
        (current.value.clone(), current.version.clone(), current.refused.clone())
    }

    fn current(&self) -> MutexGuard<'_, Loaded<T>> {
        self.inner.current.lock().expect("watched file lock")
    }

    /// Loads the file if it changed since the last attempt. `look` reads it even when its
    /// identity (size, mtime, inode) is unchanged (after an inotify event: a rename can reuse
    /// an inode within one timestamp tick; after SIGHUP); either way only new content is
    /// parsed. Blocking: call it off the reactor.
    pub(crate) fn reload(&self, look: bool) -> Reload {
        let _turn = self.inner.loading.lock().expect("watched file loading lock");
        let FileInner { path, kind, parse, .. } = &*self.inner;
        let now = stamp(path);
        if !look && now == self.current().stamp {
            return Reload::Unchanged;
        }
        let (version, read) = read_file(path, kind.bytes_max);
        if version == self.current().version {
            self.current().stamp = now;
            return Reload::Unchanged;
        }
        match read.map_err(E::from).and_then(|contents| parse(contents.as_deref())) {
            Ok(value) => {
                let value = Arc::new(value);
                *self.current() = Loaded { value, stamp: now, version, refused: None };
                Reload::Loaded
            }
            Err(error) => {
                tracing::warn!(path = %path.display(), %error,
                    "{} changed but cannot be loaded; keeping the old {}", kind.what, kind.holds);
                // Remember the broken version so the error is logged once, not every period.
                let mut current = self.current();
                current.stamp = now;
                current.version = version;
                current.refused = Some(error.to_string());
                Reload::Refused
            }
        }
    }
}

/// What the watcher needs of a [`WatchedFile`], whatever it holds.
pub(crate) trait Reloadable: Send + Sync {
    /// The file.
    fn path(&self) -> &Path;
    /// What it is.
    fn kind(&self) -> FileKind;
    /// See [`WatchedFile::reload`].
    fn reload(&self, look: bool) -> Reload;
}

impl<T, E> Reloadable for WatchedFile<T, E>
where
    T: Send + Sync + 'static,
    E: From<UsersError> + fmt::Display + 'static,
{
    fn path(&self) -> &Path {
        WatchedFile::path(self)
    }

    fn kind(&self) -> FileKind {
        self.inner.kind
    }

    fn reload(&self, look: bool) -> Reload {
        WatchedFile::reload(self, look)
    }
}
