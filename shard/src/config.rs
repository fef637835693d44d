//! What the runtime needs to know to serve: addresses, shard count, memory, timeouts.
//!
//! The CLI (`src/main.rs`) fills this from the TOML file and flags; every field has a default
//! (see [`ServerConfig::default`]) so a test or a minimal config sets only what it cares about.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use skua_core::store::{DefaultFolder, QuotaLimits, SpecialUse};

use crate::tls::TlsConfigs;

/// The default folders of a new user: Drafts, Sent, Trash, Junk and Archive, each with the
/// SPECIAL-USE attribute of its name (RFC 6154), in the order `[folders]` lists them.
#[must_use]
pub fn default_folders() -> Vec<DefaultFolder> {
    DEFAULT_FOLDERS
        .iter()
        .map(|&(_, name, uses)| DefaultFolder { name: name.to_owned(), uses })
        .collect()
}

/// `[folders]` keys, the default name for each, and the attribute each gives.
pub const DEFAULT_FOLDERS: [(&str, &str, SpecialUse); 5] = [
    ("drafts", "Drafts", SpecialUse::DRAFTS),
    ("sent", "Sent", SpecialUse::SENT),
    ("trash", "Trash", SpecialUse::TRASH),
    ("junk", "Junk", SpecialUse::JUNK),
    ("archive", "Archive", SpecialUse::ARCHIVE),
];

/// The whole runtime configuration.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Root of the mail store: users' stores live under `DATA_DIR/users/NAME`.
    pub data_dir: PathBuf,
    /// The Dovecot-style passwd-file.
    pub passwd_path: PathBuf,
    /// IMAP listen addresses; every shard listens on each (SO_REUSEPORT).
    pub imap_listen: Vec<SocketAddr>,
    /// LMTP listen addresses; every shard listens on each (SO_REUSEPORT).
    pub lmtp_listen: Vec<SocketAddr>,
    /// LMTP unix-domain sockets (`[lmtp] listen = "unix:/path"`), served by shard 0.
    pub lmtp_unix_listen: Vec<crate::listen::UnixListen>,
    /// Socketmap (Postfix look-ups, `socketmap.rs`) TCP addresses; every shard listens on
    /// each. Empty (the default): no socketmap service.
    pub socketmap_listen: Vec<SocketAddr>,
    /// Socketmap unix-domain sockets (`[socketmap] listen = "unix:/path"`), served by shard 0.
    pub socketmap_unix_listen: Vec<crate::listen::UnixListen>,
    /// Implicit-TLS IMAP listen addresses (`--imaps-listen`, `[imap] tls_listen`); empty: none.
    /// Needs [`ServerConfig::tls`].
    pub imap_tls_listen: Vec<SocketAddr>,
    /// The certificates and rustls configurations for TLS (implicit and STARTTLS), swapped
    /// on SIGHUP; `None`: no TLS at all (tests that do not need it).
    pub tls: Option<Arc<TlsConfigs>>,
    /// `[imap] require_tls`: before TLS, IMAP answers only STARTTLS, CAPABILITY and LOGOUT.
    pub require_tls: bool,
    /// Number of shards; 0 means one per CPU this process may run on.
    pub shards: usize,
    /// Pin shard `i` to the `i`-th allowed CPU (wrapping when there are more shards than CPUs).
    pub pin_to_cores: bool,
    /// io_uring buffer memory per shard, in bytes. It is locked memory (three rings register
    /// it), so `shards * 3 * io_memory_bytes` must fit `LimitMEMLOCK`.
    pub io_memory_bytes: usize,
    /// Threads per shard for work that must not run on the reactor (fsync rounds, password
    /// hashes). One is always kept for the flush so logins cannot delay durability.
    pub blocking_threads: usize,
    /// Client connections one shard serves at once (IMAP and LMTP together: LMTP's share is
    /// `lmtp_connections_per_shard_max`, IMAP gets the rest); more are greeted with
    /// `* BYE [LIMIT]` / `421 4.7.0` and closed. Keep `shards *` this below the open-files
    /// limit (LimitNOFILE), with room for store files.
    pub connections_per_shard_max: usize,
    /// Of `connections_per_shard_max`, the LMTP connections one shard serves at most (but never
    /// more than half of it); IMAP may use only the rest, so a flood of either protocol
    /// cannot starve the other. Also carved
    /// out of the open-files budget ([`crate::listen`]): IMAP leaves this many descriptors
    /// per shard free for LMTP.
    pub lmtp_connections_per_shard_max: usize,
    /// IMAP and LMTP connections from one source address (an IPv6 source is its /64), across
    /// every shard; more are greeted with `* BYE [LIMIT]` / `421 4.7.0` and closed.
    pub connections_per_source_max: u32,
    /// Logged-in IMAP sessions of one user at once (counted on the user's home shard, where
    /// they all live); one more login gets a tagged `NO`.
    pub connections_per_user_max: u32,
    /// From accept to a successful login, whatever the client sends meanwhile: a connection
    /// that has not logged in by then gets `* BYE` and is closed.
    pub login_deadline: Duration,
    /// From the first byte of a command (IMAP command with its literals, LMTP command line or
    /// message data) to its last: a command still unfinished after this long ends the
    /// connection (`* BYE` / `421 4.4.2`), however steadily its bytes trickle in.
    pub command_deadline: Duration,
    /// Refused connections and logins are logged at most once per source and reason in this
    /// interval, with the number refused since the last line.
    pub refusal_log_interval: Duration,
    /// The first failed login from a source is answered after this long; the delay doubles
    /// with each recent failure of the source or of the user, up to 16 times this
    /// (see `auth.rs`). Tests shorten it.
    pub auth_failure_delay: Duration,
    /// A user store nobody uses is closed after this long (reopening runs a recovery check).
    pub store_idle_close: Duration,
    /// Open user stores per shard beyond which unused ones are closed early, least recently
    /// used first (each holds file descriptors and its indexes in memory).
    pub open_stores_per_shard_max: usize,
    /// The name in greetings and LMTP replies.
    pub hostname: String,
    /// LMTP: a recipient whose whole address is not a user is looked up by its local part.
    pub lmtp_recipient_by_local_part: bool,
    /// LMTP message settings (`[lmtp]`: size limit, `+detail`, trace header fields, bare line
    /// endings), copied into every shard's `LmtpConfig` (`lmtp::session_config`).
    pub lmtp: LmtpSettings,
    /// Allow plain-text passwords on unencrypted connections from any peer (default: only
    /// from loopback).
    pub plaintext_auth_always: bool,
    /// A connection that has not logged in is closed after this long without input.
    pub timeout_before_login: Duration,
    /// A logged-in IMAP connection (also in IDLE) is closed after this long without input.
    pub timeout_after_login: Duration,
    /// An LMTP connection is closed after this long without input.
    pub timeout_lmtp: Duration,
    /// How often the passwd-file is checked for changes (and reloaded if it changed).
    pub users_reload_interval: Duration,
    /// Writes nobody waits for are still flushed at least this often.
    pub flush_interval: Duration,
    /// At shutdown, connections get this long to finish their command before they are cut.
    pub shutdown_grace: Duration,
    /// Turn on glommio's stall detector: a task that keeps a shard busy 10 ms past its
    /// preemption budget is logged with a backtrace (through the `log` facade). Uses SIGUSR1.
    pub detect_stalls: bool,
    /// Authentication beyond the users file: master users, the token verifier, the server
    /// secret for SCRAM fakes (`[auth]`; see `sasl.rs`).
    pub sasl: Arc<crate::sasl::SaslSettings>,
    /// The folders a user's first login makes, with their SPECIAL-USE attributes, subscribed
    /// with INBOX (`[folders]`; [`default_folders`]). Made once per user, in one log batch:
    /// a folder the user deletes later does not come back (`UserStore::provision`).
    pub default_folders: Vec<DefaultFolder>,
    /// `[imap] admin_contact`: the server's METADATA entry `/shared/admin` (RFC 5464
    /// §3.2.1.1), how users reach the administrator, as a URI (`mailto:postmaster@...`);
    /// read-only for users. `None`: the entry does not exist. Copied into every shard's
    /// `ImapConfig::admin_contact`.
    pub admin_contact: Option<String>,
    /// `[imap] public_owner`: the pseudo-user whose mailboxes are the public ones, under
    /// `Shared/` (`ImapConfig::namespaces`); `None`: no public namespace.
    pub public_owner: Option<String>,
    /// `[compaction]`: background spool compaction and delayed expunge (`compaction.rs`).
    pub compaction: crate::compaction::CompactionSettings,
    /// `[quota]`: the limits of a user whose passwd-file line names none (per resource) and
    /// whose store holds no SETQUOTA'd set (`UserStore::set_default_quota`).
    pub quota_default: QuotaLimits,
    /// `[imap] admins`: users who may SETQUOTA; copied into `ImapConfig::admins`.
    pub imap_admins: Vec<String>,
    /// `[metrics] listen`: the Prometheus endpoint's addresses (plain HTTP, `GET /metrics`),
    /// served by shard 0 alone (`metrics_http.rs`). Empty (the default): no endpoint.
    pub metrics_listen: Vec<SocketAddr>,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            data_dir: PathBuf::from("skua-data"),
            passwd_path: PathBuf::from("skua-data/passwd"),
            imap_listen: vec![SocketAddr::from(([127, 0, 0, 1], 1143))],
            lmtp_listen: vec![SocketAddr::from(([127, 0, 0, 1], 2424))],
            lmtp_unix_listen: Vec::new(),
            socketmap_listen: Vec::new(),
            socketmap_unix_listen: Vec::new(),
            // The CLI's built-in config listens on 127.0.0.1:1993; the library default starts
            // no TLS listener, so tests that set only the plain ports bind nothing else.
            imap_tls_listen: Vec::new(),
            tls: None,
            require_tls: false,
            shards: 0,
            pin_to_cores: true,
            io_memory_bytes: 512 * 1024,
            blocking_threads: 3,
            // An idle connection costs under 2 KiB here (perf/results/2026-11-26-imap-gains.md);
            // the open-files limit (one descriptor per connection) usually binds first, and an
            // accept past it fails with EMFILE, logged once a second.
            connections_per_shard_max: 16_384,
            lmtp_connections_per_shard_max: 256,
            // An MTA or a large NAT opens a few hundred at most; one source holding more than
            // this is a flood (see "Admission" in ARCHITECTURE.md).
            connections_per_source_max: 1024,
            connections_per_user_max: 64,
            login_deadline: Duration::from_secs(60),
            command_deadline: Duration::from_secs(300),
            refusal_log_interval: Duration::from_secs(60),
            auth_failure_delay: Duration::from_millis(crate::limits::AUTH_FAILURE_DELAY_MS),
            store_idle_close: Duration::from_secs(120),
            open_stores_per_shard_max: 1024,
            hostname: "localhost".to_owned(),
            lmtp_recipient_by_local_part: true,
            lmtp: LmtpSettings::default(),
            plaintext_auth_always: false,
            timeout_before_login: Duration::from_secs(60),
            timeout_after_login: Duration::from_secs(30 * 60),
            timeout_lmtp: Duration::from_secs(5 * 60),
            users_reload_interval: Duration::from_secs(5),
            flush_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(10),
            detect_stalls: false,
            sasl: Arc::new(crate::sasl::SaslSettings::default()),
            default_folders: default_folders(),
            admin_contact: None,
            public_owner: None,
            compaction: crate::compaction::CompactionSettings::default(),
            quota_default: QuotaLimits::UNLIMITED,
            imap_admins: Vec::new(),
            metrics_listen: Vec::new(),
        }
    }
}

/// The `[lmtp]` settings of the messages an LMTP session takes (see `skua_protocols::lmtp::
/// LmtpConfig` for each one's meaning).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LmtpSettings {
    /// `max_message_size`: largest message, in bytes, announced in `SIZE`.
    pub max_message_bytes: u64,
    /// `detail_separator`: `None` turns `+detail` addressing off.
    pub detail_separator: Option<char>,
    /// `received_header`.
    pub received_header: bool,
    /// `delivered_to_header`.
    pub delivered_to_header: bool,
    /// `bare_line_endings`.
    pub bare_line_endings: skua_protocols::lmtp::BareLineEndings,
    /// `overquota_temporary`: over quota is `452 4.2.2` instead of `552 5.2.2`.
    pub overquota_temporary: bool,
}

impl Default for LmtpSettings {
    fn default() -> LmtpSettings {
        let defaults = skua_protocols::lmtp::LmtpConfig::new("");
        LmtpSettings {
            max_message_bytes: defaults.max_message_bytes,
            detail_separator: defaults.detail_separator,
            received_header: defaults.received_header,
            delivered_to_header: defaults.delivered_to_header,
            bare_line_endings: defaults.bare_line_endings,
            overquota_temporary: defaults.overquota_temporary,
        }
    }
}

impl ServerConfig {
    /// The shard count to start: the configured one, or one per allowed CPU.
    #[must_use]
    pub fn shard_count(&self) -> usize {
        if self.shards > 0 {
            return self.shards.min(crate::limits::SHARDS_MAX);
        }
        allowed_cpus().len().clamp(1, crate::limits::SHARDS_MAX)
    }
}

/// The CPUs this process may run on, from `Cpus_allowed_list` in `/proc/self/status` (which
/// honours cgroup and taskset limits), else `0..available_parallelism`.
#[must_use]
pub fn allowed_cpus() -> Vec<usize> {
    let parsed = std::fs::read_to_string("/proc/self/status").ok().and_then(|status| {
        let line = status.lines().find(|l| l.starts_with("Cpus_allowed_list:"))?;
        parse_cpu_list(line.split(':').nth(1)?.trim())
    });
    parsed.filter(|cpus| !cpus.is_empty()).unwrap_or_else(|| {
        let count = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        (0..count).collect()
    })
}

/// Parses a kernel CPU list such as `0-3,8,10-11`; `None` if malformed.
fn parse_cpu_list(text: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        let (low, high): (usize, usize) = match part.split_once('-') {
            Some((low, high)) => (low.parse().ok()?, high.parse().ok()?),
            None => {
                let cpu: usize = part.parse().ok()?;
                (cpu, cpu)
            }
        };
        if low > high || high - low > crate::limits::SHARDS_MAX * 64 {
            return None;
        }
        cpus.extend(low..=high);
    }
    Some(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse() {
        assert_eq!(parse_cpu_list("0-1"), Some(vec![0, 1]));
        assert_eq!(parse_cpu_list("0-2,5,7-8"), Some(vec![0, 1, 2, 5, 7, 8]));
        assert_eq!(parse_cpu_list("3"), Some(vec![3]));
        assert_eq!(parse_cpu_list("2-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn shard_count_follows_config_or_cpus() {
        let config = ServerConfig { shards: 3, ..ServerConfig::default() };
        assert_eq!(config.shard_count(), 3);
        let automatic = ServerConfig::default().shard_count();
        assert_eq!(automatic, allowed_cpus().len().clamp(1, crate::limits::SHARDS_MAX));
    }
}
