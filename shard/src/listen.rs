//! Listening sockets and accept loops.
//!
//! Every shard binds every configured address with SO_REUSEPORT (glommio's
//! `TcpListener::bind` sets it before `bind(2)`; checked in glommio 0.9.0
//! `src/net/tcp_socket.rs`), so the kernel spreads new connections over the shards. An accept
//! error such as EMFILE (the fd table is full) is logged once per back-off period with the
//! current limit, and the loop sleeps instead of spinning on the error.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::future;
use glommio::net::{TcpListener, TcpStream};

use crate::error::ServeError;
use crate::event::Event;
use crate::limits::ACCEPT_ERROR_BACKOFF_MS;

/// Which protocol a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// IMAP4rev2 / IMAP4rev1.
    Imap,
    /// LMTP.
    Lmtp,
}

impl Protocol {
    /// The name used in logs and errors.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Imap => "IMAP",
            Protocol::Lmtp => "LMTP",
        }
    }
}

/// A bound listener.
pub struct Listener {
    /// What it serves.
    pub protocol: Protocol,
    /// The configured address.
    pub address: SocketAddr,
    listener: TcpListener,
}

/// Binds `address` on the current shard (SO_REUSEPORT).
///
/// # Errors
/// [`ServeError::Bind`] naming the address.
pub fn bind(protocol: Protocol, address: SocketAddr) -> Result<Listener, ServeError> {
    let listener = TcpListener::bind(address).map_err(|error| ServeError::Bind {
        address,
        protocol: protocol.name(),
        source: io::Error::from(error),
    })?;
    Ok(Listener {
        protocol,
        address,
        listener,
    })
}

/// Accepts until `stop` moves past `stop_seen`, handing each connection to `serve`.
pub async fn accept_loop<F, Fut>(listener: Listener, stop: Rc<Event>, stop_seen: u64, serve: F)
where
    F: Fn(TcpStream) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let protocol = listener.protocol.name();
    loop {
        let accepted = future::or(
            async { Some(listener.listener.accept().await.map_err(io::Error::from)) },
            async {
                stop.wait_past(stop_seen).await;
                None
            },
        )
        .await;
        match accepted {
            None => break,
            Some(Ok(stream)) => {
                glommio::spawn_local(serve(stream)).detach();
            }
            Some(Err(error)) => {
                log_accept_error(protocol, listener.address, &error);
                glommio::timer::sleep(Duration::from_millis(ACCEPT_ERROR_BACKOFF_MS)).await;
            }
        }
    }
    tracing::debug!(protocol, address = %listener.address, "stopped accepting");
}

fn log_accept_error(protocol: &str, address: SocketAddr, error: &io::Error) {
    match error.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE) => tracing::error!(
            protocol, %address, %error,
            open_files_limit = %open_files_limit(),
            "accept failed: too many open files; raise LimitNOFILE, retrying in {ACCEPT_ERROR_BACKOFF_MS} ms"
        ),
        _ => tracing::warn!(protocol, %address, %error, "accept failed; retrying"),
    }
}

/// The soft `Max open files` limit, from `/proc/self/limits` (no `unsafe` getrlimit).
#[must_use]
pub fn open_files_limit() -> String {
    proc_limit("Max open files").unwrap_or_else(|| "unknown".to_owned())
}

/// The soft limit named `name` in `/proc/self/limits`.
#[must_use]
pub fn proc_limit(name: &str) -> Option<String> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|line| line.starts_with(name))?;
    let fields: Vec<&str> = line[name.len()..].split_whitespace().collect();
    let soft = fields.first()?;
    Some(match fields.get(2) {
        Some(unit) if !unit.is_empty() => format!("{soft} {unit}"),
        _ => (*soft).to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_limits_are_readable() {
        let files = proc_limit("Max open files").expect("Linux has /proc/self/limits");
        let soft = files.split(' ').next().expect("a value");
        assert!(
            soft.parse::<u64>().is_ok() || soft == "unlimited",
            "{files}"
        );
        let memlock = proc_limit("Max locked memory").expect("listed");
        assert!(
            memlock.ends_with("bytes") || memlock.starts_with("unlimited"),
            "{memlock}"
        );
    }
}
