//! TLS under a [`Connection`](crate::conn::Connection): a rustls *unbuffered* server connection
//! between the socket and the protocol session, which sees plaintext either way. The buffers
//! are this layer's own, so an idle connection holds none of them.
//!
//! ```text
//!  socket ─ ciphertext ─► receive: incoming ─ process_tls_records ─► plaintext ─► drain ─► sink
//!  slices (owned, mapped spool) ─► encrypt: a record per slice ─► outgoing ─► write_records
//! ```
//!
//! - *Reads.* Ciphertext comes into the shard's scratch buffer (as plain reads do) and is
//!   copied into `incoming`, which rustls decrypts record by record; the plaintext goes to
//!   `plaintext` until the caller drains it. Every complete record is processed at once, so
//!   between reads `incoming` holds at most the start of one record, and both buffers are freed
//!   when they empty: an idle connection holds no record buffer.
//! - *Writes.* Response slices, including bodies in mapped spools, are sealed into records
//!   from where they lie (rustls encrypts a record from the slice; no plaintext copy of a body
//!   is made). Runs of small slices (under [`COALESCE_SLICE_BYTES`]) are first gathered into one
//!   record through a thread's staging buffer, so a response of many short pieces is not a
//!   record per piece. At most [`TLS_SENDABLE_BYTES_MAX`] of records wait in `outgoing`; the
//!   writer sends them before it encrypts more, so a client that stops reading holds a TLS
//!   session to one such buffer, and `outgoing` is freed once sent.
//! - *Handshake.* Run to completion before the protocol goes on (implicit TLS: before the
//!   greeting; STARTTLS: after the tagged OK), within a deadline; a peer that sends garbage
//!   gets an alert and is closed, one that stalls is cut at the deadline. rustls bounds
//!   handshake messages to 64 KiB.
//! - *What the unbuffered API does not say* (rustls 0.23): the SNI name and the `tls-exporter`
//!   channel binding are noted during the handshake by hooks in the config
//!   ([`crate::tls::capture`]); the binding is derived once, when the exporter secret is noted,
//!   and kept as its 32 bytes.
//! - *After the handshake* rustls may have something to send on a read (a TLS 1.3 key update
//!   answer, an alert): it is sent without waiting if the socket takes it, else with the next
//!   write.
//!
//! The state (`rustls::server::UnbufferedServerConnection`, `Send`) moves with a hand-off to
//! the user's shard.

use std::cell::RefCell;
use std::io;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{ConnectionState, EncryptError, UnbufferedStatus, WriteTraffic};

use crate::limits::TLS_SENDABLE_BYTES_MAX;
use crate::tls::capture;

/// The most plaintext one TLS record carries (RFC 8446 section 5.1, RFC 5246 section 6.2.1).
pub const RECORD_PLAINTEXT_MAX: usize = 16 * 1024;
/// What sealing adds to a record's plaintext at most: the 5-byte header, an explicit nonce
/// (8, TLS 1.2 AES-GCM), the content type (1, TLS 1.3) and the 16-byte tag, rounded up.
const RECORD_OVERHEAD_MAX: usize = 64;
/// Slices shorter than this are gathered with their neighbours into one record (a copy of a
/// short piece); longer ones are sealed from where they lie.
pub const COALESCE_SLICE_BYTES: usize = 1024;
/// The `tls-exporter` label (RFC 9266).
const CHANNEL_BINDING_LABEL: &[u8] = b"EXPORTER-Channel-Binding";

thread_local! {
    /// Gathers runs of short slices into one record (a shard encrypts one response at a time).
    static STAGING: RefCell<Box<[u8]>> =
        RefCell::new(vec![0u8; RECORD_PLAINTEXT_MAX].into_boxed_slice());
}

/// A TLS session over a connection's socket.
pub struct TlsLayer {
    session: UnbufferedServerConnection,
    /// Ciphertext received and not yet processed: between calls, at most the start of one
    /// record. Freed when empty.
    incoming: Vec<u8>,
    /// Plaintext decrypted and not yet drained. Freed when drained.
    plaintext: Vec<u8>,
    /// Records waiting for the socket, from `sent` on. Freed when all are sent.
    outgoing: Vec<u8>,
    sent: usize,
    /// The SNI name of the ClientHello.
    server_name: Option<Box<str>>,
    /// The `tls-exporter` channel binding, once the exporter secret is known.
    binding: Option<[u8; 32]>,
    /// The peer sent close_notify: no more plaintext will come.
    peer_closed: bool,
    /// rustls failed: nothing more is processed (an alert may wait in `outgoing`).
    failed: bool,
}

impl std::fmt::Debug for TlsLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsLayer")
            .field("handshaking", &self.session.is_handshaking())
            .field("incoming", &self.incoming.len())
            .field("plaintext", &self.plaintext.len())
            .field("outgoing", &(self.outgoing.len() - self.sent))
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
    /// A server session that has not seen the ClientHello yet. The SNI name and the channel
    /// binding are only known when `config` has the hooks of [`capture::install`] (every
    /// config of [`crate::tls::TlsConfigs`] has).
    ///
    /// # Errors
    /// The config is unusable (rustls refuses it).
    pub fn new(config: Arc<ServerConfig>) -> Result<TlsLayer, rustls::Error> {
        Ok(TlsLayer {
            session: UnbufferedServerConnection::new(config)?,
            incoming: Vec::new(),
            plaintext: Vec::new(),
            outgoing: Vec::new(),
            sent: 0,
            server_name: None,
            binding: None,
            peer_closed: false,
            failed: false,
        })
    }

    /// True until the handshake is complete.
    #[must_use]
    pub fn is_handshaking(&self) -> bool {
        self.session.is_handshaking()
    }

    /// True when records wait to be sent.
    #[must_use]
    pub fn wants_write(&self) -> bool {
        self.sent < self.outgoing.len()
    }

    /// True once the peer sent close_notify and every plaintext byte before it was taken.
    #[must_use]
    pub fn peer_closed(&self) -> bool {
        self.peer_closed && self.plaintext.is_empty()
    }

    /// Heap bytes this session's own buffers hold now (capacity; rustls's state not counted).
    #[must_use]
    pub fn buffered_bytes(&self) -> usize {
        self.incoming.capacity() + self.plaintext.capacity() + self.outgoing.capacity()
    }

    /// Takes received ciphertext and processes every complete record in it: handshake
    /// messages are answered (the answer waits in the layer, see [`TlsLayer::wants_write`]),
    /// plaintext waits until [`TlsLayer::drain_plaintext`].
    ///
    /// # Errors
    /// The peer broke the protocol (garbage, a bad record, a failed handshake): an alert is
    /// queued to send before the connection is closed.
    pub fn receive(&mut self, ciphertext: &[u8]) -> io::Result<()> {
        if self.failed {
            return Err(invalid_data(rustls::Error::General("the TLS session failed".to_owned())));
        }
        if self.peer_closed {
            // Nothing after close_notify is read (rustls would leave it in `incoming`).
            return Ok(());
        }
        self.incoming.extend_from_slice(ciphertext);
        let result = self.process();
        self.settle_incoming();
        result.map_err(|error| self.fail(error))
    }

    /// Hands every decrypted plaintext byte to `sink`; returns how many.
    ///
    /// # Errors
    /// None today (kept for the callers' sake: the plaintext was decrypted by
    /// [`TlsLayer::receive`], which reports rustls's errors).
    pub fn drain_plaintext(&mut self, sink: &mut impl FnMut(&[u8])) -> io::Result<usize> {
        let len = self.plaintext.len();
        if len > 0 {
            sink(&self.plaintext);
            self.plaintext = Vec::new();
        }
        Ok(len)
    }

    /// Encrypts as much of `slices` as [`TLS_SENDABLE_BYTES_MAX`] of waiting records allows
    /// (at least one record's worth when none wait); returns the plaintext bytes taken.
    ///
    /// # Errors
    /// The session cannot send (still handshaking, closed, failed, or its key is exhausted).
    pub fn encrypt(&mut self, slices: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let room = TLS_SENDABLE_BYTES_MAX.saturating_sub(self.outgoing.len() - self.sent);
        if room == 0 || slices.iter().all(|slice| slice.is_empty()) {
            return Ok(0);
        }
        let result = self.with_write_traffic(|traffic, outgoing| {
            seal_slices(traffic, outgoing, slices, room.max(RECORD_PLAINTEXT_MAX))
        });
        result.map_err(|error| match error {
            Failure::Tls(error) => self.fail(error),
            Failure::Io(error) => error,
        })
    }

    /// Writes waiting records into `socket` (which may refuse with `WouldBlock`).
    ///
    /// # Errors
    /// The socket's error; `WriteZero` if it takes nothing.
    pub fn write_records(&mut self, socket: &mut dyn io::Write) -> io::Result<usize> {
        let pending = &self.outgoing[self.sent..];
        if pending.is_empty() {
            return Ok(0);
        }
        let written = socket.write(pending)?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        self.sent += written;
        if self.sent == self.outgoing.len() {
            self.outgoing = Vec::new();
            self.sent = 0;
        }
        Ok(written)
    }

    /// Takes every waiting record out of the layer, for a write that parks until the socket
    /// takes them all (no copy of the records, unlike [`TlsLayer::write_records`] into a
    /// `Vec`).
    #[must_use]
    pub fn take_records(&mut self) -> Vec<u8> {
        let mut records = std::mem::take(&mut self.outgoing);
        records.drain(..self.sent);
        self.sent = 0;
        records
    }

    /// Queues a close_notify alert (sent by the next flush). Nothing is queued while the
    /// handshake runs or after a failure (the connection just closes).
    pub fn close_notify(&mut self) {
        if self.failed || self.session.is_handshaking() {
            return;
        }
        let _ = self.with_write_traffic(|traffic, outgoing| {
            seal_with(outgoing, 0, |buffer| traffic.queue_close_notify(buffer))
                .map_err(Failure::from)
        });
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
            server_name: self.server_name.as_deref().map(str::to_owned),
            alpn: self.session.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned()),
        }
    }

    /// The `tls-exporter` channel binding (RFC 9266): 32 bytes exported with the label
    /// `EXPORTER-Channel-Binding` and no context. `None` before the handshake is complete or
    /// on TLS 1.2 (RFC 9266 binds TLS 1.3; a 1.2 session without extended master secret
    /// must not use it, and the -PLUS mechanisms are then not offered), and when the config
    /// lacks the hooks of [`capture::install`].
    #[must_use]
    pub fn channel_binding(&self) -> Option<[u8; 32]> {
        if self.session.is_handshaking() {
            return None;
        }
        self.binding
    }

    /// The client's certificate chain, end entity first, when it sent one (and the config
    /// verified it).
    #[must_use]
    pub fn client_certificates(&self) -> Option<&[rustls::pki_types::CertificateDer<'static>]> {
        self.session.peer_certificates()
    }

    /// Runs rustls over `incoming` until it needs more input: answers go to `outgoing`,
    /// plaintext to `plaintext`. During the handshake, what the config's hooks note is taken.
    fn process(&mut self) -> Result<(), rustls::Error> {
        let handshaking = self.session.is_handshaking();
        let client_random = if handshaking { client_hello_random(&self.incoming) } else { None };
        if handshaking {
            capture::begin();
        }
        let result = self.process_records();
        if handshaking {
            self.note(capture::take(), client_random);
        }
        result
    }

    /// See [`TlsLayer::process`]; stops when rustls needs more input (a handshake waiting
    /// for the peer, an idle session) or both sides closed.
    fn process_records(&mut self) -> Result<(), rustls::Error> {
        let TlsLayer { session, incoming, plaintext, outgoing, peer_closed, .. } = self;
        loop {
            let UnbufferedStatus { discard, state } = session.process_tls_records(incoming);
            let done = match state {
                Err(error) => {
                    incoming.drain(..discard);
                    return Err(error);
                }
                Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                    while let Some(record) = traffic.next_record() {
                        plaintext.extend_from_slice(record?.payload);
                    }
                    false
                }
                Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                    encode_into(outgoing, &mut encode)
                        .map_err(|error| rustls::Error::General(error.to_string()))?;
                    false
                }
                // The records are in `outgoing`, which the connection sends.
                Ok(ConnectionState::TransmitTlsData(transmit)) => {
                    transmit.done();
                    false
                }
                Ok(ConnectionState::PeerClosed) => {
                    *peer_closed = true;
                    false
                }
                Ok(
                    ConnectionState::Closed
                    | ConnectionState::BlockedHandshake
                    | ConnectionState::WriteTraffic(_),
                ) => true,
                // The configs never accept early data.
                Ok(ConnectionState::ReadEarlyData(_)) => {
                    return Err(rustls::Error::General("unexpected early data".to_owned()));
                }
                Ok(_) => true,
            };
            incoming.drain(..discard);
            if done {
                return Ok(());
            }
        }
    }

    /// Runs rustls until it lets application data be written, then `write` with it.
    fn with_write_traffic<T>(
        &mut self,
        write: impl FnOnce(
            &mut WriteTraffic<'_, ServerConnectionData>,
            &mut Vec<u8>,
        ) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        if self.failed {
            return Err(Failure::Io(cannot_send()));
        }
        // Every complete record was processed on receive; this turns up what rustls queued
        // since (nothing, or a key update) and the state that lets us write.
        let TlsLayer { session, incoming, outgoing, .. } = self;
        loop {
            let UnbufferedStatus { discard, state } = session.process_tls_records(incoming);
            match state.map_err(Failure::Tls)? {
                ConnectionState::WriteTraffic(mut traffic) => {
                    incoming.drain(..discard);
                    return write(&mut traffic, outgoing);
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    encode_into(outgoing, &mut encode)?;
                }
                ConnectionState::TransmitTlsData(transmit) => transmit.done(),
                _ => return Err(Failure::Io(cannot_send())),
            }
            incoming.drain(..discard);
        }
    }

    /// Keeps what the handshake hooks noted.
    fn note(&mut self, noted: capture::Captured, client_random: Option<[u8; 32]>) {
        if noted.hello_seen {
            self.server_name = noted.server_name;
        }
        let Some(secret) = noted.exporter_secret else { return };
        // The secret is this connection's: the hooks ran inside its own rustls call. The
        // client random, when this call saw the ClientHello, must agree all the same.
        if client_random.is_some_and(|random| random != secret.client_random) {
            return;
        }
        let Some(rustls::SupportedCipherSuite::Tls13(suite)) =
            self.session.negotiated_cipher_suite()
        else {
            return;
        };
        let mut binding = [0u8; 32];
        if capture::tls13_export(suite, secret.bytes(), CHANNEL_BINDING_LABEL, &mut binding).is_ok()
        {
            self.binding = Some(binding);
        }
    }

    /// Frees `incoming` when it is empty, and trims it to the partial record it keeps.
    fn settle_incoming(&mut self) {
        if self.incoming.is_empty() {
            self.incoming = Vec::new();
        } else if self.incoming.capacity() > 2 * self.incoming.len() {
            self.incoming.shrink_to_fit();
        }
    }

    /// Marks the session failed after a rustls error and queues the alert rustls prepared.
    fn fail(&mut self, error: rustls::Error) -> io::Error {
        self.failed = true;
        self.plaintext = Vec::new();
        // What rustls queued (its alert last) comes out ahead of any input, so the calls below
        // never parse `incoming` again: a second parse after an error would queue a second
        // fatal alert, which rustls 0.23 asserts against. The buffer handed over is still
        // `incoming`: rustls keeps offsets into it between calls, and another buffer, even an
        // empty one, makes it index out of bounds.
        let TlsLayer { session, incoming, outgoing, .. } = self;
        for _ in 0..QUEUED_ROUNDS_MAX {
            if !session.wants_write() {
                break;
            }
            let UnbufferedStatus { discard, state } = session.process_tls_records(incoming);
            let went_on = match state {
                Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                    encode_into(outgoing, &mut encode).is_ok()
                }
                // Plaintext decrypted before the error: dropped.
                Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                    while traffic.next_record().is_some() {}
                    true
                }
                _ => false,
            };
            incoming.drain(..discard);
            if !went_on {
                break;
            }
        }
        self.incoming = Vec::new();
        invalid_data(error)
    }
}

/// rustls calls spent turning out what it queued before failing (a flight and an alert).
const QUEUED_ROUNDS_MAX: usize = 32;

/// Why a write could not go on.
enum Failure {
    Tls(rustls::Error),
    Io(io::Error),
}

impl From<EncryptError> for Failure {
    fn from(error: EncryptError) -> Failure {
        match error {
            EncryptError::EncryptExhausted => Failure::Io(cannot_send()),
            EncryptError::InsufficientSize(_) => {
                Failure::Io(io::Error::other("TLS record larger than announced"))
            }
        }
    }
}

/// Appends to `outgoing` what `seal` writes, giving it room for `plaintext_len` bytes sealed
/// (more if it asks for more).
fn seal_with(
    outgoing: &mut Vec<u8>,
    plaintext_len: usize,
    mut seal: impl FnMut(&mut [u8]) -> Result<usize, EncryptError>,
) -> Result<usize, EncryptError> {
    let start = outgoing.len();
    outgoing.resize(start + plaintext_len + RECORD_OVERHEAD_MAX, 0);
    let written = match seal(&mut outgoing[start..]) {
        Ok(written) => written,
        Err(EncryptError::InsufficientSize(size)) => {
            outgoing.resize(start + size.required_size, 0);
            match seal(&mut outgoing[start..]) {
                Ok(written) => written,
                Err(error) => {
                    outgoing.truncate(start);
                    return Err(error);
                }
            }
        }
        Err(error) => {
            outgoing.truncate(start);
            return Err(error);
        }
    };
    outgoing.truncate(start + written);
    Ok(written)
}

/// Appends the handshake (or alert) record rustls hands over to `outgoing`.
fn encode_into(
    outgoing: &mut Vec<u8>,
    encode: &mut rustls::unbuffered::EncodeTlsData<'_, ServerConnectionData>,
) -> Result<usize, EncryptError> {
    seal_with(outgoing, 0, |buffer| {
        encode.encode(buffer).map_err(|error| match error {
            rustls::unbuffered::EncodeError::InsufficientSize(size) => {
                EncryptError::InsufficientSize(size)
            }
            // Not reached: each state is encoded once.
            rustls::unbuffered::EncodeError::AlreadyEncoded => EncryptError::EncryptExhausted,
        })
    })
}

/// Seals `slices` into records in `outgoing`, up to about `room` plaintext bytes; returns the
/// plaintext bytes taken. Long slices are sealed from where they lie, a record at a time;
/// runs of short ones are gathered into one record first.
fn seal_slices(
    traffic: &mut WriteTraffic<'_, ServerConnectionData>,
    outgoing: &mut Vec<u8>,
    slices: &[io::IoSlice<'_>],
    room: usize,
) -> Result<usize, Failure> {
    let wanted: usize = slices.iter().map(|slice| slice.len()).sum::<usize>().min(room);
    outgoing.reserve(wanted + wanted.div_ceil(RECORD_PLAINTEXT_MAX) * RECORD_OVERHEAD_MAX);
    let mut seal = |plaintext: &[u8]| -> Result<(), Failure> {
        seal_with(outgoing, plaintext.len(), |buffer| traffic.encrypt(plaintext, buffer))?;
        Ok(())
    };
    STAGING.with(|staging| {
        // One encryption at a time runs on a thread, and `seal` does not re-enter it.
        let mut staging = staging.borrow_mut();
        let mut staged = 0;
        let mut taken = 0;
        'slices: for slice in slices {
            if slice.len() < COALESCE_SLICE_BYTES {
                if taken + staged + slice.len() > room {
                    break;
                }
                if staged + slice.len() > staging.len() {
                    seal(&staging[..staged])?;
                    taken += staged;
                    staged = 0;
                }
                staging[staged..staged + slice.len()].copy_from_slice(slice);
                staged += slice.len();
                continue;
            }
            if staged > 0 {
                seal(&staging[..staged])?;
                taken += staged;
                staged = 0;
            }
            let mut rest: &[u8] = slice;
            while !rest.is_empty() {
                let len = rest.len().min(RECORD_PLAINTEXT_MAX).min(room.saturating_sub(taken));
                if len == 0 {
                    break 'slices;
                }
                seal(&rest[..len])?;
                taken += len;
                rest = &rest[len..];
            }
        }
        if staged > 0 {
            seal(&staging[..staged])?;
            taken += staged;
        }
        Ok(taken)
    })
}

/// The ClientHello's random, when `incoming` starts with a handshake record holding the start
/// of a ClientHello: record header (5), message type and length (4), version (2), random (32).
fn client_hello_random(incoming: &[u8]) -> Option<[u8; 32]> {
    const HANDSHAKE: u8 = 0x16;
    const CLIENT_HELLO: u8 = 0x01;
    let record_len = usize::from(u16::from_be_bytes([*incoming.get(3)?, *incoming.get(4)?]));
    if incoming[0] != HANDSHAKE || record_len < 38 || *incoming.get(5)? != CLIENT_HELLO {
        return None;
    }
    incoming.get(11..43)?.try_into().ok()
}

fn invalid_data(error: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

fn cannot_send() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the TLS session cannot send")
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
        let mut server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .expect("server config");
        crate::tls::capture::install(&mut server);
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
