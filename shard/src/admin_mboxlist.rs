//! The admin socket's `mboxlist-dump`, `mboxlist-undump` and `arbitron` ops on the user's
//! home shard (`admin.rs` runs them like every per-user op; the operations are
//! `skua_core::store::admin`'s).
//!
//! An undump whose new mailboxes' ACLs give rights to other users first notes the owner in
//! each such user's grant index (`grants.rs`), on that user's home shard, and the owner's
//! mailboxes are made only after: [`undump_users`] lists the grantees with a store before the
//! owner, and each call's answer waits for its flush round, so a note is durable before the
//! ACL that needs it is written (the order SETACL keeps).

use std::rc::Rc;

use crate::shard::ShardDisk;
use skua_core::store::UserStore;
use skua_core::store::admin::{self, AdminError};

use crate::admin_proto::{AdminRequest, ErrorReply, Op};
use crate::shard::Shard;

fn error_of(error: &AdminError) -> ErrorReply {
    ErrorReply::new(error.kind(), error.to_string())
}

/// The users an undump calls on, in order: each grantee of the lines' ACLs that is a user (in
/// the passwd-file, whose store is then made as a first login would, or with a store; not
/// for a dry run), then the owner, who must be a user (in the passwd-file, or with a
/// store: a new data dir has no stores yet).
///
/// # Errors
/// `no-such-user`: the owner is unknown.
pub(crate) fn undump_users(
    shard: &Rc<Shard>,
    request: &AdminRequest,
) -> Result<Vec<String>, ErrorReply> {
    let data_dir = &shard.config().data_dir;
    let owner = &request.users[0];
    let users = shard.shared.users.get();
    let name = match users.lookup(owner) {
        Some(entry) => entry.name.clone(),
        None if crate::deny::is_known(data_dir, owner, false) => owner.to_ascii_lowercase(),
        None => return Err(error_of(&AdminError::NoSuchUser(owner.clone()))),
    };
    let mut order = Vec::new();
    if !request.dry_run {
        for grantee in admin::grantees(&request.lines).into_keys() {
            let in_passwd = users.lookup(&grantee).is_some();
            if grantee != name.to_ascii_lowercase()
                && crate::deny::is_known(data_dir, &grantee, in_passwd)
            {
                order.push(grantee);
            }
        }
    }
    order.push(name);
    Ok(order)
}

/// A dry undump for an owner without a store is answered here, without making the store
/// (opening one on the home shard would).
///
/// # Errors
/// A bad line.
pub(crate) fn undump_dry_here(
    shard: &Rc<Shard>,
    request: &AdminRequest,
) -> Result<Option<serde_json::Value>, ErrorReply> {
    let owner = &request.users[0];
    if !request.dry_run || crate::deny::is_known(&shard.config().data_dir, owner, false) {
        return Ok(None);
    }
    let report =
        admin::undump_dry_without_store(owner, &request.lines).map_err(|e| error_of(&e))?;
    Ok(Some(serde_json::to_value(report).expect("a report serializes")))
}

/// The per-user work of the three ops, on `user`'s store (`public_owner`: the config's).
pub(crate) fn operate(
    store: &mut UserStore<ShardDisk>,
    user: &str,
    request: &AdminRequest,
    public_owner: Option<&str>,
) -> Result<serde_json::Value, ErrorReply> {
    let storage = |e: skua_core::error::StorageError| ErrorReply::new("storage", e.to_string());
    let value = match request.op {
        Op::MboxlistDump => serde_json::to_value(store.mboxlist_dump(user)),
        Op::Arbitron => {
            let public = public_owner.is_some_and(|p| p.eq_ignore_ascii_case(user));
            serde_json::to_value(store.arbitron(user, public).map_err(storage)?)
        }
        Op::MboxlistUndump if !request.users[0].eq_ignore_ascii_case(user) => {
            // A grantee: note each owner whose new ACLs give this user rights.
            for owner in admin::grantees(&request.lines).remove(user).unwrap_or_default() {
                store.note_grant(&owner).map_err(storage)?;
            }
            Ok(serde_json::Value::Null)
        }
        Op::MboxlistUndump => {
            let report = store.mboxlist_undump(user, &request.lines, request.dry_run);
            serde_json::to_value(report.map_err(|e| error_of(&e))?)
        }
        _ => unreachable!("only the mboxlist and arbitron ops come here"),
    };
    Ok(value.expect("a report serializes"))
}
