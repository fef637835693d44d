//! Stopping the server: a process-wide flag set by SIGTERM/SIGINT or by a
//! [`ShutdownHandle`], which every shard polls.
//!
//! The signal handler only stores to an atomic (signal-hook's `flag` module): nothing else is
//! async-signal-safe. Shards look at the flag every
//! [`SHUTDOWN_POLL_MS`](crate::limits::SHUTDOWN_POLL_MS), which costs one timer per shard and
//! bounds the reaction time. A second SIGTERM/SIGINT while the first is being handled ends the
//! process at once with exit status 1, for an operator who does not want to wait.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::SigId;
use signal_hook::consts::{SIGINT, SIGTERM};

use crate::error::ServeError;

/// Asks a running server to stop; cheap to clone, usable from any thread.
#[derive(Clone, Debug, Default)]
pub struct ShutdownHandle {
    flag: Arc<AtomicBool>,
}

impl ShutdownHandle {
    /// A handle that has not been triggered.
    #[must_use]
    pub fn new() -> ShutdownHandle {
        ShutdownHandle::default()
    }

    /// Starts a graceful shutdown: stop accepting, end sessions after their command, final
    /// flush, then `run` returns.
    pub fn shutdown(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    /// True once a shutdown was asked for.
    #[must_use]
    pub fn is_shutdown(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

/// Signal handlers feeding a [`ShutdownHandle`]; removed on drop.
pub struct SignalGuard {
    ids: Vec<SigId>,
}

/// Installs SIGTERM/SIGINT handlers that trigger `handle`.
///
/// # Errors
/// [`ServeError::Signals`] if the handlers cannot be installed.
pub fn install_signal_handlers(handle: &ShutdownHandle) -> Result<SignalGuard, ServeError> {
    let mut guard = SignalGuard { ids: Vec::new() };
    for signal in [SIGTERM, SIGINT] {
        // Registered first, so it sees the flag as it was before this signal's own store:
        // the second signal (flag already set) exits at once.
        let exit = signal_hook::flag::register_conditional_shutdown(signal, 1, handle.flag.clone())
            .map_err(ServeError::Signals)?;
        guard.ids.push(exit);
        let id = signal_hook::flag::register(signal, handle.flag.clone())
            .map_err(ServeError::Signals)?;
        guard.ids.push(id);
    }
    Ok(guard)
}

impl Drop for SignalGuard {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_clones_share_the_flag() {
        let handle = ShutdownHandle::new();
        let clone = handle.clone();
        assert!(!clone.is_shutdown());
        handle.shutdown();
        assert!(clone.is_shutdown());
    }
}
