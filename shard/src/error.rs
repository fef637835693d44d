//! What can stop the server from starting or running.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why [`crate::run`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration cannot be served (no listen address, zero shards, ...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A listener could not be bound.
    #[error("cannot listen on {address} ({protocol}): {source}")]
    Bind {
        /// The address from the config.
        address: SocketAddr,
        /// `IMAP` or `LMTP`.
        protocol: &'static str,
        /// The OS error (e.g. address in use, permission denied).
        source: std::io::Error,
    },
    /// A shard's executor (its io_uring rings) could not be created.
    #[error("shard {shard}: cannot start the io_uring executor: {detail}")]
    Executor {
        /// The shard index.
        shard: usize,
        /// What glommio reported, with advice (e.g. raise LimitMEMLOCK).
        detail: String,
    },
    /// The passwd-file could not be loaded.
    #[error("cannot load users from {path}: {detail}")]
    Users {
        /// The passwd-file.
        path: PathBuf,
        /// The loader's error.
        detail: String,
    },
    /// The deny list (`<data_dir>/deny.list`) cannot be read or does not parse.
    #[error("cannot load the deny list: {0}")]
    DenyList(String),
    /// The data directory could not be opened.
    #[error("cannot open the data directory {path}: {source}")]
    DataDir {
        /// The data directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    /// A shard thread could not be spawned or ended by panicking.
    #[error("shard {shard} failed: {detail}")]
    Shard {
        /// The shard index.
        shard: usize,
        /// What happened.
        detail: String,
    },
    /// A flush failed on some shard: acknowledged data is safe, but the server stopped
    /// acknowledging and exits non-zero so the operator looks at the disk.
    #[error("a flush round failed on shard {shard}; check the disk and restart")]
    Storage {
        /// The shard whose flush failed.
        shard: usize,
    },
}
