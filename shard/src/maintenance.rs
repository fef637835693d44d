//! Rewriting a store's files on a running server: `skua reconstruct` through the admin socket
//! (`admin.rs`), run on the user's home shard.
//!
//! ```text
//!  admin.rs (shard 0) ── call(ReconstructCall{alice}) ──► alice's home shard:
//!    registry.hold(alice)            opens refused: deliveries deferred (4xx), logins told
//!                                    to try again, shared-folder calls unavailable
//!    registry.close_held(alice)      the open store poisoned: its sessions, idle or not, get
//!                                    `* BYE [UNAVAILABLE]` at once; closed when the last lets go
//!    commit.wait_durable(ticket)     whatever the store wrote is durable first
//!    run_blocking(reconstruct)       off the reactor, on a disk of its own: indexes rebuilt
//!                                    from the spool, made durable, renamed over the old ones
//!    drop(hold)                      the next open reads the new indexes
//! ```
//!
//! The shard serves everyone else meanwhile. A store whose sessions do not let go within
//! [`MAINTENANCE_CLOSE_MS`] is left to close when they do (as after a panic) and the tool is
//! answered `busy` with nothing rewritten.

use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use skua_core::disk::os::OsDisk;
use skua_core::disk::{Disk, Flush};
use skua_core::store::admin;

use crate::admin_proto::ErrorReply;
use crate::call::{self, CallError};
use crate::driver;
use crate::limits::MAINTENANCE_CLOSE_MS;
use crate::shard::Shard;

/// How often [`crate::registry::Registry::close_held`] looks whether the store was let go.
const CLOSE_POLL: Duration = Duration::from_millis(10);

/// `skua reconstruct USER` on a running server, served on the user's home shard.
pub(crate) struct ReconstructCall {
    /// The user (a store must exist: `admin.rs` checked).
    pub(crate) user: String,
}

impl call::Request for ReconstructCall {
    type Answer = Result<serde_json::Value, ErrorReply>;
    const NAME: &'static str = "admin-reconstruct";

    fn user(&self) -> &str {
        &self.user
    }

    async fn serve(self, shard: Rc<Shard>) -> Self::Answer {
        if shard.is_stopping() {
            return Err(crate::admin::call_error(CallError::Unavailable));
        }
        let Some(held) = shard.registry.hold(&self.user) else {
            return Err(ErrorReply::new(
                "busy",
                format!("the store of {} is being rewritten already", self.user),
            ));
        };
        let deadline = Instant::now() + Duration::from_millis(MAINTENANCE_CLOSE_MS);
        if !shard.registry.close_held(&held, || driver::sleep(CLOSE_POLL), deadline).await {
            return Err(ErrorReply::new(
                "busy",
                format!(
                    "sessions of {} did not let go of the store within {} s (they were told to \
                     reconnect); nothing was changed: try again",
                    self.user,
                    MAINTENANCE_CLOSE_MS / 1000
                ),
            ));
        }
        // What the store wrote before it closed is durable before its files are rewritten.
        let ticket = shard.commit.ticket();
        if let Err(error) = shard.commit.wait_durable(ticket).await {
            return Err(ErrorReply::new("storage", error.to_string()));
        }
        // The rewrite renames the user's files on a disk of its own: the shard's journal must
        // hold no record naming them first, or a replay would write into the new files.
        if let Err(error) = shard.commit.disk().checkpoint_now() {
            return Err(ErrorReply::new("storage", error.to_string()));
        }
        let data_dir = shard.config().data_dir.clone();
        let user = held.user().to_owned();
        tracing::info!(user, "reconstruct on a running server");
        let rebuilt = driver::run_blocking(move || reconstruct_files(&data_dir, &user)).await;
        drop(held);
        match rebuilt {
            Ok(Ok(report)) => {
                let mut value = serde_json::to_value(report).expect("a report serializes");
                value["user"] = serde_json::Value::String(self.user.to_ascii_lowercase());
                Ok(value)
            }
            Ok(Err(error)) => Err(error),
            Err(detail) => {
                shard.note_panic("admin reconstruct", &detail);
                Err(ErrorReply::new("server-bug", format!("reconstruct panicked: {detail}")))
            }
        }
    }

    fn refused(self, error: CallError) -> Self::Answer {
        Err(crate::admin::call_error(error))
    }
}

/// Rebuilds `user`'s indexes on a disk of its own (no other flush round touches its files
/// meanwhile: the store is closed and held) and makes the renames durable.
fn reconstruct_files(
    data_dir: &Path,
    user: &str,
) -> Result<skua_core::store::ReconstructReport, ErrorReply> {
    let storage = |e: &dyn std::fmt::Display| ErrorReply::new("storage", e.to_string());
    let disk = Rc::new(OsDisk::new(data_dir).map_err(|e| storage(&e))?);
    let dir = admin::existing_store_dir(&*disk, user)
        .map_err(|e| ErrorReply::new(e.kind(), e.to_string()))?;
    let report = skua_core::store::reconstruct(disk.clone(), &dir).map_err(|e| storage(&e))?;
    if let Some(flush) = disk.flush_begin() {
        let epoch = flush.epoch();
        flush.run().map_err(|e| storage(&e))?;
        disk.flush_end(epoch);
    }
    Ok(report)
}
