//! A command on another user's mailbox (a shared folder): the session goes to the store, not
//! the store to the session.
//!
//! ```text
//!  alice's home shard A                         bob's home shard B
//!  ────────────────────                         ──────────────────
//!  session.next(alice's store)
//!    └─ Step::Elsewhere{"bob"} ─ RunSession ──► open bob's store (registry), and
//!        (the session moves, boxed)               session.next_on("bob", bob's store):
//!                                                 the command runs (rights from bob's ACL),
//!                                                 its writes wait for B's flush round,
//!                                                 spool slices are paged in and copied
//!  write the output, carry on  ◄── RunAnswer ──── (session, Remote step)
//! ```
//!
//! So a command on a shared folder costs one cross-shard round trip, and nothing of bob's
//! store (no `Rc`, no mapped bytes, no mailbox id outside the session's view) crosses to A.
//! The session only runs there the commands that belong to bob's store; the first one that
//! does not ends the step (`Step::Elsewhere` again), and A carries on with it.

use std::rc::Rc;

use skua_protocols::imap::session::{ElsewhereFailure, ImapSession, Step};

use crate::call::{self, CallError};
use crate::guard::guarded;
use crate::reply::Ending;
use crate::shard::Shard;

/// Run `session` on `owner`'s store, on `owner`'s home shard.
pub(crate) struct RunSession {
    /// The owner's canonical name.
    pub owner: String,
    /// The travelling session.
    pub session: Box<ImapSession>,
}

/// What the session's step came to, in a form that may cross shards.
pub(crate) enum Remote {
    /// Send these bytes (durable already, on the owner's shard).
    Write(Vec<Vec<u8>>),
    /// Any other step, carried out by the session's home shard as if it came from there.
    Step(Plain),
    /// The owner's store could not be had: the waiting command is answered so.
    Failed(ElsewhereFailure),
    /// The session cannot go on: end the connection.
    End(Ending),
}

/// The answer: the session back (unless it was lost to a panic) and its step.
pub(crate) struct RunAnswer {
    /// The session, `None` after a panic (its memory may be inconsistent).
    pub session: Option<Box<ImapSession>>,
    /// See [`Remote`].
    pub step: Remote,
}

/// The session's steps that carry no output.
#[derive(Debug)]
pub(crate) enum Plain {
    NeedInput,
    Idle,
    Yield,
    StartTls,
    Compress,
    Close,
    Elsewhere(Option<String>),
}

impl Plain {
    /// The step as the session gave it.
    pub(crate) fn into_step(self) -> Step {
        match self {
            Plain::NeedInput => Step::NeedInput,
            Plain::Idle => Step::Idle,
            Plain::Yield => Step::Yield,
            Plain::StartTls => Step::StartTls,
            Plain::Compress => Step::Compress,
            Plain::Close => Step::Close,
            Plain::Elsewhere(owner) => Step::Elsewhere { owner },
        }
    }
}

impl call::Request for RunSession {
    type Answer = RunAnswer;
    const NAME: &'static str = "imap-shared";

    fn user(&self) -> &str {
        &self.owner
    }

    async fn serve(self, shard: Rc<Shard>) -> RunAnswer {
        let RunSession { owner, mut session } = self;
        let unavailable = |session| RunAnswer {
            session: Some(session),
            step: Remote::Failed(ElsewhereFailure::Unavailable),
        };
        if shard.commit.is_failed() || shard.is_stopping() {
            return unavailable(session);
        }
        let handle = match shard.registry.open(&owner, crate::driver::yield_to_reactor).await {
            Ok(handle) if !handle.is_poisoned() => handle,
            Ok(handle) => {
                shard.registry.release(handle);
                return unavailable(session);
            }
            Err(error) => {
                tracing::warn!(%error, owner, "shared folder unavailable");
                return unavailable(session);
            }
        };
        let result =
            guarded(|| handle.with_store(|store| session.next_on(Some(&owner), Some(store))));
        let step = match result {
            Ok(step) => step,
            Err(detail) => {
                shard.note_panic("imap on a shared folder", &detail);
                shard.registry.poison(&handle);
                shard.registry.release(handle);
                return RunAnswer { session: None, step: Remote::End(Ending::ServerBug) };
            }
        };
        shard.registry.release(handle);
        let step = match step {
            Step::Write { chunks, durable } => {
                if let Some(ticket) = durable
                    && shard.commit.wait_durable(ticket).await.is_err()
                {
                    return RunAnswer {
                        session: Some(session),
                        step: Remote::End(Ending::Storage),
                    };
                }
                crate::driver::page_in(&shard, &chunks).await;
                let owned = chunks
                    .into_iter()
                    .map(|chunk| chunk.without_nul().as_bytes().to_vec())
                    .collect();
                Remote::Write(owned)
            }
            Step::NeedInput => Remote::Step(Plain::NeedInput),
            Step::Idle => Remote::Step(Plain::Idle),
            Step::Yield => Remote::Step(Plain::Yield),
            Step::StartTls => Remote::Step(Plain::StartTls),
            Step::Compress => Remote::Step(Plain::Compress),
            Step::Close => Remote::Step(Plain::Close),
            Step::Elsewhere { owner } => Remote::Step(Plain::Elsewhere(owner)),
            Step::Authenticate(_) => {
                // Only commands on the owner's store run here; a login is not one.
                debug_assert!(false, "a login step on a shared folder's shard");
                Remote::End(Ending::ServerBug)
            }
        };
        RunAnswer { session: Some(session), step }
    }

    fn refused(self, error: CallError) -> RunAnswer {
        tracing::debug!(owner = self.owner, %error, "shared folder command refused");
        RunAnswer {
            session: Some(self.session),
            step: Remote::Failed(ElsewhereFailure::Unavailable),
        }
    }
}
