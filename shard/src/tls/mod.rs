//! TLS configuration: what the transport hands rustls at each accept, and how it stays current.
//!
//! The transport (`conn.rs`) does not read certificates. At each accept, and at each STARTTLS,
//! it asks the process-wide [`TlsConfigs`] for the current `Arc<rustls::ServerConfig>` of its
//! protocol ([`TlsConfigs::imap`] offers ALPN `imap`, [`TlsConfigs::lmtp`] none) and builds a
//! rustls unbuffered server connection from it. That connection owns its copy of the `Arc`, so a reload
//! (SIGHUP, [`reload::reload_on_hangup`]) changes only the handshakes that start after it.
//!
//! ```text
//!  [tls] cert/key, [[tls.certificates]], client_ca      (or DATA_DIR/tls/selfsigned.*)
//!        │  read PEM (bounded), parse keys (PKCS#8, PKCS#1, SEC1), check key matches cert
//!        ▼
//!  TlsConfigSet { imap, lmtp }  ── one SNI resolver (sni.rs), a ticketer each, one verifier
//!        │  RwLock<Arc<..>>: readers clone the Arc; a reload swaps it whole
//!        ▼
//!  TlsConfigs::imap() / lmtp() at accept ── SIGHUP: load again; on error keep the old set
//! ```
//!
//! Decisions, and why:
//! - **ring**, not aws-lc-rs: aws-lc-rs needs cmake and nasm to build.
//! - **Stateless tickets, no session cache**: a ticket is sealed with a key that rotates every
//!   6 hours (tickets stay valid for 12), and the server keeps nothing per session, so
//!   resumption costs no memory and works on every shard. IMAP and LMTP seal with different
//!   keys (a ticket from one protocol does not resume on the other, against cross-protocol
//!   confusion), and a reload starts new keys: a resumed session carries the certificate of
//!   the session it resumes, so after a renewal every client makes one full handshake and sees
//!   the new certificate, instead of the old one living on in tickets for 12 more hours.
//! - **SNI**: a name picks the certificate whose DNS names match it (exact names first, then
//!   one-label wildcards); no name, or no match, gets the default certificate (`[tls] cert`).
//! - **TLS 1.2 only with the extended master secret** (RFC 7627): without it a TLS 1.2
//!   session's keying material can be the same on two connections (the triple handshake), so
//!   `tls-exporter` channel binding (RFC 9266, for SCRAM-PLUS) would bind nothing. Every TLS
//!   1.2 client of the last decade offers it; TLS 1.3 has it built in.
//! - **Client certificates** are asked for, never required, when `client_ca` is set; a
//!   certificate that does not verify against that CA fails the handshake (rustls cannot
//!   accept and ignore it). [`TlsConfigs::client_user`] maps a verified one to a user.
//! - **Hooks for the unbuffered connection** ([`capture`]): every config notes the SNI name
//!   and the TLS 1.3 exporter secret for the transport, which rustls 0.23's unbuffered API
//!   does not report.
//! - Errors name the file, so an operator sees `cert.pem: no CERTIFICATE block` at start-up.

pub mod capture;
pub mod client_cert;
mod pem;
pub mod reload;
pub mod selfsigned;
mod sni;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::CertificateDer;

pub use client_cert::{ClientCertError, ClientCertField};
pub use selfsigned::{Fingerprint, SelfSigned};

/// Certificates one server may hold (the default one included): bounds start-up and reload
/// work and the resolver's linear scan.
pub const CERTIFICATES_MAX: usize = 256;
/// A PEM file larger than this is refused: a chain of a few certificates is a few KiB.
pub const PEM_FILE_BYTES_MAX: u64 = 1024 * 1024;
/// The ALPN protocol id of IMAP, as IANA registered it.
pub const ALPN_IMAP: &[u8] = b"imap";

/// A certificate chain and its private key, as PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificatePaths {
    /// The chain: the end-entity certificate first, then intermediates.
    pub cert: PathBuf,
    /// The private key: PKCS#8, RSA (PKCS#1) or EC (SEC1).
    pub key: PathBuf,
}

/// What `[tls]` says: the files to read, at start-up and at each reload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    /// Served when the client sends no SNI name or one no certificate matches.
    pub default_certificate: CertificatePaths,
    /// Further certificates, chosen by SNI (`[[tls.certificates]]`).
    pub certificates: Vec<CertificatePaths>,
    /// CA certificates (PEM) that client certificates are verified against; `None`: the
    /// server does not ask for one.
    pub client_ca: Option<PathBuf>,
    /// Which field of a verified client certificate names the user (SASL EXTERNAL).
    pub client_cert_user: ClientCertField,
}

impl TlsSettings {
    /// Settings with one certificate and nothing else.
    #[must_use]
    pub fn new(default_certificate: CertificatePaths) -> TlsSettings {
        TlsSettings {
            default_certificate,
            certificates: Vec::new(),
            client_ca: None,
            client_cert_user: ClientCertField::CommonName,
        }
    }
}

/// Why TLS configuration could not be loaded. Every variant names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// The file is larger than [`PEM_FILE_BYTES_MAX`].
    #[error("{path}: larger than {PEM_FILE_BYTES_MAX} bytes, not a PEM certificate or key")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file is not valid PEM.
    #[error("{path}: not valid PEM: {detail}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A certificate file holds no `CERTIFICATE` block.
    #[error("{path}: no CERTIFICATE block")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A key file holds no private key block.
    #[error(
        "{path}: no private key (expected a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block)"
    )]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// A certificate cannot be parsed (or its key type is not supported).
    #[error("{path}: bad certificate: {detail}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The key cannot be used, or does not belong to the certificate.
    #[error("{path}: unusable key for {cert}: {detail}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// The certificate file it was meant for.
        cert: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The client CA file holds no usable CA certificate.
    #[error("{path}: bad client CA: {detail}")]
    ClientCa {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// More than [`CERTIFICATES_MAX`] certificates are configured.
    #[error("{count} certificates configured, at most {CERTIFICATES_MAX}")]
    TooManyCertificates {
        /// How many were configured.
        count: usize,
    },
    /// The self-signed certificate could not be made or written.
    #[error("self-signed certificate in {path}: {detail}")]
    SelfSigned {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// rustls refused the configuration (protocol versions, ticketer).
    #[error("TLS set-up: {0}")]
    Rustls(#[from] rustls::Error),
    /// The SIGHUP handler cannot be installed.
    #[error("installing the SIGHUP handler: {0}")]
    Signals(std::io::Error),
}

/// What was loaded from one certificate file: for the start-up and reload log lines, and for
/// warning about a certificate that has expired or is about to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateSummary {
    /// The chain file.
    pub path: PathBuf,
    /// SHA-256 of the end-entity certificate.
    pub fingerprint: Fingerprint,
    /// Its DNS names (subjectAltName), in lower case: what SNI matches against.
    pub names: Vec<String>,
    /// End of its validity, in seconds since the Unix epoch.
    pub not_after_unix: i64,
}

impl CertificateSummary {
    /// True if the certificate is no longer valid `seconds` after `now_unix`.
    #[must_use]
    pub fn expires_within(&self, now_unix: i64, seconds: i64) -> bool {
        self.not_after_unix <= now_unix.saturating_add(seconds)
    }
}

/// The configurations built from one reading of the files.
pub struct TlsConfigSet {
    /// For the IMAP listeners (implicit TLS and STARTTLS): ALPN `imap`.
    pub imap: Arc<ServerConfig>,
    /// For LMTP STARTTLS: no ALPN.
    pub lmtp: Arc<ServerConfig>,
    /// Counts loads: 1 for the first, +1 per successful reload.
    pub generation: u64,
    /// Every certificate loaded, the default first, then `[[tls.certificates]]` in order.
    pub certificates: Vec<CertificateSummary>,
}

/// The process-wide TLS configuration, shared by every shard and swapped on reload.
pub struct TlsConfigs {
    settings: TlsSettings,
    provider: Arc<CryptoProvider>,
    /// Held only to clone or swap the `Arc`: a shard accepting a connection never waits for
    /// a reload's file reads.
    current: RwLock<Arc<TlsConfigSet>>,
    /// Serialises reloads (their file reads happen outside `current`'s lock).
    reloading: Mutex<()>,
    generation: AtomicU64,
    reloads_failed: AtomicU64,
}

impl TlsConfigs {
    /// Reads every file `settings` names and builds the configurations.
    ///
    /// # Errors
    /// A file cannot be read or parsed, a key does not match its certificate, or rustls
    /// refuses the configuration; the error names the file.
    pub fn load(settings: TlsSettings) -> Result<TlsConfigs, TlsError> {
        let provider = Arc::new(provider());
        let set = build(&settings, &provider, 1)?;
        Ok(TlsConfigs {
            settings,
            provider,
            current: RwLock::new(Arc::new(set)),
            reloading: Mutex::new(()),
            generation: AtomicU64::new(1),
            reloads_failed: AtomicU64::new(0),
        })
    }

    /// The configuration for a new IMAP handshake (ALPN `imap`).
    #[must_use]
    pub fn imap(&self) -> Arc<ServerConfig> {
        self.current().imap.clone()
    }

    /// The configuration for a new LMTP handshake (no ALPN).
    #[must_use]
    pub fn lmtp(&self) -> Arc<ServerConfig> {
        self.current().lmtp.clone()
    }

    /// Both configurations of the current load.
    #[must_use]
    pub fn current(&self) -> Arc<TlsConfigSet> {
        // A writer only swaps an `Arc`; it cannot panic holding the lock, but if it ever did
        // the value inside is still a whole, valid set.
        self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The generation of the current configurations: 1 after [`TlsConfigs::load`], one more
    /// after each successful [`TlsConfigs::reload`].
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Reads the files again and, if everything loads, makes the result current. On error
    /// the current configurations stay. Connections already set up are not touched: each owns
    /// its configuration.
    ///
    /// # Errors
    /// As [`TlsConfigs::load`].
    pub fn reload(&self) -> Result<u64, TlsError> {
        let _reloading = self.reloading.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let generation = self.generation.load(Ordering::SeqCst) + 1;
        let set = build(&self.settings, &self.provider, generation).inspect_err(|_| {
            self.reloads_failed.fetch_add(1, Ordering::SeqCst);
        })?;
        let set = Arc::new(set);
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = set;
        self.generation.store(generation, Ordering::SeqCst);
        Ok(generation)
    }

    /// Reloads that failed (and left the configurations as they were) since start-up.
    #[must_use]
    pub fn reloads_failed(&self) -> u64 {
        self.reloads_failed.load(Ordering::SeqCst)
    }

    /// The files this configuration reads.
    #[must_use]
    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// The user a client certificate names, by the configured field. `peer_certificates` is
    /// what `rustls::ServerConnection::peer_certificates` returns: rustls verified it against
    /// `client_ca` during the handshake, and it is only ever present when `client_ca` is set.
    ///
    /// # Errors
    /// No certificate, an unparsable one, or one without the field (see [`ClientCertError`]).
    pub fn client_user(
        &self,
        peer_certificates: Option<&[CertificateDer<'_>]>,
    ) -> Result<String, ClientCertError> {
        let end_entity = peer_certificates.and_then(<[_]>::first).ok_or(ClientCertError::None)?;
        client_cert::user_of(end_entity, self.settings.client_cert_user)
    }
}

impl fmt::Debug for TlsConfigs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfigs")
            .field("settings", &self.settings)
            .field("generation", &self.generation())
            .field("reloads_failed", &self.reloads_failed())
            .finish_non_exhaustive()
    }
}

/// A certificate that expires within this many seconds is logged as a warning at each load.
pub const EXPIRY_WARNING_SECONDS: i64 = 14 * 24 * 60 * 60;

/// Logs one line per certificate of `set` (file, names, fingerprint, expiry), as a warning
/// for one that has expired or expires within [`EXPIRY_WARNING_SECONDS`].
pub fn log_certificates(set: &TlsConfigSet) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX));
    for certificate in &set.certificates {
        let path = certificate.path.display();
        let names = certificate.names.join(",");
        let fingerprint = certificate.fingerprint.to_string();
        let days_left = (certificate.not_after_unix - now).div_euclid(24 * 60 * 60);
        if certificate.expires_within(now, EXPIRY_WARNING_SECONDS) {
            tracing::warn!(%path, names, fingerprint, days_left, "TLS certificate expires soon");
        } else {
            tracing::info!(%path, names, fingerprint, days_left, "TLS certificate");
        }
    }
}

/// rustls's ring provider: TLS 1.3 and 1.2 suites, X25519 / P-256 / P-384 key exchange.
///
/// rustls 0.23.48 deprecated it because ring has no post-quantum key exchange; the provider
/// that has one (aws-lc-rs) needs cmake and nasm to build, which skua does not require. A
/// move to it changes only this function.
#[allow(deprecated)]
#[must_use]
pub fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Reads every file and builds both configurations.
fn build(
    settings: &TlsSettings,
    provider: &Arc<CryptoProvider>,
    generation: u64,
) -> Result<TlsConfigSet, TlsError> {
    let count = settings.certificates.len() + 1;
    if count > CERTIFICATES_MAX {
        return Err(TlsError::TooManyCertificates { count });
    }
    let default = pem::load_certified_key(&settings.default_certificate, provider)?;
    let mut others = Vec::with_capacity(settings.certificates.len());
    for paths in &settings.certificates {
        others.push(pem::load_certified_key(paths, provider)?);
    }
    let resolver = Arc::new(sni::SniResolver::new(default, others));
    let certificates = resolver.summaries();
    let verifier = match &settings.client_ca {
        Some(path) => Some(client_verifier(path, provider)?),
        None => None,
    };
    let make = |alpn: Option<&[u8]>| -> Result<Arc<ServerConfig>, TlsError> {
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
        let builder = match &verifier {
            Some(verifier) => builder.with_client_cert_verifier(verifier.clone()),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(resolver.clone());
        // Fresh keys per protocol and per load (see the module doc).
        config.ticketer = rustls::crypto::ring::Ticketer::new()?;
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.alpn_protocols = alpn.map(|id| vec![id.to_vec()]).unwrap_or_default();
        config.require_ems = true;
        // SNI and the exporter secret for the unbuffered sessions of `conn_tls.rs`.
        capture::install(&mut config);
        Ok(Arc::new(config))
    };
    Ok(TlsConfigSet { imap: make(Some(ALPN_IMAP))?, lmtp: make(None)?, generation, certificates })
}

/// A verifier that asks for a client certificate and accepts a connection without one.
fn client_verifier(
    path: &Path,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let mut roots = RootCertStore::empty();
    for certificate in pem::read_certificates(path)? {
        roots.add(certificate).map_err(|error| TlsError::ClientCa {
            path: path.to_path_buf(),
            detail: error.to_string(),
        })?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|error| TlsError::ClientCa { path: path.to_path_buf(), detail: error.to_string() })
}
