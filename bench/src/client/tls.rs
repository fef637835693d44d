//! The transport under every bench connection: plain TCP, or TLS (rustls with the ring
//! provider) started at once (implicit TLS, IMAPS) or after the protocol's STARTTLS.
//!
//! [`Endpoint`] is where a client connects and how: the address, and the TLS settings shared by
//! every connection of a run ([`TlsClient`]: one `ClientConfig`, so one session cache, which is
//! what lets the `handshake` scenario measure TLS 1.3 resumption). [`Stream`] is the connected
//! socket, plain or encrypted, as one `AsyncRead + AsyncWrite` type the IMAP and LMTP clients
//! read and write without knowing which.
//!
//! Certificates are checked against `--tls-ca` (PEM, one or more certificates: a CA, or the
//! server's self-signed certificate itself). `--tls-insecure` accepts any certificate, for
//! benchmarking only; signatures of the handshake are still verified, so the work the server
//! does is the same.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, HandshakeKind, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::ClientError;

/// When a connection starts TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Right after TCP connect (IMAPS).
    Implicit,
    /// After the protocol's STARTTLS command (IMAP `STARTTLS`, LMTP `STARTTLS`).
    StartTls,
}

/// How certificates are checked.
#[derive(Debug, Clone)]
pub enum Trust<'a> {
    /// Against the certificates of this PEM file.
    CaFile(&'a Path),
    /// Not at all (the handshake's signatures are still checked).
    Insecure,
}

/// TLS settings shared by the connections of a run.
#[derive(Clone)]
pub struct TlsClient {
    connector: TlsConnector,
    name: ServerName<'static>,
    /// When connections start TLS.
    pub start: Start,
    /// Whether sessions are cached and resumed.
    pub resume: bool,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("name", &self.name)
            .field("start", &self.start)
            .field("resume", &self.resume)
            .finish_non_exhaustive()
    }
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The CA file could not be read or holds no certificate.
    #[error("--tls-ca {path}: {detail}")]
    Ca {
        /// The file.
        path: String,
        /// What went wrong.
        detail: String,
    },
    /// The server name is neither a DNS name nor an IP address.
    #[error("--tls-server-name {0:?} is not a DNS name or IP address")]
    Name(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The ring provider: what the server uses, and buildable without cmake or nasm. rustls
/// 0.23.48 deprecates it for lacking post-quantum key exchange.
///
/// Key exchange groups are offered as common clients do (OpenSSL, browsers): X25519 first,
/// then P-256, then P-384. The provider's own default puts P-384 first, and a client sends a
/// key share for its first group only, so a bench with that order would make every server
/// do P-384 ECDH (several times the cost of X25519) where real clients never ask for it.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    use ring::kx_group::{SECP256R1, SECP384R1, X25519};
    let mut p = ring::default_provider();
    p.kx_groups = vec![X25519, SECP256R1, SECP384R1];
    Arc::new(p)
}

impl TlsClient {
    /// Settings for connections that start TLS per `start`, check the certificate per `trust`
    /// for `server_name` (DNS name or IP address), and cache sessions for resumption if
    /// `resume`.
    pub fn new(
        start: Start,
        trust: Trust<'_>,
        server_name: &str,
        resume: bool,
    ) -> Result<Self, TlsSetupError> {
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| TlsSetupError::Name(server_name.to_owned()))?;
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?;
        let mut config = match trust {
            Trust::CaFile(path) => {
                let ca =
                    |detail: String| TlsSetupError::Ca { path: path.display().to_string(), detail };
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_file_iter(path).map_err(|e| ca(e.to_string()))? {
                    roots
                        .add(cert.map_err(|e| ca(e.to_string()))?)
                        .map_err(|e| ca(e.to_string()))?;
                }
                if roots.is_empty() {
                    return Err(ca("no certificate in the file".into()));
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            Trust::Insecure => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())))
                .with_no_client_auth(),
        };
        config.resumption =
            if resume { Resumption::in_memory_sessions(1024) } else { Resumption::disabled() };
        Ok(Self { connector: TlsConnector::from(Arc::new(config)), name, start, resume })
    }

    /// Runs the client handshake on `tcp`, bounded by `timeout`.
    pub async fn handshake(
        &self,
        tcp: TcpStream,
        timeout: Duration,
    ) -> Result<Stream, ClientError> {
        let tls = tokio::time::timeout(timeout, self.connector.connect(self.name.clone(), tcp))
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
            .map_err(ClientError::Tls)?;
        Ok(Stream::Tls(Box::new(tls)))
    }
}

/// A verifier that accepts every certificate but checks the handshake signatures with the
/// provider's algorithms (`--tls-insecure`).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Where clients connect, and whether and when they start TLS.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The server's address (loopback, checked by `target`).
    pub addr: SocketAddr,
    /// TLS settings, or `None` for plain text.
    pub tls: Option<Arc<TlsClient>>,
}

impl Endpoint {
    /// The TLS settings if this endpoint starts TLS at connect time.
    pub fn implicit(&self) -> Option<&TlsClient> {
        self.tls.as_deref().filter(|t| t.start == Start::Implicit)
    }

    /// The TLS settings if this endpoint starts TLS with STARTTLS.
    pub fn starttls(&self) -> Option<&TlsClient> {
        self.tls.as_deref().filter(|t| t.start == Start::StartTls)
    }

    /// Connects (TCP, then the TLS handshake for implicit TLS), each step bounded by `timeout`.
    pub async fn connect(&self, timeout: Duration) -> Result<Stream, ClientError> {
        let tcp = super::connect(self.addr, timeout).await?;
        match self.implicit() {
            Some(tls) => tls.handshake(tcp, timeout).await,
            None => Ok(Stream::Plain(tcp)),
        }
    }
}

/// A connected socket, plain or TLS.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP (boxed: the rustls state is large, and most runs are plain).
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// How the TLS handshake went (full or resumed), or `None` on plain TCP.
    pub fn handshake_kind(&self) -> Option<HandshakeKind> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(s) => s.get_ref().1.handshake_kind(),
        }
    }

    /// The negotiated protocol version, cipher suite and key exchange group, e.g.
    /// `TLSv1_3/TLS13_AES_256_GCM_SHA384/X25519`.
    pub fn tls_summary(&self) -> Option<String> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(s) => {
                let c = s.get_ref().1;
                let group = c.negotiated_key_exchange_group().map(|g| g.name());
                Some(format!(
                    "{:?}/{:?}/{}",
                    c.protocol_version()?,
                    c.negotiated_cipher_suite()?.suite(),
                    group.map_or_else(|| "?".to_owned(), |g| format!("{g:?}"))
                ))
            }
        }
    }

    /// Starts TLS on a plain stream (after STARTTLS was accepted). Fails on a TLS stream.
    pub async fn upgrade(self, tls: &TlsClient, timeout: Duration) -> Result<Self, ClientError> {
        match self {
            Stream::Plain(tcp) => tls.handshake(tcp, timeout).await,
            Stream::Tls(_) => Err(ClientError::Unexpected("STARTTLS on a TLS connection".into())),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The transport against small TLS servers run in the test (tokio-rustls, a certificate
    //! made with rcgen): verification, full and resumed handshakes, STARTTLS in IMAP and
    //! LMTP, and clear text injected after a STARTTLS OK.

    use std::io::Write;

    use rustls::ServerConfig;
    use rustls::pki_types::PrivateKeyDer;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;
    use tokio_rustls::TlsAcceptor;

    use super::*;
    use crate::client::imap::ImapClient;
    use crate::client::lmtp::LmtpClient;

    const T: Duration = Duration::from_secs(10);

    /// A certificate for localhost and 127.0.0.1 (in a PEM file) and a server config using it.
    struct Pki {
        ca: tempfile::NamedTempFile,
        server: Arc<ServerConfig>,
    }

    /// rustls's ring provider as it comes (the server side of the tests).
    #[allow(deprecated)]
    fn server_provider() -> Arc<CryptoProvider> {
        Arc::new(ring::default_provider())
    }

    fn pki(tickets: bool) -> Pki {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        let mut ca = tempfile::NamedTempFile::new().unwrap();
        ca.write_all(made.cert.pem().as_bytes()).unwrap();
        let key = PrivateKeyDer::Pkcs8(made.key_pair.serialize_der().into());
        let mut server = ServerConfig::builder_with_provider(server_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![made.cert.der().clone()], key)
            .unwrap();
        if tickets {
            server.ticketer = ring::Ticketer::new().unwrap();
        } else {
            // No stateless tickets, and no server-side session cache either.
            server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
            server.send_tls13_tickets = 0;
        }
        Pki { ca, server: Arc::new(server) }
    }

    fn client(p: &Pki, start: Start, name: &str, resume: bool) -> Arc<TlsClient> {
        Arc::new(TlsClient::new(start, Trust::CaFile(p.ca.path()), name, resume).unwrap())
    }

    /// A server that accepts `n` connections over TLS, sends `* OK hi`, then echoes one line
    /// back upper-cased.
    async fn implicit_server(p: &Pki, n: usize) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = TlsAcceptor::from(p.server.clone());
        tokio::spawn(async move {
            for _ in 0..n {
                let (tcp, _) = listener.accept().await.unwrap();
                let Ok(tls) = acceptor.accept(tcp).await else { continue };
                let mut tls = BufReader::new(tls);
                tls.get_mut().write_all(b"* OK hi\r\n").await.unwrap();
                tls.get_mut().flush().await.unwrap();
                let mut line = String::new();
                if tls.read_line(&mut line).await.unwrap_or(0) > 0 {
                    let reply = line.to_uppercase();
                    let _ = tls.get_mut().write_all(reply.as_bytes()).await;
                    let _ = tls.get_mut().flush().await;
                }
            }
        });
        addr
    }

    async fn greet_and_echo(s: &mut Stream) -> String {
        let mut buf = vec![0; 64];
        let n = s.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"* OK hi\r\n");
        crate::client::send(s, b"ping\r\n").await.unwrap();
        let n = s.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[tokio::test]
    async fn implicit_tls_verifies_the_certificate_and_carries_data() {
        let p = pki(false);
        let addr = implicit_server(&p, 1).await;
        let to = Endpoint { addr, tls: Some(client(&p, Start::Implicit, "127.0.0.1", false)) };
        let mut s = to.connect(T).await.unwrap();
        assert_eq!(s.handshake_kind(), Some(HandshakeKind::Full));
        // The test server has the provider's default group order (P-384 first): it still
        // takes the X25519 share the client offers first, as with a real client, and needs
        // no HelloRetryRequest.
        let summary = s.tls_summary().unwrap();
        assert!(summary.starts_with("TLSv1_3/") && summary.ends_with("/X25519"), "{summary}");
        assert_eq!(greet_and_echo(&mut s).await, "PING\r\n");
    }

    #[tokio::test]
    async fn a_certificate_for_another_name_or_from_another_ca_is_refused() {
        let p = pki(false);
        let addr = implicit_server(&p, 2).await;
        let wrong_name =
            Endpoint { addr, tls: Some(client(&p, Start::Implicit, "mail.example.org", false)) };
        assert!(matches!(wrong_name.connect(T).await, Err(ClientError::Tls(_))));
        let other = pki(false);
        let wrong_ca =
            Endpoint { addr, tls: Some(client(&other, Start::Implicit, "localhost", false)) };
        assert!(matches!(wrong_ca.connect(T).await, Err(ClientError::Tls(_))));
    }

    #[tokio::test]
    async fn insecure_mode_accepts_a_certificate_from_any_ca() {
        let p = pki(false);
        let addr = implicit_server(&p, 1).await;
        let tls = TlsClient::new(Start::Implicit, Trust::Insecure, "localhost", false).unwrap();
        let mut s = Endpoint { addr, tls: Some(Arc::new(tls)) }.connect(T).await.unwrap();
        assert_eq!(greet_and_echo(&mut s).await, "PING\r\n");
    }

    /// Kinds of `n` handshakes in a row, each connection reading the greeting (which comes
    /// after the server's session tickets) before closing.
    async fn kinds(tickets: bool, resume: bool, n: usize) -> Vec<HandshakeKind> {
        let p = pki(tickets);
        let addr = implicit_server(&p, n).await;
        let to = Endpoint { addr, tls: Some(client(&p, Start::Implicit, "localhost", resume)) };
        let mut out = Vec::new();
        for _ in 0..n {
            let mut s = to.connect(T).await.unwrap();
            greet_and_echo(&mut s).await;
            out.push(s.handshake_kind().unwrap());
            let _ = s.shutdown().await;
        }
        out
    }

    #[tokio::test]
    async fn sessions_are_resumed_only_when_asked_and_offered() {
        use HandshakeKind::{Full, Resumed};
        assert_eq!(kinds(true, true, 3).await, [Full, Resumed, Resumed]);
        assert_eq!(kinds(true, false, 2).await, [Full, Full], "resumption off in the client");
        assert_eq!(kinds(false, true, 2).await, [Full, Full], "the server resumes no session");
    }

    /// A clear-text server speaking `greeting`, answering the client's first line with `ok`
    /// (plus `extra`), then TLS; over TLS it answers every line with `reply`.
    async fn starttls_server(
        p: &Pki,
        greeting: &'static [u8],
        before: &'static [&'static [u8]],
        ok: &'static [u8],
        reply: &'static [u8],
    ) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = TlsAcceptor::from(p.server.clone());
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tcp = BufReader::new(tcp);
            tcp.get_mut().write_all(greeting).await.unwrap();
            let mut line = String::new();
            for answer in before {
                line.clear();
                tcp.read_line(&mut line).await.unwrap();
                tcp.get_mut().write_all(answer).await.unwrap();
            }
            line.clear();
            tcp.read_line(&mut line).await.unwrap();
            assert!(line.ends_with("STARTTLS\r\n"), "{line:?}");
            tcp.get_mut().write_all(ok).await.unwrap();
            assert!(tcp.buffer().is_empty(), "the client sent nothing before the handshake");
            let Ok(tls) = acceptor.accept(tcp.into_inner()).await else { return };
            let mut tls = BufReader::new(tls);
            loop {
                line.clear();
                if tls.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                tls.get_mut().write_all(reply).await.unwrap();
                tls.get_mut().flush().await.unwrap();
            }
        });
        addr
    }

    #[tokio::test]
    async fn imap_starttls_then_commands_over_tls() {
        let p = pki(false);
        let addr =
            starttls_server(&p, b"* OK ready\r\n", &[], b"b1 OK begin TLS\r\n", b"b2 OK done\r\n")
                .await;
        let to = Endpoint { addr, tls: Some(client(&p, Start::StartTls, "localhost", false)) };
        let mut c = ImapClient::connect(&to, T).await.unwrap();
        assert_eq!(c.stream().handshake_kind(), Some(HandshakeKind::Full));
        c.command("NOOP").await.unwrap();
    }

    #[tokio::test]
    async fn clear_text_after_the_starttls_ok_is_refused() {
        let p = pki(false);
        let addr = starttls_server(
            &p,
            b"* OK ready\r\n",
            &[],
            b"b1 OK begin TLS\r\n* OK injected\r\n",
            b"",
        )
        .await;
        let to = Endpoint { addr, tls: Some(client(&p, Start::StartTls, "localhost", false)) };
        let err = ImapClient::connect(&to, T).await.unwrap_err();
        assert!(err.to_string().contains("clear-text data after the STARTTLS"), "{err}");
    }

    #[tokio::test]
    async fn lmtp_starttls_says_lhlo_again_over_tls() {
        let p = pki(false);
        let addr = starttls_server(
            &p,
            b"220 lmtp ready\r\n",
            &[b"250-localhost\r\n250-PIPELINING\r\n250 STARTTLS\r\n"],
            b"220 go ahead\r\n",
            b"250-localhost\r\n250 PIPELINING\r\n",
        )
        .await;
        let to = Endpoint { addr, tls: Some(client(&p, Start::StartTls, "localhost", false)) };
        LmtpClient::connect(&to, T).await.unwrap();
    }

    #[tokio::test]
    async fn lmtp_without_starttls_offered_is_an_error() {
        let p = pki(false);
        let addr = starttls_server(
            &p,
            b"220 lmtp ready\r\n",
            &[b"250-localhost\r\n250 PIPELINING\r\n"],
            b"",
            b"",
        )
        .await;
        let to = Endpoint { addr, tls: Some(client(&p, Start::StartTls, "localhost", false)) };
        let err = LmtpClient::connect(&to, T).await.unwrap_err();
        assert!(err.to_string().contains("offers no STARTTLS"), "{err}");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let empty = tempfile::NamedTempFile::new().unwrap();
        let err = TlsClient::new(Start::Implicit, Trust::CaFile(empty.path()), "localhost", false)
            .unwrap_err();
        assert!(err.to_string().contains("no certificate"), "{err}");
        let err = TlsClient::new(Start::Implicit, Trust::Insecure, "bad name!", false).unwrap_err();
        assert!(matches!(err, TlsSetupError::Name(_)), "{err}");
    }
}
