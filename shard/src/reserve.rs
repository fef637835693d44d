//! Quota reservations for LMTP (RFC 1870 `SIZE=` at `RCPT`), on the recipient's home shard.
//!
//! ```text
//!  LMTP shard                                  home shard of the recipient
//!  RCPT (MAIL had SIZE=n) ── Reserve{user, n} ─► store.reserve(n): held in memory, counted by
//!        552/452 5.2.2 ◄── OverQuota ──────────   every later quota check of that store
//!        250 ◄──────────── reservation ────────
//!  DATA ── Deliver{.., reservation} ───────────► release it, append (checked again, with every
//!                                                other reservation counted): no overshoot
//!  RSET / new MAIL / QUIT ── Release{user, r} ─► release it
//! ```
//!
//! Concurrent deliveries to one user therefore never store more than the quota: each `RCPT`
//! holds room before its message arrives, and the append at `DATA` counts everyone else's.
//! A reservation lives in the store's memory only: a restart or an idle close of the store
//! drops it (a release that finds nothing does nothing), and the `DATA` check stays the
//! backstop.

use std::rc::Rc;

use skua_core::error::AppendError;
use skua_core::store::QuotaReservation;

use crate::call::{self, CallError};
use crate::shard::Shard;

/// Why a reservation was not made.
#[derive(Debug)]
pub(crate) enum NotReserved {
    /// The size does not fit the user's quota: refuse the recipient.
    OverQuota,
    /// Anything else (store unavailable, busy): go on without one; `DATA` checks anyway.
    Unavailable,
}

/// Hold `bytes` of `user`'s quota.
pub(crate) struct Reserve {
    pub user: String,
    pub bytes: u64,
}

impl call::Request for Reserve {
    type Answer = Result<QuotaReservation, NotReserved>;
    const NAME: &'static str = "quota-reserve";

    fn user(&self) -> &str {
        &self.user
    }

    async fn serve(self, shard: Rc<Shard>) -> Self::Answer {
        let handle = match shard.registry.open(&self.user, crate::driver::yield_to_reactor).await {
            Ok(handle) if !handle.is_poisoned() => handle,
            Ok(handle) => {
                shard.registry.release(handle);
                return Err(NotReserved::Unavailable);
            }
            Err(_) => return Err(NotReserved::Unavailable),
        };
        let reserved = handle.with_store(|store| store.reserve(self.bytes));
        shard.registry.release(handle);
        reserved.map_err(|error| match error {
            AppendError::OverQuota(_) => NotReserved::OverQuota,
            _ => NotReserved::Unavailable,
        })
    }

    fn refused(self, _: CallError) -> Self::Answer {
        Err(NotReserved::Unavailable)
    }
}

/// Give a reservation back.
pub(crate) struct Release {
    pub user: String,
    pub reservation: QuotaReservation,
}

impl call::Request for Release {
    type Answer = ();
    const NAME: &'static str = "quota-release";

    fn user(&self) -> &str {
        &self.user
    }

    async fn serve(self, shard: Rc<Shard>) {
        if let Ok(handle) = shard.registry.open(&self.user, crate::driver::yield_to_reactor).await {
            if !handle.is_poisoned() {
                let _ = handle.with_store(|store| store.release(self.reservation));
            }
            shard.registry.release(handle);
        }
    }

    fn refused(self, error: CallError) {
        // The room stays held until the store closes; the DATA check is unaffected.
        tracing::debug!(user = self.user, %error, "quota reservation not given back");
    }
}

/// The reservations one LMTP connection holds, for the transaction they were made in.
pub(crate) struct Held {
    shard: Rc<Shard>,
    transaction: Option<u64>,
    by_user: Vec<(String, QuotaReservation)>,
}

impl Held {
    /// None yet.
    pub(crate) fn new(shard: Rc<Shard>) -> Held {
        Held { shard, transaction: None, by_user: Vec::new() }
    }

    /// True when `user` (canonical) already holds one in `transaction`.
    pub(crate) fn holds(&self, transaction: u64, user: &str) -> bool {
        self.transaction == Some(transaction) && self.by_user.iter().any(|(u, _)| u == user)
    }

    /// Keeps `reservation` for `user` in `transaction`, giving back what an older transaction
    /// left.
    pub(crate) fn keep(&mut self, transaction: u64, user: String, reservation: QuotaReservation) {
        if self.transaction != Some(transaction) {
            self.give_back();
            self.transaction = Some(transaction);
        }
        self.by_user.push((user, reservation));
    }

    /// The reservation of `user` in `transaction`, taken out (a delivery consumes it).
    pub(crate) fn take(&mut self, transaction: u64, user: &str) -> Option<QuotaReservation> {
        if self.transaction != Some(transaction) {
            return None;
        }
        let at = self.by_user.iter().position(|(u, _)| u == user)?;
        Some(self.by_user.swap_remove(at).1)
    }

    /// Gives back every reservation not of `current` (the open transaction, if any): called
    /// after every step of the session, so `RSET` or a new `MAIL` frees the room at once.
    pub(crate) fn settle(&mut self, current: Option<u64>) {
        if !self.by_user.is_empty() && self.transaction != current {
            self.give_back();
        }
    }

    /// Gives every reservation back (in the background: nobody waits for it).
    pub(crate) fn give_back(&mut self) {
        for (user, reservation) in self.by_user.drain(..) {
            let shard = self.shard.clone();
            crate::driver::spawn_detached(async move {
                let _ = call::call(&shard, Release { user, reservation }).await;
            });
        }
        self.transaction = None;
    }
}
