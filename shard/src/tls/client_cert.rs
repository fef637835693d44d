//! From a verified client certificate to a user name, for SASL EXTERNAL (RFC 4422 appendix A).
//!
//! rustls has already checked the chain against `[tls] client_ca` when this runs; here only
//! the end-entity certificate is read, and one configured field names the user:
//! `cn` the subject's commonName, `email` the first rfc822Name of subjectAltName (else the
//! subject's emailAddress attribute), `dns` the first dNSName of subjectAltName. The first is
//! taken when there are several, so a CA that issues login certificates should put one.

use std::fmt;
use std::str::FromStr;

use rustls_pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

/// A user name longer than this is refused (it would not fit a passwd-file line sensibly).
pub const CLIENT_CERT_USER_BYTES_MAX: usize = 255;

/// Which certificate field names the user (`[tls] client_cert_user`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientCertField {
    /// `cn`: the subject's commonName.
    CommonName,
    /// `email`: subjectAltName rfc822Name, else the subject's emailAddress.
    Email,
    /// `dns`: subjectAltName dNSName.
    Dns,
}

impl FromStr for ClientCertField {
    type Err = String;

    fn from_str(text: &str) -> Result<ClientCertField, String> {
        match text {
            "cn" => Ok(ClientCertField::CommonName),
            "email" => Ok(ClientCertField::Email),
            "dns" => Ok(ClientCertField::Dns),
            other => Err(format!("unknown client certificate field {other:?} (cn, email, dns)")),
        }
    }
}

impl fmt::Display for ClientCertField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClientCertField::CommonName => "cn",
            ClientCertField::Email => "email",
            ClientCertField::Dns => "dns",
        })
    }
}

/// Why a client certificate names no user.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClientCertError {
    /// The client sent no certificate.
    #[error("no client certificate")]
    None,
    /// The certificate cannot be parsed.
    #[error("client certificate cannot be parsed: {0}")]
    Unparsable(String),
    /// The certificate lacks the configured field.
    #[error("client certificate has no {0} field")]
    NoField(ClientCertField),
    /// The field's value is not a usable user name.
    #[error("client certificate {field} is not a user name: {reason}")]
    BadName {
        /// The field.
        field: ClientCertField,
        /// Why.
        reason: &'static str,
    },
}

/// The user `certificate` names by `field`.
///
/// # Errors
/// See [`ClientCertError`].
pub fn user_of(
    certificate: &CertificateDer<'_>,
    field: ClientCertField,
) -> Result<String, ClientCertError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate)
        .map_err(|error| ClientCertError::Unparsable(error.to_string()))?;
    let value = match field {
        ClientCertField::CommonName => subject_attribute(parsed.subject().iter_common_name()),
        ClientCertField::Email => {
            alt_name(&parsed, field)?.or_else(|| subject_attribute(parsed.subject().iter_email()))
        }
        ClientCertField::Dns => alt_name(&parsed, field)?,
    };
    let value = value.ok_or(ClientCertError::NoField(field))?;
    check_user_name(&value).map_err(|reason| ClientCertError::BadName { field, reason })?;
    Ok(value)
}

/// The first attribute of the iterator that is a string.
fn subject_attribute<'a>(
    mut attributes: impl Iterator<Item = &'a x509_parser::x509::AttributeTypeAndValue<'a>>,
) -> Option<String> {
    attributes.find_map(|attribute| attribute.as_str().ok().map(str::to_owned))
}

/// The first subjectAltName entry of the field's kind.
fn alt_name(
    certificate: &X509Certificate<'_>,
    field: ClientCertField,
) -> Result<Option<String>, ClientCertError> {
    let extension = certificate
        .subject_alternative_name()
        .map_err(|error| ClientCertError::Unparsable(error.to_string()))?;
    let Some(extension) = extension else {
        return Ok(None);
    };
    let found = extension.value.general_names.iter().find_map(|name| match (field, name) {
        (ClientCertField::Email, GeneralName::RFC822Name(value))
        | (ClientCertField::Dns, GeneralName::DNSName(value)) => Some((*value).to_owned()),
        _ => None,
    });
    Ok(found)
}

fn check_user_name(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("empty");
    }
    if value.len() > CLIENT_CERT_USER_BYTES_MAX {
        return Err("too long");
    }
    if value.chars().any(|c| c.is_control() || c.is_whitespace() || c == ':') {
        return Err("contains a control character, a space or ':'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_parse_and_print() {
        for text in ["cn", "email", "dns"] {
            let field: ClientCertField = text.parse().expect("known");
            assert_eq!(field.to_string(), text);
        }
        assert!("CN".parse::<ClientCertField>().is_err());
        assert!("uid".parse::<ClientCertField>().is_err());
    }

    #[test]
    fn user_names_are_checked() {
        assert_eq!(check_user_name("alice@example.org"), Ok(()));
        assert!(check_user_name("").is_err());
        assert!(check_user_name("a b").is_err());
        assert!(check_user_name("a:b").is_err());
        assert!(check_user_name("a\nb").is_err());
        assert!(check_user_name(&"a".repeat(CLIENT_CERT_USER_BYTES_MAX + 1)).is_err());
    }
}
