//! Errors of the users database and its file edits.

use std::io;
use std::path::PathBuf;

/// Anything that can go wrong reading, hashing for, or editing the passwd-file.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// The file could not be read, written, synced or renamed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file is larger than [`PASSWD_FILE_BYTES_MAX`](super::limits::PASSWD_FILE_BYTES_MAX).
    #[error("{path}: passwd-file larger than {max} bytes")]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        max: u64,
    },
    /// The user name cannot be stored in the passwd-file.
    #[error("invalid user name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The password hash is not one the passwd-file can hold or we can verify.
    #[error("invalid password hash: {0}")]
    InvalidHash(&'static str),
    /// The password cannot be hashed (too long, or not storable in the chosen scheme).
    #[error("cannot hash password: {0}")]
    Hash(String),
    /// `add_user` for a name already present (names compare ASCII case-insensitively).
    #[error("user {0:?} already exists")]
    UserExists(String),
    /// The server-secret file exists but does not hold a secret.
    #[error("{path}: not a server secret (expected exactly {expected_bytes} bytes)")]
    InvalidSecretFile {
        /// The file.
        path: PathBuf,
        /// The length a secret file has.
        expected_bytes: usize,
    },
    /// `set_password` or `delete_user` for a name not present.
    #[error("no such user {0:?}")]
    NoSuchUser(String),
}

impl UsersError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> UsersError {
        UsersError::Io { path: path.into(), source }
    }
}
