//! Reading certificate chains and private keys from PEM files, bounded in size, with errors
//! that name the file.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::sni::Entry;
use super::{CertificatePaths, PEM_FILE_BYTES_MAX, TlsError};

/// The whole file, refused past [`PEM_FILE_BYTES_MAX`].
fn read_bounded(path: &Path) -> Result<Vec<u8>, TlsError> {
    let read_error = |source| TlsError::Read { path: path.to_path_buf(), source };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(PEM_FILE_BYTES_MAX + 1).read_to_end(&mut bytes).map_err(read_error)?;
    if bytes.len() as u64 > PEM_FILE_BYTES_MAX {
        return Err(TlsError::TooLarge { path: path.to_path_buf() });
    }
    Ok(bytes)
}

/// Every `CERTIFICATE` block of the file, in order; at least one.
pub(super) fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_bounded(path)?;
    let mut chain = Vec::new();
    for certificate in CertificateDer::pem_slice_iter(&bytes) {
        chain.push(certificate.map_err(|error| pem_error(path, &error))?);
    }
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: path.to_path_buf() });
    }
    Ok(chain)
}

/// The first private key of the file: `PRIVATE KEY` (PKCS#8), `RSA PRIVATE KEY` (PKCS#1) or
/// `EC PRIVATE KEY` (SEC1).
pub(super) fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read_bounded(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| match error {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::NoKey { path: path.to_path_buf() },
        other => pem_error(path, &other),
    })
}

fn pem_error(path: &Path, error: &rustls_pki_types::pem::Error) -> TlsError {
    TlsError::Pem { path: path.to_path_buf(), detail: error.to_string() }
}

/// Reads a chain and its key, checks that the key belongs to the end-entity certificate, and
/// reads the certificate's DNS names for SNI.
pub(super) fn load_certified_key(
    paths: &CertificatePaths,
    provider: &CryptoProvider,
) -> Result<Entry, TlsError> {
    let chain = read_certificates(&paths.cert)?;
    let (names, not_after_unix) = super::sni::describe(&chain[0])
        .map_err(|detail| TlsError::Certificate { path: paths.cert.clone(), detail })?;
    let fingerprint = super::Fingerprint::of(chain[0].as_ref());
    let key = read_key(&paths.key)?;
    let key_error = |detail: String| TlsError::Key {
        path: paths.key.clone(),
        cert: paths.cert.clone(),
        detail,
    };
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|error| key_error(format!("unsupported key type or bad key ({error})")))?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(key_error("does not match the certificate's public key".to_owned()));
        }
        // The provider could not tell the key's public half: nothing to compare.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(error) => {
            return Err(TlsError::Certificate {
                path: paths.cert.clone(),
                detail: error.to_string(),
            });
        }
    }
    let summary =
        super::CertificateSummary { path: paths.cert.clone(), fingerprint, names, not_after_unix };
    Ok(Entry { key: Arc::new(certified), summary })
}
