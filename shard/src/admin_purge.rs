//! `ipurge` and `unexpunge` requests on one user's store: the request's fields turned into
//! the core operations' arguments, and their report as JSON. The server runs this on the
//! user's home shard (`admin.rs`, `operate`) and the offline CLI on the store it opened, so
//! both modes read a request the same way and give the same report.

use skua_core::disk::Disk;
use skua_core::store::admin::{AdminError, PurgeCriteria};
use skua_core::store::{CompactionPolicy, UserStore};

use crate::admin_proto::{AdminRequest, Op};

/// What an `ipurge` request selects, as of `now_unix_seconds`.
#[must_use]
pub fn purge_criteria(request: &AdminRequest, now_unix_seconds: i64) -> PurgeCriteria {
    PurgeCriteria {
        older_than_days: request.older_than_days,
        larger_than_bytes: request.larger_than_bytes,
        mailbox: request.mailbox.clone(),
        dry_run: request.dry_run,
        now_unix_seconds,
    }
}

/// Runs an `ipurge` or `unexpunge` request (checked by `parse_request`) on `user`'s store;
/// `policy` gives the time now and the retention of expunged messages.
///
/// # Errors
/// As the operation: no such mailbox, UIDs not restorable, mailbox full, the disk failed.
///
/// # Panics
/// On another op, or a request `parse_request` would refuse.
pub fn operate<D: Disk>(
    store: &mut UserStore<D>,
    user: &str,
    request: &AdminRequest,
    policy: &CompactionPolicy,
) -> Result<serde_json::Value, AdminError> {
    let value = match request.op {
        Op::Ipurge => {
            let criteria = purge_criteria(request, policy.now_unix_seconds);
            serde_json::to_value(store.ipurge(user, &criteria)?)
        }
        Op::Unexpunge => {
            let mailbox = request.mailbox.as_deref().expect("parse_request checked");
            if request.restore_all {
                serde_json::to_value(store.restore_expunged(user, mailbox, None)?)
            } else if request.restore.is_empty() {
                serde_json::to_value(store.expunged_report(user, mailbox, policy)?)
            } else {
                serde_json::to_value(store.restore_expunged(
                    user,
                    mailbox,
                    Some(&request.restore),
                )?)
            }
        }
        other => unreachable!("{other:?} is not a purge op"),
    };
    Ok(value.expect("a report serializes"))
}
