//! The one place where the runtime's own conditions become protocol replies: why a connection
//! ends (IMAP `BYE`, LMTP `421`), and how store-registry and group-commit errors become a
//! recipient's LMTP outcome or an IMAP login answer.
//!
//! Protocol-level errors (parse errors, store errors inside a command) are mapped by
//! `skua-protocols`; these are the conditions only the shard sees. Every match is exhaustive
//! without a wildcard arm, so a new condition does not compile until someone decides what a
//! client is told.

use skua_protocols::imap::session::AuthOutcome;
use skua_protocols::lmtp::DeliveryFailure;

use crate::commit::CommitError;
use crate::registry::RegistryError;

/// Why the runtime ends a connection on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Graceful shutdown started.
    Shutdown,
    /// No input for the configured time.
    IdleTimeout,
    /// A session step panicked (our bug).
    ServerBug,
    /// A flush failed: nothing more is acknowledged on this shard.
    Storage,
    /// The user's store was poisoned by a panic in another session and is being reset.
    StoreReset,
    /// The shard already serves its maximum number of connections.
    TooManyConnections,
    /// The peer's address already has its maximum number of connections.
    TooManyFromSource,
    /// No successful login within the login deadline.
    LoginDeadline,
    /// A command still unfinished at the command deadline.
    CommandDeadline,
    /// The operator denied the logged-in user (`skua deny`).
    Denied,
}

/// The untagged `BYE` for an IMAP connection (RFC 9051 §7.1.5, codes from RFC 5530).
pub(crate) fn imap_bye(ending: Ending) -> &'static [u8] {
    match ending {
        Ending::Shutdown => b"* BYE Server shutting down\r\n",
        Ending::IdleTimeout => b"* BYE Autologout; idle for too long\r\n",
        Ending::ServerBug => b"* BYE [SERVERBUG] Internal error; please reconnect\r\n",
        Ending::Storage => b"* BYE [UNAVAILABLE] Storage failure; please reconnect later\r\n",
        Ending::StoreReset => b"* BYE [UNAVAILABLE] Mailbox is being reset; please reconnect\r\n",
        Ending::TooManyConnections => b"* BYE [LIMIT] Too many connections; try again later\r\n",
        Ending::TooManyFromSource => {
            b"* BYE [LIMIT] Too many connections from your address; try again later\r\n"
        }
        Ending::LoginDeadline => b"* BYE Autologout; no login within the time allowed\r\n",
        Ending::CommandDeadline => b"* BYE Autologout; command took too long to arrive\r\n",
        Ending::Denied => b"* BYE [CONTACTADMIN] Access disabled; contact your administrator\r\n",
    }
}

/// The `421` an LMTP connection gets before the runtime closes it (RFC 5321 §3.8, enhanced
/// codes from RFC 3463).
pub(crate) fn lmtp_closing(ending: Ending) -> &'static [u8] {
    match ending {
        Ending::Shutdown => b"421 4.3.2 Service shutting down\r\n",
        Ending::IdleTimeout => b"421 4.4.2 Idle for too long, closing connection\r\n",
        Ending::ServerBug => b"421 4.3.0 Internal error, closing connection\r\n",
        Ending::Storage => b"421 4.3.0 Storage failure, closing connection\r\n",
        Ending::StoreReset => b"421 4.3.0 Mailbox is being reset, closing connection\r\n",
        Ending::TooManyConnections => b"421 4.7.0 Too many connections, try again later\r\n",
        Ending::TooManyFromSource => {
            b"421 4.7.0 Too many connections from your address, try again later\r\n"
        }
        Ending::LoginDeadline => b"421 4.4.2 Session took too long, closing connection\r\n",
        Ending::CommandDeadline => b"421 4.4.2 Command took too long, closing connection\r\n",
        Ending::Denied => b"421 4.7.1 Access disabled, closing connection\r\n",
    }
}

/// A recipient whose store could not be opened: always temporary, so the MTA retries (a bad
/// name cannot come from the passwd-file of a healthy install, but a retry costs little).
pub(crate) fn delivery_failure_of_registry(error: &RegistryError) -> DeliveryFailure {
    match error {
        RegistryError::BadName { .. }
        | RegistryError::Resetting(_)
        | RegistryError::Panicked { .. }
        | RegistryError::Open { .. } => DeliveryFailure::temporary(error.to_string()),
    }
}

/// A recipient whose copy was written but could not be made durable: `451 4.3.0`, so the MTA
/// keeps the message and retries (after the operator fixed the disk and restarted).
pub(crate) fn delivery_failure_of_commit(error: CommitError) -> DeliveryFailure {
    match error {
        CommitError::Failed => DeliveryFailure::temporary(error.to_string()),
    }
}

/// A login whose password was right but whose store cannot be opened: try later.
pub(crate) fn auth_outcome_of_registry(error: &RegistryError) -> AuthOutcome {
    match error {
        RegistryError::BadName { .. }
        | RegistryError::Resetting(_)
        | RegistryError::Panicked { .. }
        | RegistryError::Open { .. } => AuthOutcome::Unavailable,
    }
}

/// A login refused because the user already has `connections_per_user_max` sessions:
/// `NO [LIMIT]` (RFC 5530).
pub(crate) fn auth_outcome_of_user_cap() -> AuthOutcome {
    AuthOutcome::Limit
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENDINGS: [Ending; 9] = [
        Ending::Shutdown,
        Ending::IdleTimeout,
        Ending::ServerBug,
        Ending::Storage,
        Ending::StoreReset,
        Ending::TooManyConnections,
        Ending::TooManyFromSource,
        Ending::LoginDeadline,
        Ending::CommandDeadline,
    ];

    #[test]
    fn every_ending_is_one_well_formed_line() {
        for ending in ENDINGS {
            for line in [imap_bye(ending), lmtp_closing(ending)] {
                assert!(line.ends_with(b"\r\n"), "{ending:?}");
                assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1, "{ending:?}");
            }
            assert!(imap_bye(ending).starts_with(b"* BYE "));
            assert!(lmtp_closing(ending).starts_with(b"421 4."));
        }
    }

    #[test]
    fn store_and_flush_failures_are_temporary_for_the_mta() {
        let error = RegistryError::Resetting("alice".to_owned());
        assert!(matches!(delivery_failure_of_registry(&error), DeliveryFailure::Temporary(_)));
        assert_eq!(auth_outcome_of_registry(&error), AuthOutcome::Unavailable);
        let flush = delivery_failure_of_commit(CommitError::Failed);
        assert!(matches!(flush, DeliveryFailure::Temporary(_)), "451 4.3.0: the MTA retries");
    }
}
