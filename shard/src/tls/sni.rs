//! Choosing a certificate by the SNI name of the ClientHello (RFC 6066 section 3).
//!
//! Each certificate answers for the DNS names in its subjectAltName extension (the subject CN
//! is not looked at, as for any client since RFC 6125). A name picks, in configuration order
//! with the default certificate first, the first certificate that lists it exactly; failing
//! that, the first whose wildcard `*.example.org` covers it (one whole left-most label:
//! `a.example.org`, not `example.org` nor `a.b.example.org`); failing that, or without SNI,
//! the default certificate.

use std::fmt;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;

/// One loaded certificate with the names it answers for (lower case).
pub(super) struct Entry {
    pub(super) key: Arc<CertifiedKey>,
    pub(super) summary: super::CertificateSummary,
}

/// The DNS names of a certificate's subjectAltName extension (in lower case), and the end of
/// its validity (seconds since the Unix epoch).
pub(super) fn describe(certificate: &CertificateDer<'_>) -> Result<(Vec<String>, i64), String> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(certificate).map_err(|error| error.to_string())?;
    let not_after = parsed.validity().not_after.timestamp();
    let Some(extension) = parsed.subject_alternative_name().map_err(|e| e.to_string())? else {
        return Ok((Vec::new(), not_after));
    };
    let names = extension.value.general_names.iter().filter_map(|name| match name {
        GeneralName::DNSName(dns) => Some(dns.to_ascii_lowercase()),
        _ => None,
    });
    Ok((names.collect(), not_after))
}

/// True if the certificate name `pattern` (lower case) covers the SNI `name`.
fn wildcard_covers(pattern: &str, name: &str) -> bool {
    let Some(parent) = pattern.strip_prefix("*.") else {
        return false;
    };
    match name.split_once('.') {
        Some((label, rest)) => !label.is_empty() && rest.eq_ignore_ascii_case(parent),
        None => false,
    }
}

/// The resolver every configuration of one load shares.
pub(super) struct SniResolver {
    /// The default certificate first, then the others in configuration order.
    entries: Vec<Entry>,
}

impl SniResolver {
    /// The summaries of every certificate, the default first.
    pub(super) fn summaries(&self) -> Vec<super::CertificateSummary> {
        self.entries.iter().map(|entry| entry.summary.clone()).collect()
    }

    pub(super) fn new(default: Entry, others: Vec<Entry>) -> SniResolver {
        let mut entries = Vec::with_capacity(others.len() + 1);
        entries.push(default);
        entries.extend(others);
        SniResolver { entries }
    }

    /// The certificate for an SNI name (or none).
    fn choose(&self, name: Option<&str>) -> &Arc<CertifiedKey> {
        let default = &self.entries[0].key;
        let Some(name) = name else {
            return default;
        };
        let exact = self.entries.iter().find(|entry| {
            entry.summary.names.iter().any(|pattern| pattern.eq_ignore_ascii_case(name))
        });
        let chosen = exact.or_else(|| {
            self.entries.iter().find(|entry| {
                entry.summary.names.iter().any(|pattern| wildcard_covers(pattern, name))
            })
        });
        chosen.map_or(default, |entry| &entry.key)
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.choose(client_hello.server_name()).clone())
    }
}

impl fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&[String]> =
            self.entries.iter().map(|entry| &entry.summary.names[..]).collect();
        f.debug_struct("SniResolver").field("names", &names).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_exactly_one_label() {
        assert!(wildcard_covers("*.example.org", "imap.example.org"));
        assert!(wildcard_covers("*.example.org", "IMAP.Example.ORG"));
        assert!(!wildcard_covers("*.example.org", "example.org"));
        assert!(!wildcard_covers("*.example.org", "a.b.example.org"));
        assert!(!wildcard_covers("*.example.org", ".example.org"));
        assert!(!wildcard_covers("*.example.org", "imap.example.net"));
        assert!(!wildcard_covers("example.org", "example.org"));
        assert!(!wildcard_covers("a*.example.org", "ab.example.org"));
        assert!(!wildcard_covers("*.example.org", "localhost"));
    }
}
