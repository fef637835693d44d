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
//! [limits]                         # admission and deadlines (ARCHITECTURE.md, "Admission")
//! connections_per_source = 1024    # IMAP + LMTP from one IP (IPv6: one /64), whole process
//! connections_per_user = 64        # logged-in IMAP sessions of one user
//! login_deadline_seconds = 60      # accept -> successful login, whole session (not per read)
//! command_deadline_seconds = 300   # first byte of a command -> its last (literals, DATA)
//! refusal_log_interval_seconds = 60 # refusals: one log line per source and reason per interval
//!
//! [imap]
//! listen = ["127.0.0.1:1143"]
//! plaintext_auth = "loopback"      # "loopback" | "always"
//!
//! [lmtp]
//! listen = ["127.0.0.1:2424"]
//! recipient_by_local_part = true   # user1@any.domain reaches user "user1" if no exact match
//! connections_per_shard = 256      # LMTP's own budget, carved out of connections_per_shard
//!                                  # (at most half of it); IMAP gets the rest
//! ```
//!
//! Every per-connection budget refuses politely: `* BYE [LIMIT]` (IMAP) or `421 4.7.0` (LMTP)
//! and close; a deadline ends the connection with `* BYE` / `421 4.4.2` naming the reason.
//! Per-read timeouts stay as they were (60 s before login, 30 min after, 5 min for LMTP).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use skua_shard::ServerConfig;

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
    /// Admission limits and deadlines.
    #[serde(default)]
    pub limits: LimitsSection,
}

/// `[limits]`
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// IMAP and LMTP connections from one source address, across every shard.
    pub connections_per_source: Option<u32>,
    /// Logged-in IMAP sessions of one user.
    pub connections_per_user: Option<u32>,
    /// From accept to a successful login.
    pub login_deadline_seconds: Option<u64>,
    /// From the first byte of a command to its last.
    pub command_deadline_seconds: Option<u64>,
    /// One refusal log line per source and reason per this many seconds.
    pub refusal_log_interval_seconds: Option<u64>,
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
    /// LMTP connections one shard serves at most, carved out of `connections_per_shard`.
    pub connections_per_shard: Option<usize>,
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

    /// Sets the admission limits and deadlines of `[limits]` and `[lmtp]` on `config`; what
    /// the file leaves out keeps `config`'s value.
    ///
    /// # Errors
    /// A zero cap or deadline: it would refuse every connection or end every session at once,
    /// which is never what an operator means.
    pub fn apply_limits(&self, config: &mut ServerConfig) -> anyhow::Result<()> {
        let limits = &self.limits;
        if let Some(max) = positive(limits.connections_per_source, "limits.connections_per_source")?
        {
            config.connections_per_source_max = max;
        }
        if let Some(max) = positive(limits.connections_per_user, "limits.connections_per_user")? {
            config.connections_per_user_max = max;
        }
        let login = positive(limits.login_deadline_seconds, "limits.login_deadline_seconds")?;
        if let Some(seconds) = login {
            config.login_deadline = Duration::from_secs(seconds);
        }
        let command = positive(limits.command_deadline_seconds, "limits.command_deadline_seconds")?;
        if let Some(seconds) = command {
            config.command_deadline = Duration::from_secs(seconds);
        }
        let interval = limits.refusal_log_interval_seconds;
        if let Some(seconds) = positive(interval, "limits.refusal_log_interval_seconds")? {
            config.refusal_log_interval = Duration::from_secs(seconds);
        }
        let lmtp = positive(self.lmtp.connections_per_shard, "lmtp.connections_per_shard")?;
        if let Some(max) = lmtp {
            config.lmtp_connections_per_shard_max = max;
        }
        Ok(())
    }
}

/// `value`, refused when zero.
fn positive<T: Copy + PartialEq + Default>(
    value: Option<T>,
    key: &str,
) -> anyhow::Result<Option<T>> {
    match value {
        Some(value) if value == T::default() => anyhow::bail!("{key} must be at least 1"),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_come_from_the_file_and_default_otherwise() {
        let text = "connections_per_shard = 16384\n\
                    [limits]\n\
                    connections_per_source = 10\n\
                    connections_per_user = 3\n\
                    login_deadline_seconds = 5\n\
                    command_deadline_seconds = 7\n\
                    refusal_log_interval_seconds = 9\n\
                    [lmtp]\n\
                    connections_per_shard = 20\n";
        let file: FileConfig = toml::from_str(text).expect("parses");
        let mut config = ServerConfig::default();
        file.apply_limits(&mut config).expect("valid");
        assert_eq!(config.connections_per_source_max, 10);
        assert_eq!(config.connections_per_user_max, 3);
        assert_eq!(config.login_deadline, Duration::from_secs(5));
        assert_eq!(config.command_deadline, Duration::from_secs(7));
        assert_eq!(config.refusal_log_interval, Duration::from_secs(9));
        assert_eq!(config.lmtp_connections_per_shard_max, 20);

        let mut defaults = ServerConfig::default();
        FileConfig::default().apply_limits(&mut defaults).expect("valid");
        assert_eq!(defaults.connections_per_source_max, 1024);
        assert_eq!(defaults.connections_per_user_max, 64);
        assert_eq!(defaults.login_deadline, Duration::from_secs(60));
        assert_eq!(defaults.command_deadline, Duration::from_secs(300));
        assert_eq!(defaults.refusal_log_interval, Duration::from_secs(60));
        assert_eq!(defaults.lmtp_connections_per_shard_max, 256);
    }

    #[test]
    fn zero_limits_and_unknown_keys_are_refused() {
        let zero: FileConfig =
            toml::from_str("[limits]\nconnections_per_source = 0\n").expect("toml");
        let error = zero.apply_limits(&mut ServerConfig::default()).expect_err("zero");
        assert!(error.to_string().contains("limits.connections_per_source"), "{error}");
        assert!(toml::from_str::<FileConfig>("[limits]\nconnections_per_ip = 5\n").is_err());
    }
}
