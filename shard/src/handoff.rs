//! Moving a live TCP connection from the shard that accepted it to its user's home shard.
//!
//! A glommio `TcpStream` is bound to the executor that made it (its readiness sources live in
//! that shard's io_uring), so the socket itself cannot be sent. What moves is a duplicate of
//! its descriptor: [`detach`] duplicates the descriptor (`F_DUPFD_CLOEXEC`, through
//! `socket2::SockRef::try_clone`) and then drops the source shard's stream, which closes only
//! the original descriptor; the kernel socket, with any bytes not yet read, stays open through
//! the duplicate. The duplicate travels as an owned `socket2::Socket` (`Send`) and [`attach`]
//! rebuilds a `TcpStream` on the target shard with glommio's safe `From<socket2::Socket>`.
//!
//! This is the room the design reserves for `unsafe` in this crate. The hand-off needs none,
//! because socket2 (the same 0.4 release glommio uses) does the descriptor work behind safe
//! calls; [`adopt_listener`] needs one block, because glommio builds a listener from a
//! descriptor only through `FromRawFd`, and so does [`ring_file`], which hands a duplicate of a
//! store file's descriptor to glommio for a flush round's `fdatasync` on the ring.
//! Invariants the hand-off relies on:
//! - no read or write future on the source stream is alive when [`detach`] runs (the caller
//!   owns the `Connection` by value, so the borrow checker guarantees it);
//! - glommio reads only with non-blocking `recv` when a read is polled, so no received bytes
//!   sit in a glommio buffer: everything unread is still in the kernel socket;
//! - bytes the session already received travel inside the `Send` session itself.

#![allow(unsafe_code)]

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use std::os::unix::io::{FromRawFd, IntoRawFd};

use glommio::net::{TcpListener, TcpStream};

use crate::conn::{Connection, Layers, Traffic};

/// A connection between two shards: the socket as an owned, `Send` descriptor.
#[derive(Debug)]
pub struct DetachedSocket {
    socket: socket2::Socket,
    peer: SocketAddr,
    /// The connection's TLS session and DEFLATE layer, if it runs them: they move with the
    /// socket.
    layers: Layers,
    /// What it carried so far (for its close line).
    traffic: Traffic,
}

impl DetachedSocket {
    /// The remote address of the connection.
    #[must_use]
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }
}

/// A connection that could not be detached: duplicating its descriptor failed (EMFILE when
/// the process is out of file descriptors). The connection is still whole and usable.
pub struct DetachError {
    /// The connection, as it was.
    pub connection: Connection,
    /// Why the duplicate failed.
    pub error: io::Error,
}

impl std::fmt::Debug for DetachError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DetachError({}, {})", self.connection.peer(), self.error)
    }
}

/// Takes a connection off this shard.
///
/// # Errors
/// Duplicating the descriptor failed; the connection comes back so the caller can still
/// answer the client (see [`DetachError`]).
pub fn detach(connection: Connection) -> Result<DetachedSocket, Box<DetachError>> {
    let peer = connection.peer();
    let socket = match socket2::SockRef::from(connection.stream()).try_clone() {
        Ok(socket) => socket,
        Err(error) => return Err(Box::new(DetachError { connection, error })),
    };
    // Dropping the stream closes the original descriptor only; the socket lives on in `socket`.
    let (stream, layers, traffic) = connection.into_parts();
    drop(stream);
    Ok(DetachedSocket { socket, peer, layers, traffic })
}

/// Puts a detached connection on the current shard, with its TLS session and DEFLATE layer if
/// it had them.
///
/// # Errors
/// The socket died meanwhile (see [`Connection::new`]).
pub fn attach(detached: DetachedSocket, write_timeout: Duration) -> io::Result<Connection> {
    let DetachedSocket { socket, layers, traffic, .. } = detached;
    Connection::with_layers(TcpStream::from(socket), write_timeout, layers, traffic)
}

/// Hands a descriptor of a store file (or directory) to glommio, so that its flush round's
/// `fdatasync` is submitted through the shard's io_uring (`commit.rs`). The file owns the
/// descriptor and closes it (through the ring) when closed or dropped.
#[must_use]
pub(crate) fn ring_file(fd: std::os::fd::OwnedFd) -> glommio::io::BufferedFile {
    let fd = fd.into_raw_fd();
    // SAFETY: `fd` comes from `into_raw_fd` of an `OwnedFd`, so it is open and nothing else
    // owns it: the glommio file becomes its only owner and closes it when dropped.
    unsafe { glommio::io::BufferedFile::from_raw_fd(fd) }
}

/// Hands a bound, listening socket to glommio. The caller keeps a duplicate of the descriptor
/// (`try_clone`) to shut the socket down at stop: glommio's listener has no descriptor access,
/// and closing it is not enough (see `listen.rs`, "Stopping").
#[must_use]
pub fn adopt_listener(socket: socket2::Socket) -> TcpListener {
    let fd = socket.into_raw_fd();
    // SAFETY: `fd` comes from `into_raw_fd` of an open, bound, listening TCP socket that this
    // function owned, so it is valid and nothing else owns it: the listener becomes its only
    // owner and closes it when dropped. (The caller's duplicate is another descriptor.)
    unsafe { TcpListener::from_raw_fd(fd) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glommio::channels::shared_channel;
    use std::io::{Read, Write};

    /// A connection accepted on one executor, with unread bytes in the kernel, moves to another
    /// executor on another thread, which reads those bytes and answers on the same socket.
    #[test]
    fn a_live_socket_moves_between_executors_without_losing_bytes() {
        let (sender, receiver) = shared_channel::new_bounded::<DetachedSocket>(1);
        let (port_sender, port_receiver) = std::sync::mpsc::channel();
        let source = std::thread::spawn(move || {
            crate::testutil::executor().run(async move {
                let sender = sender.connect().await;
                let listener = glommio::net::TcpListener::bind("127.0.0.1:0").expect("bind");
                port_sender.send(listener.local_addr().expect("addr").port()).expect("port");
                let stream = listener.accept().await.expect("accept");
                let mut connection =
                    Connection::new(stream, Duration::from_secs(5)).expect("connection");
                connection.write_all(b"greeting from source\r\n").await.expect("write");
                // Give the client time to send bytes that this shard will never read.
                glommio::timer::sleep(Duration::from_millis(100)).await;
                let detached = detach(connection).expect("detach");
                sender.send(detached).await.expect("send to target");
            });
        });
        let target = std::thread::spawn(move || {
            crate::testutil::executor().run(async move {
                let receiver = receiver.connect().await;
                let detached = receiver.recv().await.expect("a socket arrives");
                let mut connection = attach(detached, Duration::from_secs(5)).expect("attach");
                let mut seen = Vec::new();
                while !seen.ends_with(b"\r\n") {
                    match connection.read(Duration::from_secs(5)).await.expect("read") {
                        crate::conn::ReadOutcome::Data(len) => {
                            seen.extend_from_slice(connection.input(len));
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                }
                assert_eq!(seen, b"sent before the move\r\n");
                let parts: [&[u8]; 3] = [b"answer ", b"from ", b"target\r\n"];
                connection.write_vectored_all(&parts).await.expect("write");
                connection.close().await;
            });
        });
        let port = port_receiver.recv().expect("port");
        let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        client.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        client.write_all(b"sent before the move\r\n").expect("client write");
        let mut reply = String::new();
        client.read_to_string(&mut reply).expect("read until the target closes");
        assert_eq!(reply, "greeting from source\r\nanswer from target\r\n");
        source.join().expect("source shard");
        target.join().expect("target shard");
    }
}
