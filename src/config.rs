//! The TOML config file and its defaults.
//!
//! Every setting has a default, so `skua serve` with no file starts on loopback ports with a
//! data dir in the working directory. Command-line flags override the file.
//!
//! ```toml
//! data_dir = "skua-data"          # relative paths are relative to the working directory
//! passwd_file = "skua-data/passwd" # default: DATA_DIR/passwd
//! shards = 0                       # 0: one per online core
//! hostname = "localhost"
//! io_memory_bytes = 524288         # per shard; locked memory (LimitMEMLOCK) must cover it
//! pin_cores = true                 # pin shard i to the i-th allowed CPU
//! connections_per_shard = 16384    # IMAP + LMTP; more get BYE [LIMIT] / 421 (fds bind first)
//!
//! [imap]
//! listen = ["127.0.0.1:1143"]
//! plaintext_auth = "loopback"      # "loopback" | "always"
//!
//! [lmtp]
//! listen = ["127.0.0.1:2424"]
//! recipient_by_local_part = true   # user1@any.domain reaches user "user1" if no exact match
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// Default IMAP listen address: loopback, unprivileged.
pub const IMAP_LISTEN_DEFAULT: &str = "127.0.0.1:1143";
/// Default LMTP listen address: loopback, unprivileged.
pub const LMTP_LISTEN_DEFAULT: &str = "127.0.0.1:2424";
/// Default data directory, relative to the working directory.
pub const DATA_DIR_DEFAULT: &str = "skua-data";
/// Default io_uring memory per shard: small, because unprivileged processes may lock only a
/// few MiB; raise it together with `LimitMEMLOCK` on large deployments.
pub const IO_MEMORY_BYTES_DEFAULT: usize = 512 * 1024;

/// The whole config file.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Where users' stores and the passwd-file live.
    pub data_dir: Option<PathBuf>,
    /// The passwd-file; default `DATA_DIR/passwd`.
    pub passwd_file: Option<PathBuf>,
    /// Number of shards; 0 or absent means one per online core.
    pub shards: Option<usize>,
    /// The name the server greets with.
    pub hostname: Option<String>,
    /// io_uring memory per shard.
    pub io_memory_bytes: Option<usize>,
    /// Pin each shard to its own CPU (default). Turn off where other busy processes share the
    /// cores (a load generator on the same machine): an unpinned shard can move to a free core.
    pub pin_cores: Option<bool>,
    /// Client connections one shard serves at once, IMAP and LMTP together.
    pub connections_per_shard: Option<usize>,
    /// IMAP settings.
    #[serde(default)]
    pub imap: ImapSection,
    /// LMTP settings.
    #[serde(default)]
    pub lmtp: LmtpSection,
}

/// `[imap]`
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ImapSection {
    /// Listen addresses.
    pub listen: Option<Vec<SocketAddr>>,
    /// `"loopback"` (default) or `"always"`.
    pub plaintext_auth: Option<String>,
}

/// `[lmtp]`
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LmtpSection {
    /// Listen addresses.
    pub listen: Option<Vec<SocketAddr>>,
    /// Look a recipient up by its local part when the whole address is not a user.
    pub recipient_by_local_part: Option<bool>,
}

impl FileConfig {
    /// Reads the file, or the defaults when `path` is `None`.
    ///
    /// # Errors
    /// The file cannot be read or is not valid TOML for this schema.
    pub fn load(path: Option<&Path>) -> anyhow::Result<FileConfig> {
        let Some(path) = path else {
            return Ok(FileConfig::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))
    }

    /// The data dir: the flag, else the file, else the default.
    #[must_use]
    pub fn data_dir(&self, flag: Option<&Path>) -> PathBuf {
        flag.map(Path::to_path_buf)
            .or_else(|| self.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from(DATA_DIR_DEFAULT))
    }

    /// The passwd-file for a data dir.
    #[must_use]
    pub fn passwd_file(&self, data_dir: &Path) -> PathBuf {
        self.passwd_file.clone().unwrap_or_else(|| data_dir.join("passwd"))
    }
}
