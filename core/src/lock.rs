//! The data-dir lock: one process at a time owns a data directory.
//!
//! The store keeps no lock of its own on mail data: a user's store is owned by one shard of one
//! process, and everything (the spool end, the unsynced index records, the group commit) is
//! tracked in that process's memory. A second process writing the same files would append
//! over records the first one acknowledged. So `skua serve` takes an exclusive lock on
//! `DATA_DIR/lock` before it starts its shards and holds it until it exits, and offline tools
//! that write stores (`skua reconstruct`) take the same lock and refuse a locked directory.
//! (`skua user ...` edits only the passwd-file, which has a lock of its own.)
//!
//! The lock is an advisory `flock` (std's `File::try_lock`): the kernel drops it when the
//! holder exits, however it exits (kill -9 included), so a stale lock file never keeps the
//! server from starting. The file holds the holder's pid in decimal, for the message a refused
//! process prints; it is informational only (`core/FORMAT.md`, "The data directory").
//!
//! Two more helpers let other processes talk to the holder without disturbing it:
//!
//! - [`holder`] tells whether a server holds the lock, from `/proc/locks` (the kernel's list of
//!   `flock` holders, matched on the lock file's inode) rather than by trying the lock: a probe
//!   that took the lock even for a moment could make a server starting at that instant refuse
//!   to start.
//! - [`UsersAck`] is the holder's acknowledgement of the passwd-file version it serves,
//!   `DATA_DIR/users-loaded`: after every load attempt the server writes which content it read
//!   (SHA-256 and length), whether it took it or kept the previous users, and its pid. `skua
//!   user add|passwd|del` waits until the acknowledgement names the file it wrote, so the
//!   change is in effect when the command returns. The file is replaced atomically (temporary
//!   file, rename) and is not synced: it describes a running process and means nothing after a
//!   crash (the pid no longer holds the lock).

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Name of the lock file inside the data directory.
pub const LOCK_FILE: &str = "lock";
/// At most this many bytes of the lock file are read for the holder's pid.
const LOCK_FILE_BYTES_MAX: u64 = 64;

/// Why the data-dir lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock.
    #[error(
        "data dir {} is in use by another skua process ({}); stop it first",
        .dir.display(),
        describe_pid(*.pid)
    )]
    Held {
        /// The data directory.
        dir: PathBuf,
        /// The holder's pid as its lock file says, if it could be read.
        pid: Option<u32>,
    },
    /// The shard journals could not be replayed (FORMAT.md, "The shard journal").
    #[error("cannot replay the journals of data dir {}: {source}", .dir.display())]
    Journal {
        /// The data directory.
        dir: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The lock file could not be opened, locked or written.
    #[error("cannot lock data dir {}: {source}", .path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

fn describe_pid(pid: Option<u32>) -> String {
    pid.map_or_else(|| "pid unknown".to_owned(), |pid| format!("pid {pid}"))
}

/// The exclusive lock on a data directory, held until dropped (or the process exits).
#[derive(Debug)]
pub struct DataDirLock {
    /// Keeps the lock: the kernel releases it when the file is closed.
    file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Takes the lock on `dir` (which must exist) without waiting, and writes this process's
    /// pid into the lock file.
    ///
    /// # Errors
    /// [`LockError::Held`] when another process (or another handle in this one) holds it;
    /// [`LockError::Io`] when the lock file cannot be opened or written.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, LockError> {
        let path = dir.join(LOCK_FILE);
        let io_error = |source| LockError::Io { path: path.clone(), source };
        // Not truncated on open: the holder's pid must stay readable for the refused.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(LockError::Held { dir: dir.to_path_buf(), pid: read_pid(&mut file) });
            }
            Err(std::fs::TryLockError::Error(error)) => return Err(io_error(error)),
        }
        file.set_len(0).map_err(io_error)?;
        file.seek(SeekFrom::Start(0)).map_err(io_error)?;
        writeln!(file, "{}", std::process::id()).map_err(io_error)?;
        // Whoever owns the data dir first brings the files up to what the journals acknowledged,
        // before any store can be read (FORMAT.md, "The shard journal").
        crate::disk::journal::replay_data_dir(dir)
            .map_err(|source| LockError::Journal { dir: dir.to_path_buf(), source })?;
        Ok(DataDirLock { file, path })
    }

    /// The lock file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pid written into the lock file (this process's).
    ///
    /// # Errors
    /// The file cannot be read.
    pub fn holder_pid(&self) -> io::Result<Option<u32>> {
        let mut file = &self.file;
        file.seek(SeekFrom::Start(0))?;
        Ok(parse_pid(file))
    }
}

/// The pid in a lock file held by someone else; `None` if it cannot be read (the holder may be
/// between truncating and writing it).
fn read_pid(file: &mut File) -> Option<u32> {
    file.seek(SeekFrom::Start(0)).ok()?;
    parse_pid(&*file)
}

fn parse_pid(file: &File) -> Option<u32> {
    let mut text = String::new();
    file.take(LOCK_FILE_BYTES_MAX).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Who holds a data directory's lock, as far as [`holder`] can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder {
    /// Nobody: no server runs on the directory.
    Free,
    /// A process holds the lock (a server runs); its pid as the kernel reports it.
    Held {
        /// The holder's pid.
        pid: u32,
    },
    /// `/proc/locks` cannot be read; the lock file names this pid (if it can be read), which
    /// may or may not still run.
    Unknown {
        /// The pid in the lock file.
        pid: Option<u32>,
    },
}

/// Largest `/proc/locks` read (one line per lock held on the machine, ~50 bytes each).
const PROC_LOCKS_BYTES_MAX: u64 = 16 << 20;

/// Whether a process holds the lock on `dir`, without taking it (see the module docs).
#[must_use]
pub fn holder(dir: &Path) -> Holder {
    let path = dir.join(LOCK_FILE);
    let Ok(mut file) = File::open(&path) else {
        // No lock file: no server ever started here (or the dir is gone).
        return Holder::Free;
    };
    let Ok(metadata) = file.metadata() else {
        return Holder::Unknown { pid: read_pid(&mut file) };
    };
    let mut table = String::new();
    let read = File::open("/proc/locks")
        .and_then(|locks| locks.take(PROC_LOCKS_BYTES_MAX).read_to_string(&mut table));
    if read.is_err() {
        return Holder::Unknown { pid: read_pid(&mut file) };
    }
    match flock_holder(&table, metadata.ino()) {
        Some(pid) => Holder::Held { pid },
        None => Holder::Free,
    }
}

/// The pid holding an exclusive `flock` on inode `inode`, from the text of `/proc/locks`:
/// lines like `3: FLOCK  ADVISORY  WRITE 4242 fe:00:6168578 0 EOF`. Waiters (`3: -> FLOCK
/// ...`) hold nothing and are skipped. The device is not compared: inside containers it may
/// be reported differently from `stat`, and a false match costs only a bounded wait.
fn flock_holder(proc_locks: &str, inode: u64) -> Option<u32> {
    proc_locks.lines().find_map(|line| {
        let mut fields = line.split_whitespace().skip(1);
        let (Some("FLOCK"), Some(_), Some("WRITE"), Some(pid), Some(file)) =
            (fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return None;
        };
        let held_inode: u64 = file.rsplit(':').next()?.parse().ok()?;
        if held_inode == inode { pid.parse().ok() } else { None }
    })
}

/// Name of the passwd-file acknowledgement inside the data directory.
pub const USERS_ACK_FILE: &str = "users-loaded";
/// At most this many bytes of the acknowledgement are read.
const USERS_ACK_BYTES_MAX: u64 = 8192;
/// First line of the acknowledgement: its format and version.
const USERS_ACK_MAGIC: &str = "skua-users-ack 1";
/// Longest refusal reason kept in the acknowledgement, in bytes.
const USERS_ACK_REASON_BYTES_MAX: usize = 1024;

/// Which contents of the passwd-file a load saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileVersion {
    /// There was no file (no users).
    Absent,
    /// The file's bytes.
    Content {
        /// Its length.
        bytes: u64,
        /// The SHA-256 of its contents.
        sha256: [u8; 32],
    },
    /// The file exists but could not be read.
    Unreadable,
}

impl FileVersion {
    /// The version of `contents`.
    #[must_use]
    pub fn of_bytes(contents: &[u8]) -> FileVersion {
        let digest = ring::digest::digest(&ring::digest::SHA256, contents);
        FileVersion::Content { bytes: contents.len() as u64, sha256: sha256_array(&digest) }
    }

    /// The version of the file at `path` now, read in pieces (any size, bounded memory).
    #[must_use]
    pub fn of_file(path: &Path) -> FileVersion {
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return FileVersion::Absent,
            Err(_) => return FileVersion::Unreadable,
        };
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        let mut buffer = [0u8; 16 * 1024];
        let mut bytes = 0u64;
        loop {
            match file.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => {
                    context.update(&buffer[..n]);
                    bytes += n as u64;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return FileVersion::Unreadable,
            }
        }
        FileVersion::Content { bytes, sha256: sha256_array(&context.finish()) }
    }

    fn render(&self) -> String {
        match self {
            FileVersion::Absent => "absent".to_owned(),
            FileVersion::Unreadable => "unreadable".to_owned(),
            FileVersion::Content { bytes, sha256 } => {
                let mut hex = String::with_capacity(64);
                for byte in sha256 {
                    let _ = write!(hex, "{byte:02x}");
                }
                format!("sha256 {hex} bytes {bytes}")
            }
        }
    }

    fn parse(text: &str) -> Option<FileVersion> {
        match text {
            "absent" => return Some(FileVersion::Absent),
            "unreadable" => return Some(FileVersion::Unreadable),
            _ => {}
        }
        let mut words = text.split(' ');
        let (Some("sha256"), Some(hex), Some("bytes"), Some(bytes), None) =
            (words.next(), words.next(), words.next(), words.next(), words.next())
        else {
            return None;
        };
        if hex.len() != 64 {
            return None;
        }
        let mut sha256 = [0u8; 32];
        for (i, byte) in sha256.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(FileVersion::Content { bytes: bytes.parse().ok()?, sha256 })
    }
}

fn sha256_array(digest: &ring::digest::Digest) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// What the server did with the version it read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadOutcome {
    /// It serves these users now.
    Loaded {
        /// Users in the file.
        users: u64,
        /// Lines that are neither users, comments nor blank (ignored, with a warning in the
        /// server's log), duplicate users included.
        ignored_lines: u64,
    },
    /// It could not load the file and keeps the users it had.
    Refused {
        /// Why (one line).
        reason: String,
    },
}

/// Why an acknowledgement could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AckError {
    /// The file could not be read.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The acknowledgement file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The file is not an acknowledgement this version understands.
    #[error("{}: not a passwd-file acknowledgement ({reason})", .path.display())]
    Malformed {
        /// The acknowledgement file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
}

/// The server's word on the passwd-file: the version it read last and what it did with it
/// (see the module docs; the format is in `core/FORMAT.md`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsersAck {
    /// The server's pid.
    pub pid: u32,
    /// The passwd-file it serves, absolute where it could be made so.
    pub passwd: String,
    /// The version it read.
    pub version: FileVersion,
    /// What it did with it.
    pub outcome: LoadOutcome,
}

impl UsersAck {
    /// The passwd-file path as an acknowledgement spells it: absolute (its directory
    /// canonicalized) where possible, and on one line. The server and the CLI both spell their
    /// path this way, so equal files compare equal.
    #[must_use]
    pub fn spell_path(path: &Path) -> String {
        let parent = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let absolute = match (parent.canonicalize(), path.file_name()) {
            (Ok(dir), Some(name)) => dir.join(name),
            _ => path.to_path_buf(),
        };
        one_line(&absolute.to_string_lossy())
    }

    /// The acknowledgement as text.
    #[must_use]
    pub fn render(&self) -> String {
        let outcome = match &self.outcome {
            LoadOutcome::Loaded { users, ignored_lines } => {
                format!("loaded users {users} ignored {ignored_lines}")
            }
            LoadOutcome::Refused { reason } => {
                let mut reason = one_line(reason);
                if reason.len() > USERS_ACK_REASON_BYTES_MAX {
                    let mut end = USERS_ACK_REASON_BYTES_MAX;
                    while !reason.is_char_boundary(end) {
                        end -= 1;
                    }
                    reason.truncate(end);
                }
                format!("refused {reason}")
            }
        };
        format!(
            "{USERS_ACK_MAGIC}\npid {}\npasswd {}\nversion {}\noutcome {outcome}\n",
            self.pid,
            one_line(&self.passwd),
            self.version.render()
        )
    }

    /// Parses [`UsersAck::render`]'s text.
    ///
    /// # Errors
    /// What is wrong with it.
    pub fn parse(text: &str) -> Result<UsersAck, &'static str> {
        let mut lines = text.lines();
        if lines.next() != Some(USERS_ACK_MAGIC) {
            return Err("unknown first line");
        }
        let mut field =
            |key: &str| lines.next().and_then(|line| line.strip_prefix(key)?.strip_prefix(' '));
        let pid = field("pid").and_then(|p| p.parse().ok()).ok_or("bad pid")?;
        let passwd = field("passwd").ok_or("bad passwd")?.to_owned();
        let version = field("version").and_then(FileVersion::parse).ok_or("bad version")?;
        let outcome = field("outcome").ok_or("no outcome")?;
        let outcome = if let Some(reason) = outcome.strip_prefix("refused ") {
            LoadOutcome::Refused { reason: reason.to_owned() }
        } else {
            let mut words = outcome.split(' ');
            let (Some("loaded"), Some("users"), Some(users), Some("ignored"), Some(ignored), None) =
                (words.next(), words.next(), words.next(), words.next(), words.next(), words.next())
            else {
                return Err("bad outcome");
            };
            LoadOutcome::Loaded {
                users: users.parse().map_err(|_| "bad user count")?,
                ignored_lines: ignored.parse().map_err(|_| "bad line count")?,
            }
        };
        Ok(UsersAck { pid, passwd, version, outcome })
    }

    /// Replaces `DATA_DIR/users-loaded` with this acknowledgement (temporary file and rename:
    /// a reader sees the old one or the new one whole). Not synced (see the module docs).
    ///
    /// # Errors
    /// The temporary file cannot be written or renamed.
    pub fn write(&self, data_dir: &Path) -> io::Result<()> {
        let path = data_dir.join(USERS_ACK_FILE);
        let temp = data_dir.join(format!("{USERS_ACK_FILE}.tmp.{}", std::process::id()));
        let result =
            std::fs::write(&temp, self.render()).and_then(|()| std::fs::rename(&temp, &path));
        if result.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        result
    }

    /// Reads `DATA_DIR/users-loaded`; `None` when there is none.
    ///
    /// # Errors
    /// The file cannot be read or is not an acknowledgement.
    pub fn read(data_dir: &Path) -> Result<Option<UsersAck>, AckError> {
        let path = data_dir.join(USERS_ACK_FILE);
        let mut text = String::new();
        let opened = File::open(&path);
        let read = opened.and_then(|file| file.take(USERS_ACK_BYTES_MAX).read_to_string(&mut text));
        match read {
            Ok(_) => UsersAck::parse(&text)
                .map(Some)
                .map_err(|reason| AckError::Malformed { path, reason }),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(AckError::Io { path, source }),
        }
    }
}

/// `text` with line ends and other control characters replaced by `?`.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_acquire_fails_naming_the_holder_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        assert_eq!(first.holder_pid().unwrap(), Some(std::process::id()));
        let refused = DataDirLock::acquire(dir.path()).unwrap_err();
        match &refused {
            LockError::Held { dir: held, pid } => {
                assert_eq!(held, dir.path());
                assert_eq!(*pid, Some(std::process::id()));
            }
            LockError::Io { .. } | LockError::Journal { .. } => {
                panic!("expected Held, got {refused}")
            }
        }
        let message = refused.to_string();
        assert!(message.contains("in use by another skua process"), "{message}");
        assert!(message.contains(&format!("pid {}", std::process::id())), "{message}");
        drop(first);
        let second = DataDirLock::acquire(dir.path()).expect("free again after drop");
        assert_eq!(second.path(), dir.path().join(LOCK_FILE));
    }

    #[test]
    fn a_stale_lock_file_does_not_hold_the_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), "999999999\nleftover").unwrap();
        let lock = DataDirLock::acquire(dir.path()).expect("nobody holds the flock");
        assert_eq!(lock.holder_pid().unwrap(), Some(std::process::id()), "pid rewritten");
    }

    #[test]
    fn the_holder_is_found_in_proc_locks_by_inode_and_waiters_do_not_count() {
        let table = "1: POSIX  ADVISORY  WRITE 10 fe:00:77 0 EOF\n\
                     2: FLOCK  ADVISORY  READ 11 fe:00:77 0 EOF\n\
                     3: -> FLOCK  ADVISORY  WRITE 12 fe:00:77 0 EOF\n\
                     3: FLOCK  ADVISORY  WRITE 13 00:2a:77 0 EOF\n";
        assert_eq!(flock_holder(table, 77), Some(13));
        assert_eq!(flock_holder(table, 78), None);
        assert_eq!(flock_holder("", 77), None);
        assert_eq!(flock_holder("garbage\n1: FLOCK\n", 77), None);
    }

    #[test]
    fn holder_sees_a_held_lock_without_taking_it() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(holder(dir.path()), Holder::Free, "no lock file");
        let lock = DataDirLock::acquire(dir.path()).unwrap();
        assert_eq!(holder(dir.path()), Holder::Held { pid: std::process::id() });
        assert_eq!(holder(dir.path()), Holder::Held { pid: std::process::id() }, "still held");
        drop(lock);
        assert_eq!(holder(dir.path()), Holder::Free, "a stale lock file holds nothing");
        let again = DataDirLock::acquire(dir.path()).expect("holder never took the lock");
        drop(again);
    }

    fn sample_ack(outcome: LoadOutcome) -> UsersAck {
        UsersAck {
            pid: 4242,
            passwd: "/srv/skua/passwd".to_owned(),
            version: FileVersion::of_bytes(b"alice:{PLAIN}a\n"),
            outcome,
        }
    }

    #[test]
    fn an_acknowledgement_survives_a_round_trip_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(UsersAck::read(dir.path()).unwrap().is_none(), "none yet");
        for ack in [
            sample_ack(LoadOutcome::Loaded { users: 3, ignored_lines: 1 }),
            sample_ack(LoadOutcome::Refused { reason: "passwd: Is a directory".into() }),
            UsersAck {
                version: FileVersion::Absent,
                ..sample_ack(LoadOutcome::Loaded { users: 0, ignored_lines: 0 })
            },
            UsersAck {
                version: FileVersion::Unreadable,
                ..sample_ack(LoadOutcome::Refused { reason: "x".into() })
            },
        ] {
            ack.write(dir.path()).unwrap();
            assert_eq!(UsersAck::read(dir.path()).unwrap(), Some(ack));
        }
        let names: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [USERS_ACK_FILE], "no temporary file left behind");
    }

    #[test]
    fn the_acknowledgement_text_is_pinned() {
        let ack = sample_ack(LoadOutcome::Loaded { users: 3, ignored_lines: 1 });
        assert_eq!(
            ack.render(),
            "skua-users-ack 1\npid 4242\npasswd /srv/skua/passwd\n\
             version sha256 eb8754d32251be703705f7dc8bfd01e875427a68db9551ae7beb7140d73c8fb1 bytes 15\n\
             outcome loaded users 3 ignored 1\n"
        );
    }

    #[test]
    fn refusal_reasons_and_paths_stay_on_one_line_and_bounded() {
        let long = format!("line one\nline two {}", "é".repeat(2000));
        let ack = UsersAck {
            passwd: "/odd\npath".into(),
            ..sample_ack(LoadOutcome::Refused { reason: long })
        };
        let parsed = UsersAck::parse(&ack.render()).unwrap();
        assert_eq!(parsed.passwd, "/odd?path");
        let LoadOutcome::Refused { reason } = parsed.outcome else { panic!("refused") };
        assert!(reason.starts_with("line one?line two é"), "{reason}");
        assert!(reason.len() <= USERS_ACK_REASON_BYTES_MAX);
    }

    #[test]
    fn malformed_acknowledgements_are_refused() {
        let good = sample_ack(LoadOutcome::Loaded { users: 1, ignored_lines: 0 }).render();
        assert!(UsersAck::parse(&good).is_ok());
        for bad in [
            String::new(),
            good.replace("skua-users-ack 1", "skua-users-ack 2"),
            good.replace("pid 4242", "pid x"),
            good.replace("version sha256 ", "version sha256 0"),
            good.replace("users 1", "users"),
            good.lines().take(4).collect::<Vec<_>>().join("\n"),
        ] {
            assert!(UsersAck::parse(&bad).is_err(), "{bad:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(USERS_ACK_FILE), "nonsense").unwrap();
        assert!(matches!(UsersAck::read(dir.path()), Err(AckError::Malformed { .. })));
    }

    #[test]
    fn a_file_version_is_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        assert_eq!(FileVersion::of_file(&path), FileVersion::Absent);
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &big).unwrap();
        assert_eq!(FileVersion::of_file(&path), FileVersion::of_bytes(&big), "read in pieces");
        std::fs::write(&path, b"other").unwrap();
        assert_ne!(FileVersion::of_file(&path), FileVersion::of_bytes(&big));
        assert_eq!(FileVersion::of_file(dir.path()), FileVersion::Unreadable, "a directory");
    }

    #[test]
    fn a_missing_dir_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert!(matches!(DataDirLock::acquire(&missing), Err(LockError::Io { .. })));
    }
}
