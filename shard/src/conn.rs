//! One client socket on a shard: reads with a deadline, and vectored writes of response chunks
//! (owned buffers and slices of mapped spools) without copying them together.
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

/// A client connection owned by one shard.
pub struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    buffer: Vec<u8>,
}

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
        Ok(Connection { stream, peer, buffer: Vec::new() })
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
                    sink(&scratch[..len]);
                    Ok(ReadOutcome::Data(len))
                }
                Err(error) if error.kind() == io::ErrorKind::TimedOut => Ok(ReadOutcome::TimedOut),
                Err(error) => Err(error),
            })
        })
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
            cursor.advance(slices, sent);
        }
        Ok(())
    }

    fn send_vectored_nonblocking(&self, slices: &[&[u8]], cursor: &Cursor) -> io::Result<usize> {
        let mut iovecs: Vec<IoSlice<'_>> = Vec::with_capacity(WRITE_IOVECS_MAX);
        iovecs.push(IoSlice::new(&slices[cursor.index][cursor.offset..]));
        for slice in slices[cursor.index + 1..].iter().filter(|s| !s.is_empty()) {
            if iovecs.len() == WRITE_IOVECS_MAX {
                break;
            }
            iovecs.push(IoSlice::new(slice));
        }
        let socket = socket2::SockRef::from(&self.stream);
        socket.send_vectored_with_flags(&iovecs, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
    }

    /// Shuts the write side so the peer sees EOF after everything written.
    pub async fn close(self) {
        let mut stream = self.stream;
        // The peer may already be gone; nothing useful can be done about a failed close.
        let _ = stream.close().await;
    }

    /// Gives the stream back (for the hand-off).
    #[must_use]
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }
}

/// Position inside a list of slices being written.
struct Cursor {
    index: usize,
    offset: usize,
}

impl Cursor {
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
