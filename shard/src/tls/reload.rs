//! SIGHUP reloads the TLS files.
//!
//! The signal handler itself does nothing but wake a small thread (signal-hook's iterator
//! writes to a self-pipe); that thread reads the PEM files, builds new configurations and swaps
//! them in ([`TlsConfigs::reload`]). Reading files and parsing keys never happens on a shard's
//! reactor. A reload that fails is logged with the file at fault and the old certificates stay.

use std::sync::Arc;
use std::thread::JoinHandle;

use signal_hook::consts::SIGHUP;
use signal_hook::iterator::{Handle, Signals};

use super::{TlsConfigs, TlsError};

/// The SIGHUP handler and its thread; dropping it removes the handler and ends the thread.
pub struct HangupReloader {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

/// Installs a SIGHUP handler that reloads `configs` (and, from then on, keeps SIGHUP from
/// ending the process).
///
/// # Errors
/// [`TlsError::Signals`] if the handler or its thread cannot be set up.
pub fn reload_on_hangup(configs: Arc<TlsConfigs>) -> Result<HangupReloader, TlsError> {
    let mut signals = Signals::new([SIGHUP]).map_err(TlsError::Signals)?;
    let handle = signals.handle();
    let thread = std::thread::Builder::new()
        .name("skua-tls-reload".to_owned())
        .spawn(move || {
            for _ in signals.forever() {
                reload_logged(&configs);
            }
        })
        .map_err(TlsError::Signals)?;
    Ok(HangupReloader { handle, thread: Some(thread) })
}

/// One reload, logged either way.
pub fn reload_logged(configs: &TlsConfigs) {
    match configs.reload() {
        Ok(generation) => {
            tracing::info!(generation, "TLS certificates reloaded (SIGHUP)");
            super::log_certificates(&configs.current());
        }
        Err(error) => {
            tracing::error!(
                %error,
                generation = configs.generation(),
                "TLS reload failed; keeping the certificates loaded before"
            );
        }
    }
}

impl Drop for HangupReloader {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            // The thread only loops over signals; a panic in it was already reported.
            let _ = thread.join();
        }
    }
}
