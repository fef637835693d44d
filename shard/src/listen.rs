//! Listening sockets and accept loops.
//!
//! Every shard binds every configured TCP address with SO_REUSEPORT (glommio's
//! `TcpListener::bind` sets it before `bind(2)`; checked in glommio 0.9.0
//! `src/net/tcp_socket.rs`), so the kernel spreads new connections over the shards.
//!
//! A unix-domain socket (`[lmtp] listen = "unix:/path"`, [`bind_unix`]) has no SO_REUSEPORT
//! group: one shard (shard 0) binds it and accepts every connection on it, and they stay
//! there. That costs nothing an LMTP connection needs: its deliveries go to each
//! recipient's home shard anyway (`lmtp.rs`), and the per-shard LMTP budget still applies.
//! The socket file is made under a temporary name, given its mode, then renamed into place
//! (so no client ever sees it with the umask's mode, and a stale file left by a killed
//! server is replaced); a path where a server still answers, or that is not a socket, is
//! refused. It is removed at shutdown if it is still the one this server made. An accept
//! error such as EMFILE (the fd table is full) is logged once per back-off period with the
//! current limit, and the loop sleeps instead of spinning on the error.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
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
    /// Postfix's socketmap look-ups (`socketmap.rs`).
    Socketmap,
    /// The operators' admin socket (`admin.rs`).
    Admin,
    /// The Prometheus endpoint (`metrics_http.rs`, shard 0 only).
    Metrics,
}

impl Protocol {
    /// The name used in logs and errors.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Imap => "IMAP",
            Protocol::Lmtp => "LMTP",
            Protocol::Socketmap => "socketmap",
            Protocol::Admin => "admin",
            Protocol::Metrics => "metrics",
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
    /// For a unix-domain listener: the socket file, removed when accepting stops.
    unix: Option<SocketFile>,
}

impl Listener {
    /// True for a unix-domain listener: its peers have no IP address (no per-source cap).
    #[must_use]
    pub fn is_local(&self) -> bool {
        self.unix.is_some()
    }

    /// The address for logs: `IP:port` or `unix:/path`.
    fn name(&self) -> String {
        match &self.unix {
            Some(file) => format!("unix:{}", file.path.display()),
            None => self.address.to_string(),
        }
    }
}

/// A unix-domain listen address from the config: `unix:/path` and the file's mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnixListen {
    /// The socket file.
    pub path: PathBuf,
    /// Its permission bits (default [`UNIX_MODE_DEFAULT`]): who may connect.
    pub mode: u32,
}

/// Owner and group may connect (the MTA runs in the socket's group).
pub const UNIX_MODE_DEFAULT: u32 = 0o660;

/// The socket file a unix listener made: removed at stop only if the path still names it.
struct SocketFile {
    path: PathBuf,
    device: u64,
    inode: u64,
}

impl SocketFile {
    fn remove(&self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|meta| meta.dev() == self.device && meta.ino() == self.inode);
        if !ours {
            return; // replaced by someone else meanwhile: theirs now
        }
        if let Err(error) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), %error, "removing the socket file failed");
        }
    }
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
    Ok(Listener { protocol, address, implicit_tls: false, listener, control, unix: None })
}

/// Binds the unix-domain socket `unix.path` (see the module docs: made under a temporary
/// name with its mode, then renamed over a stale file). Call it on one shard only.
///
/// # Errors
/// [`ServeError::Config`] naming the path: a server answers there, the path is not a
/// socket, or the OS refused (directory missing, permissions).
pub fn bind_unix(protocol: Protocol, unix: &UnixListen) -> Result<Listener, ServeError> {
    let fail = |detail: String| {
        ServeError::Config(format!(
            "cannot listen on unix:{} ({}): {detail}",
            unix.path.display(),
            protocol.name()
        ))
    };
    check_stale(&unix.path).map_err(fail)?;
    let (socket, file) = unix_socket(unix).map_err(|e| fail(e.to_string()))?;
    let control = socket.try_clone().map_err(|e| fail(e.to_string()))?;
    let listener = crate::handoff::adopt_listener(socket);
    let address = SocketAddr::from(([0, 0, 0, 0], 0));
    Ok(Listener { protocol, address, implicit_tls: false, listener, control, unix: Some(file) })
}

/// Ok when `path` is free or a socket nobody answers on (left by a server that was killed).
fn check_stale(path: &Path) -> Result<(), String> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error.to_string()),
    };
    if !meta.file_type().is_socket() {
        return Err("the path exists and is not a socket".to_owned());
    }
    // A server killed a moment ago may still have its socket open for a few milliseconds
    // (its io_uring is torn down after the process is gone), and that socket accepts: only a
    // socket that keeps accepting for a while is taken as another server's.
    for _ in 0..STALE_SOCKET_CHECKS {
        if std::os::unix::net::UnixStream::connect(path).is_err() {
            return Ok(()); // stale: replaced below
        }
        std::thread::sleep(Duration::from_millis(STALE_SOCKET_CHECK_INTERVAL_MS));
    }
    Err("another server is listening there".to_owned())
}

/// How often, and how far apart, a socket file that accepts is tried before start-up is
/// refused (about two seconds in all; only at start-up, before the shard serves anything).
const STALE_SOCKET_CHECKS: u32 = 20;
const STALE_SOCKET_CHECK_INTERVAL_MS: u64 = 100;

/// A listening unix socket at `unix.path` with mode `unix.mode`, and its file.
fn unix_socket(unix: &UnixListen) -> io::Result<(socket2::Socket, SocketFile)> {
    let name = unix.path.file_name().ok_or_else(|| io::Error::other("no file name"))?;
    let mut temporary = std::ffi::OsString::from(".");
    temporary.push(name);
    temporary.push(format!(".{}.new", std::process::id()));
    let temporary = unix.path.with_file_name(temporary);
    match std::fs::remove_file(&temporary) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    let socket = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)?;
    socket.bind(&socket2::SockAddr::unix(&temporary)?)?;
    let placed = std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(unix.mode))
        .and_then(|()| socket.listen(LISTEN_BACKLOG))
        .and_then(|()| std::fs::rename(&temporary, &unix.path));
    if let Err(error) = placed {
        let _ = std::fs::remove_file(&temporary);
        return Err(error);
    }
    let meta = std::fs::symlink_metadata(&unix.path)?;
    let file = SocketFile { path: unix.path.clone(), device: meta.dev(), inode: meta.ino() };
    Ok((socket, file))
}

/// Refuses `address` when another process listens on it. SO_REUSEPORT would let this server
/// join that process's group (same uid), and the kernel would split new connections between
/// two servers with different data dirs without a word. The probe binds without SO_REUSEPORT,
/// which fails while any socket listens on the port, and with SO_REUSEADDR, so connections a
/// previous run left in TIME_WAIT do not count. Run before any shard binds (`server.rs`).
///
/// A previous run that was killed may hold its listeners for a moment after it died (its
/// io_uring instances are torn down asynchronously, and with them the sockets they reference),
/// so a port in use is probed again every [`PORT_PROBE_RETRY_MS`] for up to
/// [`PORT_PROBE_WAIT_MS`] before the start fails.
///
/// # Errors
/// [`ServeError::Bind`] naming the address (e.g. address in use).
pub fn probe_unclaimed(protocol: Protocol, address: SocketAddr) -> Result<(), ServeError> {
    if address.port() == 0 {
        return Ok(()); // the OS picks a free port per socket
    }
    let probe = || -> io::Result<()> {
        let domain = if address.is_ipv6() { socket2::Domain::IPV6 } else { socket2::Domain::IPV4 };
        let socket = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        socket.bind(&address.into())
    };
    let deadline = std::time::Instant::now() + Duration::from_millis(PORT_PROBE_WAIT_MS);
    loop {
        match probe() {
            Err(error)
                if error.kind() == io::ErrorKind::AddrInUse
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(PORT_PROBE_RETRY_MS));
            }
            done => {
                return done.map_err(|source| ServeError::Bind {
                    address,
                    protocol: protocol.name(),
                    source,
                });
            }
        }
    }
}

/// How long a start waits for a port in use to come free ([`probe_unclaimed`]).
const PORT_PROBE_WAIT_MS: u64 = 5_000;

/// How often [`probe_unclaimed`] looks again.
const PORT_PROBE_RETRY_MS: u64 = 50;

/// A TCP socket bound to `address` with SO_REUSEPORT, listening.
fn listening_socket(address: SocketAddr) -> io::Result<socket2::Socket> {
    let domain = if address.is_ipv6() { socket2::Domain::IPV6 } else { socket2::Domain::IPV4 };
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_reuse_port(true)?;
    // Its accepted connections inherit SO_REUSEADDR: one still closing after a stop does not
    // keep the next run's probe ([`probe_unclaimed`]) from binding the port.
    socket.set_reuse_address(true)?;
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
    let name = listener.name();
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
                log_accept_error(protocol, &name, &error);
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
    if let Some(file) = &listener.unix {
        file.remove();
    }
    tracing::debug!(protocol, address = %name, "stopped accepting");
}

fn log_accept_error(protocol: &str, address: &str, error: &io::Error) {
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
        // Socketmap connections come from the MTA and count as LMTP's (`socketmap.rs`).
        Protocol::Lmtp | Protocol::Socketmap => imap + lmtp,
        // A handful at most (`limits::ADMIN_CONNECTIONS_MAX`), bounded by their own count.
        Protocol::Admin => imap + lmtp,
        // At most `METRICS_CONNECTIONS_MAX`, within the reserve.
        Protocol::Metrics => imap,
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
    fn a_unix_socket_replaces_a_stale_file_keeps_its_mode_and_is_removed_if_ours() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lmtp.sock");
        // A stale socket: bound, then its listener gone.
        drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
        assert!(path.exists());
        assert_eq!(check_stale(&path), Ok(()), "nobody answers: stale");
        let unix = UnixListen { path: path.clone(), mode: 0o640 };
        let (socket, file) = unix_socket(&unix).expect("made");
        let meta = std::fs::symlink_metadata(&path).expect("there");
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1, "no temporary left");
        let client = std::os::unix::net::UnixStream::connect(&path);
        assert!(client.is_ok(), "listening");
        drop(socket);
        file.remove();
        assert!(!path.exists(), "ours: removed");

        std::fs::write(&path, b"mail").expect("a regular file");
        assert!(check_stale(&path).is_err(), "not a socket: refused");
        let other = SocketFile { path: path.clone(), device: 0, inode: 0 };
        other.remove();
        assert_eq!(std::fs::read(&path).expect("kept"), b"mail", "not ours: kept");
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
