//! The deny list the server enforces (`skua deny`; the file and its rules are
//! `skua_core::deny`).
//!
//! One process-wide snapshot, an `Arc<DenyList>` behind a mutex held for one `Arc` clone (as
//! the passwd-file's users are, `users.rs`), plus a generation counter. Not per-shard copies
//! kept in step by cross-shard messages: the list is config-like, read at logins and RCPTs
//! (rare next to everything else a shard does) and changed by an operator now and then, and a
//! swap is in effect on every shard at once, so the admin tool's `ok` means every shard
//! refuses the user from then on, with no acknowledgement round over the mesh.
//!
//! - **Logins** (`sasl::answer`, the one place every IMAP login mechanism ends) and **RCPT**
//!   (`lmtp.rs`) read the snapshot.
//! - **Sessions already logged in** compare the generation (one atomic load) before each
//!   command; when it moved, they look their user up and end with `* BYE [CONTACTADMIN]` if
//!   now denied (`imap.rs`). A session waiting for input (in IDLE, or between commands) is
//!   woken at once: after a change that denies users, shard 0 asks each one's home shard to
//!   notify the open store's `reset` event, which every session's wait watches
//!   ([`WakeSessions`]), so it looks now rather than at its client's next command.
//! - **Changes** come through the admin socket on shard 0 ([`DenyState::change`], run off the
//!   reactor: it fsyncs): the file is loaded, changed, written durably, and only then swapped
//!   in, under one mutex so two tools at once do not lose each other's change.

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use skua_core::deny::{self, DenyChange, DenyEntry, DenyError, DenyList, Service};
use skua_core::paths::{UserName, user_dir};

use crate::admin_proto::{AdminRequest, ErrorReply, Op};
use crate::call::{self, CallError};
use crate::driver::run_blocking;
use crate::shard::Shard;

/// The deny list in force, shared by every shard.
pub(crate) struct DenyState {
    data_dir: PathBuf,
    list: Mutex<Arc<DenyList>>,
    /// Bumped by every swap; starts at 1 so a session's 0 means "never looked".
    generation: AtomicU64,
    /// Held across a whole change (load, edit, write, swap).
    writing: Mutex<()>,
}

impl DenyState {
    /// Loads `<data_dir>/deny.list` (none: nobody denied).
    ///
    /// # Errors
    /// The file cannot be read or does not parse (every bad line is named): the server
    /// refuses to start rather than let in someone the operator shut out.
    pub(crate) fn load(data_dir: PathBuf) -> Result<DenyState, DenyError> {
        let list = DenyList::load(&data_dir)?;
        if !list.is_empty() {
            tracing::info!(users = list.len(), "deny list loaded");
        }
        Ok(DenyState {
            data_dir,
            list: Mutex::new(Arc::new(list)),
            generation: AtomicU64::new(1),
            writing: Mutex::new(()),
        })
    }

    /// The list now.
    pub(crate) fn get(&self) -> Arc<DenyList> {
        self.list.lock().expect("deny list lock").clone()
    }

    /// Changes with each new list (compare with a value read earlier).
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// What `user` is told if `service` is refused to them.
    pub(crate) fn refusal(&self, user: &str, service: Service) -> Option<String> {
        let list = self.get();
        list.refusal(user, service).map(|entry| entry.message_or_default().to_owned())
    }

    /// Carries out `change` on the file and puts the new list in force (see
    /// `skua_core::deny::change`). Blocking (two fsyncs): call it off the reactor.
    ///
    /// # Errors
    /// As `deny::change`; the list in force is then unchanged.
    pub(crate) fn change(
        &self,
        change: &DenyChange,
        known: impl Fn(&str) -> bool,
    ) -> Result<Vec<DenyEntry>, DenyError> {
        let _writing = self.writing.lock().expect("deny write lock");
        let (list, report) = deny::change(&self.data_dir, change, known)?;
        if *change != DenyChange::List {
            *self.list.lock().expect("deny list lock") = Arc::new(list);
            self.generation.fetch_add(1, Ordering::AcqRel);
            tracing::info!(?change, "deny list changed");
        }
        Ok(report)
    }
}

/// The change an admin request asks for (`deny`, `deny-allow`, `deny-list`).
///
/// # Errors
/// A `bad-request` reply naming an unknown service.
pub fn change_of(request: &AdminRequest) -> Result<DenyChange, ErrorReply> {
    Ok(match request.op {
        Op::DenyAllow => DenyChange::Allow(request.users.clone()),
        Op::DenyList => DenyChange::List,
        _ => {
            let services = if request.services.is_empty() {
                vec![Service::Imap]
            } else {
                request
                    .services
                    .iter()
                    .map(|name| Service::parse(&name.to_ascii_lowercase()))
                    .collect::<Result<Vec<_>, String>>()
                    .map_err(|e| ErrorReply::new("bad-request", e))?
            };
            let message = request.message.clone().unwrap_or_default();
            DenyChange::Deny { users: request.users.clone(), services, message }
        }
    })
}

/// True when `user` is a user: in the passwd-file (`in_passwd`), or with a store under
/// `data_dir` (a user removed from the passwd-file whose mail is kept).
pub fn is_known(data_dir: &std::path::Path, user: &str, in_passwd: bool) -> bool {
    in_passwd || UserName::new(user).is_ok_and(|name| data_dir.join(user_dir(&name)).is_dir())
}

/// Serves an admin request for the deny list on shard 0: the change runs off the reactor
/// (it writes and fsyncs the file) and is in force on every shard when this answers.
pub(crate) async fn admin(
    shard: &Rc<Shard>,
    request: &AdminRequest,
) -> Result<serde_json::Value, ErrorReply> {
    let change = change_of(request)?;
    let state = shard.shared.deny.clone();
    let users = shard.shared.users.get();
    let done = run_blocking(move || {
        let data_dir = state.data_dir.clone();
        let known = |user: &str| is_known(&data_dir, user, users.lookup(user).is_some());
        state.change(&change, known)
    })
    .await;
    match done {
        Ok(Ok(report)) => {
            if request.op == Op::Deny {
                for user in &request.users {
                    // Best effort: a session that is not woken still looks at its next command.
                    let _ = call::call(shard, WakeSessions { user: user.clone() }).await;
                }
            }
            Ok(serde_json::to_value(report).expect("entries serialize"))
        }
        Ok(Err(error)) => Err(ErrorReply::new(error.kind(), error.to_string())),
        Err(detail) => {
            shard.note_panic("deny list change", &detail);
            Err(ErrorReply::new("server-bug", format!("the change panicked: {detail}")))
        }
    }
}

/// Wakes every session of `user` waiting for input on its home shard (see the module docs).
struct WakeSessions {
    user: String,
}

impl call::Request for WakeSessions {
    type Answer = ();
    const NAME: &'static str = "deny-wake";

    fn user(&self) -> &str {
        &self.user
    }

    async fn serve(self, shard: Rc<Shard>) {
        if let Some(handle) = shard.registry.open_handle(&self.user) {
            handle.reset.notify();
        }
    }

    fn refused(self, _error: CallError) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_in_force_at_once_and_moves_the_generation() {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = DenyState::load(dir.path().to_owned()).expect("no file");
        let before = state.generation();
        assert!(state.refusal("alice", Service::Imap).is_none());
        let deny = DenyChange::Deny {
            users: vec!["alice".to_owned()],
            services: vec![Service::Imap],
            message: String::new(),
        };
        state.change(&deny, |_| true).expect("denied");
        assert_ne!(state.generation(), before);
        assert_eq!(
            state.refusal("Alice", Service::Imap).as_deref(),
            Some(deny::DENY_MESSAGE_DEFAULT)
        );
        assert!(state.refusal("alice", Service::Lmtp).is_none());
        let listed = state.generation();
        state.change(&DenyChange::List, |_| true).expect("listed");
        assert_eq!(state.generation(), listed, "listing changes nothing");
        let reloaded = DenyState::load(dir.path().to_owned()).expect("file");
        assert!(reloaded.refusal("alice", Service::Imap).is_some(), "survives a restart");
        let refused = state.change(&DenyChange::Allow(vec!["bob".to_owned()]), |_| true);
        assert!(refused.is_err());
        assert_eq!(state.generation(), listed, "a refused change changes nothing");
    }
}
