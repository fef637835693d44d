//! The admin socket (`<data_dir>/admin.sock`): how `skua check`, `quota`, `mbexamine` and
//! `df` reach a running server, so no tool reads or writes a live store behind its back
//! (`ARCHITECTURE.md`, "Admin socket"; the protocol is `admin_proto.rs`).
//!
//! ```text
//!  skua check alice ──► admin.sock (shard 0)
//!                        peer uid == ours or root? ── no ──► {"error":refused}, close
//!                        read one line (≤ 64 KiB, deadline)
//!                        for each user: {"progress"} ──► client
//!                          call(AdminCall{alice}) ─────► alice's home shard:
//!                                                         registry.open(alice) (or the open one)
//!                                                         the core operation on the store
//!                          ◄──────────────── report as JSON (owned, Send)
//!                        {"ok":[reports]} ──► client, close
//! ```
//!
//! The socket is made by shard 0 after the data-dir lock is held (the server takes it
//! before starting shards), with mode 0600, replacing a stale file a killed server left
//! (`listen::bind_unix`), and removed when accepting stops. Peer credentials (SO_PEERCRED)
//! are checked on every connection, whatever the file's mode. At most
//! [`ADMIN_CONNECTIONS_MAX`] connections are served at once.
//!
//! The operations are the ones the offline CLI runs (`skua_core::store::admin`), run on the
//! user's home shard through the one cross-shard call (`call.rs`), so online and offline
//! reports are the same. Reconstruct rewrites the store's files, so it is not an operation on
//! the open store: `maintenance.rs` closes the store first and rebuilds it off the reactor.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::future;
use skua_core::store::admin::{self, AdminError};

use crate::admin_proto::{
    AdminRequest, ErrorReply, Op, Progress, Reply, parse_request, reply_line,
};
use crate::call::{self, CallError};
use crate::conn::{Connection, ReadOutcome};
use crate::guard::guarded;
use crate::limits::{
    ADMIN_CONNECTIONS_MAX, ADMIN_IO_TIMEOUT_MS, ADMIN_REQUEST_BYTES_MAX, ADMIN_REQUEST_DEADLINE_MS,
};
use crate::shard::Shard;

thread_local! {
    /// Admin connections being served on this shard (only shard 0 accepts them).
    static CONNECTIONS: Cell<usize> = const { Cell::new(0) };
}

/// One of [`ADMIN_CONNECTIONS_MAX`] connection slots, given back on drop.
struct Slot;

impl Slot {
    fn take() -> Option<Slot> {
        CONNECTIONS.with(|count| {
            (count.get() < ADMIN_CONNECTIONS_MAX).then(|| {
                count.set(count.get() + 1);
                Slot
            })
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        CONNECTIONS.with(|count| count.set(count.get() - 1));
    }
}

/// True when a peer running as `peer_uid` may use the socket of a server running as
/// `own_uid`: the same user, or root.
#[must_use]
pub(crate) fn peer_allowed(peer_uid: u32, own_uid: u32) -> bool {
    peer_uid == own_uid || peer_uid == 0
}

/// The peer's uid, from SO_PEERCRED on a duplicate of the accepted socket (no `unsafe`).
///
/// # Errors
/// The socket could not be duplicated or has no peer credentials.
pub(crate) fn peer_uid(stream: &impl std::os::fd::AsRawFd) -> std::io::Result<u32> {
    let socket = socket2::SockRef::from(stream).try_clone()?;
    let unix: std::os::unix::net::UnixStream = socket.into();
    let credentials = rustix::net::sockopt::socket_peercred(&unix)?;
    Ok(credentials.uid.as_raw())
}

/// Serves one admin connection (`accepted`, whose peer runs as `peer`; the runtime made both
/// from the accepted socket): checks the peer, reads one request, answers it, closes.
/// `sleep` is the runtime's timer (the request's deadline).
pub(crate) async fn serve<F: std::future::Future<Output = ()>>(
    shard: Rc<Shard>,
    accepted: std::io::Result<Connection>,
    peer: std::io::Result<u32>,
    sleep: impl Fn(Duration) -> F,
) {
    let io_timeout = Duration::from_millis(ADMIN_IO_TIMEOUT_MS);
    let Ok(mut connection) = accepted else {
        return;
    };
    let own = rustix::process::getuid().as_raw();
    let refusal = match peer {
        Ok(uid) if peer_allowed(uid, own) => None,
        Ok(uid) => Some(ErrorReply::new(
            "refused",
            format!("uid {uid} may not use the admin socket (only uid {own} and root)"),
        )),
        Err(error) => Some(ErrorReply::new("refused", format!("no peer credentials: {error}"))),
    };
    let slot = Slot::take();
    let answer = match (refusal, &slot) {
        (Some(refusal), _) => {
            tracing::warn!(reason = %refusal.message, "admin connection refused");
            Reply::Error(refusal)
        }
        (None, None) => Reply::Error(ErrorReply::new(
            "busy",
            format!("{ADMIN_CONNECTIONS_MAX} admin connections are being served; try again"),
        )),
        (None, Some(_)) => match read_request(&mut connection, io_timeout).await {
            Err(error) => Reply::Error(error),
            Ok((request, rest)) => {
                tracing::info!(op = ?request.op, users = request.users.len(), all = request.all, "admin request");
                let deadline = Duration::from_millis(ADMIN_REQUEST_DEADLINE_MS);
                future::or(run(&shard, &mut connection, request, rest), async {
                    sleep(deadline).await;
                    Reply::Error(ErrorReply::new("timeout", "the request took too long"))
                })
                .await
            }
        },
    };
    let _ = connection.write_all(&reply_line(&answer)).await;
    connection.close().await;
    drop(slot);
}

/// Reads one request line of at most [`ADMIN_REQUEST_BYTES_MAX`] bytes; gives it with the
/// bytes read after it (a restore's first frames).
async fn read_request(
    connection: &mut Connection,
    timeout: Duration,
) -> Result<(AdminRequest, Vec<u8>), ErrorReply> {
    let mut line = Vec::new();
    let mut rest = Vec::new();
    loop {
        match connection.read(timeout).await {
            Ok(ReadOutcome::Data(len)) => {
                let input = connection.input(len);
                if let Some(end) = input.iter().position(|&b| b == b'\n') {
                    line.extend_from_slice(&input[..end]);
                    rest.extend_from_slice(&input[end + 1..]);
                    break;
                }
                line.extend_from_slice(input);
                if line.len() > ADMIN_REQUEST_BYTES_MAX {
                    break; // parse_request says it is too long
                }
            }
            Ok(ReadOutcome::Closed) => break,
            Ok(ReadOutcome::TimedOut) => {
                return Err(ErrorReply::new("timeout", "no request line in time"));
            }
            Err(error) => return Err(ErrorReply::new("bad-request", error.to_string())),
        }
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok((parse_request(&line)?, rest))
}

/// Runs a parsed request; writes progress lines and returns the final reply.
async fn run(
    shard: &Rc<Shard>,
    connection: &mut Connection,
    request: AdminRequest,
    rest: Vec<u8>,
) -> Reply {
    match run_users(shard, connection, request, rest).await {
        Ok(value) => Reply::Ok(value),
        Err(error) => Reply::Error(error),
    }
}

async fn run_users(
    shard: &Rc<Shard>,
    connection: &mut Connection,
    request: AdminRequest,
    rest: Vec<u8>,
) -> Result<serde_json::Value, ErrorReply> {
    match request.op {
        Op::Ping => {
            return Ok(serde_json::json!({
                "pid": std::process::id(),
                "version": env!("CARGO_PKG_VERSION"),
                "shards": shard.shared.count,
            }));
        }
        Op::Deny | Op::DenyAllow | Op::DenyList => {
            return crate::deny::admin(shard, &request).await;
        }
        Op::Backup | Op::Restore => {
            return crate::admin_stream::run(shard, connection, &request, rest).await;
        }
        Op::Reconstruct
        | Op::Check
        | Op::Quota
        | Op::Examine
        | Op::Df
        | Op::Ipurge
        | Op::Unexpunge
        | Op::MboxlistDump
        | Op::Arbitron
        | Op::MboxlistUndump => {}
    }
    let users = if request.op == Op::MboxlistUndump {
        if let Some(report) = crate::admin_mboxlist::undump_dry_here(shard, &request)? {
            return Ok(report);
        }
        crate::admin_mboxlist::undump_users(shard, &request)?
    } else {
        users_of(shard, &request)?
    };
    let total = users.len() as u64;
    let mut reports = Vec::with_capacity(users.len());
    for (done, user) in users.into_iter().enumerate() {
        let progress = Progress { done: done as u64, total, user: user.clone() };
        // A client that went away is found out at the final write; the work goes on.
        let _ = connection.write_all(&reply_line(&Reply::Progress(progress))).await;
        let answer = if request.op == Op::Reconstruct {
            call::call(shard, crate::maintenance::ReconstructCall { user }).await
        } else {
            call::call(shard, AdminCall { user, request: request.clone() }).await
        };
        let report = match answer {
            Ok(answer) => answer?,
            Err(error) => return Err(call_error(error)),
        };
        reports.push(report);
    }
    if matches!(request.op, Op::Examine | Op::MboxlistUndump) {
        return Ok(reports.pop().expect("examine and undump name one user, last"));
    }
    Ok(serde_json::Value::Array(reports))
}

/// The users a request names: every user with a store for `all` (and `df` without users),
/// else the names given, each of which must have a store.
pub(crate) fn users_of(
    shard: &Rc<Shard>,
    request: &AdminRequest,
) -> Result<Vec<String>, ErrorReply> {
    let disk = skua_core::disk::os::OsDisk::new(&shard.config().data_dir)
        .map_err(|e| ErrorReply::new("storage", e.to_string()))?;
    if request.all || request.users.is_empty() {
        return admin::store_users(&disk).map_err(|e| ErrorReply::new("storage", e.to_string()));
    }
    let mut users = Vec::with_capacity(request.users.len());
    for user in &request.users {
        let dir = admin::existing_store_dir(&disk, user).map_err(|e| admin_error(&e))?;
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or(user).to_owned();
        users.push(name);
    }
    Ok(users)
}

pub(crate) fn admin_error(error: &AdminError) -> ErrorReply {
    ErrorReply::new(error.kind(), error.to_string())
}

pub(crate) fn call_error(error: CallError) -> ErrorReply {
    match error {
        CallError::Busy => ErrorReply::new("busy", error.to_string()),
        CallError::Unavailable => ErrorReply::new("unavailable", error.to_string()),
    }
}

/// One user's share of an admin request, served on the user's home shard.
struct AdminCall {
    user: String,
    request: AdminRequest,
}

impl call::Request for AdminCall {
    type Answer = Result<serde_json::Value, ErrorReply>;
    const NAME: &'static str = "admin";

    fn user(&self) -> &str {
        &self.user
    }

    async fn serve(self, shard: Rc<Shard>) -> Self::Answer {
        if shard.is_stopping() {
            return Err(call_error(CallError::Unavailable));
        }
        let handle = shard
            .registry
            .open(&self.user, crate::driver::yield_to_reactor)
            .await
            .map_err(|e| ErrorReply::new("storage", e.to_string()))?;
        if handle.is_poisoned() {
            shard.registry.release(handle);
            return Err(call_error(CallError::Unavailable));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let policy = shard.config().compaction.policy(now);
        let (user, request) = (self.user.as_str(), &self.request);
        let public = shard.config().public_owner.as_deref();
        let result =
            guarded(|| handle.with_store(|store| operate(store, user, request, &policy, public)));
        let answer = match result {
            Ok(answer) => answer,
            Err(detail) => {
                shard.note_panic("admin request", &detail);
                shard.registry.poison(&handle);
                Err(ErrorReply::new("server-bug", format!("the operation panicked: {detail}")))
            }
        };
        shard.registry.release(handle);
        // Whatever the operation wrote (or opening the store recovered) is durable before the
        // tool hears `ok`: a write tool's answer is an acknowledgement like any other.
        let ticket = shard.commit.ticket();
        if let Err(error) = shard.commit.wait_durable(ticket).await {
            return Err(ErrorReply::new("storage", error.to_string()));
        }
        answer
    }

    fn refused(self, error: CallError) -> Self::Answer {
        Err(call_error(error))
    }
}

/// The operation itself, on the home shard (the same core functions the offline CLI calls).
fn operate(
    store: &mut skua_core::store::UserStore<crate::shard::ShardDisk>,
    user: &str,
    request: &AdminRequest,
    policy: &skua_core::store::CompactionPolicy,
    public_owner: Option<&str>,
) -> Result<serde_json::Value, ErrorReply> {
    let storage = |e: skua_core::error::StorageError| ErrorReply::new("storage", e.to_string());
    let value = match request.op {
        Op::Check => serde_json::to_value(admin::check(store, user).map_err(storage)?),
        Op::Quota => {
            let fixed = request.fix && store.quota_fix();
            let mut report = store.quota_report(user).map_err(storage)?;
            report.fixed = fixed;
            serde_json::to_value(report)
        }
        Op::Examine => {
            let mailbox = request.mailbox.as_deref().expect("parse_request checked");
            serde_json::to_value(store.examine(user, mailbox).map_err(|e| admin_error(&e))?)
        }
        Op::Df => serde_json::to_value(store.usage_report(user, policy).map_err(storage)?),
        Op::Ipurge | Op::Unexpunge => {
            return crate::admin_purge::operate(store, user, request, policy)
                .map_err(|e| admin_error(&e));
        }
        Op::MboxlistDump | Op::MboxlistUndump | Op::Arbitron => {
            return crate::admin_mboxlist::operate(store, user, request, public_owner);
        }
        Op::Ping | Op::Deny | Op::DenyAllow | Op::DenyList | Op::Backup | Op::Restore => {
            unreachable!("answered before any call")
        }
        Op::Reconstruct => unreachable!("a ReconstructCall, not an AdminCall"),
    };
    Ok(value.expect("a report serializes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_servers_own_uid_and_root_may_connect() {
        assert!(peer_allowed(1000, 1000));
        assert!(peer_allowed(0, 1000), "root");
        assert!(peer_allowed(0, 0));
        assert!(!peer_allowed(1001, 1000));
        assert!(!peer_allowed(1000, 0), "a user on root's server");
    }

    #[test]
    fn connection_slots_are_bounded_and_given_back() {
        let slots: Vec<Slot> =
            (0..ADMIN_CONNECTIONS_MAX).map(|_| Slot::take().expect("room")).collect();
        assert!(Slot::take().is_none(), "one past the bound");
        drop(slots);
        assert!(Slot::take().is_some(), "room again");
    }
}
