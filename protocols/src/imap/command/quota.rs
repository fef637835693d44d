//! GETQUOTA, GETQUOTAROOT and SETQUOTA (RFC 9208 §4.1) over the store's quota
//! (`core/src/store/quota.rs`).
//!
//! Every mailbox of a user is governed by one quota root, named `""` (the user's whole
//! account, as RFC 9208's own examples and most servers name it): there is nothing to choose
//! per mailbox, and an empty name needs no translation in any client's language. The root
//! exists while at least one limit applies to the user; a user without limits gets a
//! `* QUOTAROOT` line naming no root. The `* QUOTA` response lists the resources that have a
//! limit, STORAGE in units of 1024 octets (usage rounded up).
//!
//! SETQUOTA is for administrators (`ImapConfig::admins`). An administrator names another
//! user's root by the user's name (`SETQUOTA "bob" (STORAGE 1048576)`, `GETQUOTA "bob"`): the
//! command runs on bob's store, on bob's home shard (`command/route.rs`); for everyone else
//! such a root does not exist. The limits set replace the root's whole set (resources not named lose their limit) and are
//! kept in `quota.limits`, so they win over the passwd-file and the config; the reply waits
//! for them to be durable.

use skua_core::disk::Disk;
use skua_core::store::{QuotaLimits, UserStore};

use crate::imap::encode;
use crate::imap::reply::{self, Code, Completion};
use crate::imap::session::Conn;
use crate::imap::session::out::Out;

/// The one quota root of every user (see the module docs).
pub(crate) const ROOT: &str = "";

/// The name of the store's root as the session calls it: `""` for its own user's, the owner's
/// name for another user's (an administrator's GETQUOTA/SETQUOTA, routed to that store).
fn root_name(conn: &Conn) -> &str {
    conn.store_owner.as_deref().unwrap_or(ROOT)
}

/// True when `root` names the store at hand's root.
fn is_root(conn: &Conn, root: &str) -> bool {
    match conn.store_owner.as_deref() {
        None => root == ROOT,
        Some(owner) => root.eq_ignore_ascii_case(owner),
    }
}

/// GETQUOTA: `* QUOTA "" (...)` for the user's root.
pub(crate) fn get_quota<D: Disk>(
    conn: &Conn,
    store: &mut UserStore<D>,
    root: &str,
    out: &mut Out,
) -> Completion {
    if !is_root(conn, root) {
        return Completion::no("No such quota root").with(Code::Nonexistent);
    }
    let limits = match store.quota_limits() {
        Ok((limits, _)) => limits,
        Err(error) => return reply::storage(&error),
    };
    if limits == QuotaLimits::UNLIMITED {
        return Completion::no("No quota applies to this user").with(Code::Nonexistent);
    }
    write_quota(out.buf(), store, root_name(conn), limits);
    Completion::ok("GETQUOTA completed")
}

/// GETQUOTAROOT: `* QUOTAROOT mailbox ""`, then the root's `* QUOTA` line.
pub(crate) fn get_quota_root<D: Disk>(
    conn: &Conn,
    store: &mut UserStore<D>,
    mailbox: &str,
    out: &mut Out,
) -> Completion {
    let Some(id) = store.mailbox_id(mailbox) else {
        return Completion::no("No such mailbox").with(Code::Nonexistent);
    };
    let limits = match store.quota_limits() {
        Ok((limits, _)) => limits,
        Err(error) => return reply::storage(&error),
    };
    let name = store.mailbox_info(id).map_or_else(|| mailbox.to_owned(), |info| info.name);
    let b = out.buf();
    b.extend_from_slice(b"* QUOTAROOT ");
    encode::mailbox(b, &name, conn.enabled.utf8_names());
    if limits != QuotaLimits::UNLIMITED {
        b.push(b' ');
        encode::astring(b, ROOT.as_bytes());
    }
    b.extend_from_slice(b"\r\n");
    if limits != QuotaLimits::UNLIMITED {
        write_quota(b, store, ROOT, limits);
    }
    Completion::ok("GETQUOTAROOT completed")
}

/// SETQUOTA: administrators only; the new limits, then `* QUOTA` with them.
pub(crate) fn set_quota<D: Disk>(
    conn: &Conn,
    store: &mut UserStore<D>,
    root: &str,
    resources: &[(String, u64)],
    out: &mut Out,
) -> Completion {
    if !conn.admin {
        return Completion::no("Only administrators may set quotas").with(Code::NoPerm);
    }
    if !is_root(conn, root) {
        return Completion::no("No such quota root").with(Code::Nonexistent);
    }
    let mut limits = QuotaLimits::UNLIMITED;
    for (name, limit) in resources {
        let slot = match name.as_str() {
            "STORAGE" => &mut limits.storage_kib,
            "MESSAGE" => &mut limits.messages,
            "MAILBOX" => &mut limits.mailboxes,
            _ => return Completion::no(format!("Unsupported quota resource {name}")),
        };
        if slot.is_some() {
            return Completion::bad(format!("Resource {name} named twice"));
        }
        *slot = Some(*limit);
    }
    if let Err(error) = store.set_quota(limits) {
        return reply::storage(&error);
    }
    super::durable(store, out);
    if limits != QuotaLimits::UNLIMITED {
        write_quota(out.buf(), store, root_name(conn), limits);
    }
    Completion::ok("SETQUOTA completed")
}

/// `* QUOTA "" (resource usage limit ...)` for the resources `limits` limits.
fn write_quota<D: Disk>(b: &mut Vec<u8>, store: &UserStore<D>, root: &str, limits: QuotaLimits) {
    let usage = store.quota_usage();
    b.extend_from_slice(b"* QUOTA ");
    encode::astring(b, root.as_bytes());
    b.extend_from_slice(b" (");
    let resources = [
        ("STORAGE", usage.storage_kib(), limits.storage_kib),
        ("MESSAGE", usage.messages, limits.messages),
        ("MAILBOX", usage.mailboxes, limits.mailboxes),
    ];
    let mut first = true;
    for (name, used, limit) in resources {
        let Some(limit) = limit else { continue };
        if !first {
            b.push(b' ');
        }
        first = false;
        b.extend_from_slice(name.as_bytes());
        b.push(b' ');
        encode::number(b, used);
        b.push(b' ');
        encode::number(b, limit);
    }
    b.extend_from_slice(b")\r\n");
}
