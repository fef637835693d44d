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

use crate::limits::{READ_CHUNK_BYTES, WRITE_IOVECS_MAX};

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
        Ok(Connection { stream, peer, buffer: vec![0; READ_CHUNK_BYTES] })
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
    /// loses no bytes (glommio reads only when polled to completion).
    ///
    /// # Errors
    /// The socket error (reset by peer, ...).
    pub async fn read(&mut self, timeout: Duration) -> io::Result<ReadOutcome> {
        let Connection { stream, buffer, .. } = self;
        let read = async {
            loop {
                match stream.read(buffer).await {
                    Ok(0) => return Ok(ReadOutcome::Closed),
                    Ok(len) => return Ok(ReadOutcome::Data(len)),
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(error) => return Err(error),
                }
            }
        };
        let deadline = async {
            glommio::timer::sleep(timeout).await;
            Ok(ReadOutcome::TimedOut)
        };
        future::or(read, deadline).await
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
