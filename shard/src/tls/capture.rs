//! What a TLS connection learns during its handshake that rustls's unbuffered server connection
//! does not tell it afterwards: the server name the client asked for (SNI) and the secret the
//! `tls-exporter` channel binding (RFC 9266) is derived from.
//!
//! The transport keeps its TLS sessions in rustls's *unbuffered* API so that an idle connection
//! holds no record buffers (`conn_tls.rs`); in rustls 0.23 that API has neither `server_name()`
//! nor `export_keying_material()`. Both are taken where rustls hands them to the configuration:
//!
//! - the certificate resolver sees each ClientHello's SNI name ([`RecordingResolver`] wraps the
//!   real resolver and notes it);
//! - the key log is told the TLS 1.3 exporter master secret (`EXPORTER_SECRET`) once the
//!   server's Finished is sent ([`ExporterKeyLog`]; it asks for no other secret).
//!
//! Both run synchronously inside the rustls call that processes the handshake, on the thread
//! that makes it, so each notes into a slot of that thread ([`begin`] empties it before the
//! call, [`take`] empties it after): a shard runs one connection's rustls call at a time, and
//! nothing is shared between threads or connections. A config without [`install`] leaves the
//! slot empty: such a session reports no server name and no channel binding.

use std::cell::RefCell;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The longest secret a key log may hand over (SHA-384's 48 bytes for the suites skua offers;
/// room for a 64-byte hash).
pub const SECRET_BYTES_MAX: usize = 64;
/// The longest SNI name kept (a DNS name has at most 253 characters; rustls checks it).
pub const SERVER_NAME_BYTES_MAX: usize = 255;

/// A secret from the key log, with the client random of the handshake it belongs to.
#[derive(Clone)]
pub struct Secret {
    /// The ClientHello's random.
    pub client_random: [u8; 32],
    bytes: [u8; SECRET_BYTES_MAX],
    len: usize,
}

impl Secret {
    /// The secret's bytes.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // Best effort: the key does not stay in a freed slot.
        self.bytes.fill(0);
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret").field("len", &self.len).finish_non_exhaustive()
    }
}

/// What one handshake step noted.
#[derive(Debug, Default)]
pub struct Captured {
    /// The TLS 1.3 exporter master secret.
    pub exporter_secret: Option<Secret>,
    /// The SNI name of the ClientHello, when the resolver was asked and the client sent one.
    pub server_name: Option<Box<str>>,
    /// True when the resolver was asked (a ClientHello was processed), with or without a name.
    pub hello_seen: bool,
}

thread_local! {
    static SLOT: RefCell<Captured> = RefCell::new(Captured::default());
}

/// Empties this thread's slot: called right before a rustls call whose notes are wanted.
pub fn begin() {
    SLOT.with(|slot| *slot.borrow_mut() = Captured::default());
}

/// Takes what this thread's slot noted since [`begin`].
#[must_use]
pub fn take() -> Captured {
    SLOT.with(|slot| std::mem::take(&mut *slot.borrow_mut()))
}

/// Puts the hooks into `config`: its certificate resolver is wrapped to note the SNI name, and
/// its key log notes the TLS 1.3 exporter secret (and nothing else).
pub fn install(config: &mut ServerConfig) {
    config.cert_resolver = Arc::new(RecordingResolver { inner: config.cert_resolver.clone() });
    config.key_log = Arc::new(ExporterKeyLog);
}

/// A certificate resolver that notes the ClientHello's SNI name, then asks the real one.
#[derive(Debug)]
pub struct RecordingResolver {
    inner: Arc<dyn ResolvesServerCert>,
}

impl ResolvesServerCert for RecordingResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = client_hello
            .server_name()
            .filter(|name| name.len() <= SERVER_NAME_BYTES_MAX)
            .map(Box::<str>::from);
        SLOT.with(|slot| {
            let mut slot = slot.borrow_mut();
            slot.hello_seen = true;
            slot.server_name = name;
        });
        self.inner.resolve(client_hello)
    }

    fn only_raw_public_keys(&self) -> bool {
        self.inner.only_raw_public_keys()
    }
}

/// The key log label of the TLS 1.3 exporter master secret (NSS key log format).
const EXPORTER_SECRET: &str = "EXPORTER_SECRET";

/// A key log that notes the TLS 1.3 exporter master secret in the thread's slot. `will_log`
/// says no to every other label, so rustls hands over no other secret (no traffic secret, no
/// TLS 1.2 master secret: nothing that decrypts a connection).
#[derive(Debug)]
pub struct ExporterKeyLog;

impl rustls::KeyLog for ExporterKeyLog {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        if label != EXPORTER_SECRET || secret.len() > SECRET_BYTES_MAX {
            return;
        }
        let Ok(client_random) = <[u8; 32]>::try_from(client_random) else { return };
        let mut bytes = [0u8; SECRET_BYTES_MAX];
        bytes[..secret.len()].copy_from_slice(secret);
        let noted = Secret { client_random, bytes, len: secret.len() };
        SLOT.with(|slot| slot.borrow_mut().exporter_secret = Some(noted));
    }

    fn will_log(&self, label: &str) -> bool {
        label == EXPORTER_SECRET
    }
}

/// The RFC 5705 / RFC 8446 section 7.5 exporter of a TLS 1.3 session with no context, from its
/// exporter master secret: `HKDF-Expand-Label(Derive-Secret(secret, label, ""), "exporter",
/// Hash(""), out.len())`, with the suite's hash and HKDF.
///
/// # Errors
/// `out` is longer than HKDF can expand (255 hash lengths), or the secret's length is not the
/// suite's hash length.
pub fn tls13_export(
    suite: &rustls::Tls13CipherSuite,
    secret: &[u8],
    label: &[u8],
    out: &mut [u8],
) -> Result<(), ExportError> {
    let hash = suite.common.hash_provider;
    if secret.len() != hash.output_len() {
        return Err(ExportError);
    }
    let empty_hash = hash.hash(&[]);
    let hkdf = suite.hkdf_provider;
    // Derive-Secret(secret, label, "") = HKDF-Expand-Label(secret, label, Hash(""), Hash.len)
    let expander = hkdf.expander_for_okm(&rustls::crypto::tls13::OkmBlock::new(secret));
    let mut derived = [0u8; SECRET_BYTES_MAX];
    let derived = &mut derived[..hash.output_len()];
    expand_label(&*expander, label, empty_hash.as_ref(), derived)?;
    let expander = hkdf.expander_for_okm(&rustls::crypto::tls13::OkmBlock::new(derived));
    let result = expand_label(&*expander, b"exporter", empty_hash.as_ref(), out);
    derived.fill(0);
    result
}

/// HKDF-Expand-Label (RFC 8446 section 7.1): the info is the output length (2 bytes), the label
/// with `tls13 ` before it (1-byte length), the context (1-byte length).
fn expand_label(
    expander: &dyn rustls::crypto::tls13::HkdfExpander,
    label: &[u8],
    context: &[u8],
    out: &mut [u8],
) -> Result<(), ExportError> {
    const PREFIX: &[u8] = b"tls13 ";
    let out_len = u16::try_from(out.len()).map_err(|_| ExportError)?;
    let label_len = u8::try_from(PREFIX.len() + label.len()).map_err(|_| ExportError)?;
    let context_len = u8::try_from(context.len()).map_err(|_| ExportError)?;
    let info: [&[u8]; 6] =
        [&out_len.to_be_bytes(), &[label_len], PREFIX, label, &[context_len], context];
    expander.expand_slice(&info, out).map_err(|_| ExportError)
}

/// An exporter could not be computed (see [`tls13_export`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("TLS exporter: bad secret or output length")]
pub struct ExportError;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exporter_fails_on_a_secret_of_the_wrong_length_and_an_overlong_label() {
        #[allow(deprecated)] // the ring provider; see the TLS config module
        let suite = match rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256 {
            rustls::SupportedCipherSuite::Tls13(suite) => suite,
            rustls::SupportedCipherSuite::Tls12(_) => unreachable!("a TLS 1.3 suite"),
        };
        let mut out = [0u8; 32];
        assert_eq!(tls13_export(suite, &[7; 48], b"EXPORTER-x", &mut out), Err(ExportError));
        assert_eq!(tls13_export(suite, &[7; 32], &[b'a'; 250], &mut out), Err(ExportError));
        tls13_export(suite, &[7; 32], b"EXPORTER-x", &mut out).expect("exports");
        let first = out;
        tls13_export(suite, &[8; 32], b"EXPORTER-x", &mut out).expect("exports");
        assert_ne!(first, out, "the exporter depends on the secret");
        tls13_export(suite, &[7; 32], b"EXPORTER-y", &mut out).expect("exports");
        assert_ne!(first, out, "the exporter depends on the label");
    }

    #[test]
    fn the_key_log_notes_only_the_exporter_secret_and_take_empties_the_slot() {
        use rustls::KeyLog;
        let log = ExporterKeyLog;
        assert!(log.will_log("EXPORTER_SECRET"));
        assert!(!log.will_log("CLIENT_HANDSHAKE_TRAFFIC_SECRET"));
        assert!(!log.will_log("CLIENT_RANDOM"));
        begin();
        log.log("SERVER_TRAFFIC_SECRET_0", &[1; 32], &[2; 32]);
        assert!(take().exporter_secret.is_none());
        log.log("EXPORTER_SECRET", &[1; 32], &[3; 48]);
        let noted = take().exporter_secret.expect("noted");
        assert_eq!(noted.client_random, [1; 32]);
        assert_eq!(noted.bytes(), &[3; 48]);
        assert!(take().exporter_secret.is_none(), "taken once");
        log.log("EXPORTER_SECRET", &[1; 31], &[3; 48]);
        assert!(take().exporter_secret.is_none(), "a client random is 32 bytes");
    }
}
