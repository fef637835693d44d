//! Delivering one message to one user on the user's home shard, from any shard.
//!
//! ```text
//!  LMTP shard                                   home shard of the recipient
//!  ──────────                                   ───────────────────────────
//!  deliver(delivery, copy) ─ home here? ──────► deliver_here
//!        │ no: Request{id, Arc delivery, copy}
//!        └──── mesh ──────────────────────────► serve_request ─► deliver_here:
//!                                                 open store, lmtp::deliver, notify IDLE,
//!                                                 wait for the flush round (durable ticket)
//!  Replies[id] ◄──────── mesh ◄── Reply{id, outcome}
//! ```
//!
//! The delivery is an immutable `Arc<Delivery>` (the message, the envelope, the trace data and
//! every user's copy): every recipient's shard reads the same bytes, and nothing `Rc` ever
//! crosses. An outcome is [`Outcome::Delivered`] only after the shard's flush
//! round made the message durable.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use skua_core::types::InternalDate;
use skua_protocols::lmtp::{Delivery, DeliveryFailure};

use crate::event::Event;
use crate::guard::guarded;
use crate::placement::ShardId;
use crate::reply;
use crate::shard::{Shard, ShardMessage, home_of};

/// What happened to one recipient's copy: `Ok` only once it is durable.
pub(crate) type Outcome = Result<(), DeliveryFailure>;

/// A delivery asked of another shard.
pub(crate) struct Request {
    id: u64,
    origin: ShardId,
    /// The transaction; `copy` indexes the user's copy in it.
    delivery: Arc<Delivery>,
    copy: usize,
    date: InternalDate,
}

/// The answer to a [`Request`].
pub(crate) struct Reply {
    id: u64,
    outcome: Outcome,
}

/// A delivery sent elsewhere: which shard has it, and its answer once there.
struct Pending {
    target: ShardId,
    outcome: Option<Outcome>,
}

/// Deliveries this shard sent elsewhere, by request id.
#[derive(Default)]
pub(crate) struct Replies {
    next_id: Cell<u64>,
    waiting: RefCell<HashMap<u64, Pending>>,
    arrived: Event,
}

impl Replies {
    fn register(&self, target: ShardId) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        self.waiting.borrow_mut().insert(id, Pending { target, outcome: None });
        id
    }

    /// Records an answer (called by the mesh dispatcher; never waits).
    pub(crate) fn complete(&self, reply: Reply) {
        if let Some(pending) = self.waiting.borrow_mut().get_mut(&reply.id) {
            pending.outcome = Some(reply.outcome);
        }
        self.arrived.notify();
    }

    /// The channel from `target` closed: its unanswered deliveries will never be answered,
    /// so they fail (temporarily: the MTA retries).
    pub(crate) fn target_gone(&self, target: ShardId) {
        for pending in self.waiting.borrow_mut().values_mut() {
            if pending.target == target && pending.outcome.is_none() {
                pending.outcome = Some(Err(DeliveryFailure::temporary("home shard stopped")));
            }
        }
        self.arrived.notify();
    }

    async fn wait(&self, id: u64) -> Outcome {
        loop {
            let seen = self.arrived.generation();
            let ready = self.waiting.borrow().get(&id).is_some_and(|p| p.outcome.is_some());
            if ready {
                let pending = self.waiting.borrow_mut().remove(&id);
                return pending.and_then(|p| p.outcome).expect("checked above");
            }
            self.arrived.wait_past(seen).await;
        }
    }
}

/// Delivers copy `copy` of `delivery` on its user's home shard and waits until it is durable.
pub(crate) async fn deliver(
    shard: &Rc<Shard>,
    delivery: Arc<Delivery>,
    copy: usize,
    date: InternalDate,
) -> Outcome {
    let home = home_of(&delivery.copies[copy].user, shard.shared.count);
    if home == shard.id {
        return deliver_here(shard, &delivery, copy, date).await;
    }
    let id = shard.replies.register(home);
    let request = Request { id, origin: shard.id, delivery, copy, date };
    if shard.mesh.send(home, ShardMessage::Deliver(Box::new(request))).await.is_err() {
        shard.replies.waiting.borrow_mut().remove(&id);
        return Err(DeliveryFailure::temporary("home shard unavailable"));
    }
    shard.replies.wait(id).await
}

/// Serves a delivery asked by another shard, then answers it.
pub(crate) async fn serve_request(shard: Rc<Shard>, request: Request) {
    let _pass = shard.work.enter();
    let outcome = deliver_here(&shard, &request.delivery, request.copy, request.date).await;
    let reply = ShardMessage::Delivered(Box::new(Reply { id: request.id, outcome }));
    if shard.mesh.send(request.origin, reply).await.is_err() {
        tracing::warn!(origin = request.origin.0, "delivery answer lost: origin shard is gone");
    }
}

/// The delivery itself, on the home shard.
async fn deliver_here(
    shard: &Rc<Shard>,
    delivery: &Delivery,
    copy: usize,
    date: InternalDate,
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
        handle.with_store(|store| skua_protocols::lmtp::deliver(store, delivery, copy, date))
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

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future;

    #[test]
    fn answers_reach_their_waiter_and_a_lost_shard_fails_its_deliveries() {
        let replies = Replies::default();
        let to_one = replies.register(ShardId(1));
        let to_two = replies.register(ShardId(2));
        let also_two = replies.register(ShardId(2));
        replies.complete(Reply { id: to_one, outcome: Ok(()) });
        assert_eq!(future::block_on(replies.wait(to_one)), Ok(()));
        replies.complete(Reply { id: also_two, outcome: Err(DeliveryFailure::OverQuota) });
        replies.target_gone(ShardId(2));
        assert!(matches!(
            future::block_on(replies.wait(to_two)),
            Err(DeliveryFailure::Temporary(_))
        ));
        assert_eq!(
            future::block_on(replies.wait(also_two)),
            Err(DeliveryFailure::OverQuota),
            "an answer that arrived is kept"
        );
        assert!(replies.waiting.borrow().is_empty(), "nothing left behind");
    }
}
