//! Telling the service manager (systemd) what the server is doing: the `sd_notify` protocol.
//!
//! systemd starts a `Type=notify` service with `NOTIFY_SOCKET` naming a unix datagram socket;
//! the service sends newline-separated `KEY=VALUE` assignments to it, one datagram per state
//! change (sd_notify(3)). skua sends:
//!
//! * `READY=1` once every shard has bound its listeners and been let go to serve
//!   (`skua_shard::run_with_ready`): from then on a connection to any configured port is
//!   accepted, so units ordered `After=skua.service` (Postfix's LMTP) find it up;
//! * `RELOADING=1` with `MONOTONIC_USEC=` when SIGHUP starts a reload of the TLS files, then
//!   `READY=1` when the reload is done (failed or not: a failed reload keeps the old
//!   certificates and the server keeps serving). `MONOTONIC_USEC` is what
//!   `Type=notify-reload` (systemd 253 and later) needs to match the reload to its request;
//!   older managers ignore it;
//! * `STOPPING=1` when SIGTERM or SIGINT starts the graceful shutdown.
//!
//! Each message also carries a `STATUS=` line for `systemctl status`.
//!
//! The client is a few lines over `std`'s `UnixDatagram` rather than libsystemd: no C library
//! to link, and abstract socket names (`@name`) are supported by `std` directly. Nothing is
//! sent, and no socket is made, when `NOTIFY_SOCKET` is unset or empty. A send that fails is
//! logged and otherwise ignored, as sd_notify's callers do: the manager notices a service that
//! never becomes ready through its own timeout.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};
use skua_shard::tls::TlsConfigs;

/// The environment variable naming the manager's socket.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Why `NOTIFY_SOCKET` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Neither an absolute path nor an abstract name (`@...`); systemd sends only these to a
    /// service (a `vsock:` address is for virtual machines, which skua does not run as).
    #[error("NOTIFY_SOCKET={0:?} is neither an absolute path nor an abstract name (@...)")]
    Unsupported(String),
    /// The address is well formed but the socket cannot be made.
    #[error("NOTIFY_SOCKET={address:?}: {source}")]
    Socket {
        /// The variable's value.
        address: String,
        /// What the system said.
        source: io::Error,
    },
}

/// The connection to the service manager, or nothing when there is none.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    stopping: AtomicBool,
}

impl Notifier {
    /// From `NOTIFY_SOCKET` in the environment.
    ///
    /// # Errors
    /// [`NotifyError`] if the variable is set to something that cannot be used.
    pub fn from_env() -> Result<Notifier, NotifyError> {
        let value = std::env::var_os(NOTIFY_SOCKET).unwrap_or_default();
        Notifier::new(&value.to_string_lossy())
    }

    /// For `address`, a `NOTIFY_SOCKET` value: empty sends nothing.
    ///
    /// # Errors
    /// As [`Notifier::from_env`].
    pub fn new(address: &str) -> Result<Notifier, NotifyError> {
        let target = if address.is_empty() {
            None
        } else {
            let socket_error = |source| NotifyError::Socket { address: address.to_owned(), source };
            let addr = parse_address(address)?.map_err(socket_error)?;
            let socket = UnixDatagram::unbound().map_err(socket_error)?;
            Some((socket, addr))
        };
        Ok(Notifier { target, stopping: AtomicBool::new(false) })
    }

    /// True when a manager listens (`NOTIFY_SOCKET` was set).
    #[must_use]
    pub fn is_active(&self) -> bool {
        self.target.is_some()
    }

    /// Start-up is complete (not sent once stopping began).
    pub fn ready(&self) {
        if !self.stopping.load(Ordering::SeqCst) {
            self.send("READY=1\nSTATUS=Serving\n");
        }
    }

    /// A reload starts; [`Notifier::reloaded`] must follow.
    pub fn reloading(&self) {
        let usec = monotonic_usec();
        self.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={usec}\nSTATUS=Reloading the TLS certificates\n"
        ));
    }

    /// The reload is over; serving as before.
    pub fn reloaded(&self, status: &str) {
        if !self.stopping.load(Ordering::SeqCst) {
            self.send(&format!("READY=1\nSTATUS={status}\n"));
        }
    }

    /// Shutdown began; sent once however often it is called.
    pub fn stopping(&self) {
        if !self.stopping.swap(true, Ordering::SeqCst) {
            self.send("STOPPING=1\nSTATUS=Stopping: finishing commands, final flush\n");
        }
    }

    /// One datagram; a failure is logged, never fatal (see the module doc).
    fn send(&self, state: &str) {
        let Some((socket, addr)) = &self.target else { return };
        if let Err(error) = socket.send_to_addr(state.as_bytes(), addr) {
            tracing::warn!(%error, state = state.lines().next(), "sd_notify message not sent");
        }
    }
}

/// `/path` is a filesystem socket, `@name` an abstract one (the `@` stands for the leading NUL
/// byte of the kernel's name). The outer `Result` is the variable's form, the inner the
/// system's answer (an over-long path).
fn parse_address(address: &str) -> Result<io::Result<SocketAddr>, NotifyError> {
    if let Some(name) = address.strip_prefix('@') {
        Ok(SocketAddr::from_abstract_name(name.as_bytes()))
    } else if address.starts_with('/') {
        Ok(SocketAddr::from_pathname(address))
    } else {
        Err(NotifyError::Unsupported(address.to_owned()))
    }
}

/// CLOCK_MONOTONIC in microseconds, the clock systemd compares `MONOTONIC_USEC` with.
fn monotonic_usec() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let seconds = u64::try_from(now.tv_sec).expect("the monotonic clock is not negative");
    let nanos = u64::try_from(now.tv_nsec).expect("the monotonic clock is not negative");
    seconds * 1_000_000 + nanos / 1_000
}

/// The signals the service manager uses, seen from a thread of their own: SIGHUP reloads the
/// TLS files between `RELOADING=1` and `READY=1`; SIGTERM and SIGINT send `STOPPING=1` (the
/// shutdown itself is `skua_shard::shutdown`'s handler, which runs as well). Dropping it
/// removes the handlers and ends the thread.
pub struct ServiceSignals {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl ServiceSignals {
    /// Installs the handlers. From then on SIGHUP no longer ends the process.
    ///
    /// # Errors
    /// If the handlers or the thread cannot be set up.
    pub fn install(tls: Arc<TlsConfigs>, notifier: Arc<Notifier>) -> io::Result<ServiceSignals> {
        let mut signals = Signals::new([SIGHUP, SIGTERM, SIGINT])?;
        let handle = signals.handle();
        let thread =
            std::thread::Builder::new().name("skua-signals".to_owned()).spawn(move || {
                for signal in signals.forever() {
                    if signal == SIGHUP {
                        notifier.reloading();
                        skua_shard::tls::reload::reload_logged(&tls);
                        let generation = tls.generation();
                        notifier.reloaded(&format!("Serving (TLS generation {generation})"));
                    } else {
                        notifier.stopping();
                    }
                }
            })?;
        Ok(ServiceSignals { handle, thread: Some(thread) })
    }
}

impl Drop for ServiceSignals {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            // The thread only loops over signals; a panic in it was already reported.
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn receive(socket: &UnixDatagram) -> String {
        let mut buffer = [0u8; 512];
        let n = socket.recv(&mut buffer).expect("a datagram");
        String::from_utf8(buffer[..n].to_vec()).expect("UTF-8")
    }

    fn listener(dir: &tempfile::TempDir) -> (UnixDatagram, String) {
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).expect("bind");
        socket.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        (socket, path.to_str().expect("UTF-8 path").to_owned())
    }

    #[test]
    fn unset_sends_nothing() {
        let notifier = Notifier::new("").expect("empty is fine");
        assert!(!notifier.is_active());
        notifier.ready();
        notifier.stopping();
    }

    #[test]
    fn states_arrive_in_order_on_a_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (socket, path) = listener(&dir);
        let notifier = Notifier::new(&path).expect("path");
        notifier.ready();
        notifier.reloading();
        notifier.reloaded("Serving");
        notifier.stopping();
        notifier.stopping();
        notifier.ready();
        assert!(receive(&socket).starts_with("READY=1\n"));
        let reloading = receive(&socket);
        let mut lines = reloading.lines();
        assert_eq!(lines.next(), Some("RELOADING=1"));
        let usec = lines.next().and_then(|l| l.strip_prefix("MONOTONIC_USEC=")).expect("usec");
        assert!(usec.parse::<u64>().expect("decimal") > 0);
        assert_eq!(receive(&socket), "READY=1\nSTATUS=Serving\n");
        assert!(receive(&socket).starts_with("STOPPING=1\n"));
        // Neither the second STOPPING=1 nor a READY=1 after it were sent.
        socket.set_nonblocking(true).expect("nonblocking");
        let mut buffer = [0u8; 64];
        let again = socket.recv(&mut buffer).expect_err("nothing more");
        assert_eq!(again.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn abstract_names_are_supported() {
        let name = format!("skua-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract");
        let socket = UnixDatagram::bind_addr(&addr).expect("bind abstract");
        socket.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        Notifier::new(&format!("@{name}")).expect("abstract").ready();
        assert!(receive(&socket).starts_with("READY=1\n"));
    }

    #[test]
    fn other_forms_are_refused() {
        for bad in ["relative/path", "vsock:2:1234"] {
            let error = Notifier::new(bad).expect_err("refused");
            assert!(matches!(error, NotifyError::Unsupported(_)), "{bad}: {error}");
        }
    }
}
