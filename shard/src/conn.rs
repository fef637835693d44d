//! One client socket on a shard: reads with a deadline, and vectored writes of response chunks
//! (owned buffers and slices of mapped spools) without copying them together.
//!
//! glommio's `TcpStream` has no vectored write, so a write first tries `sendmsg` with every
//! pending slice (non-blocking, through `socket2::SockRef`, no `unsafe`); when the socket is
//! full it falls back to glommio's own write of the next slice, which parks the task until the
//! socket is writable, and then tries vectored again.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::time::Duration;

use futures_lite::future;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use crate::limits::{READ_CHUNK_BYTES, READ_PROBE_BYTES, WRITE_IOVECS_MAX};

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
        stream
            .set_write_timeout(Some(write_timeout))
            .map_err(io::Error::from)?;
        Ok(Connection {
            stream,
            peer,
            buffer: Vec::new(),
        })
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

    /// Reads what is available, waiting at most `timeout`. Cancel-safe: dropping the future
    /// loses no bytes (glommio receives only when a read is polled to completion).
    ///
    /// An idle connection holds no heap buffer: the wait is a read into a small array inside
    /// the future ([`READ_PROBE_BYTES`]), which glommio parks on a buffer-less poll. Only when
    /// that fills up is a [`READ_CHUNK_BYTES`] buffer allocated, and the rest of what is
    /// already queued is taken without waiting. Idle connections are most of a mail server's
    /// connections, so this is what bounds memory per connection.
    ///
    /// # Errors
    /// The socket error (reset by peer, ...).
    pub async fn read(&mut self, timeout: Duration) -> io::Result<ReadOutcome> {
        self.buffer = Vec::new();
        let mut probe = [0u8; READ_PROBE_BYTES];
        let stream = &mut self.stream;
        let first = future::or(
            async { read_retrying(stream, &mut probe).await.map(Some) },
            async {
                glommio::timer::sleep(timeout).await;
                Ok(None)
            },
        )
        .await?;
        let len = match first {
            None => return Ok(ReadOutcome::TimedOut),
            Some(0) => return Ok(ReadOutcome::Closed),
            Some(len) => len,
        };
        self.buffer.extend_from_slice(&probe[..len]);
        if len == probe.len() {
            // More may be queued: take what is there now, without waiting for more.
            self.buffer.resize(len + READ_CHUNK_BYTES, 0);
            let more = future::poll_once(read_retrying(&mut self.stream, &mut self.buffer[len..]));
            let extra = match more.await {
                Some(Ok(extra)) => extra,
                // Pending: nothing more yet. An error or EOF shows again at the next read.
                None | Some(Err(_)) => 0,
            };
            self.buffer.truncate(len + extra);
        }
        Ok(ReadOutcome::Data(self.buffer.len()))
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
        let mut cursor = Cursor {
            index: 0,
            offset: 0,
        };
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

/// A read that retries when interrupted by a signal.
async fn read_retrying(stream: &mut TcpStream, buffer: &mut [u8]) -> io::Result<usize> {
    loop {
        match stream.read(buffer).await {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            result => return result,
        }
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

    #[test]
    fn cursor_walks_slices_and_skips_empty_ones() {
        let slices: [&[u8]; 4] = [b"abc", b"", b"de", b"f"];
        let mut cursor = Cursor {
            index: 0,
            offset: 0,
        };
        cursor.advance(&slices, 2);
        assert_eq!((cursor.index, cursor.offset), (0, 2));
        cursor.advance(&slices, 1);
        assert_eq!((cursor.index, cursor.offset), (2, 0), "empty slice skipped");
        cursor.advance(&slices, 3);
        assert_eq!(cursor.index, 4);
    }
}
