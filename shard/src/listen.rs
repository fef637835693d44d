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
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_lite::future;
use glommio::net::{TcpListener, TcpStream};

use crate::error::ServeError;
use crate::event::Event;
use crate::limits::{ACCEPT_ERROR_BACKOFF_MS, FD_RESERVE, LISTEN_BACKLOG, SHARDS_MAX};

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
    /// Connections start with a TLS handshake (IMAPS) instead of plain text.
    pub implicit_tls: bool,
    listener: TcpListener,
    /// A second descriptor of the same socket, to shut it down when accepting stops.
    control: socket2::Socket,
}

/// Binds `address` on the current shard (SO_REUSEPORT, as glommio's own `bind` does).
///
/// # Errors
/// [`ServeError::Bind`] naming the address.
pub fn bind(protocol: Protocol, address: SocketAddr) -> Result<Listener, ServeError> {
    let bound = listening_socket(address).and_then(|socket| Ok((socket.try_clone()?, socket)));
    let (control, socket) =
        bound.map_err(|source| ServeError::Bind { address, protocol: protocol.name(), source })?;
    let listener = crate::handoff::adopt_listener(socket);
    Ok(Listener { protocol, address, implicit_tls: false, listener, control })
}

/// A TCP socket bound to `address` with SO_REUSEPORT, listening.
fn listening_socket(address: SocketAddr) -> io::Result<socket2::Socket> {
    let domain = if address.is_ipv6() { socket2::Domain::IPV6 } else { socket2::Domain::IPV4 };
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_reuse_port(true)?;
    socket.bind(&address.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket)
}

/// Accepts until `stop` moves past `stop_seen`, handing each connection to `serve`.
pub async fn accept_loop<F, Fut>(listener: Listener, stop: Rc<Event>, stop_seen: u64, serve: F)
where
    F: Fn(TcpStream) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let protocol = if listener.implicit_tls { "IMAPS" } else { listener.protocol.name() };
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
    // Stopping: the socket must leave the port's SO_REUSEPORT group now. Dropping the
    // listener closes its descriptor, but the shard's io_uring may still hold the socket (an
    // accept that was in flight), and the ring is torn down only after the process exits: for
    // that moment the kernel keeps handing new connections to a socket nobody accepts on, and
    // a server restarted on the same port lost about half of its first connections.
    // `shutdown(SHUT_RD)` on a listening socket closes it at once, whoever holds it.
    if let Err(error) = listener.control.shutdown(std::net::Shutdown::Read) {
        tracing::debug!(protocol, %error, "shutting the listener down failed");
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

/// The soft `Max open files` limit, from `/proc/self/limits` (no `unsafe` getrlimit), read
/// once: when the limit is hit, reading the file would itself fail with EMFILE.
#[must_use]
pub fn open_files_limit() -> String {
    open_files().text.clone()
}

/// The open-files limit, read once per process.
struct OpenFiles {
    /// As `/proc/self/limits` shows it (for logs).
    text: String,
    /// The soft limit, when it is a number.
    soft: Option<usize>,
}

fn open_files() -> &'static OpenFiles {
    static OPEN_FILES: OnceLock<OpenFiles> = OnceLock::new();
    OPEN_FILES.get_or_init(|| {
        let text = proc_limit("Max open files").unwrap_or_else(|| "unknown".to_owned());
        let soft = text.split(' ').next().and_then(|soft| soft.parse().ok());
        OpenFiles { text, soft }
    })
}

/// Descriptors each shard last reported using for IMAP (connections and open stores' files)
/// and for LMTP connections, by shard index. The open-files limit is per process, so the
/// budget is shared, not split between shards: a shard with more than its half of the users
/// (placement is a hash) may use more than half.
static SHARD_FDS: [[AtomicUsize; 2]; SHARDS_MAX] =
    [const { [AtomicUsize::new(0), AtomicUsize::new(0)] }; SHARDS_MAX];

/// What one shard's connections hold now. Store files are counted for the whole process by
/// the store itself (`skua_core::disk::os::open_handles`: an idle store holds none).
#[derive(Clone, Copy, Debug)]
pub struct FdUse {
    /// IMAP connections.
    pub imap: usize,
    /// LMTP connections.
    pub lmtp: usize,
}

/// True while one more `protocol` connection on shard `shard` keeps the process clear of its
/// open-files limit. Every shard's connections and open stores must stay below
/// `limit - FD_RESERVE`; on top of that, IMAP leaves `lmtp_reserve` descriptors (LMTP's
/// connection budget over all shards) for LMTP connections, so an IMAP flood that reaches the
/// open-files limit still leaves the MTA room to deliver, and LMTP (capped at that budget by
/// count) can never take IMAP's share. Each shard refreshes its own figures here on every
/// accept; the others' figures are as of their last accept, close enough next to the
/// reserve. A connection turned away gets `BYE [LIMIT]` / `421 4.7.0`; without this, the
/// descriptors would run out in the middle of a store open or a flush round (which opens
/// directories), where EMFILE does real harm.
#[must_use]
pub fn fds_to_spare(shard: usize, protocol: Protocol, usage: FdUse, lmtp_reserve: usize) -> bool {
    let imap_own = usage.imap;
    if let Some([imap, lmtp]) = SHARD_FDS.get(shard) {
        imap.store(imap_own, Ordering::Relaxed);
        lmtp.store(usage.lmtp, Ordering::Relaxed);
    }
    let Some(limit) = open_files().soft else {
        return true; // unlimited or unknown: only the configured caps apply
    };
    let connections: usize = SHARD_FDS.iter().map(|[imap, _]| imap.load(Ordering::Relaxed)).sum();
    // Store files count against IMAP's share: LMTP's reserve is for connections.
    let imap_total = connections + skua_core::disk::os::open_handles();
    let lmtp_total: usize = SHARD_FDS.iter().map(|[_, lmtp]| lmtp.load(Ordering::Relaxed)).sum();
    fds_cover(limit, fds_counted(protocol, imap_total, lmtp_total, lmtp_reserve))
}

/// The descriptors a new `protocol` connection must fit beside: IMAP counts LMTP's whole
/// reserve as taken, LMTP only what LMTP uses.
fn fds_counted(protocol: Protocol, imap: usize, lmtp: usize, lmtp_reserve: usize) -> usize {
    match protocol {
        Protocol::Imap => imap + lmtp.max(lmtp_reserve),
        Protocol::Lmtp => imap + lmtp,
    }
}

/// True when `in_use` descriptors leave the reserve free under `limit`.
fn fds_cover(limit: usize, in_use: usize) -> bool {
    in_use < limit.saturating_sub(FD_RESERVE)
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
    fn the_fd_budget_keeps_the_reserve_free() {
        let limit = 20_000;
        assert!(fds_cover(limit, limit - FD_RESERVE - 1));
        assert!(!fds_cover(limit, limit - FD_RESERVE), "the reserve stays free");
        assert!(!fds_cover(100, 0), "a limit below the reserve serves nobody");
    }

    #[test]
    fn imap_leaves_lmtp_its_share_of_the_open_files() {
        let limit = 20_000;
        let reserve = 512;
        let imap_fills = limit - FD_RESERVE - reserve;
        assert!(fds_cover(limit, fds_counted(Protocol::Imap, imap_fills - 1, 0, reserve)));
        assert!(!fds_cover(limit, fds_counted(Protocol::Imap, imap_fills, 0, reserve)));
        assert!(
            fds_cover(limit, fds_counted(Protocol::Lmtp, imap_fills, reserve - 1, reserve)),
            "LMTP is still admitted when IMAP has used all of its share"
        );
    }

    #[test]
    fn proc_limits_are_readable() {
        let files = proc_limit("Max open files").expect("Linux has /proc/self/limits");
        let soft = files.split(' ').next().expect("a value");
        assert!(soft.parse::<u64>().is_ok() || soft == "unlimited", "{files}");
        assert!(!open_files_limit().is_empty());
        let memlock = proc_limit("Max locked memory").expect("listed");
        assert!(memlock.ends_with("bytes") || memlock.starts_with("unlimited"), "{memlock}");
    }
}
