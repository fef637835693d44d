//! One client socket on a shard: reads with a deadline, and vectored writes of response chunks
//! (owned buffers and slices of mapped spools) without copying them together. The transport is
//! plain TCP or TLS (`conn_tls.rs`, after [`Connection::start_tls`]), with DEFLATE optionally
//! stacked on either (`conn_deflate.rs`, after [`Connection::start_deflate`]: plaintext →
//! deflate → TLS → socket); the protocol sessions see plaintext in every case, through the
//! same calls.
//!
//! glommio's `TcpStream` has no vectored write, so a write first tries `sendmsg` with every
//! pending slice (non-blocking, through `socket2::SockRef`, no `unsafe`); when the socket is
//! full it falls back to glommio's own write of the next slice, which parks the task until the
//! socket is writable, and then tries vectored again.

use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::time::Duration;

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWriteExt};
use glommio::net::TcpStream;

use crate::conn_deflate::DeflateLayer;
use crate::conn_tls::{TlsInfo, TlsLayer};
use crate::limits::{READ_SCRATCH_BYTES, WRITE_IOVECS_MAX};

thread_local! {
    /// The receive buffer of every read on this thread (a shard's connections take turns):
    /// allocated and zeroed once, so a read neither allocates nor clears 16 KiB each time.
    static SCRATCH: RefCell<Box<[u8]>> =
        RefCell::new(vec![0u8; READ_SCRATCH_BYTES].into_boxed_slice());
}

/// What a read produced.
#[derive(Debug)]
pub enum ReadOutcome {
    /// This many bytes are in [`Connection::input`].
    Data(usize),
    /// The peer closed its side.
    Closed,
    /// Nothing arrived before the deadline.
    TimedOut,
}

/// What a connection carried, for its close line in the log; it moves with the hand-off.
#[derive(Clone, Copy, Debug)]
pub struct Traffic {
    /// When the connection was accepted.
    pub opened: std::time::Instant,
    /// Bytes received from the socket (ciphertext on TLS).
    pub bytes_in: u64,
    /// Bytes sent to the socket (ciphertext on TLS).
    pub bytes_out: u64,
}

/// A client connection owned by one shard.
pub struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    buffer: Vec<u8>,
    traffic: Traffic,
    /// The TLS session once one is started (boxed: most of a plain connection's life it is
    /// `None`, and the connection stays small).
    tls: Option<Box<TlsLayer>>,
    /// The DEFLATE layer once COMPRESS started it (boxed for the same reason).
    deflate: Option<Box<DeflateLayer>>,
}

/// Why [`Connection::start_tls`] failed. The connection is unusable afterwards.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The config was refused by rustls.
    #[error("TLS config: {0}")]
    Config(#[from] rustls::Error),
    /// The peer broke the protocol, or the socket failed.
    #[error("TLS handshake: {0}")]
    Io(#[from] io::Error),
    /// The peer closed during the handshake.
    #[error("TLS handshake: the peer closed the connection")]
    Closed,
    /// The handshake did not finish in time.
    #[error("TLS handshake: no progress before the deadline")]
    TimedOut,
}

/// The peer of a connection accepted on a unix-domain socket (it has no IP address).
pub const LOCAL_PEER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

impl Connection {
    /// Wraps an accepted (or handed-over) stream.
    ///
    /// # Errors
    /// The peer address cannot be read (the socket is already dead).
    pub fn new(stream: TcpStream, write_timeout: Duration) -> io::Result<Connection> {
        let peer = stream.peer_addr().map_err(io::Error::from)?;
        // Small request/response exchanges: Nagle plus delayed ACKs would add ~40 ms.
        stream.set_nodelay(true).map_err(io::Error::from)?;
        stream.set_write_timeout(Some(write_timeout)).map_err(io::Error::from)?;
        let traffic = Traffic { opened: std::time::Instant::now(), bytes_in: 0, bytes_out: 0 };
        Ok(Connection { stream, peer, buffer: Vec::new(), traffic, tls: None, deflate: None })
    }

    /// Wraps a stream accepted on a unix-domain listener (`listen::bind_unix`): no
    /// TCP_NODELAY (not a TCP socket) and no peer address; [`Connection::peer`] gives
    /// [`LOCAL_PEER`] (0.0.0.0:0), which logs show for such connections.
    ///
    /// # Errors
    /// The write timeout cannot be set.
    pub fn new_local(stream: TcpStream, write_timeout: Duration) -> io::Result<Connection> {
        stream.set_write_timeout(Some(write_timeout)).map_err(io::Error::from)?;
        let traffic = Traffic { opened: std::time::Instant::now(), bytes_in: 0, bytes_out: 0 };
        let peer = LOCAL_PEER;
        Ok(Connection { stream, peer, buffer: Vec::new(), traffic, tls: None, deflate: None })
    }

    /// Wraps a handed-over stream together with the layers it was carrying: its TLS session
    /// and its DEFLATE layer, if any.
    ///
    /// # Errors
    /// See [`Connection::new`].
    pub fn with_layers(
        stream: TcpStream,
        write_timeout: Duration,
        layers: Layers,
        traffic: Traffic,
    ) -> io::Result<Connection> {
        let mut connection = Connection::new(stream, write_timeout)?;
        connection.tls = layers.tls;
        connection.deflate = layers.deflate;
        if let Some(deflate) = connection.deflate.as_mut() {
            // The shard it came from may still hold this stream in its compressor; this
            // shard's compressor must start afresh for it (see `DeflateLayer::moved`).
            deflate.moved();
        }
        connection.traffic = traffic;
        Ok(connection)
    }

    /// What the connection carried so far, and since when.
    #[must_use]
    pub fn traffic(&self) -> Traffic {
        self.traffic
    }

    /// Logs the connection's end: one line per connection, at the default level, with what
    /// an operator needs (peer, protocol, user, TLS parameters, duration, bytes each way).
    pub fn log_closed(&self, shard: u32, protocol: &'static str, user: Option<&str>) {
        let traffic = self.traffic;
        let tls = self.tls_info();
        tracing::info!(
            shard,
            peer = %self.peer,
            protocol,
            user = user.unwrap_or("-"),
            tls = tls.as_ref().map_or("none", |info| info.version.as_str()),
            cipher = tls.as_ref().map_or("-", |info| info.cipher.as_str()),
            compress = self.deflate.is_some(),
            duration_ms = u64::try_from(traffic.opened.elapsed().as_millis()).unwrap_or(u64::MAX),
            bytes_in = traffic.bytes_in,
            bytes_out = traffic.bytes_out,
            "connection closed"
        );
    }

    /// True once a TLS session runs on this connection.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// True once DEFLATE runs on this connection.
    #[must_use]
    pub fn is_compressed(&self) -> bool {
        self.deflate.is_some()
    }

    /// Starts DEFLATE (RFC 4978) both ways, over TLS if it runs: every byte written from here
    /// on is compressed, every byte read is inflated. Called right after the COMPRESS answer
    /// was written, with no plaintext left unread (the session refused COMPRESS with commands
    /// pipelined behind it, and everything read was fed to it).
    pub fn start_deflate(&mut self) {
        debug_assert!(self.deflate.is_none(), "one DEFLATE layer per connection");
        self.deflate = Some(Box::new(DeflateLayer::new()));
    }

    /// The DEFLATE layer, if any (for measurements).
    #[must_use]
    pub fn deflate(&self) -> Option<&DeflateLayer> {
        self.deflate.as_deref()
    }

    /// The negotiated TLS parameters, for logs.
    #[must_use]
    pub fn tls_info(&self) -> Option<TlsInfo> {
        self.tls.as_ref().map(|tls| tls.info())
    }

    /// The TLS layer (channel binding, client certificate), if any.
    #[must_use]
    pub fn tls(&self) -> Option<&TlsLayer> {
        self.tls.as_deref()
    }

    /// Starts TLS as the server and completes the handshake, waiting at most `timeout` for the
    /// peer at each step and `deadline` in all. Called before any plaintext is read (implicit
    /// TLS) or right after the STARTTLS answer was written; bytes the peer sent before (a
    /// pipelined command after STARTTLS) were already taken by the session, which discards
    /// them, and nothing read from the socket from here on is taken for plaintext unless
    /// TLS decrypted it.
    ///
    /// # Errors
    /// See [`HandshakeError`]; a protocol error has been answered with an alert.
    pub async fn start_tls(
        &mut self,
        config: std::sync::Arc<rustls::ServerConfig>,
        deadline: std::time::Instant,
    ) -> Result<(), HandshakeError> {
        debug_assert!(self.tls.is_none(), "one TLS session per connection");
        self.tls = Some(Box::new(TlsLayer::new(config)?));
        loop {
            self.flush_tls().await?;
            let tls = self.tls.as_mut().expect("set above");
            if !tls.is_handshaking() {
                break;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(HandshakeError::TimedOut);
            }
            self.set_read_timeout(left)?;
            let received = std::future::poll_fn(|cx| self.poll_read_ciphertext(cx)).await;
            match received {
                Ok(ReadOutcome::Data(_)) => {}
                Ok(ReadOutcome::Closed) => return Err(HandshakeError::Closed),
                Ok(ReadOutcome::TimedOut) => return Err(HandshakeError::TimedOut),
                Err(error) => {
                    // An alert may be waiting: send it if the socket takes it now.
                    let _ = self.flush_tls_nonblocking();
                    return Err(HandshakeError::Io(error));
                }
            }
        }
        // Session tickets and the like follow the handshake.
        self.flush_tls().await?;
        Ok(())
    }

    /// The remote address.
    #[must_use]
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The underlying stream (for the hand-off, which duplicates its descriptor).
    #[must_use]
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// The bytes of the last [`ReadOutcome::Data`].
    #[must_use]
    pub fn input(&self, len: usize) -> &[u8] {
        &self.buffer[..len]
    }

    /// Reads what is available, waiting at most `timeout`, into [`Connection::input`].
    /// Cancel-safe: dropping the future loses no bytes (glommio receives only when a read is
    /// polled to completion).
    ///
    /// The bytes are copied into a buffer of their size, kept until the next read; callers that
    /// consume the bytes at once use [`Connection::read_with`] or
    /// [`Connection::poll_read_with`], which allocate nothing.
    ///
    /// # Errors
    /// The socket error (reset by peer, ...).
    pub async fn read(&mut self, timeout: Duration) -> io::Result<ReadOutcome> {
        // The previous read's bytes go first: a waiting connection holds no buffer.
        self.buffer = Vec::new();
        let mut buffer = Vec::new();
        let outcome = self.read_with(timeout, |bytes| buffer.extend_from_slice(bytes)).await;
        self.buffer = buffer;
        outcome
    }

    /// Reads what is available, waiting at most `timeout` without input, and hands the bytes
    /// to `sink` before returning. Cancel-safe like [`Connection::read`].
    ///
    /// # Errors
    /// The socket error (reset by peer, ...).
    pub async fn read_with(
        &mut self,
        timeout: Duration,
        mut sink: impl FnMut(&[u8]),
    ) -> io::Result<ReadOutcome> {
        self.set_read_timeout(timeout)?;
        std::future::poll_fn(|cx| self.poll_read_with(cx, &mut sink)).await
    }

    /// Sets the deadline of the reads that follow: a read fails with
    /// [`ReadOutcome::TimedOut`] when nothing arrived for this long.
    ///
    /// # Errors
    /// The socket is unusable.
    pub fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        if self.stream.read_timeout() != Some(timeout) {
            // Zero is refused by glommio; a zero timeout means "already late" anyway.
            let timeout = timeout.max(Duration::from_millis(1));
            self.stream.set_read_timeout(Some(timeout)).map_err(io::Error::from)?;
        }
        Ok(())
    }

    /// One poll of a read: what is available goes to `sink`. For futures of the caller's own
    /// that wait on the socket and on other events at once, in one small state.
    ///
    /// A waiting read owns no buffer: glommio's `poll_read` keeps nothing of the caller's
    /// buffer while it waits (it parks on a readiness poll), so each poll receives into the
    /// thread's one scratch buffer ([`READ_SCRATCH_BYTES`]) and gives `sink` what came.
    /// An idle connection (most of a mail server's connections) thus costs no read memory, and
    /// a command costs one `recv`. The deadline ([`Connection::set_read_timeout`]) is the
    /// stream's own read timer (no timer future): it runs from the first wait after the last
    /// bytes received, so wake-ups that are not input (IDLE notifications) do not extend it.
    pub fn poll_read_with(
        &mut self,
        cx: &mut Context<'_>,
        sink: &mut impl FnMut(&[u8]),
    ) -> Poll<io::Result<ReadOutcome>> {
        if self.deflate.is_some() {
            return self.poll_read_inflated(cx, sink);
        }
        self.poll_read_transport(cx, sink)
    }

    /// The DEFLATE side of [`Connection::poll_read_with`]: what the layer can inflate goes
    /// first (at most a read's worth); otherwise the transport below (TLS or plain) is read
    /// and its bytes given to the layer, until some plaintext comes.
    fn poll_read_inflated(
        &mut self,
        cx: &mut Context<'_>,
        sink: &mut impl FnMut(&[u8]),
    ) -> Poll<io::Result<ReadOutcome>> {
        // Out of `self` while the transport is read into it; put back on every path.
        let mut deflate = self.deflate.take().expect("called with DEFLATE only");
        let polled = loop {
            match deflate.inflate(sink) {
                Ok(0) => {}
                Ok(inflated) => break Poll::Ready(Ok(ReadOutcome::Data(inflated))),
                Err(error) => break Poll::Ready(Err(error)),
            }
            match self.poll_read_transport(cx, &mut |bytes| deflate.receive(bytes)) {
                Poll::Ready(Ok(ReadOutcome::Data(_))) => {}
                other => break other,
            }
        };
        self.deflate = Some(deflate);
        polled
    }

    /// [`Connection::poll_read_with`] below DEFLATE: plaintext TCP or TLS.
    fn poll_read_transport(
        &mut self,
        cx: &mut Context<'_>,
        sink: &mut impl FnMut(&[u8]),
    ) -> Poll<io::Result<ReadOutcome>> {
        if self.tls.is_some() {
            return self.poll_read_plaintext(cx, sink);
        }
        SCRATCH.with(|scratch| {
            // One poll at a time runs on a thread, and `sink` does not poll: the borrow is free.
            let mut scratch = scratch.borrow_mut();
            let received = loop {
                match Pin::new(&mut self.stream).poll_read(cx, &mut scratch[..]) {
                    Poll::Ready(Err(error)) if error.kind() == io::ErrorKind::Interrupted => {}
                    Poll::Ready(received) => break received,
                    Poll::Pending => return Poll::Pending,
                }
            };
            Poll::Ready(match received {
                Ok(0) => Ok(ReadOutcome::Closed),
                Ok(len) => {
                    self.traffic.bytes_in += len as u64;
                    sink(&scratch[..len]);
                    Ok(ReadOutcome::Data(len))
                }
                Err(error) if error.kind() == io::ErrorKind::TimedOut => Ok(ReadOutcome::TimedOut),
                Err(error) => Err(error),
            })
        })
    }

    /// The TLS side of [`Connection::poll_read_with`]: plaintext rustls decrypted earlier goes
    /// first; otherwise ciphertext is read and decrypted until some plaintext comes (a record
    /// may arrive in pieces, and not every record carries plaintext).
    fn poll_read_plaintext(
        &mut self,
        cx: &mut Context<'_>,
        sink: &mut impl FnMut(&[u8]),
    ) -> Poll<io::Result<ReadOutcome>> {
        loop {
            let tls = self.tls.as_mut().expect("called with TLS only");
            let delivered = match tls.drain_plaintext(sink) {
                Ok(delivered) => delivered,
                Err(error) => return Poll::Ready(Err(error)),
            };
            if delivered > 0 {
                return Poll::Ready(Ok(ReadOutcome::Data(delivered)));
            }
            if tls.peer_closed() {
                return Poll::Ready(Ok(ReadOutcome::Closed));
            }
            match self.poll_read_ciphertext(cx) {
                Poll::Ready(Ok(ReadOutcome::Data(_))) => {
                    // rustls may have an answer to send (a key update, an alert).
                    if let Err(error) = self.flush_tls_nonblocking() {
                        return Poll::Ready(Err(error));
                    }
                }
                Poll::Ready(other) => {
                    if other.is_err() {
                        let _ = self.flush_tls_nonblocking();
                    }
                    return Poll::Ready(other);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Reads ciphertext from the socket into the thread's scratch buffer and gives it to the
    /// TLS layer. `Data(n)`: `n` bytes of ciphertext were taken (maybe no plaintext yet).
    fn poll_read_ciphertext(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<ReadOutcome>> {
        let Connection { stream, tls, traffic, .. } = self;
        let tls = tls.as_mut().expect("called with TLS only");
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let received = loop {
                match Pin::new(&mut *stream).poll_read(cx, &mut scratch[..]) {
                    Poll::Ready(Err(error)) if error.kind() == io::ErrorKind::Interrupted => {}
                    Poll::Ready(received) => break received,
                    Poll::Pending => return Poll::Pending,
                }
            };
            Poll::Ready(match received {
                Ok(0) => Ok(ReadOutcome::Closed),
                Ok(len) => {
                    traffic.bytes_in += len as u64;
                    tls.receive(&scratch[..len]).map(|()| ReadOutcome::Data(len))
                }
                Err(error) if error.kind() == io::ErrorKind::TimedOut => Ok(ReadOutcome::TimedOut),
                Err(error) => Err(error),
            })
        })
    }

    /// Sends the records rustls has waiting, parking until the socket takes them all.
    async fn flush_tls(&mut self) -> io::Result<()> {
        if self.flush_tls_nonblocking()? {
            return Ok(());
        }
        // The socket is full: take the rest out of rustls (at most its buffer limit) and let
        // glommio park this task until the socket takes it.
        let rest = self.tls.as_mut().map(|tls| tls.take_records()).unwrap_or_default();
        self.stream.write_all(&rest).await?;
        self.traffic.bytes_out += rest.len() as u64;
        Ok(())
    }

    /// Sends waiting records while the socket takes them without blocking. True when nothing
    /// is left to send.
    fn flush_tls_nonblocking(&mut self) -> io::Result<bool> {
        let Connection { stream, tls, traffic, .. } = self;
        let Some(tls) = tls.as_mut() else { return Ok(true) };
        let mut socket = NonBlocking(socket2::SockRef::from(&*stream));
        while tls.wants_write() {
            match tls.write_records(&mut socket) {
                Ok(sent) => traffic.bytes_out += sent as u64,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(error) => return Err(error),
            }
        }
        Ok(true)
    }

    /// Writes one buffer completely.
    ///
    /// # Errors
    /// The socket error, or `TimedOut` when the peer stops reading.
    pub async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_vectored_all(&[bytes]).await
    }

    /// Writes every slice, in order, completely; vectored where the socket allows.
    ///
    /// # Errors
    /// The socket error, or `TimedOut` when the peer stops reading.
    pub async fn write_vectored_all(&mut self, slices: &[&[u8]]) -> io::Result<()> {
        let mut cursor = Cursor { index: 0, offset: 0 };
        cursor.skip_empty(slices);
        if self.deflate.is_some() {
            return self.write_deflated(slices, cursor).await;
        }
        self.write_transport(slices, cursor).await
    }

    /// The DEFLATE side of [`Connection::write_vectored_all`]: compresses the slices a chunk
    /// at a time (each ending with a sync flush, so the client can decode all of it) and
    /// writes each chunk's compressed bytes to the transport below before compressing more.
    /// An empty write sends nothing (not even a flush marker).
    async fn write_deflated(&mut self, slices: &[&[u8]], mut cursor: Cursor) -> io::Result<()> {
        while cursor.index < slices.len() {
            let mut pending: Vec<&[u8]> = Vec::with_capacity(slices.len() - cursor.index);
            pending.push(&slices[cursor.index][cursor.offset..]);
            pending.extend(slices[cursor.index + 1..].iter().filter(|s| !s.is_empty()).copied());
            let mut compressed = Vec::new();
            let deflate = self.deflate.as_mut().expect("called with DEFLATE only");
            let taken = deflate.compress(&pending, &mut compressed)?;
            cursor.advance(slices, taken);
            let mut below = Cursor { index: 0, offset: 0 };
            below.skip_empty(&[&compressed]);
            self.write_transport(&[&compressed], below).await?;
        }
        Ok(())
    }

    /// [`Connection::write_vectored_all`] below DEFLATE: plaintext TCP or TLS.
    async fn write_transport(&mut self, slices: &[&[u8]], mut cursor: Cursor) -> io::Result<()> {
        if self.tls.is_some() {
            return self.write_tls(slices, cursor).await;
        }
        while cursor.index < slices.len() {
            let sent = match self.send_vectored_nonblocking(slices, &cursor) {
                Ok(sent) => sent,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => 0,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    // Park until writable; glommio writes part of this slice when it is.
                    let slice = &slices[cursor.index][cursor.offset..];
                    self.stream.write(slice).await?
                }
                Err(error) => return Err(error),
            };
            self.traffic.bytes_out += sent as u64;
            cursor.advance(slices, sent);
        }
        Ok(())
    }

    /// The TLS side of [`Connection::write_vectored_all`]: encrypts the slices from where they
    /// lie, a record buffer at a time, sending each buffer before encrypting more.
    async fn write_tls(&mut self, slices: &[&[u8]], mut cursor: Cursor) -> io::Result<()> {
        loop {
            self.flush_tls().await?;
            if cursor.index >= slices.len() {
                return Ok(());
            }
            let iovecs = cursor.iovecs(slices);
            let tls = self.tls.as_mut().expect("called with TLS only");
            let taken = tls.encrypt(&iovecs)?;
            cursor.advance(slices, taken);
        }
    }

    fn send_vectored_nonblocking(&self, slices: &[&[u8]], cursor: &Cursor) -> io::Result<usize> {
        let iovecs = cursor.iovecs(slices);
        let socket = socket2::SockRef::from(&self.stream);
        socket.send_vectored_with_flags(&iovecs, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
    }

    /// Shuts the write side so the peer sees EOF after everything written (after a TLS
    /// close_notify, on TLS).
    pub async fn close(mut self) {
        if let Some(tls) = self.tls.as_mut() {
            tls.close_notify();
            // The peer may already be gone; the socket is closed either way.
            let _ = self.flush_tls().await;
        }
        let mut stream = self.stream;
        // The peer may already be gone; nothing useful can be done about a failed close.
        let _ = stream.close().await;
    }

    /// Gives the stream back, with its layers and traffic (for the hand-off: a compressed
    /// session moves after UNAUTHENTICATE and a login as a user of another shard).
    #[must_use]
    pub fn into_parts(self) -> (TcpStream, Layers, Traffic) {
        (self.stream, Layers { tls: self.tls, deflate: self.deflate }, self.traffic)
    }
}

/// The layers a connection runs over its socket, which move with it between shards.
#[derive(Debug, Default)]
pub struct Layers {
    /// Its TLS session.
    pub tls: Option<Box<TlsLayer>>,
    /// Its DEFLATE layer (COMPRESS).
    pub deflate: Option<Box<DeflateLayer>>,
}

/// A socket as an `io::Write` that never blocks (`WouldBlock` when full), for rustls to write
/// its records into.
struct NonBlocking<'a>(socket2::SockRef<'a>);

impl io::Write for NonBlocking<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(bytes)])
    }

    fn write_vectored(&mut self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.send_vectored_with_flags(slices, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Position inside a list of slices being written.
struct Cursor {
    index: usize,
    offset: usize,
}

impl Cursor {
    /// The unsent part of `slices` from here, at most [`WRITE_IOVECS_MAX`] slices.
    fn iovecs<'s>(&self, slices: &'s [&[u8]]) -> Vec<IoSlice<'s>> {
        let mut iovecs: Vec<IoSlice<'_>> = Vec::with_capacity(WRITE_IOVECS_MAX);
        iovecs.push(IoSlice::new(&slices[self.index][self.offset..]));
        for slice in slices[self.index + 1..].iter().filter(|s| !s.is_empty()) {
            if iovecs.len() == WRITE_IOVECS_MAX {
                break;
            }
            iovecs.push(IoSlice::new(slice));
        }
        iovecs
    }

    fn advance(&mut self, slices: &[&[u8]], mut sent: usize) {
        while sent > 0 {
            let left = slices[self.index].len() - self.offset;
            if sent < left {
                self.offset += sent;
                return;
            }
            sent -= left;
            self.index += 1;
            self.offset = 0;
        }
        self.skip_empty(slices);
    }

    fn skip_empty(&mut self, slices: &[&[u8]]) {
        while self.index < slices.len() && slices[self.index].len() == self.offset {
            self.index += 1;
            self.offset = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A connected pair: the shard side as a `Connection`, the client side as a std socket.
    async fn pair() -> (Connection, std::net::TcpStream) {
        let listener = glommio::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let client = std::net::TcpStream::connect(address).expect("connect");
        let stream = listener.accept().await.expect("accept");
        let connection = Connection::new(stream, Duration::from_secs(5)).expect("connection");
        (connection, client)
    }

    #[test]
    fn reads_feed_the_sink_and_time_out_without_input() {
        crate::testutil::executor().run(async {
            let (mut connection, mut client) = pair().await;
            client.write_all(b"a NOOP\r\n").expect("client write");
            let mut seen = Vec::new();
            let outcome = connection
                .read_with(Duration::from_secs(5), |bytes| seen.extend_from_slice(bytes))
                .await
                .expect("read");
            assert!(matches!(outcome, ReadOutcome::Data(8)), "{outcome:?}");
            assert_eq!(seen, b"a NOOP\r\n");
            let outcome = connection
                .read_with(Duration::from_millis(50), |_| panic!("no input was sent"))
                .await
                .expect("a timeout is an outcome, not an error");
            assert!(matches!(outcome, ReadOutcome::TimedOut), "{outcome:?}");
            drop(client);
        });
    }

    #[test]
    fn an_abandoned_wait_loses_no_bytes_and_eof_is_closed() {
        crate::testutil::executor().run(async {
            let (mut connection, mut client) = pair().await;
            let mut seen = Vec::new();
            // A wait that something else ends first (as an IDLE wake-up does).
            let abandoned = futures_lite::future::poll_once(std::future::poll_fn(|cx| {
                connection.poll_read_with(cx, &mut |bytes: &[u8]| seen.extend_from_slice(bytes))
            }))
            .await;
            assert!(abandoned.is_none(), "nothing to read yet");
            client.write_all(b"DONE\r\n").expect("client write");
            drop(client);
            let outcome = connection
                .read_with(Duration::from_secs(5), |bytes| seen.extend_from_slice(bytes))
                .await
                .expect("read");
            assert!(matches!(outcome, ReadOutcome::Data(6)), "{outcome:?}");
            assert_eq!(seen, b"DONE\r\n");
            let outcome = connection.read(Duration::from_secs(5)).await.expect("read");
            assert!(matches!(outcome, ReadOutcome::Closed), "{outcome:?}");
        });
    }

    #[test]
    fn cursor_walks_slices_and_skips_empty_ones() {
        let slices: [&[u8]; 4] = [b"abc", b"", b"de", b"f"];
        let mut cursor = Cursor { index: 0, offset: 0 };
        cursor.advance(&slices, 2);
        assert_eq!((cursor.index, cursor.offset), (0, 2));
        cursor.advance(&slices, 1);
        assert_eq!((cursor.index, cursor.offset), (2, 0), "empty slice skipped");
        cursor.advance(&slices, 3);
        assert_eq!(cursor.index, 4);
    }
}
