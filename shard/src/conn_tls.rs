//! TLS under a [`Connection`](crate::conn::Connection): a rustls `ServerConnection` between
//! the socket and the protocol session, which sees plaintext either way.
//!
//! ```text
//!  socket ── ciphertext ──► receive ─ read_tls, process_new_packets ─► plaintext ─► sink
//!  slices (owned, mapped spool) ─► encrypt: write_vectored into records ─► flush ─► socket
//! ```
//!
//! - *Reads.* Ciphertext comes into the shard's scratch buffer (as plain reads do) and goes to
//!   rustls; the plaintext is handed to the caller's sink straight from rustls's buffer
//!   (`BufRead`), with no copy of ours.
//! - *Writes.* Response slices, including bodies in mapped spools, are encrypted from where
//!   they lie into TLS records: rustls seals each record from the slices, and no plaintext copy
//!   of a body is made. At most [`TLS_SENDABLE_BYTES_MAX`] of records wait for the socket; the
//!   writer flushes them before it encrypts more, so a client that stops reading holds a TLS
//!   session to one buffer of records besides the session's own bounded output.
//! - *Handshake.* Run to completion before the protocol goes on (implicit TLS: before the
//!   greeting; STARTTLS: after the tagged OK), within a deadline; a peer that sends garbage
//!   gets an alert and is closed, one that stalls is cut at the deadline. rustls bounds
//!   handshake messages to 64 KiB.
//! - *After the handshake* rustls may have something to send on a read (a TLS 1.3 key update
//!   answer, an alert): it is sent without waiting if the socket takes it, else with the next
//!   write.
//!
//! The state (`rustls::ServerConnection`, `Send`) moves with a hand-off to the user's shard.

use std::io::{self, BufRead};
use std::sync::Arc;

use rustls::{ServerConfig, ServerConnection};

use crate::limits::TLS_SENDABLE_BYTES_MAX;

/// A TLS session over a connection's socket.
pub struct TlsLayer {
    session: ServerConnection,
    /// The peer sent close_notify: no more plaintext will come.
    peer_closed: bool,
}

impl std::fmt::Debug for TlsLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsLayer")
            .field("handshaking", &self.session.is_handshaking())
            .field("peer_closed", &self.peer_closed)
            .finish_non_exhaustive()
    }
}

/// What the negotiated session is, for logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1_3` or `TLSv1_2`.
    pub version: String,
    /// The cipher suite's name.
    pub cipher: String,
    /// The server name the client asked for (SNI), if any.
    pub server_name: Option<String>,
    /// The application protocol agreed by ALPN, if any.
    pub alpn: Option<String>,
}

impl TlsLayer {
    /// A server session that has not seen the ClientHello yet.
    ///
    /// # Errors
    /// The config is unusable (rustls refuses it).
    pub fn new(config: Arc<ServerConfig>) -> Result<TlsLayer, rustls::Error> {
        let mut session = ServerConnection::new(config)?;
        session.set_buffer_limit(Some(TLS_SENDABLE_BYTES_MAX));
        Ok(TlsLayer { session, peer_closed: false })
    }

    /// True until the handshake is complete.
    #[must_use]
    pub fn is_handshaking(&self) -> bool {
        self.session.is_handshaking()
    }

    /// True when rustls has records to send.
    #[must_use]
    pub fn wants_write(&self) -> bool {
        self.session.wants_write()
    }

    /// True once the peer sent close_notify and every plaintext byte before it was taken.
    #[must_use]
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Takes received ciphertext. The plaintext it decrypts to waits in rustls until
    /// [`TlsLayer::drain_plaintext`].
    ///
    /// # Errors
    /// The peer broke the protocol (garbage, a bad record, a failed handshake): rustls has
    /// queued an alert to send before the connection is closed.
    pub fn receive(&mut self, mut ciphertext: &[u8]) -> io::Result<()> {
        while !ciphertext.is_empty() {
            // `read_tls` takes what fits its buffer (a record or 4 KiB at a time), advancing
            // the slice; each batch is processed before the next, so the buffer stays small.
            let taken = self.session.read_tls(&mut ciphertext)?;
            let state = self.session.process_new_packets().map_err(invalid_data)?;
            if state.peer_has_closed() {
                self.peer_closed = true;
            }
            if taken == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Hands every decrypted plaintext byte to `sink`, from rustls's buffer; returns how many.
    ///
    /// # Errors
    /// Only rustls's own errors (the connection is unusable).
    pub fn drain_plaintext(&mut self, sink: &mut impl FnMut(&[u8])) -> io::Result<usize> {
        let mut total = 0;
        let mut reader = self.session.reader();
        loop {
            let chunk = match reader.fill_buf() {
                Ok(chunk) => chunk,
                // Nothing decrypted yet (or the peer closed cleanly): done for now.
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(error) => return Err(error),
            };
            if chunk.is_empty() {
                break;
            }
            let len = chunk.len();
            sink(chunk);
            reader.consume(len);
            total += len;
        }
        Ok(total)
    }

    /// Encrypts as much of `slices` as the record buffer takes (all of it unless
    /// [`TLS_SENDABLE_BYTES_MAX`] of records already wait); returns the plaintext bytes taken.
    ///
    /// # Errors
    /// The session cannot send (closed, or its key is exhausted).
    pub fn encrypt(&mut self, slices: &[io::IoSlice<'_>]) -> io::Result<usize> {
        use std::io::Write;
        self.session.writer().write_vectored(slices)
    }

    /// Writes waiting records into `socket` (which may refuse with `WouldBlock`).
    ///
    /// # Errors
    /// The socket's error.
    pub fn write_records(&mut self, socket: &mut dyn io::Write) -> io::Result<usize> {
        self.session.write_tls(socket)
    }

    /// Queues a close_notify alert (sent by the next flush).
    pub fn close_notify(&mut self) {
        self.session.send_close_notify();
    }

    /// The negotiated parameters (after the handshake).
    #[must_use]
    pub fn info(&self) -> TlsInfo {
        let version =
            self.session.protocol_version().map_or_else(String::new, |v| format!("{v:?}"));
        let cipher = self
            .session
            .negotiated_cipher_suite()
            .map_or_else(String::new, |suite| format!("{:?}", suite.suite()));
        TlsInfo {
            version,
            cipher,
            server_name: self.session.server_name().map(str::to_owned),
            alpn: self.session.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned()),
        }
    }

    /// The `tls-exporter` channel binding (RFC 9266): 32 bytes exported with the label
    /// `EXPORTER-Channel-Binding` and no context. `None` before the handshake is complete or
    /// on TLS 1.2 (RFC 9266 binds TLS 1.3; a 1.2 session without extended master secret
    /// must not use it, and the -PLUS mechanisms are then not offered).
    #[must_use]
    pub fn channel_binding(&self) -> Option<[u8; 32]> {
        if self.session.is_handshaking()
            || self.session.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3)
        {
            return None;
        }
        let mut binding = [0u8; 32];
        self.session
            .export_keying_material(&mut binding, b"EXPORTER-Channel-Binding", None)
            .ok()?;
        Some(binding)
    }

    /// The client's certificate chain, end entity first, when it sent one (and the config
    /// verified it).
    #[must_use]
    pub fn client_certificates(&self) -> Option<&[rustls::pki_types::CertificateDer<'static>]> {
        self.session.peer_certificates()
    }
}

fn invalid_data(error: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

#[cfg(test)]
mod tests {
    //! TLS under a real socket on a real executor, against rustls's client in a plain thread.
    use std::io::{Read, Write};
    use std::net::TcpStream as StdStream;
    use std::time::{Duration, Instant};

    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

    use super::*;
    use crate::conn::{Connection, HandshakeError, ReadOutcome};

    #[allow(deprecated)] // the ring provider; see the TLS config module
    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// A self-signed certificate for `localhost`, its server config, and a client config that
    /// trusts it and speaks only `versions`.
    fn configs(
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> (Arc<ServerConfig>, Arc<rustls::ClientConfig>) {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
        let cert = CertificateDer::from(made.cert.der().to_vec());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.key_pair.serialize_der()));
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .expect("server config");
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).expect("root");
        let client = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        (Arc::new(server), Arc::new(client))
    }

    /// Runs `server` on an executor over one accepted connection while `client` runs in this
    /// thread on the connecting socket.
    fn run<S, F>(server: S, client: impl FnOnce(StdStream))
    where
        S: FnOnce(Connection) -> F + Send + 'static,
        F: std::future::Future<Output = ()> + 'static,
    {
        crate::testutil::serve_one(
            move |stream| async move {
                server(Connection::new(stream, Duration::from_secs(5)).expect("conn")).await;
            },
            client,
        );
    }

    fn in_seconds(seconds: u64) -> Instant {
        Instant::now() + Duration::from_secs(seconds)
    }

    /// Reads from `connection` until `want` bytes came.
    async fn read_exactly(connection: &mut Connection, want: usize) -> Vec<u8> {
        let mut seen = Vec::new();
        while seen.len() < want {
            let outcome = connection
                .read_with(Duration::from_secs(5), |bytes| seen.extend_from_slice(bytes))
                .await
                .expect("read");
            assert!(matches!(outcome, ReadOutcome::Data(_)), "{outcome:?} after {}", seen.len());
        }
        seen
    }

    #[test]
    fn plaintext_goes_both_ways_over_tls_1_3_and_1_2_and_big_vectored_writes_arrive_whole() {
        for versions in [&[&rustls::version::TLS13][..], &[&rustls::version::TLS12][..]] {
            let (server_config, client_config) = configs(versions);
            // Three "spool slices" and owned bytes, 3 MB in all: many record buffers.
            let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
            let expected = [&b"* 1 FETCH (BODY[] {3000000}\r\n"[..], &body, b")\r\n"].concat();
            let sent = expected.clone();
            run(
                move |mut connection| async move {
                    connection.start_tls(server_config, in_seconds(10)).await.expect("handshake");
                    assert!(connection.is_tls());
                    let info = connection.tls_info().expect("info");
                    assert!(info.version.starts_with("TLSv1_"), "{info:?}");
                    let line = read_exactly(&mut connection, 8).await;
                    assert_eq!(line, b"a NOOP\r\n");
                    let (head, rest) = sent.split_at(30);
                    let (middle, tail) = rest.split_at(1_500_000);
                    connection.write_vectored_all(&[head, middle, tail]).await.expect("write");
                    connection.close().await;
                },
                |socket| {
                    let name = ServerName::try_from("localhost").expect("name");
                    let session = rustls::ClientConnection::new(client_config, name).expect("c");
                    let mut tls = rustls::StreamOwned::new(session, socket);
                    tls.write_all(b"a NOOP\r\n").expect("client write");
                    let mut got = Vec::new();
                    tls.read_to_end(&mut got).expect("read until close_notify");
                    assert_eq!(got.len(), expected.len());
                    assert!(got == expected, "bytes differ");
                },
            );
        }
    }

    #[test]
    fn garbage_instead_of_a_client_hello_fails_the_handshake() {
        let (server_config, _) = configs(&[&rustls::version::TLS13]);
        run(
            move |mut connection| async move {
                let result = connection.start_tls(server_config, in_seconds(10)).await;
                assert!(matches!(result, Err(HandshakeError::Io(_))), "{result:?}");
            },
            |mut socket| {
                socket.write_all(b"a LOGIN user password\r\n").expect("write");
                // The server answers with an alert (or nothing) and closes.
                let mut answer = Vec::new();
                let _ = socket.read_to_end(&mut answer);
                assert!(!answer.starts_with(b"*"), "no plaintext answer: {answer:?}");
            },
        );
    }

    #[test]
    fn a_stalled_handshake_is_cut_at_its_deadline() {
        let (server_config, _) = configs(&[&rustls::version::TLS13]);
        run(
            move |mut connection| async move {
                let deadline = Instant::now() + Duration::from_millis(200);
                let result = connection.start_tls(server_config, deadline).await;
                assert!(matches!(result, Err(HandshakeError::TimedOut)), "{result:?}");
            },
            |mut socket| {
                // Half a record header, then nothing.
                socket.write_all(&[0x16, 0x03]).expect("write");
                let mut answer = Vec::new();
                let _ = socket.read_to_end(&mut answer);
            },
        );
    }

    #[test]
    fn the_channel_binding_is_the_same_on_both_sides() {
        let (server_config, client_config) = configs(&[&rustls::version::TLS13]);
        let (binding_tx, binding_rx) = std::sync::mpsc::channel();
        run(
            move |mut connection| async move {
                connection.start_tls(server_config, in_seconds(10)).await.expect("handshake");
                let binding = connection.tls().and_then(TlsLayer::channel_binding);
                binding_tx.send(binding).expect("send");
                let _ = read_exactly(&mut connection, 1).await;
                connection.close().await;
            },
            |socket| {
                let name = ServerName::try_from("localhost").expect("name");
                let session = rustls::ClientConnection::new(client_config, name).expect("c");
                let mut tls = rustls::StreamOwned::new(session, socket);
                tls.write_all(b"x").expect("write");
                let mut client_side = [0u8; 32];
                tls.conn
                    .export_keying_material(&mut client_side, b"EXPORTER-Channel-Binding", None)
                    .expect("export");
                let server_side = binding_rx.recv().expect("binding").expect("TLS 1.3 binding");
                assert_eq!(server_side, client_side);
            },
        );
    }
}
