//! The one cross-shard call: work on a user's store, asked from any shard, served on the
//! user's home shard, answered to the asker (`../shared/DESIGN.md`, "Seams": requests, not
//! references).
//!
//! ```text
//!  asking shard A                                  home shard H of `request.user()`
//!  ──────────────                                  ────────────────────────────────
//!  call(shard, request) ── H == A? ─── yes ──────► request.serve(shard)   (same task, no hop)
//!        │ no: outgoing < CALLS_OUT_MAX?
//!        │     no ─► Err(CallError::Busy)
//!        │ Envelope{id, origin, job} ── mesh ────► dispatch ─► serve_envelope:
//!        │                                           serving < CALLS_SERVED_MAX?
//!        │                                             no ─► Answer{id, Err(Busy)}
//!        │                                             yes ─► job(shard) = request.serve(..)
//!  waiting[id] ◄───────── mesh ◄────────────────── Answer{id, Ok(boxed answer)}
//! ```
//!
//! A request is a typed value ([`Request`]): what to do, for whom, owned data only (`Send`),
//! and its own answer type. Nothing `Rc`, no reference into another shard's store ever
//! crosses. The erasure that lets one channel carry every kind of request lives here alone:
//! the asker gets back exactly `R::Answer`.
//!
//! Bounds: a shard has at most [`CALLS_OUT_MAX`] calls of its own waiting on other shards and
//! serves at most [`CALLS_SERVED_MAX`] at once (its own and others'); past either, the request
//! is answered at once by its own [`Request::refused`] (given [`CallError::Busy`]), which
//! every request turns into a temporary error (LMTP `451 4.3.0`, IMAP `NO [UNAVAILABLE]`) and
//! which hands back whatever the request carried. So a flood of work for one shard costs the
//! others a bounded number of waiting slots, never an unbounded queue.
//!
//! A caller that goes away (its connection closed) leaves no slot behind; the answer, when it
//! comes, is dropped. A peer shard that stops answers every call still waiting on it with
//! [`CallError::Unavailable`].

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};

use crate::limits::{CALLS_OUT_MAX, CALLS_SERVED_MAX};
use crate::placement::ShardId;
use crate::shard::{Shard, ShardMessage, home_of};

/// Work on one user's store, served on that user's home shard.
pub(crate) trait Request: Send + 'static {
    /// What the asker gets back.
    type Answer: Send + 'static;
    /// For logs.
    const NAME: &'static str;
    /// The user whose home shard serves the request.
    fn user(&self) -> &str;
    /// Does the work, on the home shard (this is where the user's store lives).
    fn serve(self, shard: Rc<Shard>) -> impl Future<Output = Self::Answer> + 'static;
    /// The answer when the request is not served (over a bound, or the home shard could not be
    /// reached): it gets back whatever it carried (a session travelling with its request).
    fn refused(self, error: CallError) -> Self::Answer;
}

/// Why a call got no answer. Always temporary: asking again later may succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CallError {
    /// Too many calls in flight on the asking or the serving shard.
    #[error("too many cross-shard requests in flight")]
    Busy,
    /// The home shard stopped (shutdown) before answering.
    #[error("the user's home shard is unavailable")]
    Unavailable,
}

type Boxed = Box<dyn Any + Send>;
/// Builds the request's future on the home shard: `serve`, or `refused` when given an error.
type Job =
    Box<dyn FnOnce(Rc<Shard>, Option<CallError>) -> Pin<Box<dyn Future<Output = Boxed>>> + Send>;

/// A request on its way to its home shard.
pub(crate) struct Envelope {
    id: u64,
    origin: ShardId,
    name: &'static str,
    job: Job,
}

/// The answer to an [`Envelope`], on its way back.
pub(crate) struct Answer {
    id: u64,
    value: Result<Boxed, CallError>,
}

/// One call waiting for its answer.
struct Slot {
    target: ShardId,
    value: Option<Result<Boxed, CallError>>,
    waker: Option<Waker>,
}

/// A shard's calls: those it waits on, and how many it serves.
#[derive(Default)]
pub(crate) struct Calls {
    next_id: Cell<u64>,
    waiting: RefCell<HashMap<u64, Slot>>,
    serving: Cell<usize>,
    /// Calls refused for being over a bound (both directions), for logs and tests.
    refused: Cell<u64>,
    /// The shard's counters: in-flight gauges and refusals mirrored for the scrape.
    metrics: std::cell::OnceCell<std::sync::Arc<crate::metrics::ShardMetrics>>,
}

impl Calls {
    /// Mirrors this shard's calls into `metrics` from now on (the first set stays).
    pub(crate) fn set_metrics(&self, metrics: std::sync::Arc<crate::metrics::ShardMetrics>) {
        let _ = self.metrics.set(metrics);
        self.publish();
    }

    /// Copies the in-flight counts into the metrics' gauges.
    fn publish(&self) {
        if let Some(metrics) = self.metrics.get() {
            metrics.set_calls(self.waiting.borrow().len(), self.serving.get());
        }
    }

    /// Counts a refusal.
    fn note_refused(&self) {
        self.refused.set(self.refused.get() + 1);
        if let Some(metrics) = self.metrics.get() {
            metrics.call_refused();
        }
    }

    /// Calls this shard is serving now.
    #[cfg(test)]
    pub(crate) fn serving(&self) -> usize {
        self.serving.get()
    }

    /// Calls of this shard waiting on others now.
    #[cfg(test)]
    pub(crate) fn outgoing(&self) -> usize {
        self.waiting.borrow().len()
    }

    /// Calls refused so far for being over a bound.
    pub(crate) fn refused(&self) -> u64 {
        self.refused.get()
    }

    fn register(&self, target: ShardId) -> Result<u64, CallError> {
        let mut waiting = self.waiting.borrow_mut();
        if waiting.len() >= CALLS_OUT_MAX {
            drop(waiting);
            self.note_refused();
            return Err(CallError::Busy);
        }
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        waiting.insert(id, Slot { target, value: None, waker: None });
        drop(waiting);
        self.publish();
        Ok(id)
    }

    /// A serving slot, if one is free: released when the returned guard drops.
    fn start_serving(&self) -> Result<ServingGuard<'_>, CallError> {
        if self.serving.get() >= CALLS_SERVED_MAX {
            self.note_refused();
            return Err(CallError::Busy);
        }
        self.serving.set(self.serving.get() + 1);
        self.publish();
        Ok(ServingGuard(self))
    }

    /// Records an answer (called by the mesh dispatcher; never waits). An answer nobody waits
    /// for any more is dropped.
    pub(crate) fn complete(&self, answer: Answer) {
        if let Some(slot) = self.waiting.borrow_mut().get_mut(&answer.id) {
            slot.value = Some(answer.value);
            if let Some(waker) = slot.waker.take() {
                waker.wake();
            }
        }
    }

    /// The channel from `target` closed: its unanswered calls never will be.
    pub(crate) fn target_gone(&self, target: ShardId) {
        for slot in self.waiting.borrow_mut().values_mut() {
            if slot.target == target && slot.value.is_none() {
                slot.value = Some(Err(CallError::Unavailable));
                if let Some(waker) = slot.waker.take() {
                    waker.wake();
                }
            }
        }
    }

    /// Waits for call `id`'s answer. Dropping the future forgets the call.
    async fn wait(&self, id: u64) -> Result<Boxed, CallError> {
        let forget = Forget { calls: self, id };
        let value = std::future::poll_fn(|context| {
            let mut waiting = self.waiting.borrow_mut();
            let slot = waiting.get_mut(&id).expect("a waiting call keeps its slot");
            match slot.value.take() {
                Some(value) => Poll::Ready(value),
                None => {
                    slot.waker = Some(context.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await;
        drop(forget);
        value
    }
}

/// Removes a call's slot when its waiter finishes or is dropped.
struct Forget<'a> {
    calls: &'a Calls,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.calls.waiting.borrow_mut().remove(&self.id);
        self.calls.publish();
    }
}

/// Holds one of [`CALLS_SERVED_MAX`] serving slots.
struct ServingGuard<'a>(&'a Calls);

impl Drop for ServingGuard<'_> {
    fn drop(&mut self) {
        self.0.serving.set(self.0.serving.get() - 1);
        self.0.publish();
    }
}

/// Serves `request` on the home shard of its user and returns its answer: in this task when
/// that is this shard, else through the mesh. A request over a bound (here or at the home
/// shard) or that cannot reach its home shard is answered by [`Request::refused`].
///
/// # Errors
/// [`CallError::Unavailable`]: the home shard stopped after the request reached it; the
/// request and its answer are gone, and whether it was served is unknown.
pub(crate) async fn call<R: Request>(
    shard: &Rc<Shard>,
    request: R,
) -> Result<R::Answer, CallError> {
    let home = home_of(request.user(), shard.shared.count);
    if home == shard.id {
        let Ok(_serving) = shard.calls.start_serving() else {
            return Ok(request.refused(CallError::Busy));
        };
        note_served(R::NAME, request.user(), shard.id);
        return Ok(request.serve(shard.clone()).await);
    }
    let id = match shard.calls.register(home) {
        Ok(id) => id,
        Err(error) => return Ok(request.refused(error)),
    };
    let job: Job = Box::new(move |shard: Rc<Shard>, refusal: Option<CallError>| {
        if let Some(error) = refusal {
            return Box::pin(async move { Box::new(request.refused(error)) as Boxed });
        }
        note_served(R::NAME, request.user(), shard.id);
        Box::pin(async move { Box::new(request.serve(shard).await) as Boxed })
    });
    let envelope = Envelope { id, origin: shard.id, name: R::NAME, job };
    let answer = match shard.mesh.send(home, ShardMessage::Call(Box::new(envelope))).await {
        Ok(()) => shard.calls.wait(id).await?,
        Err(message) => {
            shard.calls.waiting.borrow_mut().remove(&id);
            shard.calls.publish();
            let ShardMessage::Call(envelope) = message else { unreachable!("sent a call") };
            (envelope.job)(shard.clone(), Some(CallError::Unavailable)).await
        }
    };
    Ok(*answer.downcast::<R::Answer>().expect("an answer has its request's type"))
}

/// Serves a call another shard sent here, then answers it. Spawned by the dispatcher, so the
/// dispatcher itself never waits. Over the bound, the request is refused (its `refused`
/// answer goes back, so what it carried is not lost).
pub(crate) async fn serve_envelope(shard: Rc<Shard>, envelope: Envelope) {
    let Envelope { id, origin, name, job } = envelope;
    let answer = match shard.calls.start_serving() {
        Ok(serving) => {
            let _pass = shard.work.enter();
            let answer = job(shard.clone(), None).await;
            drop(serving);
            answer
        }
        Err(error) => {
            tracing::warn!(origin = origin.0, request = name, "cross-shard call refused: busy");
            job(shard.clone(), Some(error)).await
        }
    };
    let value = Ok(answer);
    if shard.mesh.send(origin, ShardMessage::Answer(Box::new(Answer { id, value }))).await.is_err()
    {
        tracing::warn!(origin = origin.0, request = name, "answer lost: the asking shard is gone");
    }
}

/// Test builds record where every request was served, so a multi-shard test can check that
/// each ran on its user's home shard.
#[cfg(test)]
pub(crate) static SERVED: std::sync::Mutex<Vec<(&'static str, String, ShardId)>> =
    std::sync::Mutex::new(Vec::new());

#[cfg(test)]
fn note_served(name: &'static str, user: &str, shard: ShardId) {
    SERVED.lock().expect("served record").push((name, user.to_owned(), shard));
}

#[cfg(not(test))]
fn note_served(_: &'static str, _: &str, _: ShardId) {}

#[cfg(test)]
mod tests {
    use futures_lite::future;

    use super::*;

    fn answer(id: u64, value: u32) -> Answer {
        Answer { id, value: Ok(Box::new(value)) }
    }

    #[test]
    fn answers_reach_their_waiter_and_a_lost_shard_fails_its_calls() {
        let calls = Calls::default();
        let to_one = calls.register(ShardId(1)).expect("room");
        let to_two = calls.register(ShardId(2)).expect("room");
        let also_two = calls.register(ShardId(2)).expect("room");
        calls.complete(answer(to_one, 7));
        let got = future::block_on(calls.wait(to_one)).expect("answered");
        assert_eq!(*got.downcast::<u32>().expect("u32"), 7);
        calls.complete(answer(also_two, 9));
        calls.target_gone(ShardId(2));
        assert_eq!(future::block_on(calls.wait(to_two)).err(), Some(CallError::Unavailable));
        let kept = future::block_on(calls.wait(also_two)).expect("an answer that arrived stays");
        assert_eq!(*kept.downcast::<u32>().expect("u32"), 9);
        assert_eq!(calls.outgoing(), 0, "nothing left behind");
    }

    #[test]
    fn a_dropped_waiter_leaves_no_slot_and_its_late_answer_is_ignored() {
        let calls = Calls::default();
        let id = calls.register(ShardId(1)).expect("room");
        {
            let mut waiting = std::pin::pin!(calls.wait(id));
            let waker = Waker::noop();
            let mut context = std::task::Context::from_waker(waker);
            assert!(waiting.as_mut().poll(&mut context).is_pending());
        }
        assert_eq!(calls.outgoing(), 0);
        calls.complete(answer(id, 1));
        assert_eq!(calls.outgoing(), 0);
    }

    #[test]
    fn outgoing_and_serving_are_bounded_and_refusals_counted() {
        let calls = Calls::default();
        let ids: Vec<u64> =
            (0..CALLS_OUT_MAX).map(|_| calls.register(ShardId(1)).expect("room")).collect();
        assert_eq!(calls.register(ShardId(1)), Err(CallError::Busy));
        for id in ids {
            calls.waiting.borrow_mut().remove(&id);
        }
        assert!(calls.register(ShardId(1)).is_ok(), "room again once answered");

        let guards: Vec<_> =
            (0..CALLS_SERVED_MAX).map(|_| calls.start_serving().expect("room")).collect();
        assert_eq!(calls.serving(), CALLS_SERVED_MAX);
        assert!(calls.start_serving().is_err());
        drop(guards);
        assert_eq!(calls.serving(), 0);
        assert_eq!(calls.refused(), 2);
    }
}
