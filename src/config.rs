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
//! tls_listen = ["127.0.0.1:1993"]  # implicit TLS (IMAPS); [] serves none
//! plaintext_auth = "loopback"      # "loopback" | "always"
//! require_tls = false              # true: before TLS only STARTTLS, CAPABILITY, LOGOUT
//! admin_contact = "mailto:postmaster@example.org" # METADATA /shared/admin; absent: none
//! public_owner = "public"          # the user whose mailboxes are "Shared/..."; absent: none
//! admins = ["postmaster"]          # users who may SETQUOTA (RFC 9208); default: none
//!
//! [quota]                          # default limits (RFC 9208); absent: none. The passwd-file's
//! storage = "1G"                   # userdb_quota_rule (Dovecot) and SETQUOTA override them
//! messages = 100000                # live messages
//! mailboxes = 1000                 # mailboxes, INBOX included
//!
//! [tls]                            # absent: a self-signed certificate in DATA_DIR/tls
//! cert = "/etc/skua/mail.example.org.crt" # chain, end-entity first (PEM)
//! key = "/etc/skua/mail.example.org.key"  # PKCS#8, RSA (PKCS#1) or EC (SEC1) PEM
//! client_ca = "/etc/skua/users-ca.pem"    # ask for client certificates (SASL EXTERNAL)
//! client_cert_user = "cn"          # "cn" | "email" | "dns": the field naming the user
//!
//! [[tls.certificates]]             # more certificates, chosen by SNI (their DNS names)
//! cert = "/etc/skua/imap.example.net.crt"
//! key = "/etc/skua/imap.example.net.key"
//!
//! [auth]                           # logins beyond the passwd-file (README, "Authentication")
//! master_passwd_file = "/etc/skua/masters" # master users: log in as anyone (logged)
//! scram_fake_iterations = 4096     # what unknown SCRAM users claim; default: the passwd-file's
//! scram = "auto"                   # SCRAM offered when every user has keys; "always", "never"
//!
//! [auth.oauth]                     # absent: no OAUTHBEARER / XOAUTH2
//! jwks_file = "/etc/skua/provider.jwks"   # the identity provider's public keys (JWKS)
//! issuer = "https://id.example.org"       # every token's `iss`
//! audience = "skua"                       # every token's `aud` must name this
//! user_claim = "email"             # the claim naming the user; default "sub"
//!
//! [folders]                        # made on a user's first login, subscribed with INBOX
//! drafts = "Drafts"                # with \Drafts (RFC 6154); "" makes no drafts folder
//! sent = "Sent"                    # with \Sent
//! trash = "Trash"                  # with \Trash
//! junk = "Junk"                    # with \Junk
//! archive = "Archive"              # with \Archive
//!
//! [compaction]                     # expunged mail's space comes back (README, "Space comes back")
//! enabled = true
//! retention = "7d"                 # expunged mail stays restorable this long; "0": not at all
//! interval_seconds = 60            # each shard looks at its open stores this often
//! bytes_per_second = 33554432      # copy rate ceiling per shard
//! free_bytes_min = 16777216        # a segment is rewritten once this much of it is free
//!
//! [lmtp]
//! listen = ["127.0.0.1:2424"]      # or "unix:/run/skua/lmtp.sock" (served by shard 0), or both
//! unix_mode = "0660"               # the unix socket file's mode (octal)
//! duplicate_window = "24h"         # same Message-ID, same mailbox: stored once; 0 is off
//! recipient_by_local_part = true   # user1@any.domain reaches user "user1" if no exact match
//! connections_per_shard = 256      # LMTP's own budget, carved out of connections_per_shard
//!                                  # (at most half of it); IMAP gets the rest
//! max_message_size = 67108864      # bytes, announced in SIZE; at most 64 MiB (the store's limit)
//! detail_separator = "+"           # user+Folder@domain delivers into Folder; "" turns it off
//! received_header = true           # prepend Received: (RFC 5321 §4.4) to each stored message
//! delivered_to_header = true       # prepend Delivered-To: (RFC 9228)
//! overquota_temporary = false     # over quota: 552 5.2.2 (bounce); true: 452 4.2.2 (retry)
//! bare_line_endings = "normalize"  # bare LF / lone CR: "normalize" to CRLF | "refuse" (550 5.6.2)
//!
//! [socketmap]                      # Postfix look-ups at RCPT (README, "Postfix"); absent: none
//! listen = ["127.0.0.1:2425"]      # or "unix:/var/spool/postfix/private/skua-map" (shard 0)
//! unix_mode = "0660"               # the unix socket file's mode (octal)
//!
//! [metrics]                        # Prometheus endpoint (README, "Metrics"); absent: none
//! listen = ["127.0.0.1:9100"]      # plain HTTP, GET /metrics, served by shard 0; no auth
//! ```
//!
//! The `[tls]` files are read at start-up (an error names the file) and again on SIGHUP
//! (a failed reload keeps the certificates loaded before).
//!
//! Every per-connection budget refuses politely: `* BYE [LIMIT]` (IMAP) or `421 4.7.0` (LMTP)
//! and close; a deadline ends the connection with `* BYE` / `421 4.4.2` naming the reason.
//! Per-read timeouts stay as they were (60 s before login, 30 min after, 5 min for LMTP).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use skua_core::store::DefaultFolder;
use skua_core::users::jwt::TokenPolicy;
use skua_protocols::lmtp::BareLineEndings;
use skua_shard::ServerConfig;
use skua_shard::sasl::SaslSettings;
use skua_shard::tls::{CertificatePaths, ClientCertField, TlsSettings};

mod metrics;
mod socketmap;
pub use metrics::MetricsSection;
pub use socketmap::SocketmapSection;

/// Default IMAP listen address: loopback, unprivileged.
pub const IMAP_LISTEN_DEFAULT: &str = "127.0.0.1:1143";
/// Default implicit-TLS IMAP listen address: loopback, unprivileged (993 needs root).
pub const IMAPS_LISTEN_DEFAULT: &str = "127.0.0.1:1993";
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
    /// Certificates.
    #[serde(default)]
    pub tls: TlsSection,
    /// Authentication: master users, bearer tokens.
    #[serde(default)]
    pub auth: AuthSection,
    /// Default folders of new users.
    #[serde(default)]
    pub folders: FoldersSection,
    /// Spool compaction and delayed expunge.
    #[serde(default)]
    pub compaction: CompactionSection,
    /// Default quota limits.
    #[serde(default)]
    pub quota: QuotaSection,
    /// The socketmap service for Postfix.
    #[serde(default)]
    pub socketmap: SocketmapSection,
    /// The Prometheus endpoint.
    #[serde(default)]
    pub metrics: MetricsSection,
}

/// `[compaction]`: background spool compaction and delayed expunge (README, "Space comes
/// back").
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CompactionSection {
    /// False turns background compaction off (expunged mail then stays on disk).
    pub enabled: Option<bool>,
    /// How long expunged mail stays restorable: a number and a unit, `s`, `m`, `h` or `d`
    /// (`"7d"`, the default); `"0"` lets compaction take it at once.
    pub retention: Option<String>,
    /// How often each shard looks for work, in seconds.
    pub interval_seconds: Option<u64>,
    /// Copy rate ceiling per shard.
    pub bytes_per_second: Option<u64>,
    /// A segment is rewritten once this many of its bytes are free.
    pub free_bytes_min: Option<u64>,
}

/// Parses a duration such as `7d`, `12h`, `30m`, `90s` or `0`.
///
/// # Errors
/// Anything else.
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 =
        number.parse().map_err(|_| anyhow::anyhow!("{text:?}: expected a number and s/m/h/d"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => anyhow::bail!("{text:?}: the unit must be s, m, h or d"),
    };
    let seconds = number
        .checked_mul(scale)
        .filter(|&s| s <= 100 * 365 * 86_400)
        .ok_or_else(|| anyhow::anyhow!("{text:?}: longer than a century"))?;
    Ok(Duration::from_secs(seconds))
}

impl FileConfig {
    /// Sets `[compaction]` on `config`; what the file leaves out keeps its default.
    ///
    /// # Errors
    /// A malformed retention, or a zero interval or rate.
    pub fn apply_compaction(&self, config: &mut ServerConfig) -> anyhow::Result<()> {
        let section = &self.compaction;
        let settings = &mut config.compaction;
        if let Some(enabled) = section.enabled {
            settings.enabled = enabled;
        }
        if let Some(retention) = &section.retention {
            settings.retention = parse_duration(retention)
                .map_err(|e| anyhow::anyhow!("compaction.retention: {e}"))?;
        }
        let interval = positive(section.interval_seconds, "compaction.interval_seconds")?;
        if let Some(seconds) = interval {
            settings.interval = Duration::from_secs(seconds);
        }
        let rate = positive(section.bytes_per_second, "compaction.bytes_per_second")?;
        if let Some(rate) = rate {
            settings.bytes_per_second = rate;
        }
        if let Some(bytes) = section.free_bytes_min {
            settings.free_bytes_min = bytes;
        }
        Ok(())
    }
}

/// `[quota]`: the limits of users whose passwd-file line and store name none.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct QuotaSection {
    /// STORAGE: a size with a unit (`"1G"`, `"500M"`; none: KiB); `"0"`: no limit.
    pub storage: Option<String>,
    /// MESSAGE: live messages; 0: no limit.
    pub messages: Option<u64>,
    /// MAILBOX: mailboxes, INBOX included; 0: no limit.
    pub mailboxes: Option<u64>,
}

/// `[folders]`: the name of each default folder; `""` leaves it out.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FoldersSection {
    /// `\Drafts`
    pub drafts: Option<String>,
    /// `\Sent`
    pub sent: Option<String>,
    /// `\Trash`
    pub trash: Option<String>,
    /// `\Junk`
    pub junk: Option<String>,
    /// `\Archive`
    pub archive: Option<String>,
}

impl FileConfig {
    /// Sets `[quota]`'s default limits and `[imap] admins` on `config`.
    ///
    /// # Errors
    /// `storage` is not a size.
    pub fn apply_quota(&self, config: &mut ServerConfig) -> anyhow::Result<()> {
        let q = &self.quota;
        let storage_kib = match q.storage.as_deref() {
            None => None,
            Some(text) => skua_core::users::quota_rule::parse_storage_kib(text)
                .map_err(|e| anyhow::anyhow!("quota.storage: {e}"))?,
        };
        config.quota_default = skua_core::store::QuotaLimits {
            storage_kib,
            messages: q.messages.filter(|&n| n != 0),
            mailboxes: q.mailboxes.filter(|&n| n != 0),
        };
        config.imap_admins = self.imap.admins.clone().unwrap_or_default();
        Ok(())
    }

    /// Sets the default folders of `[folders]` on `config`: each key renames its folder, and
    /// `""` leaves it out; the others keep their default names.
    ///
    /// # Errors
    /// A name that is not a valid mailbox name, INBOX, or two folders with one name.
    pub fn apply_folders(&self, config: &mut ServerConfig) -> anyhow::Result<()> {
        let f = &self.folders;
        let chosen = [&f.drafts, &f.sent, &f.trash, &f.junk, &f.archive];
        let mut folders = Vec::new();
        for ((key, default, uses), name) in skua_shard::config::DEFAULT_FOLDERS.iter().zip(chosen) {
            let name = name.as_deref().unwrap_or(default);
            if name.is_empty() {
                continue;
            }
            let canonical = skua_core::store::names::new_name(name)
                .map_err(|e| anyhow::anyhow!("folders.{key}: {name:?}: {e}"))?;
            if canonical.split('/').next() == Some("INBOX") {
                anyhow::bail!("folders.{key}: {name:?} is INBOX or under it");
            }
            if folders.iter().any(|f: &DefaultFolder| f.name == canonical) {
                anyhow::bail!("folders.{key}: {name:?} is named twice");
            }
            folders.push(DefaultFolder { name: canonical, uses: *uses });
        }
        config.default_folders = folders;
        Ok(())
    }
}

/// `[auth]`
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// A passwd-file of master users, who may log in as any user.
    pub master_passwd_file: Option<PathBuf>,
    /// The SCRAM iteration count unknown users claim (default: the passwd-file's most common).
    pub scram_fake_iterations: Option<u32>,
    /// When SCRAM is offered: "auto" (each algorithm when every user has keys for it, the
    /// default), "always" or "never".
    pub scram: Option<String>,
    /// Bearer tokens for OAUTHBEARER and XOAUTH2.
    pub oauth: Option<OAuthSection>,
}

/// `[auth.oauth]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthSection {
    /// The provider's keys, as a JWKS file.
    pub jwks_file: PathBuf,
    /// The issuer every token must name.
    pub issuer: String,
    /// The audience every token must name.
    pub audience: String,
    /// The claim holding the user name (default `sub`).
    pub user_claim: Option<String>,
}

/// `[tls]`
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// The default certificate chain (PEM); with `key`, or neither (self-signed).
    pub cert: Option<PathBuf>,
    /// The default certificate's private key (PEM).
    pub key: Option<PathBuf>,
    /// Further certificates, chosen by SNI.
    #[serde(default)]
    pub certificates: Vec<CertificateEntry>,
    /// CA certificates that client certificates are verified against.
    pub client_ca: Option<PathBuf>,
    /// `"cn"` (default), `"email"` or `"dns"`.
    pub client_cert_user: Option<String>,
}

/// `[[tls.certificates]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateEntry {
    /// Chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
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
    /// Implicit-TLS listen addresses; `[]` turns IMAPS off.
    pub tls_listen: Option<Vec<SocketAddr>>,
    /// `"loopback"` (default) or `"always"`.
    pub plaintext_auth: Option<String>,
    /// Refuse everything but STARTTLS, CAPABILITY and LOGOUT before TLS.
    pub require_tls: Option<bool>,
    /// The server's METADATA entry `/shared/admin` (RFC 5464 §3.2.1.1): how to reach the
    /// administrators, e.g. `mailto:postmaster@example.org`. Read-only for users.
    pub admin_contact: Option<String>,
    /// The pseudo-user whose mailboxes are the public ones (`Shared/...`); absent: none.
    pub public_owner: Option<String>,
    /// Users who may SETQUOTA (RFC 9208).
    pub admins: Option<Vec<String>>,
}

/// `[lmtp]`
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LmtpSection {
    /// Listen addresses: `IP:port` or `unix:/path`.
    pub listen: Option<Vec<ListenAddress>>,
    /// The mode of the unix sockets, in octal (`"0660"`, the default).
    pub unix_mode: Option<String>,
    /// Duplicate suppression window (`"24h"`, `"30m"`, `"90s"`, `"7d"` or seconds); 0 is off.
    pub duplicate_window: Option<DurationSetting>,
    /// Look a recipient up by its local part when the whole address is not a user.
    pub recipient_by_local_part: Option<bool>,
    /// LMTP connections one shard serves at most, carved out of `connections_per_shard`.
    pub connections_per_shard: Option<usize>,
    /// Largest message, in bytes (announced in `SIZE`).
    pub max_message_size: Option<u64>,
    /// The `+detail` separator: one character, or empty for none.
    pub detail_separator: Option<String>,
    /// Prepend `Received:`.
    pub received_header: Option<bool>,
    /// Prepend `Delivered-To:`.
    pub delivered_to_header: Option<bool>,
    /// `"normalize"` or `"refuse"`.
    pub bare_line_endings: Option<String>,
    /// Over quota: `452 4.2.2` (true) instead of `552 5.2.2`.
    pub overquota_temporary: Option<bool>,
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

    /// The TLS files to load: `[tls]`'s, with the certificate `self_signed` gives (made or
    /// found in the data dir) when `[tls]` names no default one. The second value is true
    /// when `self_signed` was used.
    ///
    /// # Errors
    /// `cert` without `key` (or the reverse), an unknown `client_cert_user`, or
    /// `client_cert_user` without `client_ca`; `self_signed`'s error.
    pub fn tls_settings(
        &self,
        self_signed: impl FnOnce() -> anyhow::Result<CertificatePaths>,
    ) -> anyhow::Result<(TlsSettings, bool)> {
        let tls = &self.tls;
        let (default_certificate, is_self_signed) = match (&tls.cert, &tls.key) {
            (Some(cert), Some(key)) => {
                (CertificatePaths { cert: cert.clone(), key: key.clone() }, false)
            }
            (None, None) => (self_signed()?, true),
            (Some(_), None) => anyhow::bail!("tls.cert is set but tls.key is not"),
            (None, Some(_)) => anyhow::bail!("tls.key is set but tls.cert is not"),
        };
        let client_cert_user = match tls.client_cert_user.as_deref() {
            None => ClientCertField::CommonName,
            Some(_) if tls.client_ca.is_none() => {
                anyhow::bail!("tls.client_cert_user needs tls.client_ca")
            }
            Some(text) => text.parse().map_err(|e: String| anyhow::anyhow!("tls.{e}"))?,
        };
        let certificates = tls
            .certificates
            .iter()
            .map(|entry| CertificatePaths { cert: entry.cert.clone(), key: entry.key.clone() })
            .collect();
        let settings = TlsSettings {
            default_certificate,
            certificates,
            client_ca: tls.client_ca.clone(),
            client_cert_user,
        };
        Ok((settings, is_self_signed))
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
        self.apply_lmtp(config)?;
        // Here rather than in `serve`, so every caller of `apply_limits` gets it too.
        self.apply_socketmap(config)
    }

    /// Sets the message settings of `[lmtp]` on `config`; what the file leaves out keeps
    /// `config`'s value.
    ///
    /// # Errors
    /// `max_message_size` zero or over the store's limit, a `detail_separator` of more than
    /// one character (or one that is part of ordinary addresses: `@`, `"`, a space or a
    /// control character), an unknown `bare_line_endings`.
    pub fn apply_lmtp(&self, config: &mut ServerConfig) -> anyhow::Result<()> {
        let lmtp = &self.lmtp;
        if let Some(size) = positive(lmtp.max_message_size, "lmtp.max_message_size")? {
            let store_max = u64::from(skua_core::limits::MESSAGE_BYTES_MAX);
            if size > store_max {
                anyhow::bail!(
                    "lmtp.max_message_size must be at most {store_max} (the store's limit)"
                );
            }
            config.lmtp.max_message_bytes = size;
        }
        if let Some(separator) = &lmtp.detail_separator {
            let mut chars = separator.chars();
            config.lmtp.detail_separator = match (chars.next(), chars.next()) {
                (None, _) => None,
                (Some(c), None)
                    if !(c == '@' || c == '"' || c.is_whitespace() || c.is_control()) =>
                {
                    Some(c)
                }
                _ => anyhow::bail!(
                    "lmtp.detail_separator must be one character (not @, \" or a space) or empty"
                ),
            };
        }
        if let Some(on) = lmtp.received_header {
            config.lmtp.received_header = on;
        }
        if let Some(on) = lmtp.delivered_to_header {
            config.lmtp.delivered_to_header = on;
        }
        if let Some(on) = lmtp.overquota_temporary {
            config.lmtp.overquota_temporary = on;
        }
        config.lmtp.bare_line_endings = match lmtp.bare_line_endings.as_deref() {
            None => config.lmtp.bare_line_endings,
            Some("normalize") => BareLineEndings::Normalize,
            Some("refuse") => BareLineEndings::Refuse,
            Some(other) => {
                anyhow::bail!("lmtp.bare_line_endings: unknown value {other:?} (normalize|refuse)")
            }
        };
        Ok(())
    }
}

impl FileConfig {
    /// Loads what `[auth]` names (the master users file, the JWKS file) and the server
    /// secret for SCRAM fakes (`DATA_DIR/sasl-secret`, made on first start) into `config`.
    ///
    /// # Errors
    /// A named file cannot be used, or `scram_fake_iterations` is zero.
    pub fn apply_auth(&self, config: &mut ServerConfig) -> anyhow::Result<()> {
        let auth = &self.auth;
        let iterations = positive(auth.scram_fake_iterations, "auth.scram_fake_iterations")?
            .and_then(std::num::NonZeroU32::new);
        let policy = auth.oauth.as_ref().map(|oauth| {
            let mut policy = TokenPolicy::new(
                oauth.jwks_file.clone(),
                oauth.issuer.clone(),
                oauth.audience.clone(),
            );
            if let Some(claim) = &oauth.user_claim {
                policy.user_claim.clone_from(claim);
            }
            policy
        });
        let settings = SaslSettings::load(
            &config.data_dir,
            auth.master_passwd_file.as_deref(),
            policy,
            iterations,
        )
        .context("loading the [auth] settings")?;
        let mut settings = settings;
        settings.scram = match auth.scram.as_deref() {
            None | Some("auto") => skua_shard::sasl::ScramOffer::Auto,
            Some("always") => skua_shard::sasl::ScramOffer::Always,
            Some("never") => skua_shard::sasl::ScramOffer::Never,
            Some(other) => anyhow::bail!("auth.scram: unknown value {other:?} (auto|always|never)"),
        };
        config.sasl = std::sync::Arc::new(settings);
        Ok(())
    }
}

/// An LMTP listen address: `IP:port`, or `unix:/path` for a unix-domain socket.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum ListenAddress {
    /// A TCP address, served by every shard.
    Tcp(SocketAddr),
    /// A unix-domain socket file, served by shard 0.
    Unix(PathBuf),
}

impl TryFrom<String> for ListenAddress {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            if !path.starts_with('/') {
                return Err(format!("{text:?}: a unix socket path must be absolute"));
            }
            return Ok(ListenAddress::Unix(PathBuf::from(path)));
        }
        text.parse().map(ListenAddress::Tcp).map_err(|e| format!("{text:?}: {e}"))
    }
}

/// A duration in the config: a number of seconds or a string with a unit (s, m, h, d).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum DurationSetting {
    /// Seconds.
    Seconds(u64),
    /// `"24h"` and the like.
    Text(String),
}

impl DurationSetting {
    /// The duration in seconds.
    ///
    /// # Errors
    /// A string that is not a number with an optional unit s, m, h or d.
    pub fn seconds(&self, key: &str) -> anyhow::Result<u64> {
        let text = match self {
            DurationSetting::Seconds(seconds) => return Ok(*seconds),
            DurationSetting::Text(text) => text.trim(),
        };
        let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
            Some(at) => text.split_at(at),
            None => (text, "s"),
        };
        let scale = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            _ => anyhow::bail!("{key}: {text:?} is not a duration (e.g. \"24h\", \"30m\", \"0\")"),
        };
        let number: u64 = number.parse().with_context(|| format!("{key}: {text:?}"))?;
        number.checked_mul(scale).with_context(|| format!("{key}: {text:?} is too long"))
    }
}

/// Default duplicate suppression window: a day, what an MTA's retries and a list's
/// duplicates fall within.
pub const DUPLICATE_WINDOW_SECONDS_DEFAULT: u64 = 86_400;

impl LmtpSection {
    /// The TCP addresses of `listen` (`None` when `listen` is absent).
    #[must_use]
    pub fn tcp_listen(&self) -> Option<Vec<SocketAddr>> {
        let listen = self.listen.as_ref()?;
        let tcp = listen.iter().filter_map(|address| match address {
            ListenAddress::Tcp(address) => Some(*address),
            ListenAddress::Unix(_) => None,
        });
        Some(tcp.collect())
    }

    /// The unix sockets of `listen`, with `unix_mode`.
    ///
    /// # Errors
    /// `unix_mode` is not an octal mode of at most 0777.
    pub fn unix_listen(&self) -> anyhow::Result<Vec<skua_shard::listen::UnixListen>> {
        unix_sockets(self.listen.as_deref(), self.unix_mode.as_deref(), "lmtp")
    }

    /// The duplicate window in seconds (default [`DUPLICATE_WINDOW_SECONDS_DEFAULT`]).
    ///
    /// # Errors
    /// See [`DurationSetting::seconds`].
    pub fn duplicate_window_seconds(&self) -> anyhow::Result<u64> {
        self.duplicate_window
            .as_ref()
            .map_or(Ok(DUPLICATE_WINDOW_SECONDS_DEFAULT), |d| d.seconds("lmtp.duplicate_window"))
    }
}

/// The unix sockets of a section's `listen`, with its `unix_mode` (`section` names it in
/// errors).
fn unix_sockets(
    listen: Option<&[ListenAddress]>,
    unix_mode: Option<&str>,
    section: &str,
) -> anyhow::Result<Vec<skua_shard::listen::UnixListen>> {
    let mode = match unix_mode {
        None => skua_shard::listen::UNIX_MODE_DEFAULT,
        Some(text) => match u32::from_str_radix(text.trim_start_matches("0o"), 8) {
            Ok(mode) if mode <= 0o777 => mode,
            _ => anyhow::bail!("{section}.unix_mode: {text:?} is not an octal mode like \"0660\""),
        },
    };
    let unix = listen.into_iter().flatten().filter_map(|address| match address {
        ListenAddress::Unix(path) => {
            Some(skua_shard::listen::UnixListen { path: path.clone(), mode })
        }
        ListenAddress::Tcp(_) => None,
    });
    Ok(unix.collect())
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
#[path = "config_tests.rs"]
mod tests;
