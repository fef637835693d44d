//! The self-signed certificate `skua serve` uses when `[tls]` names none, so that a first start
//! with no config already speaks TLS on loopback.
//!
//! Files: `DATA_DIR/tls/selfsigned.key` (PKCS#8 ECDSA P-256, mode 0600) and
//! `DATA_DIR/tls/selfsigned.crt` (for `localhost`, 127.0.0.1 and ::1; valid from January 1st
//! of last year for ten years). Made once, reused on every later start; the operator pins it
//! by the SHA-256 fingerprint printed at start-up (or deletes both files to get a new one).
//!
//! Written crash-safely: each file goes to a `.tmp` sibling, is fsynced and renamed, the key
//! before the certificate, then the directory is fsynced. A crash between the renames leaves a
//! key without a certificate, and a start that finds either file missing makes a new pair
//! (removing a certificate left without its key first, so no crash pairs it with a new key).

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, SanType};

use super::{CertificatePaths, TlsError};

/// Directory under the data dir.
pub const SELF_SIGNED_DIR: &str = "tls";
/// Certificate file name in [`SELF_SIGNED_DIR`].
pub const SELF_SIGNED_CERT: &str = "selfsigned.crt";
/// Key file name in [`SELF_SIGNED_DIR`].
pub const SELF_SIGNED_KEY: &str = "selfsigned.key";
/// Years the certificate is valid for.
const VALIDITY_YEARS: i32 = 10;

/// A certificate's SHA-256 digest over its DER bytes, shown as `AB:CD:…` (as
/// `openssl x509 -noout -fingerprint -sha256` prints it).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    #[must_use]
    pub fn of(der: &[u8]) -> Fingerprint {
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut bytes = [0; 32];
        bytes.copy_from_slice(digest.as_ref());
        Fingerprint(bytes)
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (index, byte) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// The self-signed certificate in use.
#[derive(Clone, Debug)]
pub struct SelfSigned {
    /// Its files.
    pub paths: CertificatePaths,
    /// SHA-256 of the certificate.
    pub fingerprint: Fingerprint,
    /// True if this call made it, false if it was there already.
    pub created: bool,
}

/// The files of the self-signed certificate under `data_dir`.
#[must_use]
pub fn paths(data_dir: &Path) -> CertificatePaths {
    let dir = data_dir.join(SELF_SIGNED_DIR);
    CertificatePaths { cert: dir.join(SELF_SIGNED_CERT), key: dir.join(SELF_SIGNED_KEY) }
}

/// Reuses the self-signed certificate under `data_dir`, or makes it if either file is missing.
///
/// # Errors
/// The directory or files cannot be written, or the existing files do not load (bad PEM, a
/// key that does not match): the error names the file, and nothing is overwritten.
pub fn ensure(data_dir: &Path) -> Result<SelfSigned, TlsError> {
    let paths = paths(data_dir);
    let dir = data_dir.join(SELF_SIGNED_DIR);
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|error| write_error(&dir, &error))?;
    let created = !(paths.cert.exists() && paths.key.exists());
    if created {
        let (cert_pem, key_pem) = generate()?;
        // A certificate whose key is gone goes first: a crash below must not leave it beside
        // the new key (a pair that does not match), only a key without a certificate.
        remove_if_present(&paths.cert)?;
        write_atomically(&paths.key, key_pem.as_bytes(), 0o600)?;
        write_atomically(&paths.cert, cert_pem.as_bytes(), 0o644)?;
        File::open(&dir).and_then(|d| d.sync_all()).map_err(|error| write_error(&dir, &error))?;
    }
    // Load what is on disk, made now or before: the same checks as a configured certificate.
    let provider = super::provider();
    let entry = super::pem::load_certified_key(&paths, &provider)?;
    let fingerprint = Fingerprint::of(entry.key.end_entity_cert()?.as_ref());
    Ok(SelfSigned { paths, fingerprint, created })
}

/// A new key pair and certificate, as PEM (certificate, key).
fn generate() -> Result<(String, String), TlsError> {
    let error = |detail: rcgen::Error| TlsError::SelfSigned {
        path: PathBuf::from(SELF_SIGNED_CERT),
        detail: detail.to_string(),
    };
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).map_err(error)?;
    params.subject_alt_names.push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    params.subject_alt_names.push(SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "localhost");
    name.push(DnType::OrganizationName, "skua self-signed");
    params.distinguished_name = name;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    // Start last year: the year estimate below may be one ahead on December 31st.
    let year = current_year();
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + VALIDITY_YEARS, 1, 1);
    let key = rcgen::KeyPair::generate().map_err(error)?;
    let certificate = params.self_signed(&key).map_err(error)?;
    Ok((certificate.pem(), key.serialize_pem()))
}

/// The current year, to within one.
fn current_year() -> i32 {
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let years = seconds / 31_556_952; // 365.2425 days
    1970 + i32::try_from(years).unwrap_or(0)
}

/// Writes `bytes` to `path` through a fsynced temporary file and a rename; `mode` is set when
/// the temporary file is created, so the key is never readable by others, even briefly.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    // A leftover from a crash may have other permissions: start from nothing.
    remove_if_present(&temporary)?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temporary)
        .map_err(|error| write_error(&temporary, &error))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|error| write_error(&temporary, &error))?;
    fs::rename(&temporary, path).map_err(|error| write_error(path, &error))
}

fn remove_if_present(path: &Path) -> Result<(), TlsError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(write_error(path, &error)),
    }
}

fn write_error(path: &Path, error: &std::io::Error) -> TlsError {
    TlsError::SelfSigned { path: path.to_path_buf(), detail: error.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_print_like_openssl() {
        let fingerprint = Fingerprint([0xAB; 32]);
        let text = fingerprint.to_string();
        assert_eq!(text.len(), 32 * 3 - 1);
        assert!(text.starts_with("AB:AB:"));
        // SHA-256 of nothing.
        let empty = Fingerprint::of(b"").to_string();
        assert!(empty.starts_with("E3:B0:C4:42:98:FC:1C:14"), "{empty}");
    }

    #[test]
    fn the_year_estimate_is_plausible() {
        let year = current_year();
        assert!((2024..2200).contains(&year), "{year}");
    }
}
