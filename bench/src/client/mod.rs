//! Minimal async IMAP and LMTP clients over the sans-IO readers in [`crate::wire`]: just what
//! the scenarios send, every read bounded by a timeout.

pub mod imap;
pub mod lmtp;
pub mod tls;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::wire::FrameError;
use tls::Stream;

/// What can go wrong talking to a server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A socket error.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The TLS handshake failed (certificate refused, protocol error, connection lost).
    #[error("TLS handshake: {0}")]
    Tls(std::io::Error),
    /// No response within the timeout.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// The server closed the connection.
    #[error("connection closed by server")]
    Closed,
    /// The server sent something that cannot be framed.
    #[error("framing: {0}")]
    Frame(#[from] FrameError),
    /// The server answered, but not as the protocol allows at this point.
    #[error("unexpected response: {0}")]
    Unexpected(String),
    /// The server refused the command (IMAP NO/BAD, LMTP 4xx/5xx); the connection is usable.
    #[error("refused: {0}")]
    Refused(String),
}

impl ClientError {
    /// True if the connection can go on after this error.
    pub fn is_recoverable(&self) -> bool {
        matches!(self, ClientError::Refused(_))
    }
}

/// Bytes read per `read` call by a busy connection (FETCH bodies, LMTP replies).
pub const READ_CHUNK: usize = 64 * 1024;

/// Bytes read per `read` call by a connection that only waits (IDLE): its responses are short
/// lines, and thousands of idlers must not each keep a 64 KiB buffer (19,000 idlers would
/// hold 1.2 GiB of read buffers in the bench alone).
pub const IDLE_READ_CHUNK: usize = 1024;

/// Connects with a timeout and turns off Nagle (commands are small and latency is measured).
pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, ClientError> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| ClientError::Timeout(timeout))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Reads at most `size` bytes once into `chunk` with a timeout, returning the bytes read
/// (never 0).
pub async fn read_some<'a>(
    stream: &mut Stream,
    chunk: &'a mut Vec<u8>,
    size: usize,
    timeout: Duration,
) -> Result<&'a [u8], ClientError> {
    chunk.resize(size, 0);
    let n = tokio::time::timeout(timeout, stream.read(chunk))
        .await
        .map_err(|_| ClientError::Timeout(timeout))??;
    if n == 0 {
        return Err(ClientError::Closed);
    }
    Ok(&chunk[..n])
}

/// Writes all of `bytes` and flushes: over TLS, records can stay in the TLS layer until a
/// flush, and a command left there would never reach the server.
pub async fn send(stream: &mut Stream, bytes: &[u8]) -> Result<(), ClientError> {
    stream.write_all(bytes).await?;
    stream.flush().await?;
    Ok(())
}

/// Lossy text of a server response, cut short for error messages.
pub fn excerpt(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(200)];
    String::from_utf8_lossy(cut).into_owned()
}
