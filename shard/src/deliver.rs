//! Delivering one message to one user on the user's home shard, from any shard: a
//! [`call::Request`] like every other piece of work on another user's store.
//!
//! ```text
//!  LMTP shard                                   home shard of the recipient
//!  ──────────                                   ───────────────────────────
//!  deliver(delivery, copy) ─ call ────────────► Deliver::serve ─► deliver_here:
//!                                                 open store, lmtp::deliver, notify IDLE,
//!                                                 wait for the flush round (durable ticket)
//!  Outcome ◄──────────────── answer ◄───────────
//! ```
//!
//! The delivery is an immutable `Arc<Delivery>` (the message, the envelope, the trace data and
//! every user's copy): every recipient's shard reads the same bytes, and nothing `Rc` ever
//! crosses. An outcome is `Ok` only after the home shard's flush round made
//! the message durable; a call that could not be made or answered is a temporary failure (the
//! MTA retries).

use std::rc::Rc;
use std::sync::Arc;

use skua_core::store::QuotaReservation;
use skua_core::types::InternalDate;
use skua_protocols::lmtp::{Delivery, DeliveryFailure};

use crate::call::{self, CallError};
use crate::guard::guarded;
use crate::metrics::{DeliveryOutcome, ShardMetrics};
use crate::reply;
use crate::shard::Shard;

/// What happened to one recipient's copy: `Ok` only once it is durable.
pub(crate) type Outcome = Result<(), DeliveryFailure>;

/// One user's copy of a transaction's message, for the user's home shard.
pub(crate) struct Deliver {
    /// The transaction; `copy` indexes the user's copy in it.
    delivery: Arc<Delivery>,
    copy: usize,
    date: InternalDate,
    /// The room `RCPT` reserved for this copy (`reserve.rs`), consumed by the append.
    reservation: Option<QuotaReservation>,
    /// The asking shard's counters: a call refused over a bound counts there as failed (a
    /// served one counts on the home shard, in `deliver_here`).
    metrics: Arc<ShardMetrics>,
}

impl call::Request for Deliver {
    type Answer = Outcome;
    const NAME: &'static str = "deliver";

    fn user(&self) -> &str {
        &self.delivery.copies[self.copy].user
    }

    async fn serve(self, shard: Rc<Shard>) -> Outcome {
        let (outcome, kind) =
            deliver_here(&shard, &self.delivery, self.copy, self.date, self.reservation).await;
        shard.metrics().delivery(kind);
        outcome
    }

    fn refused(self, error: CallError) -> Outcome {
        self.metrics.delivery(DeliveryOutcome::Failed);
        Err(failure_of_call(error))
    }
}

/// Delivers copy `copy` of `delivery` on its user's home shard and waits until it is durable.
pub(crate) async fn deliver(
    shard: &Rc<Shard>,
    delivery: Arc<Delivery>,
    copy: usize,
    date: InternalDate,
    reservation: Option<QuotaReservation>,
) -> Outcome {
    let metrics = shard.metrics().clone();
    match call::call(shard, Deliver { delivery, copy, date, reservation, metrics }).await {
        Ok(outcome) => outcome,
        Err(error) => {
            shard.metrics().delivery(DeliveryOutcome::Failed);
            Err(failure_of_call(error))
        }
    }
}

/// A call that got no answer: the MTA should try again later.
fn failure_of_call(error: CallError) -> DeliveryFailure {
    match error {
        CallError::Busy => DeliveryFailure::temporary("server busy"),
        CallError::Unavailable => DeliveryFailure::temporary("home shard unavailable"),
    }
}

/// The delivery itself, on the home shard, with what it counts as in the metrics.
async fn deliver_here(
    shard: &Rc<Shard>,
    delivery: &Delivery,
    copy: usize,
    date: InternalDate,
    reservation: Option<QuotaReservation>,
) -> (Outcome, DeliveryOutcome) {
    let stored = std::cell::Cell::new(false);
    let outcome = deliver_stored(shard, delivery, copy, date, reservation, &stored).await;
    let kind = match &outcome {
        Ok(()) if stored.get() => DeliveryOutcome::Delivered,
        Ok(()) => DeliveryOutcome::Duplicate,
        Err(DeliveryFailure::OverQuota) => DeliveryOutcome::OverQuota,
        Err(DeliveryFailure::TooLarge) => DeliveryOutcome::Refused,
        Err(DeliveryFailure::StorageFull | DeliveryFailure::Temporary(_)) => {
            DeliveryOutcome::Failed
        }
    };
    (outcome, kind)
}

/// [`deliver_here`]'s work; `stored` is set when the store changed (a suppressed duplicate
/// is acknowledged without a change).
async fn deliver_stored(
    shard: &Rc<Shard>,
    delivery: &Delivery,
    copy: usize,
    date: InternalDate,
    reservation: Option<QuotaReservation>,
    stored: &std::cell::Cell<bool>,
) -> Outcome {
    let user = delivery.copies[copy].user.as_str();
    if shard.commit.is_failed() {
        return Err(reply::delivery_failure_of_commit(crate::commit::CommitError::Failed));
    }
    let handle = match shard.registry.open(user, crate::driver::yield_to_reactor).await {
        Ok(handle) => handle,
        Err(error) => {
            tracing::error!(%error, "delivery deferred: store unavailable");
            return Err(reply::delivery_failure_of_registry(&error));
        }
    };
    let result = guarded(|| {
        handle.with_store(|store| {
            // The reserved room becomes the message's: released and appended in one step, so
            // nothing else takes it in between, and the append is checked with every other
            // reservation counted.
            if let Some(reservation) = reservation {
                let _ = store.release(reservation);
            }
            let before = store.change_counter();
            let delivered = skua_protocols::lmtp::deliver(store, delivery, copy, date);
            stored.set(store.change_counter() != before);
            delivered
        })
    });
    let appended = match result {
        Ok(appended) => appended,
        Err(detail) => {
            shard.note_panic("lmtp delivery", &detail);
            shard.registry.poison(&handle);
            Err(DeliveryFailure::temporary("internal error"))
        }
    };
    shard.registry.release(handle);
    // The ticket is read after the append: the flush round that covers it covers the append.
    // A refusal waits for it too: a refused append cut the spool back, and that cut must be
    // durable before the MTA hears 452, or a crash could revive what it will send again.
    let ticket = shard.commit.ticket();
    let uids = match appended {
        Ok(uids) => uids,
        Err(failure) => {
            // If the round itself fails, the refusal stands; the shard stops acknowledging.
            let _ = shard.commit.wait_durable(ticket).await;
            return Err(failure);
        }
    };
    match shard.commit.wait_durable(ticket).await {
        Ok(()) => {
            tracing::debug!(user, uids = ?uids, "delivered");
            Ok(())
        }
        Err(error) => Err(reply::delivery_failure_of_commit(error)),
    }
}
