//! GETMETADATA and SETMETADATA (RFC 5464, METADATA and METADATA-SERVER) and the `* METADATA`
//! lines of LIST's `RETURN (METADATA ...)` (RFC 9590, LIST-METADATA).
//!
//! Entries live in the user's store (`skua_core::store`, `metadata.log`): server entries
//! (mailbox `""`) and per-mailbox entries, which follow RENAME and vanish with DELETE.
//! `/private/...` and `/shared/...` are both the user's own until shared folders and ACLs
//! come (issue 10): nobody else can read this store, so a shared entry is seen by the user's
//! sessions only. Three entries are the server's, not stored:
//!
//! - `/shared/admin` on the server (RFC 5464 §3.2.1.1): the configured admin contact
//!   (`ImapConfig::admin_contact`), read-only;
//! - `/private/specialuse` on a mailbox (RFC 6154 §4): its SPECIAL-USE attributes (the same
//!   ones CREATE's `USE` gives); SETMETADATA replaces them (NIL clears them), and `\All`,
//!   `\Flagged` or an unknown attribute is `NO [USEATTR]`.
//!
//! A requested entry that does not exist is answered `NIL` (with DEPTH 1 or infinity only
//! when it has no descendant either), so a GETMETADATA, and each mailbox a LIST-METADATA lists,
//! always has its `* METADATA` line unless MAXSIZE left every value out. Values with a NUL go
//! out as `literal8` (RFC 5464 `value = nstring / literal8`).

use std::collections::BTreeMap;

use skua_core::disk::Disk;
use skua_core::store::{MetadataError, MetadataOwner, SpecialUse, UserStore};
use skua_core::types::MailboxId;

use super::durable;
use crate::imap::encode;
use crate::imap::reply::{self, Code, Completion};
use crate::imap::session::Conn;
use crate::imap::session::out::Out;
use crate::imap::types::{MetadataDepth, MetadataRequest};

// A value one byte over the store's limit must fit in a literal the framer lets through, so
// that SETMETADATA answers `NO [METADATA MAXSIZE n]`, not BAD.
const _: () = assert!(
    skua_core::limits::METADATA_VALUE_BYTES_MAX as u64 * 2
        <= crate::imap::limits::LITERAL_BYTES_MAX
);

/// The server's admin contact entry.
const ADMIN: &str = "/shared/admin";
/// A mailbox's SPECIAL-USE attributes (RFC 6154 §4).
const SPECIAL_USE: &str = "/private/specialuse";

/// GETMETADATA: one `* METADATA` line, then OK (with `[METADATA LONGENTRIES n]` when MAXSIZE
/// left values out).
pub(crate) fn get<D: Disk>(
    conn: &Conn,
    store: &mut UserStore<D>,
    mailbox: &str,
    request: &MetadataRequest,
    out: &mut Out,
) -> Completion {
    match store.load_metadata() {
        // Replayed just now: what it shows becomes durable with the open epoch.
        Ok(true) => durable(store, out),
        Ok(false) => {}
        Err(error) => return reply::storage(&error),
    }
    let owner = match owner(store, mailbox) {
        Some(owner) => owner,
        None => return Completion::no("No such mailbox").with(Code::Nonexistent),
    };
    let utf8 = conn.enabled.rev2;
    let longest = write(
        out.buf(),
        store,
        owner,
        mailbox,
        request,
        conn.config.admin_contact.as_deref(),
        utf8,
    );
    completion("GETMETADATA completed", longest)
}

/// The tagged OK of a command that returned metadata: `[METADATA LONGENTRIES n]` when a value
/// of `n` bytes (the longest) was left out for MAXSIZE.
pub(crate) fn completion(text: &'static str, longest: u64) -> Completion {
    let done = Completion::ok(text);
    if longest > 0 { done.with(Code::MetadataLongEntries(longest)) } else { done }
}

/// SETMETADATA: every change or none; the reply waits for durability.
pub(crate) fn set<D: Disk>(
    store: &mut UserStore<D>,
    mailbox: &str,
    entries: &[(String, Option<Vec<u8>>)],
    out: &mut Out,
) -> Completion {
    let Some(owner) = owner(store, mailbox) else {
        return Completion::no("No such mailbox").with(Code::Nonexistent);
    };
    if owner == MetadataOwner::Server && entries.iter().any(|(name, _)| name == ADMIN) {
        return Completion::no(format!("{ADMIN} is set by the administrator"));
    }
    // `/private/specialuse` of a mailbox is its SPECIAL-USE attributes (mailboxes.log), the
    // rest goes to metadata.log. Every check of both runs before either is written; only a
    // disk failure between the two writes can leave one without the other.
    let (uses, rest): (Vec<_>, Vec<_>) = entries
        .iter()
        .cloned()
        .partition(|(name, _)| matches!(owner, MetadataOwner::Mailbox(_)) && name == SPECIAL_USE);
    let uses = match uses.last().map(|(_, value)| parse_uses(value.as_deref())) {
        Some(Ok(uses)) => Some(uses),
        Some(Err(())) => {
            return Completion::no("Special-use attribute not supported").with(Code::UseAttr);
        }
        None => None,
    };
    let result = store.set_metadata(owner, &rest).and_then(|()| match (owner, uses) {
        (MetadataOwner::Mailbox(id), Some(uses)) => store.set_special_use(id, uses),
        _ => Ok(()),
    });
    match result {
        Ok(()) => {
            durable(store, out);
            Completion::ok("SETMETADATA completed")
        }
        Err(MetadataError::NoSuchMailbox) => {
            Completion::no("No such mailbox").with(Code::Nonexistent)
        }
        Err(MetadataError::TooLarge { max }) => {
            Completion::no("Value too long").with(Code::MetadataMaxSize(max))
        }
        Err(MetadataError::TooMany) => {
            Completion::no("Too many metadata entries").with(Code::MetadataTooMany)
        }
        Err(MetadataError::NotAssignable) => {
            Completion::no("Special-use attribute not supported").with(Code::UseAttr)
        }
        Err(MetadataError::BadName) => Completion::bad("Invalid entry name"),
        Err(MetadataError::Storage(error)) => reply::storage(&error),
    }
}

/// A `/private/specialuse` value: attribute names separated by spaces (RFC 6154 §4), NIL or
/// empty for none. Only the attributes a real mailbox may carry (`[USEATTR]` otherwise).
fn parse_uses(value: Option<&[u8]>) -> Result<SpecialUse, ()> {
    let text = std::str::from_utf8(value.unwrap_or_default()).map_err(drop)?;
    let mut uses = SpecialUse::NONE;
    for name in text.split_ascii_whitespace() {
        let one = SpecialUse::from_name(name).ok_or(())?;
        if !SpecialUse::ASSIGNABLE.contains(one) {
            return Err(());
        }
        uses = uses.union(one);
    }
    Ok(uses)
}

/// The owner a mailbox name stands for (`""`: the server), if it exists.
fn owner<D: Disk>(store: &UserStore<D>, mailbox: &str) -> Option<MetadataOwner> {
    if mailbox.is_empty() {
        return Some(MetadataOwner::Server);
    }
    store.mailbox_id(mailbox).map(MetadataOwner::Mailbox)
}

/// The `* METADATA` line of a listed mailbox (LIST-METADATA). Returns the length of the
/// longest value MAXSIZE left out (0: none). The store's metadata must be loaded.
pub(crate) fn write_for_list<D: Disk>(
    b: &mut Vec<u8>,
    store: &UserStore<D>,
    id: MailboxId,
    name: &str,
    request: &MetadataRequest,
    utf8: bool,
) -> u64 {
    write(b, store, MetadataOwner::Mailbox(id), name, request, None, utf8)
}

/// Writes `* METADATA mailbox (entry value ...)` for `request`; returns the length of the
/// longest value left out for MAXSIZE (0: none). No line when every value was left out.
fn write<D: Disk>(
    b: &mut Vec<u8>,
    store: &UserStore<D>,
    owner: MetadataOwner,
    mailbox: &str,
    request: &MetadataRequest,
    admin: Option<&str>,
    utf8: bool,
) -> u64 {
    let entries = view(store, owner, admin);
    let mut items: Vec<(&str, Option<&[u8]>)> = Vec::new();
    let mut longest = 0u64;
    let mut seen = std::collections::BTreeSet::new();
    for requested in &request.entries {
        let mut found = false;
        let prefix = format!("{requested}/");
        let own = entries.get_key_value(requested.as_str());
        let below = entries.range::<str, _>((
            std::ops::Bound::Excluded(prefix.as_str()),
            std::ops::Bound::Unbounded,
        ));
        let below =
            below.take_while(|(n, _)| n.starts_with(&prefix)).filter(|(n, _)| {
                match request.depth {
                    MetadataDepth::Zero => false,
                    MetadataDepth::One => !n[prefix.len()..].contains('/'),
                    MetadataDepth::Infinity => true,
                }
            });
        for (name, value) in own.into_iter().chain(below) {
            found = true;
            if !seen.insert(*name) {
                continue;
            }
            match request.max_size {
                Some(max) if value.len() > max as usize => {
                    longest = longest.max(value.len() as u64);
                }
                _ => items.push((name, Some(value.as_ref()))),
            }
        }
        if !found && seen.insert(requested.as_str()) {
            items.push((requested, None));
        }
    }
    if items.is_empty() {
        return longest;
    }
    b.extend_from_slice(b"* METADATA ");
    encode::mailbox(b, mailbox, utf8);
    b.extend_from_slice(b" (");
    for (i, (name, value)) in items.iter().enumerate() {
        if i > 0 {
            b.push(b' ');
        }
        encode::astring(b, name.as_bytes());
        b.push(b' ');
        value_out(b, *value);
    }
    b.extend_from_slice(b")\r\n");
    longest
}

/// `value = nstring / literal8`: a literal8 when the bytes hold NUL, which no `string` may.
fn value_out(b: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(bytes) if bytes.contains(&0) => {
            encode::literal8_header(b, bytes.len() as u64);
            b.extend_from_slice(bytes);
        }
        other => encode::nstring(b, other),
    }
}

/// The entries of `owner` as a client sees them: the stored ones and the server's own.
fn view<'a, D: Disk>(
    store: &'a UserStore<D>,
    owner: MetadataOwner,
    admin: Option<&'a str>,
) -> BTreeMap<&'a str, std::borrow::Cow<'a, [u8]>> {
    let mut entries: BTreeMap<&str, std::borrow::Cow<'_, [u8]>> = store
        .metadata(owner)
        .iter()
        .map(|(name, value)| (name.as_str(), std::borrow::Cow::Borrowed(value.as_slice())))
        .collect();
    match owner {
        MetadataOwner::Server => {
            entries.remove(ADMIN);
            if let Some(admin) = admin {
                entries.insert(ADMIN, std::borrow::Cow::Borrowed(admin.as_bytes()));
            }
        }
        MetadataOwner::Mailbox(id) => {
            entries.remove(SPECIAL_USE);
            let uses: Vec<&str> = store.special_use(id).names().collect();
            if !uses.is_empty() {
                entries.insert(SPECIAL_USE, std::borrow::Cow::Owned(uses.join(" ").into_bytes()));
            }
        }
    }
    entries
}
