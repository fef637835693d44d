//! Test helpers for skua's TLS configuration: a CA made with rcgen in the test, certificate
//! files on a temporary directory, and a rustls client and server joined by an in-memory pipe
//! (no sockets, no executor: bytes go from one side's `write_tls` to the other's `read_tls`);
//! [`layer`] joins the same client to skua's own `TlsLayer`.

#![allow(dead_code, missing_docs)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, ServerConnection};
use skua_shard::tls::{CertificatePaths, TlsConfigs, TlsSettings, provider};

pub mod layer;

/// A certificate authority made in the test.
pub struct TestCa {
    pub certificate: rcgen::Certificate,
    pub key: KeyPair,
}

/// An issued certificate: PEM of the leaf and of its key, and the leaf's DER.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("key");
        let certificate = params.self_signed(&key).expect("self-signed CA");
        TestCa { certificate, key }
    }

    pub fn pem(&self) -> String {
        self.certificate.pem()
    }

    /// A server certificate for `names` (DNS names or IP addresses), with a new P-256 key.
    pub fn server(&self, names: &[&str]) -> Issued {
        self.server_with_key(names, KeyPair::generate().expect("key"))
    }

    /// A server certificate for `names` with the given key.
    pub fn server_with_key(&self, names: &[&str], key: KeyPair) -> Issued {
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("params");
        params.distinguished_name.push(DnType::CommonName, "skua test server");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params, &key, key.serialize_pem())
    }

    /// A client certificate with this CN, e-mail and DNS name (each optional).
    pub fn client(&self, cn: Option<&str>, email: Option<&str>, dns: Option<&str>) -> Issued {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        if let Some(email) = email {
            params.subject_alt_names.push(SanType::Rfc822Name(email.try_into().expect("ia5")));
        }
        if let Some(dns) = dns {
            params.subject_alt_names.push(SanType::DnsName(dns.try_into().expect("ia5")));
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().expect("key");
        self.issue(params, &key, key.serialize_pem())
    }

    fn issue(&self, params: CertificateParams, key: &KeyPair, key_pem: String) -> Issued {
        let leaf = params.signed_by(key, &self.certificate, &self.key).expect("signed");
        Issued { cert_pem: leaf.pem(), key_pem, der: leaf.der().clone() }
    }
}

impl Issued {
    /// Writes `NAME.crt` (leaf then `chain`) and `NAME.key` into `dir`.
    pub fn write(&self, dir: &Path, name: &str, chain: &str) -> CertificatePaths {
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, format!("{}{chain}", self.cert_pem)).expect("write cert");
        std::fs::write(&key, &self.key_pem).expect("write key");
        CertificatePaths { cert, key }
    }
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

pub fn load(settings: TlsSettings) -> TlsConfigs {
    TlsConfigs::load(settings).expect("TLS configuration loads")
}

/// Which protocol versions a client offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Versions {
    Both,
    Tls12,
    Tls13,
}

/// A client trusting `roots` (PEM), offering `alpn`, checking names as any client would.
pub fn client(roots: &str, versions: Versions, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let builder = client_builder(versions);
    let mut config = builder.with_root_certificates(root_store(roots)).with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|id| id.to_vec()).collect();
    Arc::new(config)
}

/// A client presenting `identity` (certificate PEM, key PEM).
pub fn client_with_identity(roots: &str, identity: &Issued) -> Arc<ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let chain = vec![identity.der.clone()];
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes())
        .expect("client key");
    let config = client_builder(Versions::Both)
        .with_root_certificates(root_store(roots))
        .with_client_auth_cert(chain, key)
        .expect("client auth");
    Arc::new(config)
}

/// A client that accepts any certificate chain signed by `roots`' CA for any name, and keeps
/// the end-entity certificate it was shown: for SNI tests, where a name with no certificate
/// of its own is answered with the default one.
pub fn recording_client(
    roots: &str,
    seen: Arc<Mutex<Vec<CertificateDer<'static>>>>,
) -> Arc<ClientConfig> {
    let inner = WebPkiServerVerifier::builder_with_provider(
        Arc::new(root_store(roots)),
        Arc::new(provider()),
    )
    .build()
    .expect("verifier");
    let verifier = Arc::new(Recording { inner, seen });
    let mut config = client_builder(Versions::Both)
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // Every handshake full: a resumed one shows the certificate of the session it resumes.
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

fn client_builder(
    versions: Versions,
) -> rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier> {
    let versions: &[&rustls::SupportedProtocolVersion] = match versions {
        Versions::Both => &[&rustls::version::TLS13, &rustls::version::TLS12],
        Versions::Tls12 => &[&rustls::version::TLS12],
        Versions::Tls13 => &[&rustls::version::TLS13],
    };
    ClientConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(versions)
        .expect("versions")
}

pub fn root_store(pem: &str) -> rustls::RootCertStore {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        roots.add(certificate.expect("root PEM")).expect("root");
    }
    roots
}

#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    seen: Arc<Mutex<Vec<CertificateDer<'static>>>>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.seen.lock().expect("seen").push(end_entity.clone().into_owned());
        // The chain must still verify (webpki checks it before the name); only a name
        // mismatch is let through.
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => Ok(verified),
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            Err(other) => Err(other),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A client and a server connection joined by an in-memory pipe.
pub struct Pair {
    pub client: ClientConnection,
    pub server: ServerConnection,
}

/// Handshake rounds after which a handshake that has not finished is a test failure.
const HANDSHAKE_ROUNDS_MAX: usize = 16;

impl Pair {
    /// Connects a client for `name` (a DNS name for SNI, or an IP address: no SNI).
    pub fn new(client: &Arc<ClientConfig>, server: Arc<rustls::ServerConfig>, name: &str) -> Pair {
        let name = ServerName::try_from(name.to_owned()).expect("server name");
        Pair {
            client: ClientConnection::new(client.clone(), name).expect("client"),
            server: ServerConnection::new(server).expect("server"),
        }
    }

    /// Runs the handshake to its end, then hands the client whatever the server sent after it
    /// (TLS 1.3 session tickets).
    ///
    /// # Errors
    /// The first side's error, as `("client" | "server", error)`.
    pub fn handshake(&mut self) -> Result<(), (&'static str, rustls::Error)> {
        for _ in 0..HANDSHAKE_ROUNDS_MAX {
            self.client_to_server().map_err(|error| ("server", error))?;
            self.server_to_client().map_err(|error| ("client", error))?;
            if !self.client.is_handshaking() && !self.server.is_handshaking() {
                self.server_to_client().map_err(|error| ("client", error))?;
                return Ok(());
            }
        }
        panic!("handshake did not finish in {HANDSHAKE_ROUNDS_MAX} rounds");
    }

    pub fn client_to_server(&mut self) -> Result<(), rustls::Error> {
        let mut bytes = Vec::new();
        while self.client.wants_write() {
            self.client.write_tls(&mut bytes).expect("to memory");
        }
        let mut slice = &bytes[..];
        while !slice.is_empty() {
            self.server.read_tls(&mut slice).expect("from memory");
            self.server.process_new_packets()?;
        }
        Ok(())
    }

    pub fn server_to_client(&mut self) -> Result<(), rustls::Error> {
        let mut bytes = Vec::new();
        while self.server.wants_write() {
            self.server.write_tls(&mut bytes).expect("to memory");
        }
        let mut slice = &bytes[..];
        while !slice.is_empty() {
            self.client.read_tls(&mut slice).expect("from memory");
            self.client.process_new_packets()?;
        }
        Ok(())
    }

    /// Sends a line each way and checks it arrives: the session works.
    pub fn exchange(&mut self, line: &str) {
        self.client.writer().write_all(line.as_bytes()).expect("client write");
        self.client_to_server().expect("to server");
        let mut received = vec![0; line.len()];
        self.server.reader().read_exact(&mut received).expect("server read");
        assert_eq!(received, line.as_bytes());
        let answer = format!("* {line}");
        self.server.writer().write_all(answer.as_bytes()).expect("server write");
        self.server_to_client().expect("to client");
        let mut received = vec![0; answer.len()];
        self.client.reader().read_exact(&mut received).expect("client read");
        assert_eq!(received, answer.as_bytes());
    }

    /// The end-entity certificate the server presented.
    pub fn server_certificate(&self) -> CertificateDer<'static> {
        self.client.peer_certificates().expect("server certificate")[0].clone().into_owned()
    }
}

/// A connection for `name` that completes its handshake.
pub fn connect(client: &Arc<ClientConfig>, server: Arc<rustls::ServerConfig>, name: &str) -> Pair {
    let mut pair = Pair::new(client, server, name);
    if let Err((side, error)) = pair.handshake() {
        panic!("handshake with {name} failed on the {side} side: {error}");
    }
    pair
}
