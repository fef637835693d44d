//! Password checks, off the reactor.
//!
//! Password hashes are slow on purpose (an Argon2id check takes ~0.4 s), so a check runs on
//! the shard's blocking pool, at most
//! [`AUTH_CHECKS_CONCURRENT_MAX`](crate::limits::AUTH_CHECKS_CONCURRENT_MAX) at a time per
//! shard. A failed check is answered only after a delay, which slows guessing down.

use std::time::Duration;

use crate::limits::AUTH_FAILURE_DELAY_MS;
use crate::shard::Shard;

/// The verdict on a pair of credentials.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Right password; the canonical user name (as the passwd-file spells it).
    Accepted(String),
    /// Unknown user or wrong password.
    Rejected,
    /// The check could not be made.
    Unavailable,
}

/// Checks `password` for `user` on the blocking pool.
pub async fn check(shard: &Shard, user: String, password: String) -> Verdict {
    let Ok(_permit) = shard.auth_slots.acquire_permit(1).await else {
        return Verdict::Unavailable;
    };
    let users = shard.shared.users.clone();
    let outcome = glommio::executor()
        .spawn_blocking(move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let entry = users.lookup(&user)?;
                entry.verify(&password).then(|| entry.name.clone())
            }))
        })
        .await;
    match outcome {
        Ok(Some(name)) => Verdict::Accepted(name),
        Ok(None) => {
            glommio::timer::sleep(Duration::from_millis(AUTH_FAILURE_DELAY_MS)).await;
            Verdict::Rejected
        }
        Err(panic) => {
            let detail = crate::server::panic_message(&*panic);
            tracing::error!(detail, "password check panicked");
            Verdict::Unavailable
        }
    }
}
